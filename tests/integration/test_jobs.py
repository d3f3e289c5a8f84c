"""Periodic jobs (walletdesk.jobs) on a real database: each runs at its own interval, in its own
transaction, and on PostgreSQL only one worker runs a job at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.audit.models import AuditEvent
from walletdesk.audit.service import record
from walletdesk.config import Settings
from walletdesk.db import Database, is_sqlite
from walletdesk.jobs import Job, JobRunner, Outcome, default_jobs
from walletdesk.kit.clock import FrozenClock

WAIT = 15.0  # seconds a thread may take on a busy machine


def writes(action: str) -> Callable[[Session], None]:
    """A job whose work a user could see: one audit event."""
    return lambda session: record(session, actor="system", action=action)


def fails_after_writing(session: Session) -> None:
    record(session, actor="system", action="job.broken")
    raise RuntimeError("the sweep hit a bug")


def actions(db: Database) -> list[str]:
    with db.unit_of_work() as session:
        query = select(AuditEvent.action).where(AuditEvent.action.startswith("job."))
        return list(session.scalars(query.order_by(AuditEvent.seq)))


def test_each_job_runs_when_its_interval_has_passed_and_not_before(
    db: Database, frozen_clock: FrozenClock
) -> None:
    runner = JobRunner(
        db,
        [
            Job("minutely", timedelta(seconds=60), writes("job.minutely")),
            Job("hourly", timedelta(hours=1), writes("job.hourly")),
        ],
    )
    assert runner.run_due() == {"minutely": Outcome.RAN, "hourly": Outcome.RAN}  # first look
    frozen_clock.advance(timedelta(seconds=59))
    assert runner.run_due() == {}
    frozen_clock.advance(timedelta(seconds=1))
    assert runner.run_due() == {"minutely": Outcome.RAN}
    frozen_clock.advance(timedelta(minutes=59))
    assert runner.run_due() == {"minutely": Outcome.RAN, "hourly": Outcome.RAN}
    ran = ["job.minutely", "job.hourly", "job.minutely", "job.minutely", "job.hourly"]
    assert actions(db) == ran


def test_a_failing_job_is_rolled_back_and_the_others_still_run(
    db: Database, frozen_clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    runner = JobRunner(
        db,
        [
            Job("before", timedelta(seconds=60), writes("job.before")),
            Job("broken", timedelta(seconds=60), fails_after_writing),
            Job("after", timedelta(seconds=60), writes("job.after")),
        ],
    )
    outcomes = runner.run_due()
    assert outcomes == {"before": Outcome.RAN, "broken": Outcome.FAILED, "after": Outcome.RAN}
    assert actions(db) == ["job.before", "job.after"]  # the broken job's write is rolled back
    assert "periodic job broken failed: RuntimeError" in caplog.text
    assert "the sweep hit a bug" not in caplog.text  # an error's text may carry data

    frozen_clock.advance(timedelta(seconds=60))  # a failed job is tried again next interval
    assert runner.run_due()["broken"] == Outcome.FAILED


def test_on_postgresql_a_job_another_worker_is_running_is_skipped(
    db: Database, frozen_clock: FrozenClock
) -> None:
    if is_sqlite(db.engine):
        pytest.skip("advisory locks are PostgreSQL's; on SQLite the single writer serialises jobs")
    started, finish = threading.Event(), threading.Event()

    def slow_sweep(session: Session) -> None:
        record(session, actor="system", action="job.sweep")
        started.set()
        assert finish.wait(WAIT)

    def job() -> Job:
        return Job("sweep", timedelta(seconds=60), slow_sweep)

    first, second = JobRunner(db, [job()]), JobRunner(db, [job()])  # two worker processes
    outcome: dict[str, Outcome] = {}
    running = threading.Thread(target=lambda: outcome.update(first.run_due()))
    running.start()
    try:
        assert started.wait(WAIT)
        started.clear()
        assert second.run_due() == {"sweep": Outcome.SKIPPED}
    finally:
        finish.set()
        running.join(WAIT)
    assert outcome == {"sweep": Outcome.RAN}
    assert actions(db) == ["job.sweep"]

    frozen_clock.advance(timedelta(seconds=60))  # the lock ended with the first transaction
    assert second.run_due() == {"sweep": Outcome.RAN}


def test_the_settings_give_each_job_its_interval_and_zero_turns_one_off() -> None:
    jobs = {job.name: job.every for job in default_jobs(Settings(job_close_resolved_seconds=0))}
    assert jobs == {
        "sla_sweep": timedelta(seconds=60),
        "dispute_sweep": timedelta(minutes=5),
        "hotline_route": timedelta(seconds=1),
    }
