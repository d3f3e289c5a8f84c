"""The unit of work on both databases: writers on many threads all commit, taking turns."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from tests.integration.threads_support import run_together

from walletdesk import db as db_module
from walletdesk.db import Database
from walletdesk.wallet.models import Customer
from walletdesk.wallet.service import customers

WAIT = 10.0  # seconds: far longer than any read takes, far shorter than a writer here holds on


def test_units_of_work_on_many_threads_all_commit(db: Database) -> None:
    """SQLite writers take turns (a thread lock within the process): none fails as locked."""

    def register(n: int) -> None:
        with db.unit_of_work() as session:
            customers.create_customer(session, f"客户{n}", phone=f"+86137100000{n:02d}")

    run_together(30, register)  # re-raises the first thread's error
    with db.unit_of_work() as session:
        assert len(session.scalars(select(Customer)).all()) == 30


def test_a_unit_of_work_holds_no_one_up_before_its_first_statement(db: Database) -> None:
    """A top-up calls the card gateway before it touches the database: meanwhile other writers
    go on (on SQLite the writer lock is taken at the first statement, not when the block opens)."""
    opened, written = threading.Event(), threading.Event()
    others_went_on: list[bool] = []

    def call_out_first() -> None:
        with db.unit_of_work() as session:
            opened.set()
            others_went_on.append(written.wait(WAIT))  # the gateway answering, slowly
            customers.create_customer(session, "充值", phone="+8613700000004")

    calling = threading.Thread(target=call_out_first)
    calling.start()
    assert opened.wait(WAIT)
    with db.unit_of_work() as session:
        customers.create_customer(session, "同时", phone="+8613700000005")
    written.set()
    calling.join()
    assert others_went_on == [True]
    with db.unit_of_work() as session:
        assert len(session.scalars(select(Customer)).all()) == 2


def test_a_connection_closed_while_idle_in_the_pool_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarted, or an idle timeout closed a pooled connection: the next request
    gets a working one instead of an error."""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # idle: from the first use
    database, server_side = Database(postgres_url, pool_size=1), Database(postgres_url)
    backend = text("SELECT pg_backend_pid()")
    try:
        with database.unit_of_work() as session:
            pooled = session.execute(backend).scalar_one()
        with server_side.unit_of_work() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
        with database.unit_of_work() as session:
            assert session.execute(backend).scalar_one() != pooled
    finally:
        database.dispose()
        server_side.dispose()


@pytest.mark.parametrize(("idle_after", "pings"), [(0.0, 1), (3600.0, 0)])
def test_a_pooled_connection_is_pinged_only_after_sitting_idle(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, idle_after: float, pings: int
) -> None:
    """A busy server does not spend a round trip per request asking whether PostgreSQL is up."""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", idle_after)
    database = Database(postgres_url, pool_size=1)
    dialect, pinged = database.engine.dialect, []
    ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda connection: pinged.append(1) or ping(connection))
    try:
        for _ in range(2):  # the second takes the connection the first gave back
            with database.unit_of_work() as session:
                session.execute(text("SELECT 1"))
    finally:
        database.dispose()
    assert len(pinged) == pings
