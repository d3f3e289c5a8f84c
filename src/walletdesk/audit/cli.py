"""`walletdesk audit verify` and `walletdesk audit tail`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from walletdesk.audit import service
from walletdesk.audit.models import AuditEvent
from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.kit.clock import as_utc

audit_app = typer.Typer(help="The audit log: check its hash chain, read its latest events.")
console = Console()


def _database() -> Database:
    return Database(get_settings().database_url, pool_size=1)


@audit_app.command("verify")
def verify() -> None:
    """Walk the hash chain; exit 1 and list the problems if any event was edited or removed."""
    db = _database()
    try:
        with db.unit_of_work() as session:
            problems = service.verify(session)
            head = service.head_of(session)
            seq, digest = (head.seq, head.hash) if head else (0, "-")
    finally:
        db.dispose()
    for problem in problems:
        console.print(Text.assemble(("tampered: ", "bold red"), problem))
    if problems:
        raise typer.Exit(1)
    # The head hash is worth writing down elsewhere: a later run must reach the same one.
    console.print(Text.assemble(("audit log intact", "green"), f": {seq} events, head {digest}"))


@audit_app.command("tail")
def tail(
    count: Annotated[int, typer.Option("-n", "--count", min=1, help="How many events")] = 20,
) -> None:
    """Show the latest events, oldest first: one line each, so grep and awk can read them."""
    db = _database()
    try:
        with db.unit_of_work() as session:
            lines = [_line(event) for event in service.tail(session, count)]
    finally:
        db.dispose()
    for line in lines:
        typer.echo(line)


def _line(event: AuditEvent) -> str:
    fields = [
        str(event.seq),
        as_utc(event.occurred_at).isoformat(timespec="seconds"),
        event.actor,
        event.action,
        event.subject or "-",
        event.ip or "-",
        event.detail_json or "-",
    ]
    return "  ".join(fields)
