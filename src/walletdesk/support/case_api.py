"""Cases over HTTP: the customer's "contact support" (/v1/support) and the agents' desk (/v1/desk).

A customer sees only their own cases (anyone else's answers 404, as if it did not exist) and
only the customer's side of the timeline. The desk sees whole timelines, internal notes and
SLA state, but no account data beyond what the case itself holds: that is behind the caller
verification of the contact endpoints.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.http import db_of, language_of, run_idempotent, settings_of
from walletdesk.staff.api import require_staff
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support import cases, csat, macros
from walletdesk.support.cases import CaseDetail
from walletdesk.support.models import Case, CaseEvent, CasePriority, CaseStatus, CaseType
from walletdesk.wallet.api import CustomerId, Language

router = APIRouter(prefix="/v1/support", tags=["support"])
desk_router = APIRouter(prefix="/v1/desk", tags=["desk"])

DeskStaff = Annotated[StaffUser, Depends(require_staff(StaffRole.AGENT, StaffRole.SUPERVISOR))]
Supervisor = Annotated[StaffUser, Depends(require_staff(StaffRole.SUPERVISOR))]
CaseNumber = Annotated[str, Path(max_length=20, examples=["1234567890"])]
Text = Annotated[str, Field(min_length=1, max_length=5000)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
REPORT_DAYS = 30


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CaseIn(Strict):
    type: CaseType
    subject: str = Field(min_length=1, max_length=200)
    message: Text
    transaction_number: str | None = Field(default=None, max_length=20)

    @field_validator("subject")
    @classmethod
    def one_line(cls, subject: str) -> str:
        # The subject heads the reply emails: no line breaks there.
        return " ".join(subject.split())


class MessageIn(Strict):
    body: Text


class ReasonIn(Strict):
    reason: Reason


class RatingIn(Strict):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=csat.COMMENT_MAX_LENGTH)


class StatusIn(Strict):
    status: CaseStatus
    note: str | None = Field(
        default=None, max_length=2000, description="Shown to the customer with the change"
    )


class AssignIn(Strict):
    staff_id: int | None = Field(ge=1, description="The new owner; null puts it back in the queue")


class PriorityIn(Strict):
    priority: CasePriority


class NoteIn(Strict):
    body: Text


class ReplyIn(Strict):
    body: str | None = Field(default=None, min_length=1, max_length=5000)
    macro: str | None = Field(default=None, max_length=64, examples=["ask_transaction_number"])
    language: Literal["zh-CN", "en"] | None = Field(
        default=None, description="The macro's language; the customer's own by default"
    )
    values: dict[str, Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=10, description="Values for the macro's placeholders"
    )
    then: Literal["waiting_on_customer", "waiting_on_merchant", "resolved"] | None = Field(
        default=None, description="A status to move to after replying"
    )


# --- rendering ---------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def customer_case_out(case: Case) -> dict[str, Any]:
    return {
        "number": case.number,
        "type": case.type,
        "status": case.status,
        "subject": case.subject,
        "channel": case.channel,
        "is_complaint": case.is_complaint,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "resolved_at": _iso(case.resolved_at),
        "closed_at": _iso(case.closed_at),
    }


def customer_detail_out(detail: CaseDetail) -> dict[str, Any]:
    rating = detail.rating
    return {
        **customer_case_out(detail.case),
        "escalated_from": detail.escalated_from,
        "rating": {"score": rating.score, "comment": rating.comment} if rating else None,
        "timeline": [cases.customer_view(event) for event in detail.events],
    }


def desk_case_out(case: Case) -> dict[str, Any]:
    return {
        **customer_case_out(case),
        "priority": case.priority,
        "queue": case.queue,
        "owner_id": case.owner_id,
        "customer_id": case.customer_id,
        "sla": cases.sla_state(case),
    }


def desk_event_out(event: CaseEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _iso(event.created_at),
        "kind": event.kind,
        "actor": event.actor,
        "customer_visible": event.customer_visible,
        "contact_id": event.contact_id,
        "body": event.body,
        "data": event.data,
    }


def desk_detail_out(detail: CaseDetail) -> dict[str, Any]:
    rating = detail.rating
    return {
        **desk_case_out(detail.case),
        "escalated_from": detail.escalated_from,
        "links": [{"kind": link.kind, "ref": link.ref} for link in detail.links],
        "rating": {"score": rating.score, "comment": rating.comment} if rating else None,
        "timeline": [desk_event_out(event) for event in detail.events],
        "suggested_articles": [asdict(hit) for hit in detail.suggestions],
    }


# --- the customer ------------------------------------------------------------------------------


def _customer(customer_id: int) -> str:
    return f"customer:{customer_id}"


@router.post("/cases", status_code=201)
def contact_support(request: Request, body: CaseIn, customer_id: CustomerId) -> Response:
    """Contact support in the app: a case with your message (and the transaction it is about)."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        case = cases.open_customer_case(
            session,
            customer_id,
            type=body.type,
            subject=body.subject,
            message=body.message,
            transaction_number=body.transaction_number,
        )
        return 201, customer_detail_out(cases.case_detail(session, case, for_customer=True))

    return run_idempotent(request, _customer(customer_id), body, operation)


@router.get("/cases")
def my_cases(request: Request, customer_id: CustomerId) -> list[dict[str, Any]]:
    """Your cases, newest first."""
    with db_of(request).unit_of_work() as session:
        return [customer_case_out(case) for case in cases.customer_cases(session, customer_id)]


@router.get("/cases/{number}")
def my_case(request: Request, number: CaseNumber, customer_id: CustomerId) -> dict[str, Any]:
    """One of your cases and everything on its timeline that is for you."""
    with db_of(request).unit_of_work() as session:
        case = cases.find_customer_case(session, customer_id, number)
        return customer_detail_out(cases.case_detail(session, case, for_customer=True))


def _customer_operation(
    request: Request, number: str, customer_id: int, body: BaseModel, act: Any, status: int = 200
) -> Response:
    """Run `act(session, case)` on the customer's own case, idempotently; answer the case it
    leaves the customer on (a message to a closed case starts a new one)."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        case = cases.find_customer_case(session, customer_id, number, for_update=True)
        result = act(session, case)
        return status, customer_detail_out(cases.case_detail(session, result, for_customer=True))

    return run_idempotent(request, _customer(customer_id), body, operation)


@router.post("/cases/{number}/messages")
def write_message(
    request: Request, number: CaseNumber, body: MessageIn, customer_id: CustomerId
) -> Response:
    """Write on your case; a case waiting for you is open again. A closed case is final: the
    message starts a new case linked to it, which is what comes back."""
    return _customer_operation(
        request,
        number,
        customer_id,
        body,
        lambda s, case: cases.customer_message(s, case, customer_id, body.body),
    )


@router.post("/cases/{number}/reopen")
def reopen(
    request: Request, number: CaseNumber, body: ReasonIn, customer_id: CustomerId
) -> Response:
    """Not fixed after all: reopen a resolved case, saying why."""
    return _customer_operation(
        request,
        number,
        customer_id,
        body,
        lambda s, case: cases.change_status(
            s, case, CaseStatus.REOPENED, _customer(customer_id), body.reason
        ),
    )


@router.post("/cases/{number}/escalate", status_code=201)
def escalate(
    request: Request, number: CaseNumber, body: ReasonIn, customer_id: CustomerId
) -> Response:
    """Complain: a new case for a supervisor, with this case's record attached."""
    return _customer_operation(
        request,
        number,
        customer_id,
        body,
        lambda s, case: cases.escalate_to_complaint(s, case, _customer(customer_id), body.reason),
        status=201,
    )


@router.post("/cases/{number}/rating", status_code=201)
def rate(request: Request, number: CaseNumber, body: RatingIn, customer_id: CustomerId) -> Response:
    """Rate the help on a resolved case, 1 (poor) to 5 (excellent); once per case."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        rating = csat.rate_case(session, customer_id, number, body.score, body.comment)
        return 201, {"number": number, "score": rating.score, "comment": rating.comment}

    return run_idempotent(request, _customer(customer_id), body, operation)


@router.get("/timeline")
def my_timeline(request: Request, customer_id: CustomerId) -> list[dict[str, Any]]:
    """Everything on your side of all your cases, across phone, chat, email and app."""
    with db_of(request).unit_of_work() as session:
        return [
            {"case_number": number, **cases.customer_view(event)}
            for number, event in cases.customer_record(session, customer_id)
        ]


# --- the desk ----------------------------------------------------------------------------------


@desk_router.get("/cases")
def desk_cases(
    request: Request,
    staff: DeskStaff,
    status: CaseStatus | None = None,
    queue: Annotated[str | None, Query(max_length=32)] = None,
    owner: Annotated[str | None, Query(pattern=r"^(me|\d{1,18})$")] = None,
    type: CaseType | None = None,
    complaint: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """Cases, newest first: filter by status, queue, owner (`me` or a staff id), type."""
    owner_id = staff.id if owner == "me" else int(owner) if owner else None
    with db_of(request).unit_of_work() as session:
        found = cases.list_cases(
            session,
            status=status,
            queue=queue,
            owner_id=owner_id,
            type=type,
            complaint=complaint,
            limit=limit,
        )
        return [desk_case_out(case) for case in found]


@desk_router.get("/cases/{number}")
def desk_case(
    request: Request, number: CaseNumber, staff: DeskStaff, language: Language
) -> dict[str, Any]:
    """The whole case: timeline with internal notes, links, SLA state, suggested articles.
    Each look is audited: the case holds the customer's messages and personal details."""
    with db_of(request).unit_of_work() as session:
        case = cases.find_case(session, number)
        record(session, actor=staff.actor, action="desk.case_viewed", subject=f"case:{case.number}")
        return desk_detail_out(
            cases.case_detail(session, case, for_customer=False, language=language)
        )


def _desk_operation(
    request: Request, number: str, staff: StaffUser, body: BaseModel, act: Any
) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        case = cases.find_case(session, number, for_update=True)
        act(session, case)
        detail = cases.case_detail(session, case, for_customer=False, language=language_of(request))
        return 200, desk_detail_out(detail)

    return run_idempotent(request, staff.actor, body, operation)


@desk_router.post("/cases/{number}/status")
def set_status(request: Request, number: CaseNumber, body: StatusIn, staff: DeskStaff) -> Response:
    return _desk_operation(
        request,
        number,
        staff,
        body,
        lambda s, case: cases.change_status(s, case, body.status, staff.actor, body.note),
    )


@desk_router.post("/cases/{number}/assign")
def assign(request: Request, number: CaseNumber, body: AssignIn, staff: DeskStaff) -> Response:
    return _desk_operation(
        request,
        number,
        staff,
        body,
        lambda s, case: cases.assign(s, case, body.staff_id, staff.actor),
    )


@desk_router.post("/cases/{number}/priority")
def set_priority(
    request: Request, number: CaseNumber, body: PriorityIn, staff: DeskStaff
) -> Response:
    """A new priority; the SLA deadlines follow its policy."""
    return _desk_operation(
        request,
        number,
        staff,
        body,
        lambda s, case: cases.set_priority(s, case, body.priority, staff.actor),
    )


@desk_router.post("/cases/{number}/notes")
def add_note(request: Request, number: CaseNumber, body: NoteIn, staff: DeskStaff) -> Response:
    """An internal note: never shown to the customer."""
    return _desk_operation(
        request,
        number,
        staff,
        body,
        lambda s, case: cases.add_note(s, case, body.body, staff.actor),
    )


@desk_router.post("/cases/{number}/replies")
def reply(request: Request, number: CaseNumber, body: ReplyIn, staff: DeskStaff) -> Response:
    """Reply to the customer (typed, or a macro filled in), then optionally change the status.

    The customer gets it in the app and by email, with the case number in the subject.
    """
    return _desk_operation(
        request,
        number,
        staff,
        body,
        lambda s, case: cases.desk_reply(
            s,
            case,
            staff,
            body=body.body,
            macro=body.macro,
            language=body.language,
            values=body.values,
            then=body.then,
        ),
    )


@desk_router.get("/macros")
def list_macros(
    _staff: DeskStaff, language: Annotated[Literal["zh-CN", "en"] | None, Query()] = None
) -> list[dict[str, Any]]:
    """Canned replies with their placeholders, in one language or both."""
    languages = [language] if language else ["zh-CN", "en"]
    return [
        {
            "slug": macro.slug,
            "placeholders": macro.placeholders(),
            **{lang: {"title": macro.title(lang), "text": macro.text(lang)} for lang in languages},
        }
        for macro in macros.list_macros()
    ]


@desk_router.get("/reports/csat")
def csat_report(
    request: Request,
    _staff: Supervisor,
    group_by: Literal["agent", "queue", "case_type"] = "agent",
    since: date | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """Ratings per agent, queue or case type between two local dates (both included; by
    default the last 30 days): count, average and the share satisfied (4 or 5)."""
    zone = ZoneInfo(settings_of(request).timezone)
    today = clock.now().astimezone(zone).date()
    first, last = since or today - timedelta(days=REPORT_DAYS - 1), until or today
    start, end = _day_start(first, zone), _day_start(last + timedelta(days=1), zone)
    with db_of(request).unit_of_work() as session:
        report = csat.csat_report(session, start, end, group_by)
    return {
        "group_by": report.group_by,
        "since": first.isoformat(),
        "until": last.isoformat(),
        "overall": asdict(report.overall),
        "groups": [asdict(group) for group in report.groups],
    }


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    # From noon, which every day has, whatever the clocks do at midnight.
    return clock.start_of_local_day(datetime.combine(day, time(12), zone), zone)


@desk_router.get("/sla/breaches")
def sla_breaches(
    request: Request,
    _staff: Supervisor,
    include_finished: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Cases that missed a target (latest first); by default only those not yet resolved."""
    with db_of(request).unit_of_work() as session:
        found = cases.sla_breaches(session, include_finished=include_finished, limit=limit)
        return [desk_case_out(case) for case in found]
