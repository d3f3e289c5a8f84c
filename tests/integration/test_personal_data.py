"""Names and national ids are encrypted at rest, and keys can rotate without losing data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import text

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.identity.service import reseal_personal_data
from walletdesk.kit.crypto import new_data_key
from walletdesk.wallet.models import Customer
from walletdesk.wallet.service import customers

NAME, NATIONAL_ID = "欧阳娜娜", "110101199003074518"


@pytest.fixture
def rotated_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings with a second, newer data key appended to the demo one."""
    old = get_settings().data_keys
    monkeypatch.setenv("WALLETDESK_DATA_KEYS", f"{old},k2:{new_data_key()}")
    get_settings.cache_clear()
    yield "k2"
    monkeypatch.delenv("WALLETDESK_DATA_KEYS")
    get_settings.cache_clear()


def _customer(db: Database) -> int:
    with db.unit_of_work() as session:
        customer, _ = customers.create_customer(session, NAME, phone="+8613811112222")
        customer.national_id = NATIONAL_ID
        return customer.id


def _raw_rows(db: Database) -> str:
    with db.unit_of_work() as session:
        return " ".join(
            str(v) for row in session.execute(text("SELECT * FROM customers")) for v in row
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
    """Written under the old key: drop the new one for the write, then put it back."""
    keys = get_settings().data_keys
    old_only = keys.rsplit(",", 1)[0]
    get_settings().data_keys = old_only
    try:
        return _customer(db)
    finally:
        get_settings().data_keys = keys
