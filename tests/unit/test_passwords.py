"""Password and PIN rules (NIST SP 800-63B, OWASP ASVS V6) and the argon2id parameters."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters

from walletdesk.identity import passwords
from walletdesk.identity.passwords import (
    CheckedAhead,
    check_password,
    check_pin,
    hash_pin,
    hash_secret,
    may_be_pin,
    verify_secret,
)
from walletdesk.kit.errors import DomainError


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "password_too_short"),
        ("1234567", "password_too_short"),
        ("password", "password_too_common"),
        ("Password123", "password_too_common"),
        ("woaini1314", "password_too_common"),
        ("88888888", "password_too_common"),
        ("x" * 257, "password_too_long"),
    ],
)
def test_weak_passwords_are_refused(password: str, code: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_password(password)
    assert refused.value.code == code


def test_the_accounts_own_phone_number_is_not_a_password() -> None:
    with pytest.raises(DomainError):
        check_password("8613800138000", personal=("+8613800138000", None))


@pytest.mark.parametrize(
    "password", ["correct horse battery", "我的密码很长很长", "x" * 256, "no rules: 8 chars"]
)
def test_any_long_enough_uncommon_password_is_accepted(password: str) -> None:
    check_password(password)


def test_long_passwords_are_never_truncated() -> None:
    base = "a-long-passphrase-" * 10
    stored = hash_secret(base + "one")
    assert verify_secret(stored, base + "one")
    assert not verify_secret(stored, base + "two")


@pytest.mark.parametrize("make", [hash_secret, hash_pin])
def test_argon2id_meets_the_owasp_floor(make) -> None:
    parameters = extract_parameters(make("258036"))
    assert parameters.type.name == "ID"
    assert parameters.memory_cost >= 19456
    assert parameters.time_cost >= 2


def test_a_missing_account_costs_what_an_existing_password_does() -> None:
    # A login to an unknown account checks the dummy hash: the same parameters as a password's,
    # or the response time would tell which accounts exist.
    assert extract_parameters(hash_secret("x")) == extract_parameters(passwords._DUMMY_HASH)


def test_pins_are_checked_on_two_lanes_and_older_one_lane_pins_still_verify() -> None:
    assert extract_parameters(hash_pin("258036")).parallelism == 2
    one_lane = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("258036")
    assert verify_secret(one_lane, "258036")
    assert not verify_secret(one_lane, "258037")


def test_a_missing_hash_never_verifies() -> None:
    assert not verify_secret(None, "anything")


@pytest.mark.parametrize("pin", ["12345", "1234567", "abcdef", "111111", "123456", "654321"])
def test_weak_or_malformed_pins_are_refused(pin: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_pin(pin)
    assert refused.value.code == "pin_invalid"


def test_a_reasonable_pin_is_accepted() -> None:
    check_pin("258036")


@pytest.mark.parametrize("pin", ["２５８０３６", "25803６", "258 36"])
def test_a_pin_is_ascii_digits(pin: str) -> None:
    assert not may_be_pin(pin)
    with pytest.raises(DomainError):
        check_pin(pin)


def test_a_check_done_ahead_answers_for_its_own_hash_and_candidate() -> None:
    stored = hash_secret("258036")
    assert CheckedAhead.check(stored, "258036")(stored, "258036")
    assert not CheckedAhead.check(stored, "111222")(stored, "111222")


def test_a_check_done_ahead_does_not_answer_for_a_changed_hash_or_another_candidate() -> None:
    old, new = hash_secret("258036"), hash_secret("470913")
    ahead = CheckedAhead.check(old, "258036")
    # The PIN was changed between the look and the transaction: the new hash decides.
    assert not ahead(new, "258036")
    assert ahead(new, "470913")
    # A wrong verdict worked out ahead is not reused for another candidate either.
    assert CheckedAhead.check(old, "111222")(old, "258036")
