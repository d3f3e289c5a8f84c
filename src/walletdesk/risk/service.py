"""The risk evaluator: load a customer's recent history, run the rules, act on the decision.

Called before a login, payment, transfer, top-up, withdrawal, card addition or credential
change commits, inside the caller's unit of work (services never commit), so a decision, its
alert, the lock and the notification commit or roll back together with the operation.

Plain allows (no rule fired) are not stored: they are most decisions, storing them would add
a write to every login and payment, and there is nothing to explain. Their decision_id is None.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from walletdesk.db import is_sqlite
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.i18n import choose
from walletdesk.kit.money import format_minor
from walletdesk.risk import errors as _errors  # noqa: F401  (registers the risk codes)
from walletdesk.risk.config import current_config
from walletdesk.risk.explain import explain
from walletdesk.risk.models import AlertStatus, RiskAlert, RiskDecision
from walletdesk.risk.rules import (
    ALLOW,
    EVENT_KINDS,
    HOLD,
    LOCK,
    OUTGOING,
    AddedCard,
    PastMovement,
    RiskConfig,
    RiskEvent,
    RiskHistory,
    RuleHit,
    decide,
    history_needed,
)
from walletdesk.wallet.models import (
    Card,
    Customer,
    CustomerStatus,
    TxnKind,
    TxnStatus,
    WalletTransaction,
)

ENGINE_ACTOR = "risk-engine"
RESOLUTION_MAX_LENGTH = 2000
RESOLVER_MAX_LENGTH = 64  # what the audit log keeps of an actor
# Money that left or is on its way out; failed attempts moved nothing.
_COUNTED_STATUSES = (TxnStatus.SUCCEEDED, TxnStatus.PENDING)


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # allow, challenge, hold, decline or lock
    hits: tuple[RuleHit, ...]
    decision_id: int | None  # None for a plain allow, which is not stored

    @property
    def rules(self) -> list[str]:
        return [hit.rule for hit in self.hits]

    def explain(self, language: str) -> str:
        """Why, in words for the customer, an agent or the IVR (zh-CN or en)."""
        return explain(self.action, self.hits, language)


def evaluate(session: Session, event: RiskEvent, *, subject: str | None = None) -> Decision:
    """Decide on `event`; `subject` (a transaction number...) is stored with the decision.

    If the caller already recorded the transaction under decision as `subject`, it is left
    out of the history so it is not counted twice.
    """
    if event.kind not in EVENT_KINDS:
        raise ValueError(f"unknown risk event kind {event.kind!r}")  # a caller's typo
    config = current_config()
    event = _in_utc(event)
    history = load_history(session, event, config, exclude=subject)
    action, hits = decide(event, history, config)
    decision = Decision(action, tuple(hits), None)
    if action == ALLOW and not hits:
        return decision
    row = _store(session, event, decision, subject)
    if action in (HOLD, LOCK):
        _escalate(session, row)
    return replace(decision, decision_id=row.id)


def load_history(
    session: Session, event: RiskEvent, config: RiskConfig, *, exclude: str | None = None
) -> RiskHistory:
    """What the rules can use of the customer's past before `event`, and nothing more."""
    needs = history_needed(event)
    history = RiskHistory()
    if needs.movements:
        detailed_since = event.at - timedelta(minutes=config.longest_window_minutes)
        history = replace(
            history,
            outgoing=_recent_movements(session, event.customer_id, detailed_since, exclude),
            usual_amounts=_amounts(session, event, config.history_days, exclude),
        )
    if needs.recipient:
        history = replace(history, known_recipients=_known_recipient(session, event, exclude))
    if needs.cards:
        since = event.at - timedelta(days=config.history_days)
        history = replace(history, cards=_cards(session, event.customer_id, since))
    return history


def _outgoing_of(customer_id: int, since: datetime, exclude: str | None) -> Select:
    """Outgoing money (succeeded or on its way) of the customer since `since`."""
    query = select().where(
        WalletTransaction.customer_id == customer_id,
        WalletTransaction.kind.in_(sorted(OUTGOING)),
        WalletTransaction.status.in_(_COUNTED_STATUSES),
        WalletTransaction.created_at >= since,
    )
    if exclude is not None:
        query = query.where(WalletTransaction.number != exclude)
    return query


def _recent_movements(
    session: Session, customer_id: int, since: datetime, exclude: str | None
) -> tuple[PastMovement, ...]:
    query = _outgoing_of(customer_id, since, exclude).add_columns(
        WalletTransaction.amount,
        WalletTransaction.currency,
        WalletTransaction.created_at,
        WalletTransaction.counterparty_customer_id,
    )
    rows = session.execute(query.order_by(WalletTransaction.created_at))
    return tuple(
        PastMovement(amount, currency, clock.as_utc(at), recipient)
        for amount, currency, at, recipient in rows
    )


def _amounts(
    session: Session, event: RiskEvent, days: int, exclude: str | None
) -> dict[str, tuple[int, ...]]:
    """Months of amounts in the event's currency: enough to know what is usual, and no
    timestamps to parse (the costly part of reading rows back on SQLite)."""
    if event.currency is None:
        return {}
    query = _outgoing_of(event.customer_id, event.at - timedelta(days=days), exclude)
    query = query.add_columns(WalletTransaction.amount).where(
        WalletTransaction.currency == event.currency
    )
    return {event.currency: tuple(session.execute(query).scalars())}


def _known_recipient(session: Session, event: RiskEvent, exclude: str | None) -> frozenset[int]:
    """{recipient} if the customer ever sent them money successfully, else empty.

    Only the event's recipient matters to the rules, so only that one is looked up. Money
    received from them does not count: a fraudster could send a cent first to look familiar.
    Kind and status are checked here rather than in SQL: given them, SQLite prefers the
    (status, kind) index, i.e. a scan of every customer's succeeded transfers.
    """
    query = select(WalletTransaction.kind, WalletTransaction.status).where(
        WalletTransaction.counterparty_customer_id == event.recipient_id,
        WalletTransaction.customer_id == event.customer_id,
    )
    if exclude is not None:
        query = query.where(WalletTransaction.number != exclude)
    known = any(
        kind == TxnKind.TRANSFER and status == TxnStatus.SUCCEEDED
        for kind, status in session.execute(query)
    )
    return frozenset({event.recipient_id}) if known and event.recipient_id else frozenset()


def _cards(session: Session, customer_id: int, since: datetime) -> tuple[AddedCard, ...]:
    # Removed cards included: adding and removing stolen cards is itself the pattern.
    rows = session.execute(
        select(Card.fingerprint, Card.created_at)
        .where(Card.customer_id == customer_id, Card.created_at >= since)
        .order_by(Card.created_at)
    )
    return tuple(AddedCard(fingerprint, clock.as_utc(at)) for fingerprint, at in rows)


def _in_utc(event: RiskEvent) -> RiskEvent:
    """Times read back from SQLite have no zone; the rules compare aware times."""
    reset = event.password_reset_at
    return replace(
        event,
        at=clock.as_utc(event.at),
        password_reset_at=clock.as_utc(reset) if reset is not None else None,
    )


def _store(
    session: Session, event: RiskEvent, decision: Decision, subject: str | None
) -> RiskDecision:
    row = RiskDecision(
        customer_id=event.customer_id,
        event_kind=event.kind,
        amount=event.amount,
        currency=event.currency,
        action=decision.action,
        rules=[
            {"rule": hit.rule, "action": hit.action, "params": hit.reason_params}
            for hit in decision.hits
        ],
        explanation_en=decision.explain("en"),
        explanation_zh=decision.explain("zh-CN"),
        subject=subject,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def _escalate(session: Session, decision: RiskDecision) -> None:
    """A hold or a lock: open an alert, lock if asked, tell the customer, audit it."""
    from walletdesk.audit.service import record
    from walletdesk.wallet.service.customers import set_status

    alert = RiskAlert(
        customer_id=decision.customer_id,
        decision_id=decision.id,
        status=AlertStatus.OPEN,
        created_at=clock.now(),
    )
    session.add(alert)
    session.flush()
    rules = [hit["rule"] for hit in decision.rules]
    if decision.action == LOCK:
        reason = f"risk decision {decision.id}: {', '.join(rules)}"[:200]
        set_status(session, decision.customer_id, CustomerStatus.LOCKED, reason)
    _tell_customer(session, decision)
    record(
        session,
        actor=ENGINE_ACTOR,
        action=f"risk.{decision.action}",
        subject=f"customer:{decision.customer_id}",
        detail={
            "decision_id": decision.id,
            "alert_id": alert.id,
            "rules": rules,
            "subject": decision.subject,
        },
    )


def _tell_customer(session: Session, decision: RiskDecision) -> None:
    """Ask the customer to call us: on every lock, and on a hold that paused money (the
    hold message names the amount, so a hold without one, e.g. of a login, sends nothing)."""
    from walletdesk.notify.service import notify

    params = {"reason": "risk", "decision_id": decision.id, "subject": decision.subject}
    if decision.action == LOCK:
        notify(session, decision.customer_id, "account_locked", params)
    elif decision.amount is not None and decision.currency is not None:
        amount = f"{format_minor(decision.amount, decision.currency)} {decision.currency}"
        notify(session, decision.customer_id, "risk_hold", {**params, "amount": amount})


def resolve_alert(
    session: Session, alert_id: int, *, by: str, resolution: str, unlock: bool
) -> RiskAlert:
    """Close an open alert; `unlock` makes a customer the engine locked active again."""
    from walletdesk.audit.service import record
    from walletdesk.wallet.service.customers import set_status

    by, resolution = by.strip(), resolution.strip()
    if (
        not by
        or not resolution
        or len(resolution) > RESOLUTION_MAX_LENGTH
        or len(by) > RESOLVER_MAX_LENGTH
    ):
        raise DomainError("risk_resolution_required", max_length=RESOLUTION_MAX_LENGTH)
    alert = _alert_for_update(session, alert_id)
    if alert.status != AlertStatus.OPEN:
        raise DomainError("risk_alert_resolved")
    alert.status = AlertStatus.RESOLVED
    alert.resolution, alert.resolved_by, alert.resolved_at = resolution, by, clock.now()
    unlocked = unlock and _is_locked(session, alert.customer_id)
    if unlocked:
        # Only a lock is lifted: a freeze was the customer's or an agent's own decision.
        set_status(session, alert.customer_id, CustomerStatus.ACTIVE, None)
    record(
        session,
        actor=by,
        action="risk.alert_resolved",
        subject=f"risk_alert:{alert.id}",
        detail={
            "customer_id": alert.customer_id,
            "decision_id": alert.decision_id,
            "resolution": resolution,
            "unlocked": unlocked,
        },
    )
    return alert


def _alert_for_update(session: Session, alert_id: int) -> RiskAlert:
    # Two analysts resolving one alert at once: the second waits, then sees it resolved.
    query = select(RiskAlert).where(RiskAlert.id == alert_id)
    if not is_sqlite(session):
        query = query.with_for_update()
    alert = session.execute(query).scalar_one_or_none()
    if alert is None:
        raise DomainError("risk_alert_not_found")
    return alert


def _is_locked(session: Session, customer_id: int) -> bool:
    customer = session.get(Customer, customer_id)
    return customer is not None and customer.status == CustomerStatus.LOCKED


def open_alerts(session: Session, limit: int = 50) -> list[RiskAlert]:
    """Open alerts, oldest first: the analysts' queue."""
    query = (
        select(RiskAlert)
        .where(RiskAlert.status == AlertStatus.OPEN)
        .order_by(RiskAlert.id)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def latest_explanation(session: Session, customer_id: int, language: str) -> str | None:
    """Why the engine last stepped in for this customer, in their language; None if never.

    Monitor-only hits (action allow) are left out: the customer was not affected by them.
    """
    row = session.execute(
        select(RiskDecision.explanation_en, RiskDecision.explanation_zh)
        .where(RiskDecision.customer_id == customer_id, RiskDecision.action != ALLOW)
        .order_by(RiskDecision.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return choose(language, en=row.explanation_en, zh=row.explanation_zh)
