"""Transaction numbers a caller reads out or keys in: the Damm check digit catches their slips."""

from __future__ import annotations

import pytest

from walletdesk.kit.ids import (
    TRANSACTION_NUMBER_LENGTH,
    damm_digit,
    is_valid_number,
    new_number,
    normalize_number,
)

# Fixed valid numbers (check digit appended), so the exhaustive checks below are reproducible.
SAMPLES = ["5724", "123456789018", "900000000004", "314159265352"]


@pytest.fixture(params=[*SAMPLES, "random"])
def valid_number(request: pytest.FixtureRequest) -> str:
    if request.param == "random":
        return new_number()
    assert damm_digit(request.param) == 0
    return request.param


def test_the_published_damm_example() -> None:
    # Damm's worked example (also on Wikipedia): the check digit of 572 is 4.
    assert damm_digit("572") == 4
    assert is_valid_number("5724", length=4)
    assert not is_valid_number("5723", length=4)


@pytest.mark.parametrize("length", [TRANSACTION_NUMBER_LENGTH, 8, 16])
def test_new_numbers_are_valid_fixed_length_digits_without_a_leading_zero(length: int) -> None:
    numbers = {new_number(length) for _ in range(300)}
    assert len(numbers) > 290, "numbers should be random, not repeated"
    for number in numbers:
        assert len(number) == length
        assert number.isascii() and number.isdigit()
        assert number[0] != "0"
        assert is_valid_number(number, length)


def test_every_single_digit_slip_is_detected(valid_number: str) -> None:
    length = len(valid_number)
    assert is_valid_number(valid_number, length)
    for position, digit in enumerate(valid_number):
        for other in "0123456789":
            if other != digit:
                slipped = valid_number[:position] + other + valid_number[position + 1 :]
                assert not is_valid_number(slipped, length), slipped


def test_every_swap_of_neighbouring_digits_is_detected(valid_number: str) -> None:
    length = len(valid_number)
    swaps = 0
    for position in range(length - 1):
        first, second = valid_number[position], valid_number[position + 1]
        if first == second:
            continue
        swapped = valid_number[:position] + second + first + valid_number[position + 2 :]
        assert not is_valid_number(swapped, length), swapped
        swaps += 1
    assert swaps > 0


@pytest.mark.parametrize(
    "text",
    [
        "12345678901",  # a digit short
        "1234567890180",  # a digit too many
        "12345678901a",
        "",
        "1234 5678 9018",
        "-23456789018",
    ],
)
def test_wrong_shapes_are_not_numbers(text: str) -> None:
    assert not is_valid_number(text)


def test_unicode_digit_lookalikes_are_refused_not_crashed_on() -> None:
    assert not is_valid_number("²" * TRANSACTION_NUMBER_LENGTH)


def test_spaces_and_dashes_people_type_are_dropped() -> None:
    assert normalize_number("1234 5678-9018") == "123456789018"
    assert is_valid_number(normalize_number(" 1234-5678-9018 "))
