"""Cases, their timelines, and the contacts on them: the core the desk's channels all share.

A case number is 10 digits with a Damm check digit (transaction numbers are 12), so a caller
can key either in and the IVR can tell which one it got. Services never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.kit import clock, ids
from walletdesk.kit.errors import DomainError
from walletdesk.notify.service import notify
from walletdesk.support import case_errors as _case_errors  # noqa: F401  (registers the codes)
from walletdesk.support.models import (
    Case,
    CaseEvent,
    CaseLink,
    CasePriority,
    CaseStatus,
    Contact,
)

CASE_NUMBER_LENGTH = 10


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
) -> Case:
    """A new case with its "created" timeline entry and any links (("transaction", number))."""
    now = clock.now()
    case = Case(
        number=_unused_number(session),
        customer_id=customer_id,
        requester_email=requester_email,
        type=type,
        priority=priority,
        status=CaseStatus.NEW,
        subject=subject,
        channel=channel,
        queue=queue,
        is_complaint=False,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    add_event(session, case, "created", actor=actor, body=subject, data={"channel": channel})
    for kind, ref in links:
        link(session, case, kind, ref)
    return case


def _unused_number(session: Session) -> str:
    while True:  # 9 * 10^8 numbers: a clash is rare, and checked rather than assumed away
        number = ids.new_number(CASE_NUMBER_LENGTH)
        if session.execute(select(Case.id).where(Case.number == number)).first() is None:
            return number


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
) -> CaseEvent:
    now = clock.now()
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
    case.updated_at = now
    session.add(event)
    session.flush()
    return event


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
) -> Contact:
    contact = Contact(
        case_id=case.id if case else None,
        customer_id=customer_id,
        channel=channel,
        direction=direction,
        agent_id=agent_id,
        origin=origin,
        verification_steps=[],
        started_at=clock.now(),
    )
    session.add(contact)
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
    session: Session, contact: Contact, *, summary: str, next_steps: str, actor: str
) -> Contact:
    """Close the contact and send the customer its record: inbox and email, with the case number.

    A contact never tied to a customer (an unverified caller who hung up) has no one to tell.
    """
    if contact.ended_at is not None:
        raise DomainError("contact_ended")
    contact.ended_at = clock.now()
    contact.summary, contact.next_steps = summary, next_steps
    case = session.get(Case, contact.case_id) if contact.case_id else None
    if case is not None:
        add_event(
            session,
            case,
            "contact_summary",
            actor=actor,
            body=summary,
            data={"channel": contact.channel, "next_steps": next_steps},
            contact_id=contact.id,
        )
    if contact.customer_id is not None and case is not None:
        notify(
            session,
            contact.customer_id,
            "contact_summary",
            {"case_number": case.number, "summary": summary, "next_steps": next_steps},
            channels=("inapp", "email"),
        )
        contact.summary_sent_at = contact.ended_at
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
