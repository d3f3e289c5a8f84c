"""`walletdesk hours`: show and change the service hours of each channel and queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.kit.cli import run_unit_of_work
from walletdesk.support import service
from walletdesk.support.hours import WEEKDAYS, WeeklySchedule, status, zone_of

hours_app = typer.Typer(help="Service hours: when phone, chat and each queue are open.")
console = Console()
ACTOR = "cli"
T = TypeVar("T")


def _run(operation: Callable[[Session], T]) -> T:
    return run_unit_of_work(operation, console)


def _print(name: str, schedule: WeeklySchedule) -> None:
    now = status(schedule, clock.now())
    state = "[green]open[/green]" if now.open else "[yellow]closed[/yellow]"
    change = now.closes_at if now.open else now.opens_at
    local = change.astimezone(zone_of(schedule.zone)).isoformat(" ", "minutes") if change else ""
    when = f" until {local}" if now.open and change else ""
    when = when or (f", opens {local}" if change else "")
    table = Table(title=f"{name} ({schedule.zone}): {state}{when}")
    table.add_column("day")
    table.add_column("hours")
    table.add_column("note")
    texts = service.schedule_texts(schedule)
    for day in WEEKDAYS:
        hours = "24/7" if schedule.always_open else ", ".join(texts["weekly"][day]) or "closed"
        table.add_row(day, hours, "")
    for exception in texts["exceptions"]:
        table.add_row(
            exception["date"], ", ".join(exception["hours"]) or "closed", exception["note"]
        )
    console.print(table)


@hours_app.command("show")
def show(name: Annotated[str | None, typer.Argument(help="phone, chat, queue:...")] = None) -> None:
    """Show one schedule, or all of them, and whether each is open now."""
    if name is None:
        schedules = _run(service.list_schedules)
    else:
        schedules = {name: _run(lambda session: service.get_schedule(session, name))}
    for each, schedule in schedules.items():
        _print(each, schedule)


@hours_app.command("set")
def set_hours(
    name: Annotated[str, typer.Argument(help="phone, chat, queue:fraud ...")],
    time_zone: Annotated[str, typer.Option("--tz", help="IANA time zone")] = service.DEFAULT_ZONE,
    day: Annotated[
        list[str] | None,
        typer.Option(help="DAY=HOURS, such as mon=08:00-12:00,13:00-22:00 (repeatable)"),
    ] = None,
    every_day: Annotated[
        str | None, typer.Option(help="The same hours every day, such as 08:00-22:00")
    ] = None,
    always_open: Annotated[bool, typer.Option("--always-open", help="Open 24/7")] = False,
) -> None:
    """Replace the weekly hours (date exceptions are kept); a day not given is closed."""
    weekly = {d: _hours_list(every_day) for d in WEEKDAYS} if every_day else {}
    for item in day or []:
        key, _, hours = item.partition("=")
        weekly[key.strip().lower()] = _hours_list(hours)
    schedule = _run(
        lambda session: service.set_schedule(
            session, name, time_zone=time_zone, weekly=weekly, always_open=always_open, actor=ACTOR
        )
    )
    _print(name, schedule)


@hours_app.command("add-exception")
def add_exception(
    name: Annotated[str, typer.Argument()],
    day: Annotated[str, typer.Argument(help="The date, like 2026-02-17")],
    hours: Annotated[
        str | None, typer.Option(help="Open only these hours, like 09:00-12:00; default closed")
    ] = None,
    note: Annotated[str, typer.Option(help="Why, such as the holiday's name")] = "",
) -> None:
    """Close for a whole day (a holiday) or open only part of it."""
    on = _date(day)
    schedule = _run(
        lambda session: service.add_exception(
            session, name, on, _hours_list(hours), note=note, actor=ACTOR
        )
    )
    _print(name, schedule)


@hours_app.command("remove-exception")
def remove_exception(name: Annotated[str, typer.Argument()], day: str) -> None:
    """Go back to the weekly hours on that date."""
    on = _date(day)
    schedule = _run(lambda session: service.remove_exception(session, name, on, actor=ACTOR))
    _print(name, schedule)


def _hours_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date like 2026-02-17") from None
