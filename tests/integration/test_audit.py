"""The audit log: an investigator must be able to trust that what it shows is what happened.

Every test runs on SQLite and PostgreSQL. Tampering is done the way an insider with database
access would: drop the append-only triggers, then edit or delete rows with raw SQL. The
tampering runs in one transaction that is rolled back at the end (DDL included, on both
databases), so the shared PostgreSQL test database keeps its triggers.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from walletdesk import config
from walletdesk.audit import service as audit
from walletdesk.audit.cli import audit_app
from walletdesk.audit.models import GENESIS_HASH, AuditEvent
from walletdesk.db import Database, is_sqlite
from walletdesk.kit.clock import FrozenClock, as_utc

DROP_GUARDS = {
    "sqlite": [
        "DROP TRIGGER audit_events_no_update",
        "DROP TRIGGER audit_events_no_delete",
    ],
    "postgresql": ["DROP TRIGGER audit_events_immutable ON audit_events"],
}


def append(db: Database, count: int, clock: FrozenClock | None = None) -> None:
    for number in range(count):
        with db.unit_of_work() as session:
            audit.record(
                session,
                actor=f"agent:{number}",
                action="account.frozen",
                subject=f"customer:{100 + number}",
                detail={"reason": "caller reported a stolen phone", "case": number},
                ip="203.0.113.7",
            )
        if clock is not None:
            clock.advance(timedelta(seconds=1))


@contextmanager
def tampering(db: Database) -> Iterator[Session]:
    session = db.sessions()
    try:
        for statement in DROP_GUARDS[db.engine.dialect.name]:
            session.execute(text(statement))
        yield session
    finally:
        session.rollback()
        session.close()


def problems_of(db: Database) -> list[str]:
    with db.unit_of_work() as session:
        return audit.verify(session)


def test_appended_events_link_into_an_intact_chain(db: Database, frozen_clock: FrozenClock) -> None:
    append(db, 3, frozen_clock)
    with db.unit_of_work() as session:
        events = audit.tail(session, 10)
        assert audit.verify(session) == []
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:2]]
    first = events[0]
    assert (first.actor, first.action, first.subject, first.ip) == (
        "agent:0",
        "account.frozen",
        "customer:100",
        "203.0.113.7",
    )
    assert first.detail == {"case": 0, "reason": "caller reported a stolen phone"}
    assert events[1].occurred_at - events[0].occurred_at == timedelta(seconds=1)


def test_times_from_a_clock_in_another_zone_still_verify(
    db: Database, frozen_clock: FrozenClock
) -> None:
    frozen_clock.set(datetime(2026, 1, 15, 10, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Shanghai")))
    append(db, 2)
    with db.unit_of_work() as session:
        assert audit.verify(session) == []
        assert as_utc(audit.tail(session)[0].occurred_at) == datetime(
            2026, 1, 15, 2, 0, 0, 123456, tzinfo=UTC
        )


def test_the_database_refuses_to_edit_or_delete_events(db: Database) -> None:
    append(db, 2)
    for statement in (
        "UPDATE audit_events SET actor = 'customer:1' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 2",
    ):
        with pytest.raises(DBAPIError), db.unit_of_work() as session:
            session.execute(text(statement))
    assert problems_of(db) == []


def test_an_edited_event_is_detected(db: Database) -> None:
    append(db, 3)
    with tampering(db) as session:
        session.execute(text("UPDATE audit_events SET actor = 'system' WHERE seq = 2"))
        assert audit.verify(session) == ["event 2 was altered: its fields do not match its hash"]


def test_an_edited_event_with_its_hash_recomputed_breaks_the_next_link(db: Database) -> None:
    append(db, 3)
    with tampering(db) as session:
        event = session.get(AuditEvent, 2)
        assert event is not None
        forged_hash = audit.chain_hash(_with(event, ip="198.51.100.1"))
        session.execute(
            text("UPDATE audit_events SET ip = '198.51.100.1', hash = :h WHERE seq = 2"),
            {"h": forged_hash},
        )
        assert audit.verify(session) == ["event 3 does not link to the event before it"]


def test_a_deleted_event_in_the_middle_is_detected(db: Database) -> None:
    append(db, 4)
    with tampering(db) as session:
        session.execute(text("DELETE FROM audit_events WHERE seq IN (2, 3)"))
        assert audit.verify(session) == ["events 2 to 3 are missing: deleted from the log"]


def test_a_deleted_last_event_is_detected(db: Database) -> None:
    append(db, 3)
    with tampering(db) as session:
        session.execute(text("DELETE FROM audit_events WHERE seq = 3"))
        assert audit.verify(session) == ["event 3 is missing: the end of the log was cut off"]


def test_concurrent_writers_keep_the_chain_linear(db: Database) -> None:
    writers, each = 8, 10
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        try:
            start.wait()
            for number in range(each):
                with db.unit_of_work() as session:
                    audit.record(
                        session, actor=f"agent:{writer}", action="note", detail={"n": number}
                    )
        except BaseException as error:  # reported below; a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.unit_of_work() as session:
        seqs = session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
        assert audit.verify(session) == []
    assert seqs == list(range(1, writers * each + 1))


def test_an_event_rolled_back_with_its_transaction_leaves_no_trace(db: Database) -> None:
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        audit.record(session, actor="agent:1", action="account.frozen")
        raise RuntimeError("the action failed after it was audited")
    append(db, 1)
    with db.unit_of_work() as session:
        assert [e.seq for e in audit.tail(session)] == [1]
        assert audit.verify(session) == []


def test_secrets_are_refused_in_detail(db: Database) -> None:
    with pytest.raises(ValueError, match="secrets"), db.unit_of_work() as session:
        audit.record(session, actor="customer:1", action="login", detail={"password": "hunter2"})


# --- the command line (SQLite: the tampering here is committed) ----------------------------------


@pytest.fixture
def cli_db(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    path = tmp_path / "cli.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setenv("WALLETDESK_DATABASE_URL", f"sqlite:///{path}")
    config.get_settings.cache_clear()
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()
    config.get_settings.cache_clear()


def test_cli_verify_passes_an_intact_log_and_fails_a_tampered_one(cli_db: Database) -> None:
    append(cli_db, 3)
    runner = CliRunner()
    intact = runner.invoke(audit_app, ["verify"])
    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output
    assert is_sqlite(cli_db.engine)
    with cli_db.unit_of_work() as session:
        for statement in DROP_GUARDS["sqlite"]:
            session.execute(text(statement))
        session.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    tampered = runner.invoke(audit_app, ["verify"])
    assert tampered.exit_code == 1
    assert "event 2 is missing" in tampered.output


def test_cli_tail_shows_the_latest_events(cli_db: Database) -> None:
    append(cli_db, 3)
    shown = CliRunner().invoke(audit_app, ["tail", "-n", "2"])
    assert shown.exit_code == 0, shown.output
    assert "customer:102" in shown.output and "customer:101" in shown.output
    assert "customer:100" not in shown.output


def _with(event: AuditEvent, **changes: object) -> AuditEvent:
    copy = AuditEvent(
        seq=event.seq,
        occurred_at=event.occurred_at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        ip=event.ip,
        detail_json=event.detail_json,
        prev_hash=event.prev_hash,
    )
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy
