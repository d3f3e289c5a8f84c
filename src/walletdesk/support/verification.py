"""Who is on the line? The agent's contacts, and caller verification on them.

The calling number matching the registered phone is weak (numbers are spoofed and SIMs
swapped); knowing the amount of a recent transaction is knowledge; reading back a code sent to
the registered phone or email is possession, the strong level. There are no security
questions. Within a contact the level only rises, unless the agent switches to another
customer, which starts over. Every step, passed or missed, is kept on the contact (level,
method, when, by whom), never what was said: not the code, not the amount.

Refusals that must leave a trace (a wrong amount, a wrong code) are returned, not raised, so
the caller commits the count before reporting them (see identity.service).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.identity import codes
from walletdesk.identity.service import credential_of
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.staff.models import StaffUser
from walletdesk.support import desk_errors as _desk_errors  # noqa: F401  (registers the codes)
from walletdesk.support.cases import (
    case_for_new_contact,
    end_contact,
    find_case,
    get_contact,
    open_case,
    open_contact,
)
from walletdesk.support.models import CaseType, Contact, VerificationLevel
from walletdesk.wallet.models import Customer, TxnStatus
from walletdesk.wallet.service.customers import find_by_contact
from walletdesk.wallet.service.history import HistoryFilter, list_transactions

LEVELS = (
    VerificationLevel.NONE,
    VerificationLevel.CALLER_ID,
    VerificationLevel.KNOWLEDGE,
    VerificationLevel.STRONG,
)
KNOWLEDGE_DAYS = 30
KNOWLEDGE_MAX_MISSES = 3
KNOWLEDGE_METHOD = "recent_amount"
# How many of the latest completed transactions a stated amount is compared with.
KNOWLEDGE_SCAN = 100
CODE_PURPOSE = "agent_verify"
CUSTOMER_CHANGED = "customer_changed"
SUBJECT_MAX_LENGTH = 200  # Case.subject
CHANNEL_WORDS = {"sms": "phone", "email": "email"}


def rank(level: str) -> int:
    return LEVELS.index(VerificationLevel(level))


def at_least(level: str, minimum: str) -> bool:
    return rank(level) >= rank(minimum)


# --- the contact ---------------------------------------------------------------------------


def open_desk_contact(
    session: Session,
    staff: StaffUser,
    *,
    channel: str,
    origin: str | None = None,
    case_number: str | None = None,
) -> Contact:
    """A contact this agent handles; a phone call's number is matched against registered ones."""
    case = find_case(session, case_number) if case_number else None
    if case is not None:
        case = case_for_new_contact(session, case, channel=channel, actor=staff.actor)
    contact = open_contact(
        session,
        channel=channel,
        case=case,
        customer_id=case.customer_id if case else None,
        origin=origin,
        agent_id=staff.id,
    )
    if origin and channel == "phone":
        identify_by_caller_id(session, contact, origin)
    record(
        session,
        actor=staff.actor,
        action="desk.contact_opened",
        subject=f"contact:{contact.id}",
        detail={"channel": channel, "case_id": contact.case_id},
    )
    return contact


def end_desk_contact(
    session: Session,
    staff: StaffUser,
    contact_id: int,
    *,
    summary: str,
    next_steps: str,
    case_type: str = CaseType.OTHER,
) -> Contact:
    """End the agent's contact and send the customer its record; a contact about a customer
    that has no case yet gets one, so that the record has a number to call back with."""
    contact = own_contact(session, staff, contact_id)
    if contact.customer_id is not None and contact.case_id is None:
        case = open_case(
            session,
            customer_id=contact.customer_id,
            type=case_type,
            subject=summary.strip()[:SUBJECT_MAX_LENGTH],
            channel=contact.channel,
            actor=staff.actor,
        )
        contact.case_id = case.id
    return end_contact(session, contact, summary=summary, next_steps=next_steps, actor=staff.actor)


def own_contact(session: Session, staff: StaffUser, contact_id: int) -> Contact:
    """The open contact, if this agent handles it; an unassigned one becomes theirs."""
    contact = get_contact(session, contact_id, for_update=True)
    if contact.ended_at is not None:
        raise DomainError("contact_ended")
    if contact.agent_id is None:
        contact.agent_id = staff.id
    elif contact.agent_id != staff.id:
        raise DomainError("contact_not_yours")
    return contact


def customer_of(contact: Contact) -> int:
    if contact.customer_id is None:
        raise DomainError("contact_customer_required")
    return contact.customer_id


def registered_destination(session: Session, customer: Customer, channel: str) -> str:
    """The customer's own, proven phone (sms) or email: the only places codes and resets go."""
    credential = credential_of(session, customer.id)
    if channel == "sms":
        destination, proven = customer.phone, credential.phone_verified_at
    else:
        destination, proven = customer.email, credential.email_verified_at
    if not destination or proven is None:
        raise DomainError("channel_not_registered", channel=CHANNEL_WORDS[channel])
    return destination


# --- who the caller says they are ------------------------------------------------------------


def identify_by_caller_id(session: Session, contact: Contact, phone: str) -> bool:
    """Attach the customer whose registered phone is calling, at the weak caller_id level."""
    customer = None if "@" in phone else find_by_contact(session, phone)
    if customer is None or contact.customer_id not in (None, customer.id):
        return False
    contact.customer_id = customer.id
    step(contact, VerificationLevel.CALLER_ID, "caller_id", by=contact.agent_id, passed=True)
    return True


def attach_customer(session: Session, contact: Contact, staff: StaffUser, login: str) -> bool:
    """Attach the customer the caller claims to be (phone or email), unverified.

    Naming someone else than before starts verification over, so that checks passed for one
    customer never open another's account.
    """
    customer = find_by_contact(session, login)
    claimed = customer.id if customer else None
    if claimed != contact.customer_id:
        contact.customer_id = claimed
        contact.verification_level = VerificationLevel.NONE
        step(contact, VerificationLevel.NONE, CUSTOMER_CHANGED, by=staff.id, passed=True)
        _audit(session, staff, contact, "desk.customer_attached", found=claimed is not None)
    return claimed is not None


# --- knowledge ----------------------------------------------------------------------------------


def check_knowledge(
    session: Session, contact: Contact, staff: StaffUser, *, amount: int, currency: str
) -> DomainError | None:
    """The caller states the amount of one of their recent completed transactions.

    Three wrong answers in a contact close this route; a code to the registered phone or email
    (possession) remains.
    """
    customer_id = customer_of(contact)
    misses = knowledge_misses(contact.verification_steps)
    if misses >= KNOWLEDGE_MAX_MISSES:
        raise DomainError("knowledge_check_closed")
    passed = _recent_amount(session, customer_id, amount, currency)
    step(contact, VerificationLevel.KNOWLEDGE, KNOWLEDGE_METHOD, by=staff.id, passed=passed)
    _audit(session, staff, contact, "desk.verification", method=KNOWLEDGE_METHOD, passed=passed)
    if passed:
        return None
    remaining = KNOWLEDGE_MAX_MISSES - misses - 1
    if remaining == 0:
        return DomainError("knowledge_check_closed")
    return DomainError("knowledge_mismatch", remaining=remaining, days=KNOWLEDGE_DAYS)


def knowledge_misses(steps: list[dict[str, Any]]) -> int:
    return sum(1 for s in steps if s.get("method") == KNOWLEDGE_METHOD and not s.get("passed"))


def methods_passed(steps: list[dict[str, Any]]) -> list[str]:
    """How the current customer was verified: passed steps since the customer last changed."""
    passed: list[str] = []
    for entry in steps:
        if entry.get("method") == CUSTOMER_CHANGED:
            passed = []
        elif entry.get("passed") and entry["method"] not in passed:
            passed.append(entry["method"])
    return passed


def _recent_amount(session: Session, customer_id: int, amount: int, currency: str) -> bool:
    since = clock.now() - timedelta(days=KNOWLEDGE_DAYS)
    page = list_transactions(
        session,
        customer_id,
        HistoryFilter(status=TxnStatus.SUCCEEDED, currency=currency, since=since),
        limit=KNOWLEDGE_SCAN,
    )
    return any(txn.amount == amount for txn in page.items)


# --- possession ---------------------------------------------------------------------------------


def send_possession_code(
    session: Session, contact: Contact, staff: StaffUser, channel: str
) -> None:
    """A one-time code to the registered phone (sms) or email, never to a number given now."""
    customer = session.get(Customer, customer_of(contact))
    assert customer is not None
    destination = registered_destination(session, customer, channel)
    codes.send(
        session,
        customer.id,
        _purpose(contact),
        channel,
        destination,
        event="support_verification_code",
    )
    _audit(session, staff, contact, "desk.verification_code_sent", channel=channel)


def check_possession_code(
    session: Session, contact: Contact, staff: StaffUser, code: str
) -> DomainError | None:
    """The code read back by the caller: strong. Misses count toward the code's own limit."""
    confirmed = codes.check(session, customer_of(contact), _purpose(contact), code)
    method = f"code_{confirmed.channel}" if confirmed else "code"
    step(contact, VerificationLevel.STRONG, method, by=staff.id, passed=confirmed is not None)
    _audit(session, staff, contact, "desk.verification", method=method, passed=bool(confirmed))
    return None if confirmed else DomainError("code_invalid")


def _purpose(contact: Contact) -> str:
    # Bound to the contact: a code sent during one call proves nothing in another.
    return f"{CODE_PURPOSE}:{contact.id}"


# --- bookkeeping --------------------------------------------------------------------------------


def step(contact: Contact, level: str, method: str, *, by: int | None, passed: bool) -> None:
    """Keep one verification step on the contact; a passed one may raise its level."""
    entry = {
        "level": str(level),
        "method": method,
        "passed": passed,
        "at": clock.now().isoformat(),
        "by": by,
    }
    # A new list, so that the JSON column is seen as changed.
    contact.verification_steps = [*contact.verification_steps, entry]
    if passed and rank(level) > rank(contact.verification_level):
        contact.verification_level = level


def _audit(
    session: Session, staff: StaffUser, contact: Contact, action: str, **detail: Any
) -> None:
    record(
        session,
        actor=staff.actor,
        action=action,
        subject=f"customer:{contact.customer_id}" if contact.customer_id else None,
        detail={
            "contact_id": contact.id,
            "verification_level": contact.verification_level,
            **detail,
        },
    )
