"""The unit of work on both databases: writers on many threads all commit, taking turns."""

from __future__ import annotations

import threading

from sqlalchemy import select
from tests.integration.threads_support import run_together

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
