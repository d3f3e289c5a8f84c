"""Web chat over WebSocket (Starlette's test client), on SQLite and PostgreSQL.

The clock is frozen at 10:00 in Shanghai, inside the chat's default hours (08:00-22:00), unless
a test moves it. Customers and agents authenticate as a browser would: a ticket from a normal
authenticated POST, then the socket with ?ticket=.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from tests.integration.wallet_support import Person

from walletdesk.app import create_app
from walletdesk.audit.models import AuditEvent
from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.hotline.models import AgentPresence
from walletdesk.kit.clock import FrozenClock
from walletdesk.notify.models import OutboxMessage
from walletdesk.staff.models import StaffRole
from walletdesk.staff.service import create_staff, issue_session
from walletdesk.support import cases
from walletdesk.support.models import Case, CaseEvent, Contact
from walletdesk.wallet.gateway import SandboxGateway

CUSTOMER_CHAT = "/v1/support/chat"
DESK_CHAT = "/v1/desk/chat"
_usernames = itertools.count(1)


def make_agent(db: Database, name: str = "Wang Fang", role: StaffRole = StaffRole.AGENT) -> str:
    """A staff member's bearer token."""
    with db.unit_of_work() as session:
        staff, _ = create_staff(
            session,
            username=f"agent{next(_usernames)}",
            display_name=name,
            role=role,
            password="long enough passphrase for the desk",
        )
        return issue_session(session, staff)


def ticket(client: TestClient, path: str, token: str) -> str:
    answer = client.post(f"{path}/tickets", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket"]


def connect(client: TestClient, path: str, token: str) -> Any:
    return client.websocket_connect(f"{path}?ticket={ticket(client, path, token)}")


def until(socket: WebSocketTestSession, kind: str) -> dict[str, Any]:
    """The next frame of type `kind`, skipping others (position updates and the like)."""
    for _ in range(20):
        frame = socket.receive_json()
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind!r} frame")


def first_waiting(agent: WebSocketTestSession) -> dict[str, Any]:
    """The first chat in line, once the agent's queue shows one."""
    for _ in range(20):
        waiting = until(agent, "queue")["waiting"]
        if waiting:
            return waiting[0]
    raise AssertionError("no chat waiting")


def chat_case(db: Database, number: str) -> tuple[Case, list[CaseEvent], list[Contact]]:
    with db.unit_of_work() as session:
        case = cases.find_case(session, number)
        events = cases.timeline(session, case, for_customer=False)
        contacts = list(session.scalars(select(Contact).where(Contact.case_id == case.id)))
        return case, events, contacts


def summaries_sent(db: Database, customer_id: int) -> list[str]:
    with db.unit_of_work() as session:
        rows = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.customer_id == customer_id, OutboxMessage.event == "contact_summary"
            )
        )
        return sorted(row.channel for row in rows)


def said(events: list[CaseEvent]) -> list[tuple[str, str | None]]:
    return [(e.kind, e.body) for e in events if e.kind in ("message_in", "message_out")]


@pytest.mark.parametrize(
    ("language", "opening"),
    [("en", "We open again on Fri 16 Jan 08:00"), ("zh-CN", "将于 1月16日 08:00")],
)
def test_out_of_hours_the_chat_says_when_it_opens_and_takes_a_message(
    client: TestClient,
    db: Database,
    customer: Callable[..., Person],
    frozen_clock: FrozenClock,
    language: str,
    opening: str,
) -> None:
    frozen_clock.set(datetime(2026, 1, 15, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    li = customer("Li Lei", email="li.lei@example.com", language=language)
    with connect(client, CUSTOMER_CHAT, li.token) as socket:
        closed = socket.receive_json()
        assert closed["type"] == "closed"
        assert opening in closed["message"] and "Asia/Shanghai" in closed["message"]
        assert closed["opens_at"] == "2026-01-16T00:00:00+00:00"
        assert closed["can_leave_message"] is True

        socket.send_json({"type": "message", "text": "Anyone there?"})
        assert socket.receive_json()["code"] == "chat_closed"

        socket.send_json({"type": "leave_message", "text": "My card was declined twice."})
        left = socket.receive_json()
        assert left["type"] == "message_left"
        with pytest.raises(WebSocketDisconnect):
            socket.receive_json()

    case, events, (contact,) = chat_case(db, left["case_number"])
    assert (case.customer_id, case.channel) == (li.id, "chat")
    assert said(events) == [("message_in", "My card was declined twice.")]
    assert contact.channel == "chat" and contact.ended_at is not None
    assert summaries_sent(db, li.id) == ["email", "inapp"]


def test_with_no_agent_free_the_customer_is_told_and_can_leave_a_message(
    client: TestClient, db: Database, customer: Callable[..., Person]
) -> None:
    li = customer("Li Lei", email="li.lei@example.com", language="en")
    with connect(client, CUSTOMER_CHAT, li.token) as socket:
        waiting = until(socket, "waiting")
        assert (waiting["waiting"], waiting["position"], waiting["agents_available"]) == (1, 1, 0)
        assert waiting["message"].startswith("No agent is free right now. 1 waiting")
        assert waiting["can_leave_message"] is True

        socket.send_json({"type": "message", "text": "Where is my refund?"})
        echo = until(socket, "message")
        assert (echo["from"], echo["text"]) == ("customer", "Where is my refund?")

        socket.send_json({"type": "leave_message", "text": "Order 8821, refunded on Monday."})
        left = until(socket, "message_left")
        assert left["case_number"] in left["message"]

    case, events, (contact,) = chat_case(db, left["case_number"])
    assert case.channel == "chat" and case.subject == "Where is my refund?"
    assert said(events) == [
        ("message_in", "Where is my refund?"),
        ("message_in", "Order 8821, refunded on Monday."),
    ]
    assert contact.ended_at is not None and contact.agent_id is None
    assert summaries_sent(db, li.id) == ["email", "inapp"]


def test_an_agent_accepts_and_messages_reach_both_sides(
    client: TestClient, db: Database, customer: Callable[..., Person]
) -> None:
    li = customer("Li Lei", email="li.lei@example.com", language="en")
    agent_token = make_agent(db, "Wang Fang")
    with (
        connect(client, CUSTOMER_CHAT, li.token) as customer_socket,
        connect(client, DESK_CHAT, agent_token) as agent_socket,
    ):
        until(customer_socket, "waiting")
        queue = until(agent_socket, "queue")
        while not queue["waiting"]:  # the agent may have looked before the chat was opened
            queue = until(agent_socket, "queue")
        (waiting,) = queue["waiting"]
        assert waiting["language"] == "en" and queue["available"] is False

        agent_socket.send_json({"type": "available"})
        told = until(customer_socket, "waiting")
        assert told["agents_available"] == 1
        assert told["message"].startswith("An agent will be with you shortly")

        agent_socket.send_json({"type": "accept", "chat_id": waiting["chat_id"]})
        accepted = until(agent_socket, "accepted")
        joined = until(customer_socket, "joined")
        assert joined["agent"] == "Wang Fang"
        assert joined["message"] == "Wang Fang joined the chat."

        customer_socket.send_json({"type": "message", "text": "My top-up is missing."})
        heard = until(agent_socket, "message")
        assert (heard["chat_id"], heard["from"], heard["text"]) == (
            waiting["chat_id"],
            "customer",
            "My top-up is missing.",
        )
        agent_socket.send_json(
            {"type": "message", "chat_id": waiting["chat_id"], "text": "Let me look at it."}
        )
        answer = until(customer_socket, "message")
        while answer["from"] != "agent":  # the customer's own line comes back first
            answer = until(customer_socket, "message")
        assert answer["text"] == "Let me look at it."

        # A second agent is too late for it.
        with connect(client, DESK_CHAT, make_agent(db, "Zhao Lei")) as late:
            late.send_json({"type": "accept", "chat_id": waiting["chat_id"]})
            assert until(late, "error")["code"] == "chat_taken"

    case, events, (contact,) = chat_case(db, accepted["case_number"])
    assert said(events) == [
        ("message_in", "My top-up is missing."),
        ("message_out", "Let me look at it."),
    ]
    assert contact.channel == "chat" and contact.customer_id == li.id
    # The agent who took the chat owns its case.
    assert case.status == "open" and case.owner_id is not None
    assert [e.actor for e in events if e.kind == "message_out"] == [f"staff:{case.owner_id}"]


def test_the_agent_ends_the_chat_and_the_customer_gets_the_record(
    client: TestClient, db: Database, customer: Callable[..., Person]
) -> None:
    li = customer("Li Lei", email="li.lei@example.com", language="en")
    with (
        connect(client, CUSTOMER_CHAT, li.token) as customer_socket,
        connect(client, DESK_CHAT, make_agent(db)) as agent_socket,
    ):
        customer_socket.send_json({"type": "message", "text": "Is my account frozen?"})
        chat_id = first_waiting(agent_socket)["chat_id"]
        agent_socket.send_json({"type": "accept", "chat_id": chat_id})
        until(customer_socket, "joined")
        agent_socket.send_json(
            {
                "type": "end",
                "chat_id": chat_id,
                "summary": "Your account is not frozen; the payment failed on the card's side.",
                "next_steps": "Try the payment again or use another card.",
            }
        )
        ended = until(customer_socket, "ended")
        assert ended["case_number"] in ended["message"]
        with pytest.raises(WebSocketDisconnect):
            customer_socket.receive_json()
        assert until(agent_socket, "ended")["chat_id"] == chat_id

    _, events, (contact,) = chat_case(db, ended["case_number"])
    assert contact.summary == "Your account is not frozen; the payment failed on the card's side."
    assert contact.summary_sent_at is not None
    assert [e.kind for e in events][-1] == "contact_summary"
    assert summaries_sent(db, li.id) == ["email", "inapp"]
    with db.unit_of_work() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("chat.%")))
        assert sorted(actions) == ["chat.accepted", "chat.ended"]


def test_a_customer_who_leaves_ends_the_chat_with_a_summary_for_both(
    client: TestClient, db: Database, customer: Callable[..., Person]
) -> None:
    li = customer("Li Lei", email="li.lei@example.com", language="en")
    with connect(client, DESK_CHAT, make_agent(db, "Wang Fang")) as agent_socket:
        with connect(client, CUSTOMER_CHAT, li.token) as customer_socket:
            customer_socket.send_json({"type": "message", "text": "How do I change my PIN?"})
            until(customer_socket, "message")  # stored
            chat_id = first_waiting(agent_socket)["chat_id"]
            agent_socket.send_json({"type": "accept", "chat_id": chat_id})
            until(customer_socket, "joined")
        ended = until(agent_socket, "ended")  # closing the window ends it

    _, _, (contact,) = chat_case(db, ended["case_number"])
    assert contact.summary == (
        "You chatted with Wang Fang in the web chat, starting with: “How do I change my PIN?”"
    )
    assert summaries_sent(db, li.id) == ["email", "inapp"]


def test_when_the_agent_drops_out_the_customer_waits_for_the_next(
    client: TestClient, db: Database, customer: Callable[..., Person]
) -> None:
    li = customer("Li Lei", language="en")
    with connect(client, CUSTOMER_CHAT, li.token) as customer_socket:
        with connect(client, DESK_CHAT, make_agent(db)) as agent_socket:
            chat_id = first_waiting(agent_socket)["chat_id"]
            agent_socket.send_json({"type": "accept", "chat_id": chat_id})
            until(customer_socket, "joined")
        assert until(customer_socket, "requeued")["message"].startswith("Your agent was")
        assert until(customer_socket, "waiting")["position"] == 1

        with connect(client, DESK_CHAT, make_agent(db, "Zhao Lei")) as next_agent:
            assert first_waiting(next_agent)["chat_id"] == chat_id
            next_agent.send_json({"type": "accept", "chat_id": chat_id})
            assert until(customer_socket, "joined")["agent"] == "Zhao Lei"


def test_a_customer_on_one_process_is_told_of_an_agent_available_on_another(
    client: TestClient,
    db: Database,
    settings: Settings,
    gateway: SandboxGateway,
    customer: Callable[..., Person],
) -> None:
    li = customer("Li Lei", language="en")
    with connect(client, CUSTOMER_CHAT, li.token) as customer_socket:
        assert until(customer_socket, "waiting")["agents_available"] == 0
        with TestClient(create_app(settings, db, gateway)) as other_process:
            with connect(other_process, DESK_CHAT, make_agent(db)) as agent_socket:
                agent_socket.send_json({"type": "available"})
                told = until(customer_socket, "waiting")  # by polling: no bell crosses processes
                assert told["agents_available"] == 1
                assert told["message"].startswith("An agent will be with you shortly")
                queue = until(agent_socket, "queue")
                while not queue["available"]:
                    queue = until(agent_socket, "queue")
                assert queue["agents_available"] == 1
            # The agent closed the desk they made themselves available in: they are away.
            assert until(customer_socket, "waiting")["agents_available"] == 0
    with db.unit_of_work() as session:
        assert [p.state for p in session.scalars(select(AgentPresence))] == ["away"]


def test_a_ticket_opens_one_socket_within_a_minute_and_only_for_its_kind(
    client: TestClient, db: Database, customer: Callable[..., Person], frozen_clock: FrozenClock
) -> None:
    li = customer("Li Lei", language="en")
    used = ticket(client, CUSTOMER_CHAT, li.token)
    with client.websocket_connect(f"{CUSTOMER_CHAT}?ticket={used}") as socket:
        assert until(socket, "waiting")["position"] == 1
    stale = ticket(client, CUSTOMER_CHAT, li.token)
    frozen_clock.advance(timedelta(seconds=61))
    for refused in (used, stale, "not-a-ticket"):
        with client.websocket_connect(f"{CUSTOMER_CHAT}?ticket={refused}") as socket:
            assert socket.receive_json()["code"] == "chat_ticket_invalid"
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 4401

    # A customer's ticket is no way into the desk, and a customer cannot get a desk ticket.
    fresh = ticket(client, CUSTOMER_CHAT, li.token)
    with client.websocket_connect(f"{DESK_CHAT}?ticket={fresh}") as socket:
        assert socket.receive_json()["code"] == "chat_ticket_invalid"
    answer = client.post(f"{DESK_CHAT}/tickets", headers=li.auth)
    assert answer.status_code == 401
