"""`walletdesk disputes`: the jobs of the dispute desk that run on a schedule."""

from __future__ import annotations

import typer
from rich.console import Console

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.disputes import service

disputes_app = typer.Typer(help="Disputes: move those the merchant did not answer to review.")
console = Console()


@disputes_app.command("sweep")
def sweep() -> None:
    """Send every dispute whose merchant let the deadline pass to review (run it hourly)."""
    db = Database(get_settings().database_url, pool_size=1)
    try:
        with db.unit_of_work() as session:
            moved = service.sweep_overdue(session)
    finally:
        db.dispose()
    console.print(f"{moved} dispute(s) moved to review: the merchant did not answer in time")
