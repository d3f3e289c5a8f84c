"""`walletdesk hotline ...`: operator commands for the call queue and the call flow."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.hotline import flow, queue
from walletdesk.hotline.engine import FLOW_NAMES

hotline_app = typer.Typer(help="The phone hotline: check a call flow, move the call queues.")
console = Console()


@hotline_app.command("route")
def route(
    every: Annotated[
        float, typer.Option(help="Keep moving the queues every this many seconds (0: once)")
    ] = 0,
) -> None:
    """Offer waiting calls to free agents, lapse unanswered offers and end wrap-ups.

    The queues also move whenever a caller or agent polls; run this as a worker loop so they
    move on time when nobody does (any number of processes may run it on PostgreSQL).
    """
    db = Database(get_settings().database_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while True:
            with db.unit_of_work() as session:
                offered = queue.route_all(session)
            if offered or not every:
                console.print(f"offered {offered} calls")
            if not every or stop.wait(every):
                break
    finally:
        db.dispose()


@hotline_app.command("check-flow")
def check_flow(
    file: Annotated[
        Path, typer.Argument(help="A call flow (YAML), like hotline/flows/default.yaml")
    ],
) -> None:
    """Check an IVR call flow before pointing walletdesk at it: every problem, with its line.

    Exits 1 when there is any problem, so a deploy script can stop on a broken flow.
    """
    problems = flow.check_flow_file(file, **FLOW_NAMES)
    for problem in problems:
        typer.echo(f"{file}: {problem}")
    if problems:
        raise typer.Exit(1)
    states = flow.load_flow(file, **FLOW_NAMES).states  # valid: read again, to count
    typer.echo(f"ok: {len(states)} states")
