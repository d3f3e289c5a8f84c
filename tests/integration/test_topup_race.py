"""A card charge that lands after reconciliation gave up on its hold still reaches the wallet."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.wallet_support import (
    TIMEOUT_AFTER_CHARGE,
    TIMEOUT_BEFORE_CHARGE,
    Books,
    Person,
)

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.wallet.gateway import ChargeResult, ChargeStatus, SandboxGateway
from walletdesk.wallet.models import TxnStatus, WalletTransaction
from walletdesk.wallet.service import topups


def test_a_charge_after_the_hold_was_voided_is_credited_not_lost(
    db: Database,
    gateway: SandboxGateway,
    books: Books,
    customer: object,
    frozen_clock: FrozenClock,
) -> None:
    person: Person = customer()  # type: ignore[operator]
    card = books.card(person.id, TIMEOUT_BEFORE_CHARGE)
    with db.unit_of_work() as session:
        number = topups.top_up(db, session, gateway, person.id, card, 50_00, "CNY").number
    frozen_clock.advance(timedelta(minutes=get_settings().gateway_timeout_hold_minutes + 1))
    with db.unit_of_work() as session:
        voided = topups.reconcile(session, gateway)
    assert [t.status for t in voided] == [TxnStatus.FAILED]
    assert books.wallet(person.id).balance == 0
    # The card network now reports the charge after all (the race with a late retry).
    with db.unit_of_work() as session:
        txn = session.query(WalletTransaction).filter_by(number=number).one()
        topups._resolve(session, txn, ChargeResult(ChargeStatus.SUCCEEDED))
    assert books.wallet(person.id).balance == 50_00
    assert books.txn(number).status == TxnStatus.SUCCEEDED
    assert books.verify() == []


def test_a_retry_after_the_hold_window_does_not_charge_again(
    db: Database,
    gateway: SandboxGateway,
    books: Books,
    customer: object,
    frozen_clock: FrozenClock,
) -> None:
    person: Person = customer()  # type: ignore[operator]
    card = books.card(person.id, TIMEOUT_AFTER_CHARGE)  # charged, but the answer was lost
    with db.unit_of_work() as session:
        topups.top_up(db, session, gateway, person.id, card, 50_00, "CNY", request_key="k")
    frozen_clock.advance(timedelta(minutes=get_settings().gateway_timeout_hold_minutes - 1))
    with db.unit_of_work() as session:
        again = topups.top_up(db, session, gateway, person.id, card, 50_00, "CNY", request_key="k")
    # An early retry would ask the gateway and settle it; this late one leaves it to reconcile.
    assert again.status == TxnStatus.PENDING
    assert books.wallet(person.id).available == 0
    with db.unit_of_work() as session:
        assert [t.status for t in topups.reconcile(session, gateway)] == [TxnStatus.SUCCEEDED]
    assert books.wallet(person.id).available == 50_00
