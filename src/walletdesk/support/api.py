"""Service-hours API: anyone may ask whether a channel is open; operators change the hours."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.kit.http import db_of, require_admin, run_idempotent
from walletdesk.support import service
from walletdesk.support.hours import EMERGENCY_ACTIONS, WeeklySchedule, action_status, days_ahead

router = APIRouter(prefix="/v1/service-hours", tags=["support"])
admin_router = APIRouter(
    prefix="/v1/admin/service-hours", tags=["operator"], dependencies=[Depends(require_admin)]
)
ADMIN = "admin"

HoursName = Annotated[str, Path(max_length=64, examples=["phone", "queue:fraud"])]
HoursText = Annotated[str, Field(max_length=11, examples=["08:00-22:00"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HoursIn(Strict):
    time_zone: str = Field(max_length=64, examples=["Asia/Shanghai"])
    always_open: bool = False
    weekly: dict[str, list[HoursText]] = Field(
        default_factory=dict,
        description="Hours per day (mon ... sun); a day left out is closed.",
        examples=[{"mon": ["08:00-12:00", "13:00-22:00"]}],
    )


class ExceptionIn(Strict):
    date: date
    hours: list[HoursText] = Field(
        default_factory=list, description="Open only during these hours; empty: closed all day."
    )
    note: str = Field(default="", max_length=service.NOTE_MAX_LENGTH)


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _week(schedule: WeeklySchedule) -> list[dict[str, Any]]:
    return [
        {
            "date": day.day.isoformat(),
            "weekday": day.day.strftime("%a").lower(),
            "hours": ["00:00-24:00"] if schedule.always_open else [str(i) for i in day.intervals],
            "note": day.exception.note if day.exception else None,
        }
        for day in days_ahead(schedule, clock.now())
    ]


def hours_out(name: str, schedule: WeeklySchedule, action: str | None = None) -> dict[str, Any]:
    now = action_status(schedule, clock.now(), action)
    return {
        "name": name,
        "open": now.open,
        "opens_at": _iso(now.opens_at),
        "closes_at": _iso(now.closes_at),
        "emergency": action in EMERGENCY_ACTIONS,
        "week": _week(schedule),
        **service.schedule_texts(schedule),
    }


@router.get("/{name}")
def hours_now(
    request: Request,
    name: HoursName,
    action: Annotated[
        str | None,
        Query(max_length=40, description="An emergency action, such as freeze_account, is 24/7"),
    ] = None,
) -> dict[str, Any]:
    """Open now? If not, when; and the hours of the coming seven days."""
    with db_of(request).unit_of_work() as session:
        return hours_out(name, service.get_schedule(session, name), action)


@admin_router.get("")
def list_hours(request: Request) -> list[dict[str, Any]]:
    with db_of(request).unit_of_work() as session:
        schedules = service.list_schedules(session)
    return [hours_out(name, schedule) for name, schedule in schedules.items()]


@admin_router.put("/{name}")
def set_hours(request: Request, name: HoursName, body: HoursIn) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        schedule = service.set_schedule(
            session,
            name,
            time_zone=body.time_zone,
            weekly=body.weekly,
            always_open=body.always_open,
            actor=ADMIN,
        )
        return 200, hours_out(name, schedule)

    return run_idempotent(request, ADMIN, body, operation)


@admin_router.post("/{name}/exceptions", status_code=201)
def add_exception(request: Request, name: HoursName, body: ExceptionIn) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        schedule = service.add_exception(
            session, name, body.date, body.hours, note=body.note, actor=ADMIN
        )
        return 201, hours_out(name, schedule)

    return run_idempotent(request, ADMIN, body, operation)


@admin_router.delete("/{name}/exceptions/{day}")
def remove_exception(request: Request, name: HoursName, day: date) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 200, hours_out(name, service.remove_exception(session, name, day, actor=ADMIN))

    return run_idempotent(request, ADMIN, None, operation)
