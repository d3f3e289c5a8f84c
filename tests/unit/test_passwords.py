"""Password and PIN rules (NIST SP 800-63B, OWASP ASVS V6), the argon2id parameters of passwords
and the keyed values of payment PINs."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters

from walletdesk.identity import passwords
from walletdesk.identity.passwords import (
    check_password,
    check_pin,
    hash_pin,
    hash_secret,
    may_be_pin,
    pin_checkable,
    pin_is_current,
    pin_matches,
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


def test_argon2id_meets_the_owasp_floor() -> None:
    parameters = extract_parameters(hash_secret("correct horse battery"))
    assert parameters.type.name == "ID"
    assert parameters.memory_cost >= 19456
    assert parameters.time_cost >= 2


def test_a_missing_account_costs_what_an_existing_password_does() -> None:
    # A login to an unknown account checks the dummy hash: the same parameters as a password's,
    # or the response time would tell which accounts exist.
    assert extract_parameters(hash_secret("x")) == extract_parameters(passwords._DUMMY_HASH)


def test_a_pin_verifies_for_its_own_customer_only() -> None:
    stored = hash_pin(7, "258036")
    assert pin_matches(stored, 7, "258036")
    assert not pin_matches(stored, 7, "258037")
    assert not pin_matches(stored, 8, "258036")  # copied onto another account
    assert not pin_matches(None, 7, "258036")


def test_the_same_pin_is_kept_differently_each_time_and_never_in_clear() -> None:
    first, second = hash_pin(7, "258036"), hash_pin(7, "258036")
    assert first != second  # salted: a PIN set again, or shared, does not show
    assert "258036" not in first


def test_pins_kept_as_argon2id_before_keyed_pins_still_verify_and_ask_to_be_kept_again() -> None:
    legacy = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=2).hash("258036")
    assert pin_matches(legacy, 7, "258036")
    assert not pin_matches(legacy, 7, "258037")
    assert not pin_is_current(legacy)
    assert pin_is_current(hash_pin(7, "258036"))


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


@pytest.mark.parametrize("damage", [":extra", "!", "="])
def test_a_damaged_pin_value_fails_closed(damage: str) -> None:
    stored = hash_pin(7, "258036")
    damaged = stored[:-1] + damage if damage != ":extra" else stored + damage
    assert not pin_matches(damaged, 7, "258036")
    assert not pin_checkable(damaged)
