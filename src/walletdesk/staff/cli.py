"""`walletdesk staff`: create staff accounts, list them, unlock one after failed sign-ins."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.kit.cli import run_unit_of_work
from walletdesk.staff import service
from walletdesk.staff.models import StaffRole, StaffUser

staff_app = typer.Typer(help="Staff accounts: agents, supervisors, risk analysts and admins.")
console = Console()
ACTOR = "cli"
T = TypeVar("T")


def _run(operation: Callable[[Session], T]) -> T:
    return run_unit_of_work(operation, console)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@staff_app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Sign-in name, like agent.li")],
    role: Annotated[StaffRole, typer.Option(help="What they may do")],
    name: Annotated[str, typer.Option(help="Display name, as customers and colleagues see it")],
    skills: Annotated[
        str, typer.Option(help="Comma-separated, like zh-CN,en,payments (routes calls)")
    ] = "",
    goodwill_per_action: Annotated[
        str, typer.Option(help="Most one goodwill credit may be without approval, like 50.00")
    ] = "0",
    goodwill_per_day: Annotated[
        str, typer.Option(help="Most all goodwill credits of a day may add up to, like 200.00")
    ] = "0",
    currency: Annotated[str, typer.Option(help="Currency of the goodwill limits")] = "CNY",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a staff account; prints its authenticator secret and otpauth:// URI (shown once)."""
    password = _password(password_stdin)

    def operation(session: Session) -> tuple[StaffUser, str, str]:
        staff, secret = service.create_staff(
            session,
            username=username,
            display_name=name,
            role=role,
            password=password,
            skills=skills.split(","),
            goodwill_per_action=service.parse_goodwill(goodwill_per_action, currency),
            goodwill_per_day=service.parse_goodwill(goodwill_per_day, currency),
            limits_currency=currency,
            actor=ACTOR,
        )
        return staff, secret, service.provisioning_uri(staff, secret)

    staff, secret, uri = _run(operation)
    console.print(f"staff {staff.username} created ({staff.role}, id {staff.id})")
    console.print("Add it to their authenticator app now; it is not shown again:")
    console.print(f"  secret: [bold]{secret}[/bold]")
    console.print(f"  URI:    {uri}", soft_wrap=True)


@staff_app.command("list")
def list_staff() -> None:
    """Every staff account, its role, skills and whether it is locked or disabled."""
    everyone = _run(service.list_staff)
    now = clock.now()
    table = Table(title="Staff")
    for column in ("id", "username", "name", "role", "skills", "state"):
        table.add_column(column)
    for staff in everyone:
        if staff.disabled_at is not None:
            state = "[red]disabled[/red]"
        elif service.is_locked(staff, now):
            state = "[yellow]locked[/yellow]"
        else:
            state = "active"
        table.add_row(
            str(staff.id),
            staff.username,
            staff.display_name,
            staff.role,
            ",".join(staff.skills),
            state,
        )
    console.print(table)


@staff_app.command("unlock")
def unlock(username: Annotated[str, typer.Argument()]) -> None:
    """End a lock after failed sign-ins (check first that it was the person, not an attacker)."""
    staff = _run(
        lambda session: service.unlock(
            session, service.staff_by_username(session, username).id, actor=ACTOR
        )
    )
    console.print(f"staff {staff.username} unlocked")
