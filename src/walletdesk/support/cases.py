"""Cases, their timelines, and the contacts on them: the core the desk's channels all share.

A case number is 10 digits with a Damm check digit (transaction numbers are 12), so a caller
can key either in and the IVR can tell which one it got. Services never commit.

A case moves through the status machine in case_rules; each change is on its timeline (the
customer sees status changes and replies, never internal notes) and in the audit log. SLA
deadlines come from sla_policies.yaml when the case opens; the resolution clock stops while
the case waits on the customer (or sits resolved) and the deadline moves later by the business
time it stood still. The first response is the first thing staff put on the customer's side
of the timeline: a reply, a call's summary, an action, or a case an agent opened mid-call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.config import get_settings
from walletdesk.kit import clock, ids
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.notify.service import notify
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support import case_errors as _case_errors  # noqa: F401  (registers the codes)
from walletdesk.support import kb_service, sla
from walletdesk.support.case_rules import FINISHED, check_transition, may_escalate
from walletdesk.support.hours import WeeklySchedule
from walletdesk.support.kb import Hit
from walletdesk.support.macros import render_macro
from walletdesk.support.models import (
    Case,
    CaseEvent,
    CaseLink,
    CasePriority,
    CaseStatus,
    Contact,
    CsatRating,
    VerificationLevel,
)
from walletdesk.support.service import get_schedule
from walletdesk.wallet.models import Customer
from walletdesk.wallet.service.history import get_by_number

CASE_NUMBER_LENGTH = 10
COMPLAINTS_QUEUE = "complaints"
# Bookkeeping on the customer's side of the timeline that is not an answer to them.
NOT_A_RESPONSE = frozenset({"status", "assigned", "priority", "escalated", "follow_up"})
# The resolution clock stands still while the customer has the case in hand.
PAUSED = frozenset({CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED})
OWNER_ROLES = frozenset({StaffRole.AGENT, StaffRole.SUPERVISOR})
# What of an event's data the customer sees (the rest may be internal detail).
CUSTOMER_DATA_KEYS = (
    "channel",
    "next_steps",
    "from",
    "to",
    "score",
    "case_number",
    "escalated_from",
    "complaint_number",
    "record",
)


def open_case(
    session: Session,
    *,
    customer_id: int | None,
    type: str,
    subject: str,
    channel: str,
    actor: str,
    priority: str = CasePriority.NORMAL,
    queue: str = "general",
    requester_email: str | None = None,
    links: Iterable[tuple[str, str]] = (),
    number: str | None = None,
    at: datetime | None = None,
) -> Case:
    """A new case with its SLA deadlines, its "created" timeline entry and any links
    (("transaction", number)). `number` fixes the case number (demo data); normally random.
    `at` is when it was opened (by default now)."""
    case = _insert_case(
        session,
        number=number,
        at=at,
        customer_id=customer_id,
        requester_email=requester_email,
        type=type,
        priority=priority,
        subject=subject,
        channel=channel,
        queue=queue,
    )
    # At the case's own creation time, which leaves its updated_at as it is (no UPDATE). Left
    # to the next flush: with the caller's next timeline entry it is one INSERT.
    add_event(
        session,
        case,
        "created",
        actor=actor,
        body=subject,
        data={"channel": channel},
        at=case.created_at,
        flush=False,
    )
    for kind, ref in links:
        link(session, case, kind, ref)
    return case


def _insert_case(
    session: Session, *, number: str | None, at: datetime | None = None, **fields: Any
) -> Case:
    now = at or clock.now()
    fields.setdefault("is_complaint", False)
    case = Case(
        number=_chosen_number(session, number) if number else _unused_number(session),
        status=CaseStatus.NEW,
        created_at=now,
        updated_at=now,
        **fields,
    )
    _start_sla(session, case)
    session.add(case)
    session.flush()
    return case


def _unused_number(session: Session) -> str:
    while True:  # 9 * 10^8 numbers: a clash is rare, and checked rather than assumed away
        number = ids.new_number(CASE_NUMBER_LENGTH)
        if not _number_taken(session, number):
            return number


def _chosen_number(session: Session, number: str) -> str:
    if not ids.is_valid_number(number, CASE_NUMBER_LENGTH) or _number_taken(session, number):
        raise ValueError(f"{number} is not a free case number with a valid check digit")
    return number


def _number_taken(session: Session, number: str) -> bool:
    return session.execute(select(Case.id).where(Case.number == number)).first() is not None


def find_case(session: Session, number: str, *, for_update: bool = False) -> Case:
    """The case with this number (spaces and dashes ignored), or case_not_found."""
    digits = ids.normalize_number(number)
    query = select(Case).where(Case.number == digits)
    if for_update:
        query = query.with_for_update()
    case = None
    if ids.is_valid_number(digits, CASE_NUMBER_LENGTH):
        case = session.execute(query).scalar_one_or_none()
    if case is None:
        raise DomainError("case_not_found", number=number)
    return case


def add_event(
    session: Session,
    case: Case,
    kind: str,
    *,
    actor: str,
    body: str | None = None,
    data: dict[str, Any] | None = None,
    contact_id: int | None = None,
    customer_visible: bool = True,
    at: datetime | None = None,
    flush: bool = True,
) -> CaseEvent:
    """An entry on the case's timeline, at `at` (by default now); the case is updated then
    (its updated time never goes back). With `flush=False` the entry is written with the next
    flush (any query, the commit), together with whatever is added until then."""
    now = at or clock.now()
    event = CaseEvent(
        case_id=case.id,
        contact_id=contact_id,
        kind=kind,
        actor=actor,
        customer_visible=customer_visible,
        body=body,
        data=data or {},
        created_at=now,
    )
    case.updated_at = max(as_utc(case.updated_at), now) if case.updated_at else now
    if _is_first_response(case, kind, actor, customer_visible):
        case.first_response_at = now
    session.add(event)
    if flush:
        session.flush()
    return event


def _is_first_response(case: Case, kind: str, actor: str, customer_visible: bool) -> bool:
    return (
        case.first_response_at is None
        and customer_visible
        and actor.startswith("staff:")
        and kind not in NOT_A_RESPONSE
    )


def link(session: Session, case: Case, kind: str, ref: str) -> CaseLink:
    """Link the case to a transaction, dispute, risk alert or case; linking twice is a no-op."""
    existing = session.execute(
        select(CaseLink).where(
            CaseLink.case_id == case.id, CaseLink.kind == kind, CaseLink.ref == ref
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    row = CaseLink(case_id=case.id, kind=kind, ref=ref, created_at=clock.now())
    session.add(row)
    session.flush()
    return row


def links_of(session: Session, case: Case) -> list[CaseLink]:
    return list(
        session.execute(
            select(CaseLink).where(CaseLink.case_id == case.id).order_by(CaseLink.id)
        ).scalars()
    )


def cases_linked_to(session: Session, kind: str, ref: str) -> list[Case]:
    return list(
        session.execute(
            select(Case)
            .join(CaseLink, CaseLink.case_id == Case.id)
            .where(CaseLink.kind == kind, CaseLink.ref == ref)
            .order_by(Case.id)
        ).scalars()
    )


def open_contact(
    session: Session,
    *,
    channel: str,
    customer_id: int | None = None,
    case: Case | None = None,
    origin: str | None = None,
    agent_id: int | None = None,
    direction: str = "inbound",
    flush: bool = True,
) -> Contact:
    """A new contact, written at once (it has its id); with `flush=False` at the session's next
    flush, for a caller who fills it in first, so that its row is written once."""
    contact = Contact(
        case_id=case.id if case else None,
        customer_id=customer_id,
        channel=channel,
        direction=direction,
        agent_id=agent_id,
        origin=origin,
        verification_level=VerificationLevel.NONE,  # now, not at the flush: it may be read first
        verification_steps=[],
        started_at=clock.now(),
    )
    session.add(contact)
    if flush:
        session.flush()
    return contact


def get_contact(session: Session, contact_id: int, *, for_update: bool = False) -> Contact:
    query = select(Contact).where(Contact.id == contact_id)
    if for_update:
        query = query.with_for_update()
    contact = session.execute(query).scalar_one_or_none()
    if contact is None:
        raise DomainError("contact_not_found", contact_id=contact_id)
    return contact


def end_contact(
    session: Session,
    contact: Contact,
    *,
    summary: str,
    next_steps: str,
    actor: str,
    at: datetime | None = None,
) -> Contact:
    """Close the contact at `at` (by default now) and send the customer its record: inbox and
    email, with the case number.

    A contact never tied to a customer (an unverified caller who hung up) has no one to tell.
    """
    if contact.ended_at is not None:
        raise DomainError("contact_ended")
    contact.ended_at = at or clock.now()
    contact.summary, contact.next_steps = summary, next_steps
    case = session.get(Case, contact.case_id) if contact.case_id else None
    if contact.customer_id is not None and case is not None:
        contact.summary_sent_at = contact.ended_at  # noted with the rest: one write of the row
    if case is not None:
        add_event(
            session,
            case,
            "contact_summary",
            actor=actor,
            body=summary,
            data={"channel": contact.channel, "next_steps": next_steps},
            contact_id=contact.id,
            at=contact.ended_at,
        )
        if contact.customer_id is not None:
            notify(
                session,
                contact.customer_id,
                "contact_summary",
                {"case_number": case.number, "summary": summary, "next_steps": next_steps},
                channels=("inapp", "email"),
            )
    return contact


def timeline(session: Session, case: Case, *, for_customer: bool) -> list[CaseEvent]:
    query = select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
    if for_customer:
        query = query.where(CaseEvent.customer_visible.is_(True))
    return list(session.execute(query).scalars())


def customer_timeline(session: Session, customer_id: int, *, for_customer: bool) -> list[CaseEvent]:
    """Every case event of the customer's, across channels, oldest first."""
    query = (
        select(CaseEvent)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(Case.customer_id == customer_id)
        .order_by(CaseEvent.created_at, CaseEvent.id)
    )
    if for_customer:
        query = query.where(CaseEvent.customer_visible.is_(True))
    return list(session.execute(query).scalars())


# --- SLA -------------------------------------------------------------------------------------


def policy_of(case: Case) -> sla.Policy:
    return sla.policy_for(
        sla.shipped_policies(),
        case_type=case.type,
        priority=case.priority,
        is_complaint=case.is_complaint,
    )


def _schedule(session: Session, policy: sla.Policy) -> WeeklySchedule:
    if policy.business_hours is None:
        return sla.AROUND_THE_CLOCK
    return get_schedule(session, policy.business_hours)


def _start_sla(session: Session, case: Case) -> None:
    policy = policy_of(case)
    due = sla.deadlines(_schedule(session, policy), policy, case.created_at)
    case.first_response_due, case.resolution_due = due.first_response, due.resolution


def _resume_sla(session: Session, case: Case, now: datetime) -> None:
    schedule = _schedule(session, policy_of(case))
    paused_at = as_utc(case.sla_paused_at)
    case.resolution_due = sla.resumed_due(schedule, _utc(case.resolution_due), paused_at, now)
    case.sla_paused_at = None


def sla_state(case: Case, now: datetime | None = None) -> dict[str, Any]:
    """Where the case stands against its targets, for the desk."""
    now = now or clock.now()
    policy = policy_of(case)
    paused = case.sla_paused_at is not None and case.status not in FINISHED
    return {
        "policy": policy.name,
        "business_hours": policy.business_hours or sla.AROUND_THE_CLOCK_NAME,
        "first_response": {
            "due": _iso(case.first_response_due),
            "at": _iso(case.first_response_at),
            "breached_at": _iso(case.first_response_breached_at),
            "state": sla.target_state(
                _utc(case.first_response_due),
                _utc(case.first_response_at),
                case.first_response_breached_at,
                now,
            ),
        },
        "resolution": {
            "due": _iso(case.resolution_due),
            "at": _iso(case.resolved_at),
            "breached_at": _iso(case.resolution_breached_at),
            "paused_since": _iso(case.sla_paused_at) if paused else None,
            "state": sla.target_state(
                _utc(case.resolution_due),
                _utc(case.resolved_at),
                case.resolution_breached_at,
                now,
                paused=paused,
            ),
        },
    }


def sweep_sla(session: Session) -> list[Case]:
    """Mark every target missed since the last sweep, once each; the cases marked.

    Each breach goes on the case's internal timeline and into the audit log; supervisors list
    them with `sla_breaches`. Concurrent sweepers skip each other's rows (PostgreSQL).
    """
    now = clock.now()
    working = Case.status.not_in(list(FINISHED))
    first_response = select(Case).where(
        working,
        Case.first_response_at.is_(None),
        Case.first_response_breached_at.is_(None),
        Case.first_response_due < now,
    )
    resolution = select(Case).where(
        working,
        Case.sla_paused_at.is_(None),
        Case.resolution_breached_at.is_(None),
        Case.resolution_due < now,
    )
    marked: dict[int, Case] = {}
    for target, query in (("first_response", first_response), ("resolution", resolution)):
        locked = query.order_by(Case.id).with_for_update(skip_locked=True)
        for case in session.execute(locked).scalars():
            _mark_breach(session, case, target, now)
            marked[case.id] = case
    return list(marked.values())


def _mark_breach(session: Session, case: Case, target: str, now: datetime) -> None:
    due = case.first_response_due if target == "first_response" else case.resolution_due
    setattr(case, f"{target}_breached_at", now)
    detail = {"target": target, "due": _iso(due)}
    add_event(session, case, "sla_breach", actor="system", data=detail, customer_visible=False)
    record(
        session, actor="system", action="case.sla_breached", subject=_subject(case), detail=detail
    )


def sla_breaches(
    session: Session, *, include_finished: bool = False, limit: int = 100
) -> list[Case]:
    """Cases that missed a target, the latest breach first; by default only those still open."""
    query = select(Case).where(
        or_(Case.first_response_breached_at.is_not(None), Case.resolution_breached_at.is_not(None))
    )
    if not include_finished:
        query = query.where(Case.status.not_in(list(FINISHED)))
    latest = func.coalesce(Case.resolution_breached_at, Case.first_response_breached_at)
    return list(
        session.execute(query.order_by(latest.desc(), Case.id.desc()).limit(limit)).scalars()
    )


# --- the status machine and the desk's changes -----------------------------------------------


def change_status(
    session: Session,
    case: Case,
    to: str,
    actor: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> Case:
    """Move the case to `to` at `at` (by default now; case_transition_invalid if the machine
    forbids it).

    The change, with `note` as its explanation, is on the customer's timeline. Resolving asks
    the customer to rate the help.
    """
    check_transition(case.status, to)
    now, previous = at or clock.now(), case.status
    if previous in PAUSED and case.sla_paused_at is not None:
        _resume_sla(session, case, now)
    if to in PAUSED:
        case.sla_paused_at = now
    if to == CaseStatus.RESOLVED:
        case.resolved_at = now
    elif to == CaseStatus.REOPENED:
        case.resolved_at = None
    elif to == CaseStatus.CLOSED:
        case.closed_at = now
    case.status = to
    change = {"from": previous, "to": to}
    add_event(session, case, "status", actor=actor, body=note, data=change, at=now)
    record(
        session, actor=actor, action="case.status_changed", subject=_subject(case), detail=change
    )
    if to == CaseStatus.RESOLVED and case.customer_id and rating_of(session, case) is None:
        notify(
            session,
            case.customer_id,
            "csat_request",
            {"case_number": case.number},
            channels=("inapp", "email"),
        )
    return case


def assign(session: Session, case: Case, staff_id: int | None, actor: str) -> Case:
    """Give the case to an active agent or supervisor (None: back to the queue)."""
    owner = session.get(StaffUser, staff_id) if staff_id is not None else None
    roles = {StaffRole.SUPERVISOR} if case.is_complaint else OWNER_ROLES
    if staff_id is not None and (
        owner is None or owner.role not in roles or owner.disabled_at is not None
    ):
        raise DomainError("case_assignee_invalid", staff_id=staff_id)
    case.owner_id = staff_id
    detail = {"owner_id": staff_id, "owner": owner.display_name if owner else None}
    add_event(session, case, "assigned", actor=actor, data=detail, customer_visible=False)
    record(session, actor=actor, action="case.assigned", subject=_subject(case), detail=detail)
    return case


def set_priority(session: Session, case: Case, priority: str, actor: str) -> Case:
    """Change the priority; the deadlines follow the new policy, counted from the opening, with
    the time already spent waiting on the customer kept."""
    if priority not in set(CasePriority):
        raise DomainError("case_priority_invalid", priority=priority)
    old_policy = policy_of(case)
    opened_at = as_utc(case.created_at)
    paused = sla.paused_so_far(
        _schedule(session, old_policy), opened_at, _utc(case.resolution_due), old_policy.resolution
    )
    change = {"from": case.priority, "to": priority}
    case.priority = priority
    policy = policy_of(case)
    schedule = _schedule(session, policy)
    due = sla.deadlines(schedule, policy, opened_at)
    if case.first_response_at is None:
        case.first_response_due = due.first_response
    if due.resolution is not None:
        case.resolution_due = sla.add_business_time(schedule, due.resolution, paused)
    add_event(session, case, "priority", actor=actor, data=change, customer_visible=False)
    record(
        session, actor=actor, action="case.priority_changed", subject=_subject(case), detail=change
    )
    return case


def add_note(session: Session, case: Case, body: str, actor: str) -> CaseEvent:
    """An internal note: staff only, never shown to the customer."""
    event = add_event(session, case, "note", actor=actor, body=body, customer_visible=False)
    record(session, actor=actor, action="case.note_added", subject=_subject(case))
    return event


def reply(
    session: Session, case: Case, body: str, actor: str, *, contact_id: int | None = None
) -> CaseEvent:
    """A reply to the customer: on their timeline, in their inbox and by email, threaded by the
    case number in the subject. Replying to a new case opens it."""
    if case.status == CaseStatus.CLOSED:
        raise DomainError("case_closed", number=case.number)
    if case.status == CaseStatus.NEW:
        change_status(session, case, CaseStatus.OPEN, actor)
    event = add_event(session, case, "message_out", actor=actor, body=body, contact_id=contact_id)
    if case.customer_id is not None:
        notify(
            session,
            case.customer_id,
            "case_reply",
            {"case_number": case.number, "subject": case.subject, "reply": body},
            channels=("inapp", "email"),
        )
    record(session, actor=actor, action="case.replied", subject=_subject(case))
    return event


def desk_reply(
    session: Session,
    case: Case,
    staff: StaffUser,
    *,
    body: str | None = None,
    macro: str | None = None,
    language: str | None = None,
    values: Mapping[str, str] | None = None,
    then: str | None = None,
) -> CaseEvent:
    """An agent's reply, typed (`body`) or from a macro in `language` (by default the
    customer's), then optionally a status change (`then`, e.g. waiting_on_customer)."""
    if (body is None) == (macro is None):
        raise DomainError("reply_text_required")
    if macro is not None:
        filled = {**(values or {}), "case_number": case.number, "agent_name": staff.display_name}
        body = render_macro(macro, language or _language_of(session, case), **filled)
    assert body is not None
    event = reply(session, case, body, staff.actor)
    if then is not None:
        change_status(session, case, then, staff.actor)
    return event


def _language_of(session: Session, case: Case) -> str:
    customer = session.get(Customer, case.customer_id) if case.customer_id else None
    return customer.language if customer else get_settings().default_language


def close_resolved(session: Session) -> list[Case]:
    """Close the cases resolved longer ago than settings.case_close_after_days."""
    cutoff = clock.now() - timedelta(days=get_settings().case_close_after_days)
    query = select(Case).where(Case.status == CaseStatus.RESOLVED, Case.resolved_at <= cutoff)
    cases = list(
        session.execute(query.order_by(Case.id).with_for_update(skip_locked=True)).scalars()
    )
    for case in cases:
        change_status(session, case, CaseStatus.CLOSED, "system")
    return cases


def list_cases(
    session: Session,
    *,
    status: str | None = None,
    queue: str | None = None,
    owner_id: int | None = None,
    type: str | None = None,
    complaint: bool | None = None,
    limit: int = 50,
) -> list[Case]:
    """The desk's case list, newest first, filtered by whatever is given."""
    query = select(Case)
    for column, value in (
        (Case.status, status),
        (Case.queue, queue),
        (Case.owner_id, owner_id),
        (Case.type, type),
        (Case.is_complaint, complaint),
    ):
        if value is not None:
            query = query.where(column == value)
    return list(session.execute(query.order_by(Case.id.desc()).limit(limit)).scalars())


def suggested_articles(session: Session, case: Case, language: str) -> list[Hit]:
    """Help articles an agent may point the customer to, from the subject and first message."""
    first_message = session.execute(
        select(CaseEvent.body)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == "message_in")
        .order_by(CaseEvent.id)
        .limit(1)
    ).scalar_one_or_none()
    return kb_service.suggest_for(f"{case.subject} {first_message or ''}", language)


@dataclass(frozen=True, slots=True)
class CaseDetail:
    case: Case
    events: list[CaseEvent]
    links: list[CaseLink]
    escalated_from: str | None  # the number of the case a complaint is about
    rating: CsatRating | None
    suggestions: list[Hit]


def case_detail(
    session: Session, case: Case, *, for_customer: bool, language: str | None = None
) -> CaseDetail:
    """Everything shown about one case: the customer's side of the timeline, or for the desk
    all of it with the articles suggested in `language`."""
    original = session.get(Case, case.escalated_from_id) if case.escalated_from_id else None
    return CaseDetail(
        case=case,
        events=timeline(session, case, for_customer=for_customer),
        links=links_of(session, case),
        escalated_from=original.number if original else None,
        rating=rating_of(session, case),
        suggestions=[] if for_customer else suggested_articles(session, case, language or "en"),
    )


def rating_of(session: Session, case: Case) -> CsatRating | None:
    query = select(CsatRating).where(CsatRating.case_id == case.id)
    return session.execute(query).scalar_one_or_none()


# --- the customer's side ---------------------------------------------------------------------


def find_customer_case(
    session: Session, customer_id: int, number: str, *, for_update: bool = False
) -> Case:
    """The customer's own case; someone else's is case_not_found, as if it did not exist."""
    case = find_case(session, number, for_update=for_update)
    if case.customer_id != customer_id:
        raise DomainError("case_not_found", number=number)
    return case


def customer_cases(session: Session, customer_id: int) -> list[Case]:
    query = select(Case).where(Case.customer_id == customer_id).order_by(Case.id.desc())
    return list(session.execute(query).scalars())


def open_customer_case(
    session: Session,
    customer_id: int,
    *,
    type: str,
    subject: str,
    message: str,
    transaction_number: str | None = None,
) -> Case:
    """ "Contact support" in the app: a case with the customer's message, linked to their own
    transaction when they name one (someone else's is transaction_not_found)."""
    links = []
    if transaction_number:
        links.append(
            ("transaction", get_by_number(session, customer_id, transaction_number).number)
        )
    actor = f"customer:{customer_id}"
    case = open_case(
        session,
        customer_id=customer_id,
        type=type,
        subject=subject,
        channel="in_app",
        actor=actor,
        links=links,
    )
    _message_in(session, case, customer_id, message, channel="in_app")
    return case


def customer_message(
    session: Session, case: Case, customer_id: int, body: str, *, channel: str = "in_app"
) -> Case:
    """The customer writes on their case; the case it landed on (a new one if it was closed).

    A case waiting on the customer is open again.
    """
    target = case_for_new_contact(session, case, channel=channel, actor=f"customer:{customer_id}")
    _message_in(session, target, customer_id, body, channel=channel)
    if target.status == CaseStatus.WAITING_ON_CUSTOMER:
        change_status(session, target, CaseStatus.OPEN, f"customer:{customer_id}")
    return target


def _message_in(session: Session, case: Case, customer_id: int, body: str, *, channel: str) -> None:
    # A written message is a whole contact in itself: it starts and ends at once.
    contact = open_contact(session, channel=channel, customer_id=customer_id, case=case)
    contact.ended_at = contact.started_at
    actor = f"customer:{customer_id}"
    add_event(session, case, "message_in", actor=actor, body=body, contact_id=contact.id)


def case_for_new_contact(session: Session, case: Case, *, channel: str, actor: str) -> Case:
    """Where a new contact about `case` belongs: the case itself, or, when it is closed, a new
    case linked to it both ways (closed is final)."""
    if case.status != CaseStatus.CLOSED:
        return case
    follow_up = open_case(
        session,
        customer_id=case.customer_id,
        type=case.type,
        subject=case.subject,
        channel=channel,
        actor=actor,
        priority=case.priority,
        queue=case.queue,
        requester_email=case.requester_email,
        links=[("case", case.number)],
    )
    link(session, case, "case", follow_up.number)
    add_event(session, case, "follow_up", actor="system", data={"case_number": follow_up.number})
    return follow_up


def _least_busy_supervisor(session: Session) -> int | None:
    """Complaints go to a supervisor: the active one with the fewest unresolved complaints."""
    open_complaints = (
        select(func.count(Case.id))
        .where(
            Case.owner_id == StaffUser.id,
            Case.is_complaint.is_(True),
            Case.status.not_in((CaseStatus.RESOLVED, CaseStatus.CLOSED)),
        )
        .scalar_subquery()
    )
    return session.execute(
        select(StaffUser.id)
        .where(StaffUser.role == StaffRole.SUPERVISOR, StaffUser.disabled_at.is_(None))
        .order_by(open_complaints, StaffUser.id)
        .limit(1)
    ).scalar_one_or_none()


def escalate_to_complaint(
    session: Session, case: Case, actor: str, reason: str, *, channel: str = "in_app"
) -> Case:
    """The customer's complaint about `case`: a new high-priority case in the complaints queue,
    owned by a supervisor, with the complaint SLA, carrying the case's customer-visible record
    in its first entry.

    Only the case's own customer may complain, once per case, and only when the case was
    resolved (or reopened after that) or has been open for settings.complaint_after_days.
    """
    if case.customer_id is None or actor != f"customer:{case.customer_id}":
        raise DomainError("forbidden")
    days = get_settings().complaint_after_days
    allowed = may_escalate(case.status, as_utc(case.created_at), clock.now(), timedelta(days=days))
    if case.is_complaint or not allowed:
        raise DomainError("complaint_not_allowed", number=case.number, days=days)
    earlier = session.execute(
        select(Case.number).where(Case.escalated_from_id == case.id)
    ).scalar_one_or_none()
    if earlier is not None:
        raise DomainError("complaint_exists", number=case.number, complaint_number=earlier)
    complaint = _insert_case(
        session,
        number=None,
        customer_id=case.customer_id,
        requester_email=case.requester_email,
        type=case.type,
        priority=CasePriority.HIGH,
        subject=case.subject,
        channel=channel,
        queue=COMPLAINTS_QUEUE,
        is_complaint=True,
        escalated_from_id=case.id,
    )
    complaint.owner_id = _least_busy_supervisor(session)
    attached = [customer_view(event) for event in timeline(session, case, for_customer=True)]
    data = {"channel": channel, "escalated_from": case.number, "record": attached}
    add_event(session, complaint, "created", actor=actor, body=reason, data=data)
    link(session, complaint, "case", case.number)
    link(session, case, "case", complaint.number)
    add_event(session, case, "escalated", actor=actor, data={"complaint_number": complaint.number})
    notify(
        session,
        case.customer_id,
        "complaint_opened",
        {
            "case_number": complaint.number,
            "original_number": case.number,
            "when": _iso(complaint.first_response_due),
        },
        channels=("inapp", "email"),
    )
    record(
        session,
        actor=actor,
        action="case.complaint_opened",
        subject=_subject(complaint),
        detail={"escalated_from": case.number},
    )
    return complaint


def customer_record(session: Session, customer_id: int) -> list[tuple[str, CaseEvent]]:
    """(case number, entry) for everything on the customer's side of all their cases, across
    channels, oldest first."""
    query = (
        select(Case.number, CaseEvent)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(Case.customer_id == customer_id, CaseEvent.customer_visible.is_(True))
        .order_by(CaseEvent.created_at, CaseEvent.id)
    )
    return [(number, event) for number, event in session.execute(query)]


def customer_view(event: CaseEvent) -> dict[str, Any]:
    """A timeline entry as the customer sees it: who (customer, staff or system), never which
    staff member, and only the data meant for them."""
    return {
        "at": _iso(event.created_at),
        "kind": event.kind,
        "by": event.actor.split(":", 1)[0] if ":" in event.actor else "system",
        "body": event.body,
        "data": {key: event.data[key] for key in CUSTOMER_DATA_KEYS if key in (event.data or {})},
    }


def _subject(case: Case) -> str:
    return f"case:{case.number}"


def _utc(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None
