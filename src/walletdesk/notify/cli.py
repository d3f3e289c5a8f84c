"""`walletdesk worker`: send the outbox (email, SMS, in-app) with retries and run the periodic
jobs (walletdesk.jobs), until stopped."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.jobs import JobRunner, default_jobs
from walletdesk.notify.providers import Senders
from walletdesk.notify.worker import drain, run_worker


def worker_command(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Run every job once and send what is due now, then exit (for cron or tests)",
        ),
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds to wait between polls when idle")] = 1.0,
    batch: Annotated[int, typer.Option(help="Messages claimed per round", min=1)] = 50,
) -> None:
    """Send queued notifications and run the periodic jobs; run as many as you like on
    PostgreSQL (they share the outbox, and each job runs in one worker at a time)."""
    settings = get_settings()
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    db = Database(settings.database_url, pool_size=2)
    senders = Senders.from_settings(settings)
    jobs = JobRunner(db, default_jobs(settings))
    try:
        if once:
            for name, outcome in jobs.run_due().items():
                typer.echo(f"job {name}: {outcome}")
            typer.echo(f"sent {drain(db, senders, batch=batch)} messages")
            return
        stop = threading.Event()
        # Finish the message in hand, then leave: an interrupted send would only be retried.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        typer.echo("outbox worker running; Ctrl-C to stop")
        run_worker(db, senders, stop, jobs=jobs, poll_seconds=poll, batch=batch)
    finally:
        db.dispose()


# For `app.add_typer(worker_app, name="worker")`, if the lead prefers a sub-app.
worker_app = typer.Typer(help="Send queued notifications.")
worker_app.callback(invoke_without_command=True)(worker_command)
