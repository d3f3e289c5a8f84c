"""Amounts typed by people and shown back to them: integers of minor units, never floats.

CNY has 2 decimal places, JPY 0, BTC 8, USDT 6 (DESIGN.md rule 4).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import MAX_MINOR_UNITS, Money, format_minor, parse_amount

PLACES = {"CNY": 2, "JPY": 0, "BTC": 8, "USDT": 6}


def refusal(text: str | int, currency: str) -> str:
    """The error code `parse_amount` refuses `text` with."""
    with pytest.raises(DomainError) as refused:
        parse_amount(text, currency)
    return refused.value.code


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.34", "CNY", 1234),
        ("0.01", "CNY", 1),
        ("7", "CNY", 700),
        ("7.5", "CNY", 750),
        ("7.50", "CNY", 750),
        ("  12.34  ", "CNY", 1234),
        ("1500", "JPY", 1500),
        ("1500.0", "JPY", 1500),
        ("0.00000001", "BTC", 1),
        ("1.5", "BTC", 150_000_000),
        ("0.000001", "USDT", 1),
        ("100.25", "USDT", 100_250_000),
        ("10000000000000", "CNY", MAX_MINOR_UNITS),
        (3, "CNY", 300),
        (3, "JPY", 3),
    ],
)
def test_valid_amounts_become_exact_minor_units(text: str | int, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize("text", ["1,00", "abc", "-5", "1e3", " ", "", ".5", "5.", "1.2.3", "+5"])
@pytest.mark.parametrize("currency", sorted(PLACES))
def test_malformed_amounts_are_invalid(text: str, currency: str) -> None:
    assert refusal(text, currency) == "invalid_amount"


@pytest.mark.parametrize("text", ["0", "0.00", "000", "0.0000000000"])
@pytest.mark.parametrize("currency", sorted(PLACES))
def test_zero_is_not_an_amount(text: str, currency: str) -> None:
    assert refusal(text, currency) == "amount_not_positive"


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.001", "CNY"),
        ("1.5", "JPY"),
        ("1.50", "JPY"),
        ("0.000000001", "BTC"),
        ("1.0000001", "USDT"),
    ],
)
def test_more_decimals_than_the_currency_has_are_refused(text: str, currency: str) -> None:
    assert refusal(text, currency) == "too_many_decimals"


def test_the_too_many_decimals_message_names_the_limit() -> None:
    with pytest.raises(DomainError) as refused:
        parse_amount("1.001", "CNY")
    assert refused.value.message("en") == "CNY amounts have at most 2 decimal places."
    assert "2" in refused.value.message("zh-CN")
    assert refused.value.status == 422


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("10000000000000.01", "CNY"),
        ("99999999999999999999", "CNY"),
        ("1000000000000001", "JPY"),
        ("10000001", "BTC"),
        ("1000000001", "USDT"),
    ],
)
def test_huge_amounts_are_too_large(text: str, currency: str) -> None:
    assert refusal(text, currency) == "amount_too_large"


@pytest.mark.parametrize("currency", ["XYZ", "cny", "", "RMB"])
def test_unknown_currencies_are_refused_before_the_amount_is_read(currency: str) -> None:
    assert refusal("1", currency) == "unknown_currency"
    assert refusal("abc", currency) == "unknown_currency"
    with pytest.raises(DomainError) as refused:
        format_minor(1, currency)
    assert refused.value.code == "unknown_currency"


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1234, "CNY", "12.34"),
        (5, "CNY", "0.05"),
        (-5, "CNY", "-0.05"),
        (-1234, "CNY", "-12.34"),
        (0, "CNY", "0.00"),
        (1500, "JPY", "1500"),
        (-1500, "JPY", "-1500"),
        (1, "BTC", "0.00000001"),
        (150_000_000, "BTC", "1.50000000"),
        (1_500_000, "USDT", "1.500000"),
    ],
)
def test_minor_units_are_shown_with_the_currencys_places(
    minor: int, currency: str, text: str
) -> None:
    assert format_minor(minor, currency) == text


def test_money_prints_amount_and_currency() -> None:
    assert str(Money(1234, "CNY")) == "12.34 CNY"
    assert str(Money(1, "BTC")) == "0.00000001 BTC"
    with pytest.raises(DomainError):
        Money(1, "XYZ")


@settings(max_examples=50, deadline=None)
@given(currency=st.sampled_from(sorted(PLACES)), minor=st.integers(1, MAX_MINOR_UNITS))
def test_what_is_shown_parses_back_to_the_same_minor_units(currency: str, minor: int) -> None:
    assert parse_amount(format_minor(minor, currency), currency) == minor


@settings(max_examples=50, deadline=None)
@given(
    currency=st.sampled_from(sorted(PLACES)),
    whole=st.integers(0, 10**6),
    fraction=st.text("0123456789", min_size=0, max_size=8),
)
def test_any_typed_amount_keeps_its_exact_value(currency: str, whole: int, fraction: str) -> None:
    text = f"{whole}.{fraction}" if fraction else str(whole)
    value = Decimal(text)
    if value == 0:
        assert refusal(text, currency) == "amount_not_positive"
    elif len(fraction.rstrip("0")) > PLACES[currency]:
        assert refusal(text, currency) == "too_many_decimals"
    else:
        minor = parse_amount(text, currency)
        assert Decimal(format_minor(minor, currency)) == value
