"""Disputes: filing one, its evidence, the merchant's answer, the decision, and the money.

A customer disputes one of their own completed payments to a merchant (rules.py says which and
for how much). The dispute opens a case, and every change of state goes three ways in the same
unit of work: a line on the case's timeline, a message to the customer, an audit event.

    awaiting_merchant --contest--> under_review --decide--> won | lost
            |  \\--deadline passes (sweep_overdue)--^
            \\--accept (by the merchant, at any point while open)--> won
    awaiting_merchant | under_review --withdraw (by the customer)--> withdrawn

Provisional credit is held, never spendable
-------------------------------------------
Staff may give the customer a provisional credit while the dispute runs. It is a pending ledger
transfer from the platform's dispute account to the customer's wallet: the customer sees it as
incoming money (`incoming_pending`) but cannot spend or withdraw it. The alternative, spendable
credit, would have to be taken back after a lost or withdrawn dispute from money the customer
may already have spent or withdrawn; a wallet may not go negative, so the platform would be left
chasing a debt out of every later top-up, transfer and refund (and a fake dispute would be a way
to cash out money that was never the customer's). A hold cannot fall short: losing or
withdrawing voids it, and nothing ever moved. Winning voids it too and posts the merchant's
refund in its place, so the customer is credited exactly once, by the merchant, and the dispute
account, which only ever held pending debits, is left as it was.

The refund a won dispute posts is an ordinary merchant refund (payments.post_refund): it shows
in the customer's history and counts in the payment's refunded amount, so nothing can refund the
same money again. While a dispute is open, payments.refund keeps the merchant from refunding the
disputed part by themselves (amount_in_dispute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from walletdesk.audit import service as audit
from walletdesk.config import get_settings
from walletdesk.db import is_sqlite
from walletdesk.disputes import rules
from walletdesk.disputes.models import (
    OPEN_STATUSES,
    Dispute,
    DisputeEvidence,
    DisputeReason,
    DisputeStatus,
    MerchantResponse,
)
from walletdesk.identity import service as identity
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import format_minor
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind, Phase
from walletdesk.notify.service import notify
from walletdesk.support import case_rules
from walletdesk.support.cases import add_event, change_status, link, open_case
from walletdesk.support.models import Case, CasePriority, CaseStatus
from walletdesk.wallet.models import Merchant, WalletTransaction
from walletdesk.wallet.service import history, payments
from walletdesk.wallet.service.common import ensure_wallet, post_chain

QUEUE = "disputes"
CHANNELS = ("inapp", "email")  # dispute news is long and not urgent: no SMS


@dataclass(frozen=True, slots=True)
class EvidenceInfo:
    id: int
    filename: str
    content_type: str
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DisputeView:
    """A dispute with what people call it by: its case, its payment, the merchant's name."""

    dispute: Dispute
    case_number: str
    transaction_number: str
    merchant_name: str
    refund_number: str | None  # the merchant's refund of a won dispute
    evidence: list[EvidenceInfo]

    @property
    def offers(self) -> tuple[str, ...]:
        return rules.offers_for(self.dispute.reason)

    @property
    def provisional_state(self) -> str | None:
        return rules.provisional_state(self.dispute.status, self.dispute.provisional_credit)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[DisputeView]
    next_cursor: int | None


# --- filing ------------------------------------------------------------------------------------


def file_dispute(
    session: Session,
    customer_id: int,
    transaction_number: str,
    reason: str,
    description: str,
    amount: int | None = None,
    *,
    actor: str,
    channel: str = "in_app",
    contact_id: int | None = None,
) -> Dispute:
    """Dispute `amount` (minor units; None: all not yet refunded) of the customer's payment.

    Used by the app, by an agent for a verified caller, and by the IVR: no HTTP in here.
    """
    reason = _reason(reason)
    found = history.get_by_number(session, customer_id, transaction_number)
    if found.customer_id != customer_id:  # money the customer received is not theirs to dispute
        raise DomainError("not_disputable")
    settings = get_settings()
    rules.check_disputable(
        found.kind, found.status, found.created_at, clock.now(), settings.dispute_window_days
    )
    assert found.merchant_id is not None
    # Locked as a refund locks it: filing and refunding take turns on the same payment.
    payment = payments.payment_for_refund(session, found.merchant_id, found.number)
    _refuse_second_dispute(session, payment.id)
    disputed = rules.disputed_amount(
        amount, payment.amount, payment.refunded_amount, payment.currency
    )
    case = open_case(
        session,
        customer_id=customer_id,
        type=rules.case_type_for(reason),
        subject=f"Dispute ({reason}) of payment {payment.number}",
        channel=channel,
        actor=actor,
        priority=CasePriority.HIGH if reason == DisputeReason.UNAUTHORISED else CasePriority.NORMAL,
        queue=QUEUE,
        links=[("transaction", payment.number)],
    )
    dispute = _insert(session, payment, case, reason, description, disputed, actor, channel)
    link(session, case, "dispute", str(dispute.id))
    _move_case(session, case, CaseStatus.WAITING_ON_MERCHANT, actor)
    merchant = _merchant(session, dispute)
    _record(
        session,
        dispute,
        case,
        "dispute_filed",
        actor,
        body=description,
        data={"reason": reason, "respond_by": as_utc(dispute.respond_by).isoformat()},
        contact_id=contact_id,
        params={
            "transaction_number": payment.number,
            "amount": _money(dispute.amount, dispute.currency),
            "merchant": merchant.name,
            "when": as_utc(dispute.respond_by).isoformat(),
        },
        audit_detail={
            "transaction": payment.number,
            "reason": reason,
            "channel": channel,
            "contact_id": contact_id,
        },
    )
    return dispute


def _reason(reason: str) -> DisputeReason:
    try:
        return DisputeReason(reason)
    except ValueError:
        raise DomainError("invalid_request") from None


def _refuse_second_dispute(session: Session, payment_id: int) -> None:
    earlier = session.execute(
        select(Dispute.id).where(
            Dispute.transaction_id == payment_id, Dispute.status != DisputeStatus.WITHDRAWN
        )
    ).scalar_one_or_none()
    if earlier is not None:
        raise DomainError("already_disputed", dispute_id=earlier)


def _insert(
    session: Session,
    payment: WalletTransaction,
    case: Case,
    reason: DisputeReason,
    description: str,
    amount: int,
    actor: str,
    channel: str,
) -> Dispute:
    now = clock.now()
    dispute = Dispute(
        transaction_id=payment.id,
        customer_id=payment.customer_id,
        merchant_id=payment.merchant_id,
        case_id=case.id,
        reason=reason,
        description=description,
        amount=amount,
        currency=payment.currency,
        status=DisputeStatus.AWAITING_MERCHANT,
        channel=channel,
        filed_by=actor,
        respond_by=rules.response_deadline(now, get_settings().dispute_response_days),
        provisional_credit=0,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():  # the unique index is the last word on "once"
            session.add(dispute)
            session.flush()
    except IntegrityError:
        _refuse_second_dispute(session, payment.id)  # names the dispute that got there first
        raise
    return dispute


def amount_in_dispute(session: Session, payment_id: int) -> int:
    """How much of the payment open disputes cover: not the merchant's to refund meanwhile."""
    total = session.execute(
        select(func.coalesce(func.sum(Dispute.amount), 0)).where(
            Dispute.transaction_id == payment_id,
            Dispute.status.in_([str(s) for s in OPEN_STATUSES]),
        )
    ).scalar_one()
    return int(total)


# --- evidence -----------------------------------------------------------------------------------


def add_evidence(
    session: Session, customer_id: int, dispute_id: int, filename: str, content: bytes
) -> DisputeEvidence:
    """Keep a small picture, PDF or text file with an open dispute (checked in rules)."""
    dispute = _locked(session, dispute_id, customer_id=customer_id)
    rules.check_action(dispute.status, "add_evidence")
    settings = get_settings()
    count = session.execute(
        select(func.count(DisputeEvidence.id)).where(DisputeEvidence.dispute_id == dispute.id)
    ).scalar_one()
    checked = rules.check_evidence(
        filename,
        content,
        max_bytes=settings.dispute_evidence_max_kb * 1024,
        count=count,
        max_files=settings.dispute_evidence_max_files,
    )
    actor = f"customer:{customer_id}"
    evidence = DisputeEvidence(
        dispute_id=dispute.id,
        filename=checked.filename,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        content=content,
        uploaded_by=actor,
        created_at=clock.now(),
    )
    session.add(evidence)
    session.flush()
    dispute.updated_at = evidence.created_at
    case = _case(session, dispute)
    data = {"evidence_id": evidence.id, "filename": checked.filename, "size": checked.size}
    add_event(session, case, "dispute_evidence", actor=actor, data=data)
    _audit(session, dispute, actor, "dispute.evidence_added", {**data, "sha256": checked.sha256})
    return evidence


def evidence_file(session: Session, dispute_id: int, evidence_id: int) -> DisputeEvidence:
    evidence = session.execute(
        select(DisputeEvidence).where(
            DisputeEvidence.id == evidence_id, DisputeEvidence.dispute_id == dispute_id
        )
    ).scalar_one_or_none()
    if evidence is None:
        raise DomainError("evidence_not_found", evidence_id=evidence_id)
    return evidence


# --- provisional credit -------------------------------------------------------------------------


def grant_provisional_credit(
    session: Session, dispute_id: int, amount: int | None = None, *, actor: str
) -> Dispute:
    """Hold `amount` (default: the disputed amount) for the customer until the decision."""
    dispute = _locked(session, dispute_id)
    rules.check_action(dispute.status, "grant_provisional_credit")
    held = rules.check_provisional_credit(
        dispute.provisional_credit, amount, dispute.amount, dispute.currency
    )
    wallet = ensure_wallet(session, dispute.customer_id, dispute.currency)
    source = ledger.system_account(session, AccountKind.DISPUTE, dispute.currency)
    _post(
        session,
        ledger.TransferRequest(
            dispute.hold_id,
            source.id,
            wallet.ledger_account_id,
            held,
            dispute.currency,
            "dispute_provisional",
            phase=Phase.PENDING,
        ),
    )
    dispute.provisional_credit = held
    dispute.provisional_granted_by = actor
    dispute.updated_at = clock.now()
    _record(
        session,
        dispute,
        _case(session, dispute),
        "dispute_provisional_credit",
        actor,
        data={"amount": _money(held, dispute.currency)},
        params={"amount": _money(held, dispute.currency)},
        audit_detail={"amount": held, "currency": dispute.currency},
    )
    return dispute


def _release_hold(session: Session, dispute: Dispute) -> None:
    """Void the provisional credit's hold, if there is one: nothing had moved."""
    if dispute.provisional_credit:
        _post(
            session, ledger.resolve_pending(f"{dispute.hold_id}:void", dispute.hold_id, void=True)
        )


def _post(session: Session, request: ledger.TransferRequest) -> None:
    if refused := post_chain(session, [request]):
        raise RuntimeError(f"the ledger refused {request.external_id}: {refused}")


# --- the merchant's answer, the deadline, the decision -------------------------------------------


def respond(
    session: Session, merchant_id: int, dispute_id: int, decision: str, explanation: str
) -> Dispute:
    """The merchant accepts (the customer wins: refunded now) or contests with an explanation."""
    dispute = _locked(session, dispute_id, merchant_id=merchant_id)
    actor = f"merchant:{merchant_id}"
    response = MerchantResponse(decision)
    if response is MerchantResponse.ACCEPT:
        rules.check_action(dispute.status, "accept")
    else:
        rules.check_action(dispute.status, "contest")
        rules.check_contest_in_time(dispute.respond_by, clock.now())
    dispute.merchant_response = response
    dispute.merchant_explanation = explanation
    dispute.merchant_responded_at = clock.now()
    if response is MerchantResponse.ACCEPT:
        _win(session, dispute, actor, explanation or "accepted by the merchant")
    else:
        _to_review(session, dispute, actor, body=explanation, why="contested")
    return dispute


def sweep_overdue(session: Session) -> int:
    """Move every dispute whose merchant let the deadline pass to review; how many moved."""
    now = clock.now()
    overdue = session.execute(
        select(Dispute.id)
        .where(
            Dispute.status == DisputeStatus.AWAITING_MERCHANT,
            Dispute.respond_by < as_utc(now).astimezone(UTC),
        )
        .order_by(Dispute.id)
    ).scalars()
    moved = 0
    for dispute_id in list(overdue):
        dispute = _locked(session, dispute_id)
        if rules.is_overdue(dispute.status, dispute.respond_by, now):  # not answered meanwhile
            _to_review(session, dispute, "system", body=None, why="no_response")
            moved += 1
    return moved


def decide(session: Session, dispute_id: int, outcome: str, reason: str, *, actor: str) -> Dispute:
    """Staff decide a dispute under review: won refunds the customer, lost releases the hold."""
    dispute = _locked(session, dispute_id)
    rules.check_action(dispute.status, "decide")
    if outcome == DisputeStatus.WON:
        _win(session, dispute, actor, reason)
    elif outcome == DisputeStatus.LOST:
        _release_hold(session, dispute)
        _close(session, dispute, DisputeStatus.LOST, actor, reason)
        _record(
            session,
            dispute,
            _case(session, dispute),
            "dispute_lost",
            actor,
            body=reason,
            params={"outcome": reason},
            audit_detail={"reason": reason},
        )
    else:
        raise DomainError("invalid_request")
    return dispute


def withdraw(session: Session, customer_id: int, dispute_id: int, *, actor: str) -> Dispute:
    """The customer takes the dispute back (the charge was theirs after all, or it got sorted)."""
    dispute = _locked(session, dispute_id, customer_id=customer_id)
    rules.check_action(dispute.status, "withdraw")
    _release_hold(session, dispute)
    _close(session, dispute, DisputeStatus.WITHDRAWN, actor, "withdrawn by the customer")
    _record(
        session,
        dispute,
        _case(session, dispute),
        "dispute_withdrawn",
        actor,
        params={"transaction_number": _payment(session, dispute).number},
    )
    return dispute


def freeze_for_dispute(
    session: Session, customer_id: int, dispute_id: int, *, keep_session: int | None
) -> None:
    """The offer made with an unauthorised-charge dispute: freeze the account at once."""
    dispute = _get(session, dispute_id, customer_id=customer_id)
    if "freeze_account" not in rules.offers_for(dispute.reason):
        raise DomainError("no_freeze_offer")
    actor = f"customer:{customer_id}"
    identity.freeze(
        session,
        customer_id,
        actor=actor,
        reason=f"unauthorised charge disputed (dispute {dispute.id})",
        keep_session=keep_session,
    )
    add_event(session, _case(session, dispute), "account_frozen", actor=actor)


def _win(session: Session, dispute: Dispute, actor: str, reason: str) -> None:
    """The merchant refunds the disputed amount; it replaces any provisional credit."""
    payment = payments.payment_for_refund(
        session, dispute.merchant_id, _payment(session, dispute).number
    )
    case = _case(session, dispute)
    _release_hold(session, dispute)
    refund = payments.post_refund(
        session,
        payment,
        dispute.amount,
        reason=f"Dispute won, case {case.number}",
        request_key=f"dispute:{dispute.id}:refund",
    )
    dispute.refund_transaction_id = refund.id
    _close(session, dispute, DisputeStatus.WON, actor, reason)
    _record(
        session,
        dispute,
        case,
        "dispute_won",
        actor,
        body=reason,
        data={"refund": refund.number},
        params={
            "amount": _money(dispute.amount, dispute.currency),
            "merchant": _merchant(session, dispute).name,
        },
        audit_detail={"reason": reason, "refund": refund.number},
    )


def _to_review(
    session: Session, dispute: Dispute, actor: str, *, body: str | None, why: str
) -> None:
    dispute.status = DisputeStatus.UNDER_REVIEW
    dispute.updated_at = clock.now()
    case = _case(session, dispute)
    _move_case(session, case, CaseStatus.OPEN, actor)
    _record(
        session,
        dispute,
        case,
        "dispute_under_review",
        actor,
        body=body,
        data={"why": why},
        params={"transaction_number": _payment(session, dispute).number},
        audit_detail={"why": why},
    )


def _close(
    session: Session, dispute: Dispute, status: DisputeStatus, actor: str, reason: str
) -> None:
    now = clock.now()
    dispute.status = status
    dispute.decided_by = actor
    dispute.outcome_reason = reason
    dispute.closed_at = dispute.updated_at = now
    _move_case(session, _case(session, dispute), CaseStatus.RESOLVED, actor)


# --- reading ------------------------------------------------------------------------------------


def dispute_status(session: Session, customer_id: int, dispute_id: int) -> DisputeView:
    """One of the customer's disputes, as the app shows it and the IVR reads it out."""
    return _views(
        session,
        _query().where(Dispute.customer_id == customer_id, Dispute.id == dispute_id),
        dispute_id,
    )[0]


def customer_disputes(
    session: Session, customer_id: int, *, before_id: int | None = None, limit: int = 20
) -> Page:
    return _page(session, _query().where(Dispute.customer_id == customer_id), before_id, limit)


def merchant_disputes(
    session: Session,
    merchant_id: int,
    *,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 20,
) -> Page:
    query = _query().where(Dispute.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Dispute.status == status)
    return _page(session, query, before_id, limit)


def desk_disputes(
    session: Session, *, status: str | None = None, before_id: int | None = None, limit: int = 20
) -> Page:
    query = _query() if status is None else _query().where(Dispute.status == status)
    return _page(session, query, before_id, limit)


def desk_dispute(session: Session, dispute_id: int) -> DisputeView:
    return _views(session, _query().where(Dispute.id == dispute_id), dispute_id)[0]


_Refund = aliased(WalletTransaction)


def _query() -> Select[Any]:
    return (
        select(Dispute, Case.number, WalletTransaction.number, Merchant.name, _Refund.number)
        .join(Case, Case.id == Dispute.case_id)
        .join(WalletTransaction, WalletTransaction.id == Dispute.transaction_id)
        .join(Merchant, Merchant.id == Dispute.merchant_id)
        .outerjoin(_Refund, _Refund.id == Dispute.refund_transaction_id)
    )


def _page(session: Session, query: Select[Any], before_id: int | None, limit: int) -> Page:
    """Newest first; pass `next_cursor` back as `before_id` for the next page."""
    if before_id is not None:
        query = query.where(Dispute.id < before_id)
    views = _views(session, query.order_by(Dispute.id.desc()).limit(limit + 1), None)
    items = views[:limit]
    return Page(items, items[-1].dispute.id if len(views) > limit and items else None)


def _views(session: Session, query: Select[Any], wanted: int | None) -> list[DisputeView]:
    rows = session.execute(query).all()
    if wanted is not None and not rows:
        raise DomainError("dispute_not_found", dispute_id=wanted)
    evidence = _evidence_of(session, [row[0].id for row in rows])
    return [
        DisputeView(dispute, case_number, number, name, refund, evidence.get(dispute.id, []))
        for dispute, case_number, number, name, refund in rows
    ]


def _evidence_of(session: Session, dispute_ids: Sequence[int]) -> dict[int, list[EvidenceInfo]]:
    if not dispute_ids:
        return {}
    found: dict[int, list[EvidenceInfo]] = {}
    for row in session.execute(
        select(
            DisputeEvidence.dispute_id,
            DisputeEvidence.id,
            DisputeEvidence.filename,
            DisputeEvidence.content_type,
            DisputeEvidence.size,
            DisputeEvidence.created_at,
        )
        .where(DisputeEvidence.dispute_id.in_(dispute_ids))
        .order_by(DisputeEvidence.id)
    ):
        found.setdefault(row[0], []).append(EvidenceInfo(*row[1:]))
    return found


# --- shared steps -------------------------------------------------------------------------------


def _get(session: Session, dispute_id: int, *, customer_id: int | None = None) -> Dispute:
    query = select(Dispute).where(Dispute.id == dispute_id)
    if customer_id is not None:
        query = query.where(Dispute.customer_id == customer_id)
    dispute = session.execute(query).scalar_one_or_none()
    if dispute is None:
        raise DomainError("dispute_not_found", dispute_id=dispute_id)
    return dispute


def _locked(
    session: Session,
    dispute_id: int,
    *,
    customer_id: int | None = None,
    merchant_id: int | None = None,
) -> Dispute:
    """The dispute, locked and read afresh: two people acting on it at once take turns."""
    query = (
        select(Dispute).where(Dispute.id == dispute_id).execution_options(populate_existing=True)
    )
    if customer_id is not None:
        query = query.where(Dispute.customer_id == customer_id)
    if merchant_id is not None:
        query = query.where(Dispute.merchant_id == merchant_id)
    if not is_sqlite(session):  # SQLite's transactions already take the writer lock up front
        query = query.with_for_update()
    dispute = session.execute(query).scalar_one_or_none()
    if dispute is None:
        raise DomainError("dispute_not_found", dispute_id=dispute_id)
    return dispute


def _case(session: Session, dispute: Dispute) -> Case:
    case = session.get(Case, dispute.case_id)
    assert case is not None
    return case


def _payment(session: Session, dispute: Dispute) -> WalletTransaction:
    payment = session.get(WalletTransaction, dispute.transaction_id)
    assert payment is not None
    return payment


def _merchant(session: Session, dispute: Dispute) -> Merchant:
    merchant = session.get(Merchant, dispute.merchant_id)
    assert merchant is not None
    return merchant


def _money(minor: int, currency: str) -> str:
    return f"{currency} {format_minor(minor, currency)}"


def _move_case(session: Session, case: Case, status: CaseStatus, actor: str) -> None:
    """Follow the dispute on its case, through the statuses the case machine allows."""
    path = [CaseStatus.OPEN, status] if case.status == CaseStatus.NEW else [status]
    for step in path:
        if not case_rules.can_transition(case.status, step):
            return  # staff moved the case elsewhere (closed it, say): leave it where they put it
        change_status(session, case, step, actor)


def _record(
    session: Session,
    dispute: Dispute,
    case: Case,
    event: str,
    actor: str,
    *,
    body: str | None = None,
    data: dict[str, Any] | None = None,
    contact_id: int | None = None,
    params: dict[str, Any],
    audit_detail: dict[str, Any] | None = None,
) -> None:
    """A change of state: on the case's timeline, to the customer, into the audit log."""
    add_event(
        session,
        case,
        event,
        actor=actor,
        body=body,
        data={"dispute_id": dispute.id, "status": dispute.status, **(data or {})},
        contact_id=contact_id,
    )
    notify(
        session,
        dispute.customer_id,
        event,
        {"case_number": case.number, **params},
        channels=CHANNELS,
    )
    _audit(session, dispute, actor, event.replace("dispute_", "dispute."), audit_detail)


def _audit(
    session: Session, dispute: Dispute, actor: str, action: str, detail: dict[str, Any] | None
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=f"dispute:{dispute.id}",
        detail={
            "status": dispute.status,
            "amount": dispute.amount,
            "currency": dispute.currency,
            **(detail or {}),
        },
    )
