"""The outbox worker: claim due messages, send each after its claim commits, record the outcome.

A claim is a lease: in one short transaction the worker picks due rows (PostgreSQL skips rows
another worker is claiming, FOR UPDATE SKIP LOCKED; SQLite's single writer lock serialises
claims), counts the attempt and pushes `next_attempt_at` past the lease. No transaction is open
while a provider is called. Sent rows are marked in their own short transaction; failed ones
are scheduled again with exponential backoff until MAX_ATTEMPTS, then marked failed. A worker
that dies mid-send leaves its rows to be picked up when the lease ends: delivery is at least
once, and the stable per-message key lets receivers drop a repeat.

Between batches the worker also runs the periodic jobs that are due (walletdesk.jobs: SLA
sweep, closing resolved cases, overdue disputes, call routing), each in its own transaction.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Update, select, update

from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.jobs import JobRunner, default_jobs
from walletdesk.kit import clock
from walletdesk.notify.models import Channel, OutboxMessage, OutboxStatus
from walletdesk.notify.providers import PermanentDeliveryError, Senders, deliver_inapp
from walletdesk.notify.service import unseal_params
from walletdesk.notify.templates import Rendered, render

log = logging.getLogger(__name__)

BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 8  # about an hour of retries in all (30 s doubling)
# Longer than a whole batch can take to send (50 messages x a 10 s SMTP timeout is < 9 min).
LEASE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a worker needs of a claimed row, detached from any session."""

    id: int
    customer_id: int
    channel: str
    event: str
    language: str
    destination: str | None
    attempts: int
    created_at: datetime
    params_sealed: str

    @property
    def key(self) -> str:
        # Stable across retries, distinct across databases that reuse ids.
        return f"outbox-{self.id}-{int(clock.as_utc(self.created_at).timestamp())}"


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed try: 30 s, 1 min, 2 min ... at most an hour."""
    return min(BASE_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)


def describe_error(error: BaseException) -> str:
    """The error's class and protocol code: never its text, which may echo what was sent."""
    code = next(
        (
            getattr(error, name)
            for name in ("smtp_code", "errno", "code")
            if isinstance(getattr(error, name, None), int)
        ),
        None,
    )
    return type(error).__name__ + (f" {code}" if code is not None else "")


def deliver_due(db: Database, senders: Senders, *, batch: int = 50) -> int:
    """Send up to `batch` due messages; how many were sent."""
    return sum(_deliver(db, senders, job) for job in _claim(db, batch))


def drain(db: Database, senders: Senders, *, batch: int = 50) -> int:
    """Send everything due now (`walletdesk worker --once`); how many were sent."""
    total = 0
    while True:
        sent = deliver_due(db, senders, batch=batch)
        total += sent
        if sent < batch:
            return total


def tick(db: Database, senders: Senders, jobs: JobRunner | None = None, *, batch: int = 50) -> int:
    """One round: the periodic jobs that are due, then one outbox batch; how many were sent."""
    if jobs is not None:
        jobs.run_due()  # each job logs its own failure
    try:
        return deliver_due(db, senders, batch=batch)
    except Exception as error:  # a database outage must not end the worker: try again
        log.error("outbox worker cycle failed: %s", describe_error(error))
        return 0


def run_worker(
    db: Database,
    senders: Senders,
    stop_event: threading.Event,
    *,
    jobs: JobRunner | None = None,
    poll_seconds: float = 1.0,
    batch: int = 50,
) -> None:
    """Work until `stop_event` is set; idle polls wait on the event, so a stop is immediate."""
    log.info("outbox worker started")
    while not stop_event.is_set():
        if tick(db, senders, jobs, batch=batch) < batch:
            stop_event.wait(poll_seconds)
    log.info("outbox worker stopped")


class BackgroundWorker:
    """run_worker on a daemon thread, for `walletdesk serve` without a separate worker."""

    def __init__(
        self,
        db: Database,
        senders: Senders,
        *,
        jobs: JobRunner | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.db, self.senders, self.jobs, self.poll_seconds = db, senders, jobs, poll_seconds
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="walletdesk-outbox", daemon=True)

    def _run(self) -> None:
        run_worker(
            self.db, self.senders, self.stop_event, jobs=self.jobs, poll_seconds=self.poll_seconds
        )

    def start(self) -> BackgroundWorker:
        self.thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_in_process(
    db: Database, settings: Settings, senders: Senders | None = None
) -> BackgroundWorker | None:
    """Start a background worker (outbox and periodic jobs) when settings.run_worker_in_process;
    stop it on shutdown."""
    if not settings.run_worker_in_process:
        return None
    jobs = JobRunner(db, default_jobs(settings))
    return BackgroundWorker(db, senders or Senders.from_settings(settings), jobs=jobs).start()


# --- one cycle ---------------------------------------------------------------------------------


def _claim(db: Database, batch: int) -> list[Claimed]:
    now = clock.now()
    with db.unit_of_work() as session:
        ids = session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return []
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids))
            .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=now + LEASE),
            execution_options={"synchronize_session": False},
        )
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
        )
        return [_claimed(row) for row in rows]


def _claimed(row: OutboxMessage) -> Claimed:
    return Claimed(
        row.id,
        row.customer_id,
        row.channel,
        row.event,
        row.language,
        row.destination,
        row.attempts,
        row.created_at,
        row.params_sealed,
    )


def _deliver(db: Database, senders: Senders, job: Claimed) -> int:
    """1 when the message went out (and was recorded), else 0."""
    try:
        rendered = render(job.event, unseal_params(job.params_sealed), job.language)
    except Exception as error:  # undecryptable or unrenderable: retrying cannot help
        _record_failure(db, job, error, permanent=True)
        return 0
    try:
        _send(senders, job, rendered)
    except PermanentDeliveryError as error:
        _record_failure(db, job, error, permanent=True)
        return 0
    except Exception as error:  # whatever a provider raises, the message waits and retries
        _record_failure(db, job, error, permanent=False)
        return 0
    return _record_sent(db, job, rendered)


def _send(senders: Senders, job: Claimed, rendered: Rendered) -> None:
    if job.channel == Channel.EMAIL:
        senders.email.send_email(
            to=job.destination or "",
            subject=rendered.subject,
            body=rendered.email_body(),
            key=job.key,
        )
    elif job.channel == Channel.SMS:
        senders.sms.send_sms(to=job.destination or "", text=rendered.sms_text(), key=job.key)
    # In-app messages are rows, written where the outbox row is marked sent (_record_sent).


def _still_ours(job: Claimed) -> Update:
    """Update the row only if no other worker has re-claimed it since (our lease ran out)."""
    return update(OutboxMessage).where(
        OutboxMessage.id == job.id,
        OutboxMessage.status == OutboxStatus.PENDING,
        OutboxMessage.attempts == job.attempts,
    )


def _record_sent(db: Database, job: Claimed, rendered: Rendered) -> int:
    now = clock.now()
    with db.unit_of_work() as session:
        done = session.execute(
            _still_ours(job).values(status=OutboxStatus.SENT, sent_at=now, last_error=None)
        ).rowcount
        if done and job.channel == Channel.INAPP:
            deliver_inapp(
                session,
                customer_id=job.customer_id,
                outbox_id=job.id,
                event=job.event,
                title=rendered.subject,
                body=rendered.body,
                created_at=job.created_at,
            )
    if not done:
        # Our lease ran out mid-send and another worker re-claimed the row: it records it.
        log.warning("outbox %s was re-claimed while this worker sent it", job.id)
        return 0
    log.info("outbox %s (%s by %s) sent", job.id, job.event, job.channel)
    return 1


def _record_failure(db: Database, job: Claimed, error: Exception, *, permanent: bool) -> None:
    reason = describe_error(error)
    give_up = permanent or job.attempts >= MAX_ATTEMPTS
    values: dict[str, object] = {"last_error": reason[:200]}
    if give_up:
        values["status"] = OutboxStatus.FAILED
    else:
        values["next_attempt_at"] = clock.now() + backoff(job.attempts)
    with db.unit_of_work() as session:
        session.execute(_still_ours(job).values(**values))
    if give_up:
        log.error(
            "outbox %s (%s by %s) failed for good: %s", job.id, job.event, job.channel, reason
        )
    else:
        log.warning(
            "outbox %s (%s by %s) attempt %d failed: %s; retrying at %s",
            job.id,
            job.event,
            job.channel,
            job.attempts,
            reason,
            values["next_attempt_at"],
        )
