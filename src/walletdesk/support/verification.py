"""Who is on the line? The agent's contacts, and caller verification on them.

The calling number matching the registered phone is weak (numbers are spoofed and SIMs
swapped); knowing the amount of a recent transaction is knowledge; reading back a code sent to
the registered phone or email is possession, the strong level. There are no security
questions. Each step names the customer it verified, and a contact's level and methods count
only the steps for the customer attached now: switching to another customer starts over. Every
step, passed or missed, is kept on the contact (level, method, customer, when, by whom), never
what was said: not the code, not the amount. A payment PIN is something known, not something
held: the desk counts it as knowledge, whatever level the IVR gave it.

Refusals that must leave a trace (a wrong amount, a wrong code) are returned, not raised, so
the caller commits the count before reporting them (see identity.service).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.hotline.models import Call, EntryStatus, QueueEntry
from walletdesk.identity import codes
from walletdesk.identity.service import credential_of
from walletdesk.kit import clock, ratelimit
from walletdesk.kit.errors import DomainError, define
from walletdesk.notify.service import notify
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
from walletdesk.wallet.models import Customer, TxnKind, TxnStatus, WalletTransaction
from walletdesk.wallet.service.customers import find_by_contact

LEVELS = (
    VerificationLevel.NONE,
    VerificationLevel.CALLER_ID,
    VerificationLevel.KNOWLEDGE,
    VerificationLevel.STRONG,
)
KNOWLEDGE_DAYS = 30
KNOWLEDGE_MAX_MISSES = 3
KNOWLEDGE_METHOD = "recent_amount"
# Money the customer sent: anyone can make a customer *receive* an amount, then quote it.
KNOWLEDGE_KINDS = (TxnKind.PAYMENT, TxnKind.TRANSFER, TxnKind.WITHDRAWAL)
# Knowledge checks per customer across all contacts (Settings.rate_limits).
KNOWLEDGE_LIMIT = "desk.knowledge"
KNOWLEDGE_LIMITED = "recent_amount_limited"
# Reading back a code sent to the registered phone or email: the only strong methods at the desk.
POSSESSION_METHODS = frozenset({"code_sms", "code_email"})
CODE_PURPOSE = "agent_verify"
CUSTOMER_CHANGED = "customer_changed"
SUBJECT_MAX_LENGTH = 200  # Case.subject
CHANNEL_WORDS = {"sms": "phone", "email": "email"}


def rank(level: str) -> int:
    return LEVELS.index(VerificationLevel(level))


def at_least(level: str, minimum: str) -> bool:
    return rank(level) >= rank(minimum)


define(
    "contact_customer_fixed",
    409,
    en="This call's caller was identified by the phone line; the customer cannot be changed "
    "here. Open a new contact for someone else.",
    zh="该来电的客户已由电话线路确定，此处不能更换客户。如需处理其他客户，请新建联络。",
)


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
    """The open contact, if this agent handles it. Nothing here claims a contact: an
    unassigned one is nobody's until its channel hands it to an agent (a call's queue, a
    chat's accept), and a desk contact is its opener's."""
    contact = get_contact(session, contact_id, for_update=True)
    if contact.ended_at is not None:
        raise DomainError("contact_ended")
    if handler_of(session, contact) != staff.id:
        raise DomainError("contact_not_yours")
    return contact


def handler_of(session: Session, contact: Contact) -> int | None:
    """Who handles the contact: for a hotline call, the agent holding its connected queue
    entry (after a transfer, nobody until the next agent accepts); else its agent."""
    if not _is_hotline_call(session, contact):
        return contact.agent_id
    return session.execute(
        select(QueueEntry.agent_id)
        .join(Call, Call.id == QueueEntry.call_id)
        .where(Call.contact_id == contact.id, QueueEntry.status == EntryStatus.CONNECTED)
        .limit(1)
    ).scalar_one_or_none()


def _is_hotline_call(session: Session, contact: Contact) -> bool:
    return contact.channel == "phone" and bool(
        session.execute(select(exists().where(Call.contact_id == contact.id))).scalar()
    )


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
    customer never open another's account. A hotline call's customer is the one its line
    identified and verified: it is not changed here.
    """
    if _is_hotline_call(session, contact):
        raise DomainError("contact_customer_fixed")
    customer = find_by_contact(session, login)
    claimed = customer.id if customer else None
    if claimed != contact.customer_id:
        contact.customer_id = claimed
        step(contact, VerificationLevel.NONE, CUSTOMER_CHANGED, by=staff.id, passed=True)
        _audit(session, staff, contact, "desk.customer_attached", found=claimed is not None)
    return claimed is not None


# --- knowledge ----------------------------------------------------------------------------------


def check_knowledge(
    session: Session, contact: Contact, staff: StaffUser, *, amount: int, currency: str
) -> DomainError | None:
    """The caller states the amount of money they recently sent (a payment, a transfer, a
    withdrawal that went through).

    Three wrong answers in a contact close this route, and so does the customer's limit of
    checks across contacts ("desk.knowledge", who reaches it is told); a code to the registered
    phone or email (possession) remains.
    """
    customer_id = customer_of(contact)
    misses = knowledge_misses(contact.verification_steps)
    if misses >= KNOWLEDGE_MAX_MISSES:
        raise DomainError("knowledge_check_closed")
    if limited := _knowledge_limited(session, contact, staff, customer_id):
        return limited
    passed = _sent_amount(session, customer_id, amount, currency)
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


def _knowledge_limited(
    session: Session, contact: Contact, staff: StaffUser, customer_id: int
) -> DomainError | None:
    """Counted before the answer is known (a limiter cannot be read without a hit); the
    customer is told once per contact that someone keeps trying."""
    try:
        ratelimit.hit(session, KNOWLEDGE_LIMIT, f"customer:{customer_id}")
    except DomainError:
        if not any(s.get("method") == KNOWLEDGE_LIMITED for s in contact.verification_steps):
            step(contact, VerificationLevel.KNOWLEDGE, KNOWLEDGE_LIMITED, by=staff.id, passed=False)
            notify(session, customer_id, "desk_knowledge_check_locked")
        _audit(session, staff, contact, "desk.verification", method=KNOWLEDGE_LIMITED, passed=False)
        return DomainError("knowledge_check_closed")
    return None


def steps_of(steps: list[dict[str, Any]], customer_id: int | None) -> list[dict[str, Any]]:
    """The steps that verified `customer_id` (the customer attached to the contact now)."""
    if customer_id is None:
        return []
    return [s for s in steps if s.get("customer") == customer_id]


def methods_passed(steps: list[dict[str, Any]], customer_id: int | None) -> list[str]:
    """How `customer_id` was verified, in the order the methods first passed."""
    passed = (s["method"] for s in steps_of(steps, customer_id) if s.get("passed"))
    return [m for m in dict.fromkeys(passed) if m != CUSTOMER_CHANGED]


def desk_level(contact: Contact) -> str:
    """The level the desk acts on: strong only by possession; a PIN (strong for the IVR's own
    menu) is knowledge here."""
    best = VerificationLevel.NONE
    for entry in steps_of(contact.verification_steps, contact.customer_id):
        if not entry.get("passed"):
            continue
        level = VerificationLevel(entry["level"])
        if level == VerificationLevel.STRONG and entry["method"] not in POSSESSION_METHODS:
            level = VerificationLevel.KNOWLEDGE
        if rank(level) > rank(best):
            best = level
    return best


def _sent_amount(session: Session, customer_id: int, amount: int, currency: str) -> bool:
    since = clock.now() - timedelta(days=KNOWLEDGE_DAYS)
    return bool(
        session.execute(
            select(
                exists().where(
                    WalletTransaction.customer_id == customer_id,
                    WalletTransaction.kind.in_(KNOWLEDGE_KINDS),
                    WalletTransaction.status == TxnStatus.SUCCEEDED,
                    WalletTransaction.currency == currency,
                    WalletTransaction.amount == amount,
                    WalletTransaction.created_at >= since,
                )
            )
        ).scalar()
    )


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
    """Keep one verification step of the contact's current customer."""
    step_for(contact, contact.customer_id, level, method, by=by, passed=passed)


def step_for(
    contact: Contact,
    customer_id: int | None,
    level: str,
    method: str,
    *,
    by: int | None,
    passed: bool,
) -> None:
    """Keep one verification step of `customer_id` on the contact; the contact's level is the
    highest passed for the customer attached now, so a step for anyone else raises nothing."""
    entry = {
        "level": str(level),
        "method": method,
        "passed": passed,
        "customer": customer_id,
        "at": clock.now().isoformat(),
        "by": by,
    }
    # A new list, so that the JSON column is seen as changed.
    contact.verification_steps = [*contact.verification_steps, entry]
    contact.verification_level = _level(contact)


def _level(contact: Contact) -> str:
    steps = steps_of(contact.verification_steps, contact.customer_id)
    passed = [VerificationLevel(s["level"]) for s in steps if s.get("passed")]
    return max(passed, key=rank, default=VerificationLevel.NONE)


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
