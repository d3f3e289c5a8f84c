"""Periodic jobs: the sweeps that keep SLAs, disputes and the call queue moving without cron.

A job is a name, an interval and a function of a Session. The outbox worker (the thread inside
`walletdesk serve`, and `walletdesk worker`) calls `JobRunner.run_due` between outbox batches:
each job whose interval has passed since this runner last started it runs in a unit of work of
its own, so a failing job is logged and rolled back while the other jobs and the outbox go on.
The worker looks between batches, so a job runs at most as often as the worker polls.

With several workers on PostgreSQL, each run first takes a transaction-level advisory lock
named after its job (pg_try_advisory_xact_lock) and is skipped while another worker holds it;
the lock ends with the transaction. On SQLite the single writer serialises runs anyway. Every
sweep marks what it handled, so a run skipped or repeated only moves work by one interval.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletdesk.config import Settings
from walletdesk.db import Database, is_sqlite
from walletdesk.disputes.service import sweep_overdue
from walletdesk.hotline.queue import route_all
from walletdesk.kit import clock
from walletdesk.support.cases import close_resolved, sweep_sla

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Session], object]


class Outcome(StrEnum):
    RAN = "ran"
    SKIPPED = "skipped"  # another worker was running it
    FAILED = "failed"


def default_jobs(settings: Settings) -> list[Job]:
    """walletdesk's jobs at the intervals the settings give; an interval of 0 turns one off."""
    intervals = (
        ("sla_sweep", settings.job_sla_sweep_seconds, sweep_sla),
        ("close_resolved", settings.job_close_resolved_seconds, close_resolved),
        ("dispute_sweep", settings.job_dispute_sweep_seconds, sweep_overdue),
        ("hotline_route", settings.job_hotline_route_seconds, route_all),
    )
    return [Job(name, timedelta(seconds=every), run) for name, every, run in intervals if every]


class JobRunner:
    """Runs each job when its interval has passed; every job is due on the first look."""

    def __init__(self, db: Database, jobs: Iterable[Job]) -> None:
        self.db, self.jobs = db, list(jobs)
        self._next_run: dict[str, datetime] = {}

    def run_due(self) -> dict[str, Outcome]:
        """Run the jobs due now; what became of each job that was due."""
        outcomes: dict[str, Outcome] = {}
        for job in self.jobs:
            now = clock.now()
            if self._next_run.get(job.name, now) > now:
                continue
            self._next_run[job.name] = now + job.every
            outcomes[job.name] = run_job(self.db, job)
        return outcomes


def run_job(db: Database, job: Job) -> Outcome:
    """One run of `job` in its own unit of work, unless another worker is running it."""
    try:
        with db.unit_of_work() as session:
            if not _take_lock(session, job.name):
                return Outcome.SKIPPED
            job.run(session)
    except Exception as error:  # one job's failure must not stop the others or the outbox
        # The class only: a database error's text can carry the row values it was given.
        log.error("periodic job %s failed: %s", job.name, type(error).__name__)
        return Outcome.FAILED
    return Outcome.RAN


def lock_key(name: str) -> int:
    """The job's advisory lock number: a stable signed 64-bit hash of its name."""
    digest = hashlib.sha256(f"walletdesk.job.{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _take_lock(session: Session, name: str) -> bool:
    if is_sqlite(session):
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(lock_key(name)))))
