"""The risk evaluator on a real database: decisions are stored with their reasons in both
languages, history is read from the wallet's own tables, a lock locks the customer and opens an
alert, and resolving the alert unlocks them with the resolver on record."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.audit.service import tail
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.ids import new_number
from walletdesk.notify.models import OutboxMessage
from walletdesk.risk.models import RiskAlert, RiskDecision
from walletdesk.risk.rules import RiskEvent
from walletdesk.risk.service import evaluate, latest_explanation, open_alerts, resolve_alert
from walletdesk.wallet.models import Card, Customer, TxnStatus, WalletTransaction
from walletdesk.wallet.service import customers


def new_customer(session: Session, name: str) -> int:
    customer, _token = customers.create_customer(session, name, email=f"{name.lower()}@example.com")
    return customer.id


def add_movement(
    session: Session,
    customer_id: int,
    amount: int,
    at: datetime,
    *,
    kind: str = "payment",
    status: str = TxnStatus.SUCCEEDED,
    to: int | None = None,
) -> str:
    number = new_number()
    session.add(
        WalletTransaction(
            number=number,
            kind=kind,
            status=status,
            customer_id=customer_id,
            counterparty_customer_id=to,
            amount=amount,
            currency="CNY",
            created_at=at,
            updated_at=at,
        )
    )
    session.flush()
    return number


def add_card(session: Session, customer_id: int, fingerprint: str, at: datetime) -> None:
    session.add(
        Card(
            customer_id=customer_id,
            gateway_token=f"tok_{customer_id}_{fingerprint}",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2030,
            fingerprint=fingerprint,
            created_at=at,
        )
    )
    session.flush()


def payment(customer_id: int, amount: int, at: datetime, **fields: object) -> RiskEvent:
    return RiskEvent(
        kind=str(fields.pop("kind", "payment")),
        customer_id=customer_id,
        at=at,
        amount=amount,
        currency="CNY",
        per_transaction_limit=5_000_000,
        **fields,  # type: ignore[arg-type]
    )


def lock_by_card_testing(db: Database, now: datetime) -> tuple[int, int]:
    """Three cards in the last hours, a fourth now: the shipped rules lock. (customer, decision)"""
    with db.unit_of_work() as session:
        customer_id = new_customer(session, "Mei")
        for hours, fingerprint in ((5, "fp-1"), (3, "fp-2"), (1, "fp-3")):
            add_card(session, customer_id, fingerprint, now - timedelta(hours=hours))
        event = RiskEvent(
            kind="card_added", customer_id=customer_id, at=now, card_fingerprint="fp-4"
        )
        decision = evaluate(session, event)
    assert decision.action == "lock" and decision.rules == ["many_cards"]
    assert decision.decision_id is not None
    return customer_id, decision.decision_id


def test_a_decision_is_stored_with_its_rules_and_both_explanations(
    db: Database, frozen_clock: FrozenClock
) -> None:
    now = frozen_clock.now()
    with db.unit_of_work() as session:
        sender, stranger = new_customer(session, "Lin"), new_customer(session, "Zhou")
        event = payment(
            sender, 1_500_000, now, kind="transfer", new_device=True, recipient_id=stranger
        )
        decision = evaluate(session, event, subject="123456789012")
    assert decision.action == "challenge"
    assert decision.rules == ["new_device_large_amount", "new_recipient_large_amount"]
    with db.unit_of_work() as session:
        stored = session.get(RiskDecision, decision.decision_id)
        assert stored is not None
        assert (stored.event_kind, stored.amount, stored.currency) == ("transfer", 1_500_000, "CNY")
        assert stored.subject == "123456789012"
        assert [hit["rule"] for hit in stored.rules] == decision.rules
        assert stored.rules[0]["params"] == {"amount": 1_500_000, "currency": "CNY"}
        assert "15000.00 CNY" in stored.explanation_en
        assert "not sent money to before" in stored.explanation_en
        assert "15000.00 CNY" in stored.explanation_zh and "新设备" in stored.explanation_zh
        assert stored.explanation_en == decision.explain("en")
        assert latest_explanation(session, sender, "zh-CN") == stored.explanation_zh
        assert latest_explanation(session, stranger, "en") is None
        # A challenge is a step-up, not a case for an analyst.
        assert session.execute(select(RiskAlert)).first() is None


def test_a_plain_allow_is_not_stored(db: Database, frozen_clock: FrozenClock) -> None:
    with db.unit_of_work() as session:
        customer_id = new_customer(session, "Lin")
        decision = evaluate(session, payment(customer_id, 8_800, frozen_clock.now()))
    assert (decision.action, decision.rules, decision.decision_id) == ("allow", [], None)
    assert "Nothing unusual" in decision.explain("en")
    with db.unit_of_work() as session:
        assert session.execute(select(RiskDecision)).first() is None


def test_history_comes_from_the_wallet_tables(db: Database, frozen_clock: FrozenClock) -> None:
    now = frozen_clock.now()
    with db.unit_of_work() as session:
        customer_id = new_customer(session, "Lin")
        for minutes in (1, 2, 3, 4):
            add_movement(session, customer_id, 5_000, now - timedelta(minutes=minutes))
        # A failed attempt moved no money; one from last week is outside the window.
        add_movement(session, customer_id, 5_000, now, status=TxnStatus.FAILED)
        add_movement(session, customer_id, 5_000, now - timedelta(days=7))
        # The caller recorded this very payment already: it must not count twice.
        current = add_movement(session, customer_id, 5_000, now, status=TxnStatus.PENDING)
        fifth = evaluate(session, payment(customer_id, 5_000, now), subject=current)
        assert fifth.action == "allow"
        add_movement(session, customer_id, 5_000, now - timedelta(seconds=30))
        sixth = evaluate(session, payment(customer_id, 5_000, now), subject=current)
    assert sixth.rules == ["velocity_count"]
    assert "6 payments or transfers within 10 minutes" in sixth.explain("en")


def test_a_recipient_paid_before_is_known(db: Database, frozen_clock: FrozenClock) -> None:
    now = frozen_clock.now()
    with db.unit_of_work() as session:
        sender, friend = new_customer(session, "Lin"), new_customer(session, "Wang")
        add_movement(session, sender, 20_000, now - timedelta(days=200), kind="transfer", to=friend)
        event = payment(sender, 1_500_000, now, kind="transfer", recipient_id=friend)
        assert evaluate(session, event).rules == []


def test_a_lock_locks_the_customer_and_opens_an_alert(
    db: Database, frozen_clock: FrozenClock
) -> None:
    customer_id, decision_id = lock_by_card_testing(db, frozen_clock.now())
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.status == "locked"
        alerts = open_alerts(session)
        assert [(a.customer_id, a.decision_id, a.status) for a in alerts] == [
            (customer_id, decision_id, "open")
        ]
        told = session.scalars(
            select(OutboxMessage.event).where(OutboxMessage.customer_id == customer_id)
        ).all()
        assert "account_locked" in told
        assert any(e.action == "risk.lock" for e in tail(session))
        assert "4 different cards" in (latest_explanation(session, customer_id, "en") or "")


def test_resolving_with_unlock_reactivates_and_records_who(
    db: Database, frozen_clock: FrozenClock
) -> None:
    customer_id, _ = lock_by_card_testing(db, frozen_clock.now())
    frozen_clock.advance(timedelta(minutes=20))
    with db.unit_of_work() as session:
        (alert,) = open_alerts(session)
        resolved = resolve_alert(
            session,
            alert.id,
            by="analyst:7",
            resolution="Customer confirmed the cards",
            unlock=True,
        )
        alert_id = resolved.id
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.status == "active"
        stored = session.get(RiskAlert, alert_id)
        assert stored is not None
        assert (stored.status, stored.resolved_by) == ("resolved", "analyst:7")
        assert stored.resolution == "Customer confirmed the cards"
        assert open_alerts(session) == []
        audited = [e for e in tail(session) if e.action == "risk.alert_resolved"]
        assert [(e.actor, e.subject) for e in audited] == [("analyst:7", f"risk_alert:{alert_id}")]
    with db.unit_of_work() as session, pytest.raises(DomainError) as again:
        resolve_alert(session, alert_id, by="agent:2", resolution="again", unlock=True)
    assert again.value.code == "risk_alert_resolved"


def test_resolving_without_unlock_keeps_the_lock(db: Database, frozen_clock: FrozenClock) -> None:
    customer_id, _ = lock_by_card_testing(db, frozen_clock.now())
    with db.unit_of_work() as session:
        (alert,) = open_alerts(session)
        resolve_alert(session, alert.id, by="analyst:7", resolution="Fraud confirmed", unlock=False)
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.status == "locked"


def test_a_hold_opens_an_alert_and_tells_the_customer(
    db: Database, frozen_clock: FrozenClock
) -> None:
    now = frozen_clock.now()
    with db.unit_of_work() as session:
        customer_id = new_customer(session, "Lin")
        event = payment(customer_id, 600_000, now, password_reset_at=now - timedelta(hours=1))
        decision = evaluate(session, event, subject="223456789013")
    assert decision.action == "hold"
    assert "reset_then_large_payment" in decision.rules
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.status == "active"
        (alert,) = open_alerts(session)
        assert alert.decision_id == decision.decision_id
        told = session.scalars(
            select(OutboxMessage.event).where(OutboxMessage.customer_id == customer_id)
        ).all()
        assert "risk_hold" in told


def test_a_resolution_must_say_who_and_how(db: Database, frozen_clock: FrozenClock) -> None:
    lock_by_card_testing(db, frozen_clock.now())
    with db.unit_of_work() as session:
        (alert,) = open_alerts(session)
        for by, resolution in (("", "fine"), ("analyst:7", "  ")):
            with pytest.raises(DomainError) as refused:
                resolve_alert(session, alert.id, by=by, resolution=resolution, unlock=True)
            assert refused.value.code == "risk_resolution_required"
        with pytest.raises(DomainError) as missing:
            resolve_alert(session, 999_999, by="analyst:7", resolution="x", unlock=False)
        assert missing.value.code == "risk_alert_not_found"
