"""The agent desk API: contacts, caller verification, guarded actions and approvals.

Every check is on the server (support.actions.authorize): before the caller is verified to an
action's level, its endpoint answers 403 contact_verification_insufficient and shows nothing
of the account. Actions that need a supervisor answer 202 with the pending approval instead
of an error; the supervisor approves it under /v1/desk/approvals, which carries it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from walletdesk.identity.api import limit
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import RowId, db_of, error_body, language_of, run_idempotent
from walletdesk.kit.money import check_currency, parse_amount
from walletdesk.staff.api import require_staff
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support import actions, approvals, verification
from walletdesk.support.models import Approval, CaseType, Contact
from walletdesk.wallet import schemas
from walletdesk.wallet.models import WalletTransaction
from walletdesk.wallet.rules import mask_recipient

router = APIRouter(prefix="/v1/desk", tags=["desk"])

Agent = Annotated[StaffUser, Depends(require_staff(StaffRole.AGENT, StaffRole.SUPERVISOR))]
Supervisor = Annotated[StaffUser, Depends(require_staff(StaffRole.SUPERVISOR))]
Language = Annotated[str, Depends(language_of)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Code = Annotated[str, Field(pattern=r"^\s*\d{4,10}\s*$", repr=False)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ContactIn(In):
    channel: Literal["phone", "chat", "email", "in_app"]
    origin: str | None = Field(
        default=None, max_length=254, description="The calling number or sender, as reported"
    )
    case_number: str | None = Field(
        default=None, max_length=20, description="A case the caller keyed in or named"
    )


class PhoneOrEmailIn(In):
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)

    @model_validator(mode="after")
    def _one_of(self) -> PhoneOrEmailIn:
        if bool(self.phone) == bool(self.email):
            raise ValueError("give exactly one of phone or email")
        return self


class KnowledgeIn(In):
    amount: schemas.AmountText
    currency: schemas.CurrencyCode


class ChannelIn(In):
    channel: Literal["sms", "email"] = Field(description="The registered phone (sms) or email")


class CodeIn(In):
    code: Code


class FreezeIn(In):
    reason: Reason


class UnlockIn(In):
    reason: Reason


class ChangeContactIn(PhoneOrEmailIn):
    reason: Reason


class ChangeConfirmIn(In):
    what: Literal["phone", "email"]
    code: Code


class GoodwillIn(In):
    amount: schemas.AmountText
    currency: schemas.CurrencyCode
    reason: str = Field(
        min_length=1, max_length=200, description="Shown to the customer in their history"
    )


class EndIn(In):
    summary: str = Field(min_length=1, max_length=2000)
    next_steps: str = Field(min_length=1, max_length=2000)
    case_type: CaseType = Field(
        default=CaseType.OTHER, description="For the case opened if the contact has none"
    )


class DecisionIn(In):
    note: str = Field(default="", max_length=500)


# --- shapes -------------------------------------------------------------------------------------


def _iso(moment: Any) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def contact_out(contact: Contact) -> dict[str, Any]:
    """The contact as the agent sees it: whether a customer is attached, never who."""
    return {
        "id": contact.id,
        "channel": contact.channel,
        "case_id": contact.case_id,
        "customer_attached": contact.customer_id is not None,
        "verification_level": verification.desk_level(contact),  # what the desk acts on
        "verification_steps": [
            {k: step.get(k) for k in ("level", "method", "passed", "at")}
            for step in contact.verification_steps
        ],
        "started_at": _iso(contact.started_at),
        "ended_at": _iso(contact.ended_at),
    }


def account_out(view: actions.AccountView, language: str) -> dict[str, Any]:
    customer = view.customer
    return {
        "customer": {
            "display_name": customer.display_name,
            "status": customer.status,
            "status_reason": customer.status_reason,
            "language": customer.language,
            "phone": mask_recipient(customer.phone) if customer.phone else None,
            "email": mask_recipient(customer.email) if customer.email else None,
        },
        "balances": [schemas.balance_out(b) for b in view.balances],
        "recent_transactions": [
            schemas.transaction_out(txn, customer.id, language) for txn in view.recent
        ],
        "open_cases": [
            {
                "number": case.number,
                "type": case.type,
                "status": case.status,
                "subject": case.subject,
                "created_at": _iso(case.created_at),
            }
            for case in view.open_cases
        ],
        "open_risk_alerts": [
            {"id": alert.id, "created_at": _iso(alert.created_at), "explanation": why}
            for alert, why in view.open_alerts
        ],
    }


def _pending(session: Session, approval: Approval) -> tuple[int, dict[str, Any]]:
    return 202, {"status": "approval_pending", "approval": approvals.describe(session, approval)}


def _refusal(error: DomainError, request: Request) -> tuple[int, dict[str, Any]]:
    """A refusal whose bookkeeping (a miss counted) must be committed, answered as a problem."""
    return error.status, error_body(error, language_of(request))


# --- contacts and verification ------------------------------------------------------------------


@router.post("/contacts", status_code=201)
def open_contact(request: Request, body: ContactIn, staff: Agent) -> Response:
    """Open a contact for this agent; a phone call's number is matched (caller ID, weak)."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        contact = verification.open_desk_contact(
            session, staff, channel=body.channel, origin=body.origin, case_number=body.case_number
        )
        return 201, contact_out(contact)

    return run_idempotent(request, staff.actor, body, operation)


@router.get("/contacts/{contact_id}")
def get_contact(request: Request, contact_id: RowId, staff: Agent) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        return contact_out(verification.own_contact(session, staff, contact_id))


@router.post("/contacts/{contact_id}/customer")
def attach_customer(
    request: Request, contact_id: RowId, body: PhoneOrEmailIn, staff: Agent
) -> Response:
    """Attach who the caller says they are; the answer tells only whether someone matched."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        contact = verification.own_contact(session, staff, contact_id)
        verification.attach_customer(session, contact, staff, body.phone or body.email or "")
        return 200, contact_out(contact)

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/verify/knowledge")
def verify_knowledge(
    request: Request, contact_id: RowId, body: KnowledgeIn, staff: Agent
) -> Response:
    """The caller states the amount of a recent completed transaction."""
    amount = parse_amount(body.amount, check_currency(body.currency))

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        contact = verification.own_contact(session, staff, contact_id)
        missed = verification.check_knowledge(
            session, contact, staff, amount=amount, currency=body.currency
        )
        return _refusal(missed, request) if missed else (200, contact_out(contact))

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/verify/code/send", status_code=202)
def send_code(request: Request, contact_id: RowId, body: ChannelIn, staff: Agent) -> Response:
    """A one-time code to the customer's registered phone or email, to be read back."""
    limit(request, "otp.send", f"desk_contact:{contact_id}")

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        contact = verification.own_contact(session, staff, contact_id)
        verification.send_possession_code(session, contact, staff, body.channel)
        return 202, {"status": "code_sent", "channel": body.channel, **contact_out(contact)}

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/verify/code/check")
def check_code(request: Request, contact_id: RowId, body: CodeIn, staff: Agent) -> Response:
    limit(request, "otp.verify", f"desk_contact:{contact_id}")

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        contact = verification.own_contact(session, staff, contact_id)
        missed = verification.check_possession_code(session, contact, staff, body.code)
        return _refusal(missed, request) if missed else (200, contact_out(contact))

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/end")
def end_contact(request: Request, contact_id: RowId, body: EndIn, staff: Agent) -> Response:
    """End the contact; the customer receives its record (summary, case number, next steps)."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        contact = verification.end_desk_contact(
            session,
            staff,
            contact_id,
            summary=body.summary,
            next_steps=body.next_steps,
            case_type=body.case_type,
        )
        return 200, contact_out(contact)

    return run_idempotent(request, staff.actor, body, operation)


# --- looking ------------------------------------------------------------------------------------


@router.get("/contacts/{contact_id}/account")
def view_account(
    request: Request, contact_id: RowId, staff: Agent, language: Language
) -> dict[str, Any]:
    """Balances, the last transactions (failures explained), open cases and risk alerts."""
    with db_of(request).unit_of_work() as session:
        view = actions.view_account(session, staff, contact_id, language)
        return account_out(view, language)


@router.get("/contacts/{contact_id}/transactions/{number}/explanation")
def explain_transaction(
    request: Request, contact_id: RowId, number: str, staff: Agent, language: Language
) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        answer = actions.explain_for_agent(session, staff, contact_id, number, language)
    why = answer.explanation
    return {
        "number": why.number,
        "status": why.status,
        "code": why.code,
        "summary": why.summary,
        "next_step": why.next_step,
        "risk": answer.risk,
        "account_status": answer.account_status,
        "account_status_reason": answer.status_reason,
    }


# --- acting -------------------------------------------------------------------------------------


@router.post("/contacts/{contact_id}/actions/password-reset")
def password_reset(request: Request, contact_id: RowId, body: ChannelIn, staff: Agent) -> Response:
    """Send a reset to the registered phone (code) or email (link); nobody else can be named."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        actions.send_password_reset(session, staff, contact_id, channel=body.channel)
        return 200, {"status": "sent", "channel": body.channel}

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/actions/freeze")
def freeze(request: Request, contact_id: RowId, body: FreezeIn, staff: Agent) -> Response:
    """Freeze the account at once, at any verification level: it only protects."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        customer = actions.freeze(session, staff, contact_id, reason=body.reason)
        return 200, {"status": "frozen", "account_status": customer.status}

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/actions/unlock", status_code=202)
def unlock(request: Request, contact_id: RowId, body: UnlockIn, staff: Agent) -> Response:
    """Ask a supervisor to unlock a risk-locked or frozen account (202: approval pending)."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return _pending(
            session, actions.request_unlock(session, staff, contact_id, reason=body.reason)
        )

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/actions/change-contact", status_code=202)
def change_contact(
    request: Request, contact_id: RowId, body: ChangeContactIn, staff: Agent
) -> Response:
    """Ask a supervisor to change the phone or email (202: approval pending). On approval a
    code goes to the new one; the change happens when it comes back."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        approval = actions.request_contact_change(
            session, staff, contact_id, phone=body.phone, email=body.email, reason=body.reason
        )
        return _pending(session, approval)

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/actions/change-contact/confirm")
def confirm_contact_change(
    request: Request, contact_id: RowId, body: ChangeConfirmIn, staff: Agent
) -> Response:
    """The customer reads back the code sent to the new phone or email."""
    limit(request, "otp.verify", f"desk_contact:{contact_id}")

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        outcome = actions.confirm_contact_change(
            session, staff, contact_id, what=body.what, code=body.code
        )
        if isinstance(outcome, DomainError):
            return _refusal(outcome, request)
        return 200, {"status": "changed", "what": body.what}

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/contacts/{contact_id}/actions/goodwill", status_code=201)
def goodwill(
    request: Request, contact_id: RowId, body: GoodwillIn, staff: Agent, language: Language
) -> Response:
    """Credit the customer (201) within the agent's limits; above them, 202 with the approval."""
    amount = parse_amount(body.amount, check_currency(body.currency))

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        outcome = actions.goodwill(
            session, staff, contact_id, amount=amount, currency=body.currency, reason=body.reason
        )
        if isinstance(outcome, WalletTransaction):
            transaction = schemas.transaction_out(outcome, outcome.customer_id, language)
            return 201, {"status": "credited", "transaction": transaction}
        return _pending(session, outcome)

    return run_idempotent(request, staff.actor, body, operation)


# --- supervisors ----------------------------------------------------------------------------------


@router.get("/approvals")
def list_approvals(request: Request, _staff: Supervisor) -> list[dict[str, Any]]:
    """Requests waiting for a decision, oldest first."""
    with db_of(request).unit_of_work() as session:
        return [approvals.describe(session, a) for a in approvals.list_pending(session)]


@router.post("/approvals/{approval_id}/approve")
def approve(request: Request, approval_id: RowId, body: DecisionIn, staff: Supervisor) -> Response:
    """Approve and carry out; the requester cannot approve their own request."""
    return _decide(
        request, staff, body, lambda s: approvals.approve(s, staff, approval_id, body.note)
    )


@router.post("/approvals/{approval_id}/reject")
def reject(request: Request, approval_id: RowId, body: DecisionIn, staff: Supervisor) -> Response:
    return _decide(
        request, staff, body, lambda s: approvals.reject(s, staff, approval_id, body.note)
    )


def _decide(
    request: Request,
    staff: StaffUser,
    body: DecisionIn,
    decide: Callable[[Session], Approval | DomainError],
) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        outcome = decide(session)
        if isinstance(outcome, DomainError):
            return _refusal(outcome, request)
        return 200, approvals.describe(session, outcome)

    return run_idempotent(request, staff.actor, body, operation)
