"""Voice webhooks take turns on their own threads (Settings.voice_threads): a call whose
webhook is stuck holds up the calls behind it, never the rest of the server, and every call is
answered once it moves again."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select, text

from tests.e2e.conftest import ServerProcess
from tests.e2e.hotline_support import silent_phone
from walletdesk.db import Database, is_sqlite
from walletdesk.hotline.models import Call
from walletdesk.hotline.voice_paths import INCOMING

STUCK = 1.5  # seconds a held webhook is left waiting, with the others behind it


def _menu(document: ET.Element | None) -> str:
    """The URL the greeting's menu posts its keys to."""
    assert document is not None
    gather = document.find("Gather")
    assert gather is not None, ET.tostring(document)
    return gather.get("action", "")


def _until_blocked_by(db: Database, holder: int) -> None:
    """Until a transaction waits for a lock the backend `holder` holds (PostgreSQL's view)."""
    blocked = text(
        "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.unit_of_work() as session:
            if session.execute(blocked, {"holder": holder}).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("the webhook never reached the locked call")


def test_a_stuck_webhook_holds_up_only_the_webhooks_behind_it(
    launch_server: Callable[..., ServerProcess], e2e_db: Database
) -> None:
    if is_sqlite(e2e_db.engine):
        pytest.skip("SQLite: a transaction holding the write lock holds up every request")
    server = launch_server(voice_threads="1")
    with httpx.Client(timeout=30.0) as client, ThreadPoolExecutor(2) as pool:
        first = silent_phone(client, server.url, "+14155550131")
        menu_url = _menu(first.post(INCOMING))
        second = silent_phone(client, server.url, "+14155550132")
        with e2e_db.unit_of_work() as session:
            # The first call's record locked, as a slow transaction elsewhere would hold it:
            # its next webhook waits on the lock, on the webhooks' only thread.
            session.execute(select(Call).where(Call.sid == first.sid).with_for_update()).one()
            holder = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            stuck: Future[ET.Element | None] = pool.submit(first.post, menu_url, Digits="2")
            _until_blocked_by(e2e_db, holder)
            behind: Future[ET.Element | None] = pool.submit(second.post, INCOMING)
            health = client.get(server.url + "/health", timeout=STUCK)
            assert health.status_code == 200  # the rest of the server answers meanwhile
            with pytest.raises(TimeoutError):  # the call behind waits for the only thread
                behind.result(timeout=STUCK)
            assert not stuck.done()
        # The lock let go: the call moves on, and the one behind it is answered.
        assert "Gather" in ET.tostring(stuck.result(timeout=30), encoding="unicode")
        _menu(behind.result(timeout=30))
