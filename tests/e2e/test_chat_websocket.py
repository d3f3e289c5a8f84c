"""Web chat through a real `walletdesk serve` process, with real WebSocket clients (websockets).

A customer and an agent each get a ticket over HTTP, connect, and chat; the agent ends the chat
and the customer's record arrives in their in-app inbox, delivered by the server's own outbox
worker. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import ServerProcess
from walletdesk.db import Database
from walletdesk.staff.models import StaffRole
from walletdesk.staff.service import create_staff, issue_session
from walletdesk.support import service as hours
from walletdesk.wallet.service import customers

WAIT = 15.0  # seconds a frame may take on a busy machine
_people = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def start_server(
    launch_server: Callable[..., ServerProcess], e2e_db: Database
) -> Callable[[], str]:
    """Servers whose chat is open around the clock (the test must not depend on the hour);
    their email goes to a port nobody listens on, so only the in-app inbox receives."""
    with e2e_db.unit_of_work() as session:
        hours.set_schedule(
            session, "chat", time_zone="Asia/Shanghai", weekly={}, always_open=True, actor="e2e"
        )
    return lambda: launch_server(smtp_port=str(free_port())).url


def make_customer(db: Database, language: str) -> str:
    phone = f"+86137{uuid.uuid4().int % 10**4:04d}{next(_people) % 10**4:04d}"
    with db.unit_of_work() as session:
        _, token = customers.create_customer(session, "韩梅梅", phone=phone, language=language)
        return token


def make_agent(db: Database) -> str:
    with db.unit_of_work() as session:
        staff, _ = create_staff(
            session,
            username=f"e2e{uuid.uuid4().hex[:10]}",
            display_name="王芳",
            role=StaffRole.AGENT,
            password="long enough passphrase for the desk",
        )
        return issue_session(session, staff)


@contextmanager
def chat_socket(base_url: str, path: str, token: str) -> Iterator[ClientConnection]:
    """Ticket over HTTP with the bearer token, then the socket with ?ticket=, as a browser does."""
    answer = httpx.post(
        f"{base_url}{path}/tickets", headers={"Authorization": f"Bearer {token}"}, timeout=WAIT
    )
    assert answer.status_code == 201, answer.text
    url = f"{base_url.replace('http', 'ws', 1)}{path}?ticket={answer.json()['ticket']}"
    with connect(url, proxy=None, open_timeout=WAIT) as websocket:
        yield websocket


def until(websocket: ClientConnection, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        frame = json.loads(websocket.recv(timeout=deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind!r} frame within {WAIT}s")


def inbox_titles(base_url: str, token: str) -> list[str]:
    answer = httpx.get(
        f"{base_url}/v1/inbox", headers={"Authorization": f"Bearer {token}"}, timeout=WAIT
    )
    return [message["title"] for message in answer.json()["messages"]]


def test_a_customer_and_an_agent_chat_through_the_server(
    start_server: Callable[[], str], e2e_db: Database
) -> None:
    server = start_server()
    customer_token, agent_token = make_customer(e2e_db, "zh-CN"), make_agent(e2e_db)
    with (
        chat_socket(server, "/v1/support/chat", customer_token) as customer,
        chat_socket(server, "/v1/desk/chat", agent_token) as agent,
    ):
        assert until(customer, "waiting")["message"].startswith("目前没有空闲的客服")
        agent.send(json.dumps({"type": "available"}))
        assert until(customer, "waiting")["message"].startswith("客服马上为您服务")
        customer.send(json.dumps({"type": "message", "text": "我的充值还没到账"}))

        queue = until(agent, "queue")
        while not queue["waiting"] or queue["waiting"][0]["first_message"] is None:
            queue = until(agent, "queue")
        (waiting,) = queue["waiting"]
        assert (waiting["language"], waiting["first_message"]) == ("zh-CN", "我的充值还没到账")

        agent.send(json.dumps({"type": "accept", "chat_id": waiting["chat_id"]}))
        case_number = until(agent, "accepted")["case_number"]
        assert until(customer, "joined")["message"] == "客服 王芳 已接入。"
        assert until(agent, "message")["text"] == "我的充值还没到账"  # what was said before

        agent.send(
            json.dumps(
                {"type": "message", "chat_id": waiting["chat_id"], "text": "请稍等，我查一下。"}
            )
        )
        reply = until(customer, "message")
        while reply["from"] != "agent":
            reply = until(customer, "message")
        assert reply["text"] == "请稍等，我查一下。"

        agent.send(
            json.dumps(
                {
                    "type": "end",
                    "chat_id": waiting["chat_id"],
                    "summary": "充值已到账，银行处理延迟约十分钟。",
                }
            )
        )
        ended = until(customer, "ended")
        assert ended["case_number"] == case_number
        with pytest.raises(ConnectionClosedOK):
            customer.recv(timeout=WAIT)
        assert until(agent, "ended")["chat_id"] == waiting["chat_id"]

    # The record reaches the customer's inbox, sent by the server's own outbox worker.
    deadline = time.monotonic() + WAIT
    while case_number not in " ".join(inbox_titles(server, customer_token)):
        assert time.monotonic() < deadline, "the contact summary never reached the inbox"
        time.sleep(0.2)  # the worker sends in its own time: look again


def test_a_customer_on_one_server_and_an_agent_on_another_chat_through_the_database(
    start_server: Callable[[], str], e2e_db: Database
) -> None:
    first, second = start_server(), start_server()
    customer_token, agent_token = make_customer(e2e_db, "en"), make_agent(e2e_db)
    with (
        chat_socket(first, "/v1/support/chat", customer_token) as customer,
        chat_socket(second, "/v1/desk/chat", agent_token) as agent,
    ):
        assert until(customer, "waiting")["agents_available"] == 0
        agent.send(json.dumps({"type": "available"}))  # on the other server
        told = until(customer, "waiting")
        assert told["message"].startswith("An agent will be with you shortly")
        queue = until(agent, "queue")
        while not queue["waiting"]:
            queue = until(agent, "queue")
        chat_id = queue["waiting"][0]["chat_id"]
        agent.send(json.dumps({"type": "accept", "chat_id": chat_id}))
        assert until(customer, "joined")["agent"] == "王芳"

        customer.send(json.dumps({"type": "message", "text": "Is anyone there?"}))
        assert until(agent, "message")["text"] == "Is anyone there?"
        agent.send(json.dumps({"type": "message", "chat_id": chat_id, "text": "Yes, hello!"}))
        reply = until(customer, "message")
        while reply["from"] != "agent":
            reply = until(customer, "message")
        assert reply["text"] == "Yes, hello!"
