"""Service hours per channel and queue: the one place the API, web and IVR ask "are we open?".

"phone" and "chat" always have hours: until an operator sets their own, they use the defaults
that migration 0006 also seeds (08:00-22:00 Asia/Shanghai every day). Any other name must be
set first. Services never commit; every change is written to the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.support import errors as _errors  # noqa: F401  (registers the hours codes)
from walletdesk.support.hours import (
    DateException,
    HoursError,
    OpenStatus,
    WeeklySchedule,
    action_status,
    parse_intervals,
    parse_week,
    week_texts,
)
from walletdesk.support.models import ServiceHours

DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_WEEKLY = {day: ["08:00-22:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
DEFAULT_NAMES = ("phone", "chat")
NOTE_MAX_LENGTH = 200
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}(:[a-z0-9][a-z0-9_-]{0,30})?$")


def is_open(
    session: Session, name: str, at: datetime | None = None, *, action: str | None = None
) -> OpenStatus:
    """Open at `at` (now by default)? Emergency `action`s are always open."""
    return action_status(get_schedule(session, name), at or clock.now(), action)


def get_schedule(session: Session, name: str) -> WeeklySchedule:
    return to_schedule(_row_or_default(session, name))


def list_schedules(session: Session) -> dict[str, WeeklySchedule]:
    """Every named schedule, the phone and chat defaults included, by name."""
    rows = {row.name: row for row in session.scalars(select(ServiceHours))}
    for name in DEFAULT_NAMES:
        rows.setdefault(name, _default_row(name))
    return {name: to_schedule(rows[name]) for name in sorted(rows)}


def set_schedule(
    session: Session,
    name: str,
    *,
    time_zone: str,
    weekly: Mapping[str, Sequence[str]],
    always_open: bool = False,
    actor: str,
) -> WeeklySchedule:
    """Create or replace `name`'s weekly hours; its date exceptions are kept."""
    _check_name(name)
    row = session.get(ServiceHours, name)
    if row is None:
        row = ServiceHours(name=name, exceptions=[])
        session.add(row)
    exceptions = list(row.exceptions or [])
    _store(row, time_zone=time_zone, weekly=dict(weekly), always_open=always_open)
    row.exceptions = exceptions
    return _saved(session, row, actor, "hours.set", {"time_zone": time_zone})


def add_exception(
    session: Session,
    name: str,
    day: date,
    hours: Sequence[str] = (),
    *,
    note: str = "",
    actor: str,
) -> WeeklySchedule:
    """Closed all day (no `hours`) or open only during `hours` on `day`; replaces that date's."""
    if len(note) > NOTE_MAX_LENGTH:
        raise DomainError("hours_invalid", reason=f"the note is over {NOTE_MAX_LENGTH} characters")
    row = _stored_row(session, name)
    kept = [e for e in row.exceptions if e["date"] != day.isoformat()]
    entry = {"date": day.isoformat(), "hours": list(hours), "note": note}
    row.exceptions = sorted([*kept, entry], key=lambda e: e["date"])
    _validated(row)
    return _saved(session, row, actor, "hours.exception_added", entry)


def remove_exception(session: Session, name: str, day: date, *, actor: str) -> WeeklySchedule:
    row = _stored_row(session, name)
    kept = [e for e in row.exceptions if e["date"] != day.isoformat()]
    if len(kept) == len(row.exceptions):
        raise DomainError("hours_exception_not_found", name=name, day=day.isoformat())
    row.exceptions = kept
    return _saved(session, row, actor, "hours.exception_removed", {"date": day.isoformat()})


def to_schedule(row: ServiceHours) -> WeeklySchedule:
    return _validated(row)


def schedule_texts(schedule: WeeklySchedule) -> dict[str, Any]:
    """The JSON form the API and CLI show."""
    return {
        "time_zone": schedule.zone,
        "always_open": schedule.always_open,
        "weekly": week_texts(schedule),
        "exceptions": [
            {
                "date": e.day.isoformat(),
                "closed": e.closed,
                "hours": [str(i) for i in e.intervals],
                "note": e.note,
            }
            for e in schedule.exceptions
        ],
    }


def _validated(row: ServiceHours) -> WeeklySchedule:
    try:
        return WeeklySchedule(
            zone=row.time_zone,
            week=parse_week(row.weekly),
            always_open=bool(row.always_open),
            exceptions=tuple(_exception(e) for e in row.exceptions),
        )
    except HoursError as error:
        raise DomainError("hours_invalid", reason=str(error)) from None


def _exception(entry: Mapping[str, Any]) -> DateException:
    try:
        day = date.fromisoformat(entry["date"])
    except ValueError:
        raise HoursError(f"{entry['date']!r} is not a date like 2026-02-17") from None
    return DateException(day, parse_intervals(entry["hours"]), entry.get("note", ""))


def _store(row: ServiceHours, **values: Any) -> None:
    for key, value in values.items():
        setattr(row, key, value)


def _saved(
    session: Session, row: ServiceHours, actor: str, action: str, detail: dict[str, Any]
) -> WeeklySchedule:
    schedule = _validated(row)
    row.updated_by, row.updated_at = actor[:64], clock.now()
    session.flush()
    record(session, actor=actor, action=action, subject=f"hours:{row.name}", detail=detail)
    return schedule


def _row_or_default(session: Session, name: str) -> ServiceHours:
    row = session.get(ServiceHours, name)
    if row is not None:
        return row
    if name in DEFAULT_NAMES:
        return _default_row(name)
    raise DomainError("hours_not_found", name=name)


def _stored_row(session: Session, name: str) -> ServiceHours:
    """The row to change; a phone or chat default becomes a stored row on its first change."""
    row = _row_or_default(session, name)
    if row not in session:
        session.add(row)
    return row


def _default_row(name: str) -> ServiceHours:
    return ServiceHours(
        name=name,
        time_zone=DEFAULT_ZONE,
        always_open=False,
        weekly={day: list(hours) for day, hours in DEFAULT_WEEKLY.items()},
        exceptions=[],
        updated_by="default",
        updated_at=clock.now(),
    )


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise DomainError(
            "hours_invalid",
            reason="a name is lower-case letters, digits, - or _, like phone or queue:fraud",
        )
