"""Names and national ids are encrypted at rest, payment PINs kept under a key the database does
not hold, and keys can rotate without losing either."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from argon2 import PasswordHasher
from cryptography.exceptions import InvalidTag
from sqlalchemy import text

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.identity.service import (
    check_payment_pin,
    credential_of,
    pins_to_move,
    reseal_personal_data,
    set_pin,
)
from walletdesk.kit.crypto import new_data_key
from walletdesk.wallet.models import Customer
from walletdesk.wallet.service import customers

NAME, NATIONAL_ID = "欧阳娜娜", "110101199003074518"
PIN = "258036"


@pytest.fixture
def rotated_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings with a second, newer data key appended to the demo one."""
    old = get_settings().data_keys
    monkeypatch.setenv("WALLETDESK_DATA_KEYS", f"{old},k2:{new_data_key()}")
    get_settings.cache_clear()
    yield "k2"
    monkeypatch.delenv("WALLETDESK_DATA_KEYS")
    get_settings.cache_clear()


def _customer(db: Database, phone: str = "+8613811112222") -> int:
    with db.unit_of_work() as session:
        customer, _ = customers.create_customer(session, NAME, phone=phone)
        customer.national_id = NATIONAL_ID
        return customer.id


def _raw_rows(db: Database, table: str = "customers") -> str:
    with db.unit_of_work() as session:
        return " ".join(
            str(v) for row in session.execute(text(f"SELECT * FROM {table}")) for v in row
        )


def test_names_and_national_ids_are_not_stored_in_clear(db: Database) -> None:
    customer_id = _customer(db)
    raw = _raw_rows(db)
    assert NAME not in raw and NATIONAL_ID not in raw
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        assert (customer.display_name, customer.national_id) == (NAME, NATIONAL_ID)


def test_a_sealed_value_moved_to_another_column_does_not_open(db: Database) -> None:
    customer_id = _customer(db)
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        customer.name_sealed = customer.national_id_sealed or ""
    with db.unit_of_work() as session, pytest.raises(InvalidTag):
        reloaded = session.get(Customer, customer_id)
        assert reloaded is not None
        _ = reloaded.display_name  # the GCM tag binds each value to its column


def test_rotating_the_data_key_reseals_everything_and_loses_nothing(
    db: Database, rotated_keys: str
) -> None:
    customer_id = _customer_before_rotation(db)
    with db.unit_of_work() as session:
        assert reseal_personal_data(session) == 2
    with db.unit_of_work() as session:
        assert reseal_personal_data(session) == 0  # nothing left under the old key
        customer = session.get(Customer, customer_id)
        assert customer is not None
        assert customer.name_sealed.startswith(f"{rotated_keys}:")
        assert (customer.display_name, customer.national_id) == (NAME, NATIONAL_ID)


def _customer_before_rotation(db: Database) -> int:
    with _before_rotation():
        return _customer(db)


@contextmanager
def _before_rotation() -> Iterator[None]:
    """Written under the old key: drop the new one for the write, then put it back."""
    keys = get_settings().data_keys
    get_settings().data_keys = keys.rsplit(",", 1)[0]
    try:
        yield
    finally:
        get_settings().data_keys = keys


def _customer_with_pin(db: Database) -> int:
    customer_id = _customer(db)
    with db.unit_of_work() as session:
        set_pin(session, customer_id, PIN)
    return customer_id


def _pin_checks(db: Database, customer_id: int, pin: str = PIN) -> str | None:
    """The refusal's code, or None when the PIN is right."""
    with db.unit_of_work() as session:
        error = check_payment_pin(session, customer_id, pin)
        return error.code if error else None


def _kept_pin(db: Database, customer_id: int) -> str:
    with db.unit_of_work() as session:
        stored = credential_of(session, customer_id).pin_hash
        assert stored is not None
        return stored


def test_a_copy_of_the_database_without_the_key_cannot_check_a_pin(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer_id = _customer_with_pin(db)
    assert PIN not in _raw_rows(db, "credentials")
    assert _pin_checks(db, customer_id) is None
    # The same key id with other key material: what someone holding only the database has.
    key_id = get_settings().data_keys.partition(":")[0]
    monkeypatch.setattr(get_settings(), "data_keys", f"{key_id}:{new_data_key()}")
    assert _pin_checks(db, customer_id) == "pin_wrong"


def test_a_pin_value_copied_onto_another_account_does_not_verify(db: Database) -> None:
    victim = _customer(db, phone="+8613833334444")
    attacker = _customer_with_pin(db)
    with db.unit_of_work() as session:
        credential_of(session, victim).pin_hash = credential_of(session, attacker).pin_hash
    assert _pin_checks(db, attacker) is None
    assert _pin_checks(db, victim) == "pin_wrong"


def test_a_pin_hashed_with_argon2id_before_keyed_pins_still_works_and_is_kept_again_keyed(
    db: Database,
) -> None:
    customer_id = _customer(db)
    legacy = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=2).hash(PIN)
    with db.unit_of_work() as session:
        credential_of(session, customer_id).pin_hash = legacy
    assert _pin_checks(db, customer_id, "369147") == "pin_wrong"
    assert _kept_pin(db, customer_id) == legacy  # a wrong PIN changes nothing
    assert _pin_checks(db, customer_id) is None
    assert not _kept_pin(db, customer_id).startswith("$argon2")
    assert _pin_checks(db, customer_id) is None


def test_a_pin_moves_to_the_newest_key_when_next_used(db: Database, rotated_keys: str) -> None:
    with _before_rotation():
        customer_id = _customer_with_pin(db)
    assert f":{rotated_keys}:" not in _kept_pin(db, customer_id)
    with db.unit_of_work() as session:
        reseal_personal_data(session)
        assert pins_to_move(session).under_older_keys == 1  # not without the PIN
    assert _pin_checks(db, customer_id) is None
    assert f":{rotated_keys}:" in _kept_pin(db, customer_id)
    with db.unit_of_work() as session:
        assert pins_to_move(session) == (0, 0)
    # Once moved, the old key can go: the PIN needs only the new one.
    get_settings().data_keys = get_settings().data_keys.rsplit(",", 1)[1]
    assert _pin_checks(db, customer_id) is None


def test_a_pin_under_a_removed_key_asks_for_a_new_one_and_counts_no_miss(
    db: Database, rotated_keys: str
) -> None:
    with _before_rotation():
        customer_id = _customer_with_pin(db)
    get_settings().data_keys = get_settings().data_keys.rsplit(",", 1)[1]  # the old key is gone
    for _ in range(6):  # more than the misses that would lock payments
        assert _pin_checks(db, customer_id) == "pin_reset_required"
    with db.unit_of_work() as session:
        assert credential_of(session, customer_id).pin_failures == 0


def test_moving_a_pin_to_the_newest_key_never_undoes_a_pin_changed_meanwhile(
    db: Database, rotated_keys: str
) -> None:
    if db.url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: the two transactions cannot overlap there")
    with _before_rotation():
        customer_id = _customer_with_pin(db)
    with db.unit_of_work() as paying:
        read = credential_of(paying, customer_id)  # the payment read the PIN under the old key
        with db.unit_of_work() as changing:  # meanwhile the customer sets a new PIN
            set_pin(changing, customer_id, "470913", current_pin=PIN)
        assert check_payment_pin(paying, customer_id, PIN) is None  # what it had read matched
        assert read.pin_hash is not None
    assert _pin_checks(db, customer_id, "470913") is None
    assert _pin_checks(db, customer_id, PIN) == "pin_wrong"
