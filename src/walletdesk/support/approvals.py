"""Dual control: what an agent may not do alone waits here for a supervisor.

A request names the action, the contact and the customer, and its parameters (a new phone
number is personal data, so they are sealed). A supervisor other than the requester approves
it, which carries the action out in the same unit of work, or rejects it with a note. A
request nobody decided within the TTL expires; the agent can ask again.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.config import get_settings
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.crypto import open_sealed, seal
from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import format_minor
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support import desk_errors as _desk_errors  # noqa: F401  (registers the codes)
from walletdesk.support.cases import add_event
from walletdesk.support.models import Approval, ApprovalStatus, Case, Contact
from walletdesk.support.verification import desk_level, methods_passed
from walletdesk.wallet.rules import mask_recipient

PARAMS_CONTEXT = "approvals.params"
REASON_MAX_LENGTH = 500
LIST_LIMIT = 100


def request(
    session: Session,
    staff: StaffUser,
    contact: Contact,
    action: str,
    params: dict[str, Any],
    reason: str,
) -> Approval:
    """A pending request for `action` on the contact's customer (already authorized)."""
    assert contact.customer_id is not None
    now = clock.now()
    approval = Approval(
        action=action,
        customer_id=contact.customer_id,
        contact_id=contact.id,
        case_id=contact.case_id,
        requested_by=staff.id,
        reason=reason.strip()[:REASON_MAX_LENGTH],
        params_sealed=seal(json.dumps(params, sort_keys=True), context=PARAMS_CONTEXT),
        status=ApprovalStatus.PENDING,
        created_at=now,
        expires_at=now + _ttl(),
    )
    session.add(approval)
    session.flush()
    _log(session, approval, staff, "requested", verification_level=contact.verification_level)
    return approval


def params_of(approval: Approval) -> dict[str, Any]:
    return json.loads(open_sealed(approval.params_sealed, context=PARAMS_CONTEXT))


def describe(session: Session, approval: Approval) -> dict[str, Any]:
    """What a supervisor needs to decide, personal data masked: the request, what it would do,
    and how the caller was verified."""
    params = params_of(approval)
    details: dict[str, Any] = {}
    if new := params.get("phone") or params.get("email"):
        details["new"] = mask_recipient(new)
    if "amount" in params:
        details["amount"] = format_minor(params["amount"], params["currency"])
        details["currency"] = params["currency"]
    contact = session.get(Contact, approval.contact_id)
    assert contact is not None
    return {
        "id": approval.id,
        "action": approval.action,
        "status": approval.status,
        "customer_id": approval.customer_id,
        "contact_id": approval.contact_id,
        "case_id": approval.case_id,
        "requested_by": approval.requested_by,
        "reason": approval.reason,
        "details": details,
        "verification_level": desk_level(contact),
        "verified_by": methods_passed(contact.verification_steps, contact.customer_id),
        "created_at": _iso(approval.created_at),
        "expires_at": _iso(approval.expires_at),
        "decided_by": approval.decided_by,
        "decided_at": _iso(approval.decided_at),
        "decision_note": approval.decision_note,
    }


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def list_pending(session: Session, *, limit: int = LIST_LIMIT) -> list[Approval]:
    """Requests waiting for a supervisor, oldest first; stale ones are marked expired."""
    session.execute(
        update(Approval)
        .where(Approval.status == ApprovalStatus.PENDING, Approval.expires_at <= clock.now())
        .values(status=ApprovalStatus.EXPIRED)
    )
    return list(
        session.execute(
            select(Approval)
            .where(Approval.status == ApprovalStatus.PENDING)
            .order_by(Approval.id)
            .limit(limit)
        ).scalars()
    )


def approve(
    session: Session, supervisor: StaffUser, approval_id: int, note: str
) -> Approval | DomainError:
    """Carry the request out. An expired request is marked so and returned as a refusal, to
    be committed."""
    approval = _decidable(session, supervisor, approval_id)
    if approval.requested_by == supervisor.id:
        raise DomainError("approval_self")
    if expired := _expire_if_stale(approval):
        return expired
    from walletdesk.support.actions import carry_out  # actions ask for approvals: import late

    carry_out(session, approval, supervisor)
    _decide(session, approval, supervisor, ApprovalStatus.APPROVED, note)
    return approval


def reject(
    session: Session, supervisor: StaffUser, approval_id: int, note: str
) -> Approval | DomainError:
    approval = _decidable(session, supervisor, approval_id)
    if expired := _expire_if_stale(approval):
        return expired
    _decide(session, approval, supervisor, ApprovalStatus.REJECTED, note)
    return approval


def _decidable(session: Session, supervisor: StaffUser, approval_id: int) -> Approval:
    if supervisor.role != StaffRole.SUPERVISOR:
        raise DomainError("approval_supervisor_only")
    approval = session.execute(
        select(Approval).where(Approval.id == approval_id).with_for_update()
    ).scalar_one_or_none()
    if approval is None:
        raise DomainError("approval_not_found", approval_id=approval_id)
    if approval.status != ApprovalStatus.PENDING:
        raise DomainError("approval_not_pending", status=approval.status)
    return approval


def _expire_if_stale(approval: Approval) -> DomainError | None:
    if as_utc(approval.expires_at) > clock.now():
        return None
    approval.status = ApprovalStatus.EXPIRED
    return DomainError("approval_expired", hours=get_settings().desk_approval_ttl_hours)


def _decide(
    session: Session, approval: Approval, supervisor: StaffUser, status: str, note: str
) -> None:
    approval.status = status
    approval.decided_by, approval.decided_at = supervisor.id, clock.now()
    approval.decision_note = note.strip()[:REASON_MAX_LENGTH] or None
    _log(session, approval, supervisor, str(status))


def _log(session: Session, approval: Approval, staff: StaffUser, what: str, **detail: Any) -> None:
    """Audited always; on the case timeline for staff only (the customer hears of the
    outcome, not of the paperwork)."""
    record(
        session,
        actor=staff.actor,
        action=f"desk.approval_{what}",
        subject=f"customer:{approval.customer_id}",
        detail={
            "approval_id": approval.id,
            "action": approval.action,
            "contact_id": approval.contact_id,
            "requested_by": f"staff:{approval.requested_by}",
            **detail,
        },
    )
    case = session.get(Case, approval.case_id) if approval.case_id else None
    if case is not None:
        add_event(
            session,
            case,
            f"approval_{what}",
            actor=staff.actor,
            body=approval.decision_note if what != "requested" else approval.reason,
            data={"approval_id": approval.id, "action": approval.action},
            contact_id=approval.contact_id,
            customer_visible=False,
        )


def _ttl() -> timedelta:
    return timedelta(hours=get_settings().desk_approval_ttl_hours)
