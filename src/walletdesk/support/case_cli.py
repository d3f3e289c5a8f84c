"""`walletdesk desk`: the case desk's periodic jobs (run them from cron or a timer)."""

from __future__ import annotations

import typer
from rich.console import Console

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.support import cases

desk_app = typer.Typer(help="Case desk jobs: SLA breaches, closing resolved cases.")
console = Console()


@desk_app.command("sla-sweep")
def sla_sweep() -> None:
    """Mark cases that missed a first-response or resolution target (each breach once)."""
    db = Database(get_settings().database_url, pool_size=1)
    try:
        with db.unit_of_work() as session:
            marked = [(case.number, case.priority) for case in cases.sweep_sla(session)]
    finally:
        db.dispose()
    for number, priority in marked:
        console.print(f"case {number} ({priority}) breached its SLA")
    console.print(f"{len(marked)} case(s) newly in breach")


@desk_app.command("close-resolved")
def close_resolved() -> None:
    """Close cases resolved longer ago than WALLETDESK_CASE_CLOSE_AFTER_DAYS."""
    db = Database(get_settings().database_url, pool_size=1)
    try:
        with db.unit_of_work() as session:
            closed = [case.number for case in cases.close_resolved(session)]
    finally:
        db.dispose()
    console.print(f"closed {len(closed)} case(s)" + (f": {', '.join(closed)}" if closed else ""))
