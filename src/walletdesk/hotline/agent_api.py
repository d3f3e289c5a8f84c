"""The agent's side of the hotline: presence, the live queues, offers, the call itself, and
the supervisor's metrics and forecast; plus /metrics for Prometheus.

A console polls GET /v1/desk/queues and GET /v1/desk/calls/offer (every second or two): each
poll also moves the queues, so offers lapse and wrap-ups end on time without a timer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from walletdesk.hotline import metrics, queue
from walletdesk.hotline.estimate import EstimatedWait, announcement_minutes
from walletdesk.hotline.models import AgentPresence, QueueEntry
from walletdesk.kit.clock import as_utc
from walletdesk.kit.http import RowId, db_of, language_of, run_idempotent
from walletdesk.staff.api import require_staff
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support.desk_api import account_out
from walletdesk.wallet.rules import mask_recipient

router = APIRouter(tags=["hotline desk"])

Agent = Annotated[StaffUser, Depends(require_staff(StaffRole.AGENT, StaffRole.SUPERVISOR))]
Supervisor = Annotated[StaffUser, Depends(require_staff(StaffRole.SUPERVISOR))]
Language = Annotated[str, Depends(language_of)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PresenceIn(In):
    state: Literal["available", "away", "offline"]


class TransferIn(In):
    queue: str | None = Field(default=None, max_length=32)
    supervisor: bool = Field(default=False, description="To any supervisor instead of a queue")


class NoteIn(In):
    text: str = Field(min_length=1, max_length=4000)


class EndIn(In):
    disposition: str = Field(min_length=1, max_length=64, description="resolved, escalated, ...")


# --- shapes -------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def presence_out(presence: AgentPresence) -> dict[str, Any]:
    return {
        "state": presence.state,
        "since": _iso(presence.state_since),
        "wrap_up_until": _iso(presence.wrap_up_until),
        "offered_entry_id": presence.current_entry_id if presence.state == "available" else None,
        "current_entry_id": presence.current_entry_id,
        "calls_taken": presence.calls_taken,
    }


def estimate_out(estimate: EstimatedWait) -> dict[str, Any]:
    minutes, more_than = announcement_minutes(estimate)
    finite = estimate.seconds != float("inf")
    return {
        "seconds": round(estimate.seconds) if finite else None,
        "announce_minutes": minutes,
        "more_than": more_than,
        "uncertain": estimate.uncertain,
    }


def entry_out(entry: QueueEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "call_id": entry.call_id,
        "queue": entry.queue,
        "status": entry.status,
        "priority": entry.priority,
        "skills": entry.skills,
        "entered_at": _iso(entry.entered_at),
        "callback": entry.callback_requested_at is not None,
        "callback_number": mask_recipient(entry.callback_number) if entry.callback_number else None,
        "callback_attempts": entry.callback_attempts,
        "agent_id": entry.agent_id,
        "offer_expires_at": _iso(entry.offer_expires_at),
        "answered_at": _iso(entry.answered_at),
        "ended_at": _iso(entry.ended_at),
    }


def queue_out(view: queue.QueueView) -> dict[str, Any]:
    return {
        "queue": view.config.name,
        "waiting": view.waiting,
        "booked_callbacks": view.booked,
        "oldest_wait_seconds": round(view.oldest_wait_seconds),
        "entries": [
            {
                "entry_id": item.entry.id,
                "position": item.position,
                "priority": item.entry.priority,
                "status": item.entry.status,
                "waited_seconds": round(item.waited_seconds),
                "callback": item.entry.callback_requested_at is not None,
                "offered_to": item.entry.agent_id,
            }
            for item in view.entries
        ],
    }


def context_out(context: queue.CallContext, language: str) -> dict[str, Any]:
    call = context.call
    return {
        "entry": entry_out(context.entry),
        "call": {
            "id": call.id,
            "from": mask_recipient(call.from_number),
            "language": call.language,
            "verification": call.verification,
            "verification_methods": context.verification_methods,
            "caller_id_match": context.caller_id_match,
            "path": call.path,
            "actions": call.actions,
            "contact_id": call.contact_id,
        },
        # Only when the IVR verified the caller strongly; until then the agent verifies them
        # on the contact (/v1/desk/contacts/{contact_id}/...).
        "account": account_out(context.account, language) if context.account else None,
    }


def tally_out(tally: metrics.Tally) -> dict[str, Any]:
    def rounded(value: float | None, digits: int = 1) -> float | None:
        return round(value, digits) if value is not None else None

    return {
        "offered": tally.offered,
        "answered": tally.answered,
        "abandoned": tally.abandoned,
        "abandon_rate": rounded(tally.abandon_rate, 4),
        "asa_seconds": rounded(tally.asa_seconds),
        "aht_seconds": rounded(tally.aht_seconds),
        "service_level": rounded(tally.service_level, 4),
        "callbacks_requested": tally.callbacks_requested,
        "callbacks_completed": tally.callbacks_completed,
        "csat": rounded(tally.csat, 2),
        "csat_ratings": tally.csat_count,
    }


# --- presence -----------------------------------------------------------------------------------


@router.get("/v1/desk/presence")
def my_presence(request: Request, staff: Agent) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        return presence_out(queue.presence_of(session, staff.id))


@router.post("/v1/desk/presence")
def set_presence(request: Request, body: PresenceIn, staff: Agent) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 200, presence_out(queue.set_presence(session, staff, body.state))

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/v1/desk/presence/wrap-up/end")
def end_wrap_up(request: Request, staff: Agent) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 200, presence_out(queue.end_wrap_up(session, staff))

    return run_idempotent(request, staff.actor, None, operation)


# --- queues and calls ---------------------------------------------------------------------------


@router.get("/v1/desk/queues")
def live_queues(request: Request, _staff: Agent) -> list[dict[str, Any]]:
    with db_of(request).unit_of_work() as session:
        return [queue_out(view) for view in queue.live_queues(session)]


@router.get("/v1/desk/calls/offer")
def my_offer(request: Request, staff: Agent) -> dict[str, Any]:
    """The call offered to me now ({"offer": null} when none), with its expiry."""
    with db_of(request).unit_of_work() as session:
        entry = queue.current_offer(session, staff)
        return {"offer": entry_out(entry) if entry else None}


@router.post("/v1/desk/calls/{entry_id}/accept")
def accept(request: Request, entry_id: RowId, staff: Agent) -> Response:
    """Take the offered call; a callback then dials the customer."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        entry = queue.accept(session, staff, entry_id, queue.dialer_for())
        return 200, entry_out(entry)

    return run_idempotent(request, staff.actor, None, operation)


@router.get("/v1/desk/calls/{entry_id}/context")
def context(request: Request, entry_id: RowId, staff: Agent, language: Language) -> dict:
    with db_of(request).unit_of_work() as session:
        return context_out(queue.call_context(session, staff, entry_id, language), language)


@router.post("/v1/desk/calls/{entry_id}/transfer")
def transfer(request: Request, entry_id: RowId, body: TransferIn, staff: Agent) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        moved = queue.transfer(
            session, staff, entry_id, queue=body.queue, supervisor=body.supervisor
        )
        return 200, entry_out(moved)

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/v1/desk/calls/{entry_id}/notes", status_code=201)
def add_note(request: Request, entry_id: RowId, body: NoteIn, staff: Agent) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        event = queue.add_note(session, staff, entry_id, body.text)
        return 201, {"id": event.id, "case_id": event.case_id, "created_at": _iso(event.created_at)}

    return run_idempotent(request, staff.actor, body, operation)


@router.post("/v1/desk/calls/{entry_id}/end")
def end_call(request: Request, entry_id: RowId, body: EndIn, staff: Agent) -> Response:
    """End the call with a disposition; the agent goes into wrap-up."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        entry = queue.end_call(session, staff, entry_id, body.disposition)
        return 200, {
            "entry": entry_out(entry),
            "presence": presence_out(queue.presence_of(session, staff.id)),
        }

    return run_idempotent(request, staff.actor, body, operation)


# --- metrics ------------------------------------------------------------------------------------


@router.get("/v1/desk/metrics/realtime")
def realtime(request: Request, _staff: Agent) -> list[dict[str, Any]]:
    with db_of(request).unit_of_work() as session:
        return [
            {
                "queue": now.queue,
                "waiting": now.waiting,
                "booked_callbacks": now.booked_callbacks,
                "oldest_wait_seconds": round(now.oldest_wait_seconds),
                "agents": now.agents,
                "estimated_wait": estimate_out(now.estimate),
            }
            for now in metrics.realtime(session)
        ]


@router.get("/v1/desk/metrics/history")
def history(
    request: Request,
    _staff: Supervisor,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    interval: Literal["hour", "day"] = "hour",
) -> list[dict[str, Any]]:
    start, end = as_utc(start), as_utc(end)
    with db_of(request).unit_of_work() as session:
        intervals = metrics.history(session, start, end, interval)
    return [
        {
            "start": _iso(item.start),
            "total": tally_out(item.total),
            "inbound_calls": item.inbound_calls,
            "self_served": item.self_served,
            "containment": round(item.containment, 4) if item.containment is not None else None,
            "queues": {name: tally_out(t) for name, t in sorted(item.queues.items())},
            "agents": {str(agent): tally_out(t) for agent, t in sorted(item.agents.items())},
        }
        for item in intervals
    ]


@router.get("/v1/desk/forecast")
def forecast(
    _staff: Supervisor,
    arrivals_per_hour: Annotated[float, Query(ge=0, le=100_000)],
    handle_seconds: Annotated[float, Query(gt=0, le=36_000)],
    target_level: Annotated[float, Query(gt=0, lt=1)] = 0.8,
    target_seconds: Annotated[float, Query(ge=0, le=3600)] = 20,
) -> dict[str, Any]:
    """Agents needed for the target service level (Erlang C), and what they would achieve."""
    result = metrics.forecast(arrivals_per_hour, handle_seconds, target_level, target_seconds)
    return {
        "agents": result.agents,
        "load_erlangs": round(result.load_erlangs, 3),
        "service_level": round(result.service_level, 4),
        "asa_seconds": round(result.asa_seconds, 1),
        "occupancy": round(result.occupancy, 4),
    }


@router.get("/metrics", include_in_schema=False)
def prometheus(request: Request) -> PlainTextResponse:
    """Prometheus scrape target (queue gauges and counters; no personal data)."""
    with db_of(request).unit_of_work() as session:
        text = metrics.prometheus_text(session)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
