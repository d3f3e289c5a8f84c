"""What the command-line groups share: one unit of work per command, domain errors shown plainly."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.kit.errors import DomainError

T = TypeVar("T")


def run_unit_of_work(operation: Callable[[Session], T], console: Console) -> T:
    """One unit of work; a domain error is printed and exits 1 with nothing changed."""
    db = Database(get_settings().database_url, pool_size=1)
    try:
        with db.unit_of_work() as session:
            return operation(session)
    except DomainError as error:
        console.print(f"[red]{error.code}[/red]: {error.message('en')}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
