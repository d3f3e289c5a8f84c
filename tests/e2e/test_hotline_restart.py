"""Callers waiting in the queue when the server restarts keep their places (the queue is in the
database, not in the process), and the first of them goes to the first agent who accepts."""

from __future__ import annotations

import signal
import xml.etree.ElementTree as ET
from collections.abc import Callable

import httpx
from sqlalchemy import select

from tests.e2e.conftest import ServerProcess
from tests.e2e.hotline_support import always_open, silent_phone
from walletdesk.db import Database
from walletdesk.hotline.models import Call
from walletdesk.hotline.softphone import Softphone
from walletdesk.hotline.voice_paths import INCOMING
from walletdesk.staff.models import StaffRole
from walletdesk.staff.service import create_staff, issue_session


def _queue_up(client: httpx.Client, url: str, number: str) -> tuple[Softphone, str]:
    """A caller who chose English and pressed 0 for a person: the phone and its wait URL."""
    phone = silent_phone(client, url, number)
    document = phone.post(INCOMING)
    for digits in ("2", "0"):  # English; a person
        assert document is not None
        document = phone.post(document.find("Gather").get("action"), Digits=digits)
    assert document is not None
    enqueue = document.find("Enqueue")
    assert enqueue is not None, ET.tostring(document)
    return phone, enqueue.get("waitUrl", "")


def _poll(phone: Softphone, wait_url: str) -> ET.Element:
    document = phone.post(wait_url)
    assert document is not None
    return document


def _said(document: ET.Element) -> str:
    return "\n".join(say.text or "" for say in document.iter("Say"))


def _desk(client: httpx.Client, url: str, token: str, path: str, key: str, body: dict) -> dict:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    answer = client.post(url + path, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_calls_in_queue_survive_a_restart(
    launch_server: Callable[..., ServerProcess], e2e_db: Database
) -> None:
    always_open(e2e_db)
    first_server = launch_server()
    with httpx.Client(timeout=30.0) as client:
        first, first_wait = _queue_up(client, first_server.url, "+14155550101")
        second, second_wait = _queue_up(client, first_server.url, "+14155550102")
        assert "You are number 2 in line." in _said(_poll(second, second_wait))

        assert first_server.stop() in (0, -signal.SIGTERM)
        server = launch_server()  # a new process on the same database
        for phone in (first, second):
            phone.base_url = server.url
        assert "You are number 1 in line." in _said(_poll(first, first_wait))
        assert "You are number 2 in line." in _said(_poll(second, second_wait))

        with e2e_db.unit_of_work() as session:
            agent, _ = create_staff(
                session,
                username="agent.restart",
                display_name="Wang",
                role=StaffRole.AGENT,
                password="a long enough password 123",
                skills=("en",),
            )
            agent_id, token = agent.id, issue_session(session, agent)
            first_call = session.execute(select(Call.id).where(Call.sid == first.sid)).scalar_one()
        _desk(client, server.url, token, "/v1/desk/presence", "restart-1", {"state": "available"})
        answer = client.get(
            server.url + "/v1/desk/calls/offer", headers={"Authorization": f"Bearer {token}"}
        )
        offer = answer.json()["offer"]
        assert offer is not None and offer["call_id"] == first_call
        _desk(client, server.url, token, f"/v1/desk/calls/{offer['id']}/accept", "restart-2", {})

        # The first caller's next poll connects them to the agent; the second is now first.
        dial = _poll(first, first_wait).find("Dial")
        assert dial is not None and f"staff-{agent_id}" in ET.tostring(dial, encoding="unicode")
        assert "You are number 1 in line." in _said(_poll(second, second_wait))
