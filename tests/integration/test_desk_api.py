"""The agent desk over HTTP: nothing of an account shows before the caller is verified, every
action is refused below its level, resets go only to registered addresses, supervisors approve
what agents may not do alone, and every change takes an Idempotency-Key."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.integration.desk_support import (
    Member,
    latest_code,
    lock_by_risk_engine,
    make_staff,
    messages,
    send_money,
    status_of,
)
from tests.integration.wallet_support import Books, Person

from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.staff.models import StaffRole

LINA_PHONE = "+8613900139000"
LINA_EMAIL = "lina@example.com"
_keys = itertools.count(1)

# Data endpoints and actions, each with the level it needs: (method, path, body, level).
GUARDED: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "account", None, "knowledge"),
    ("GET", "transactions/123456789012/explanation", None, "knowledge"),
    ("POST", "actions/password-reset", {"channel": "email"}, "strong"),
    ("POST", "actions/unlock", {"reason": "cards were mine"}, "strong"),
    ("POST", "actions/change-contact", {"phone": "+8613911112222", "reason": "new SIM"}, "strong"),
    ("POST", "actions/change-contact/confirm", {"what": "phone", "code": "123456"}, "strong"),
    (
        "POST",
        "actions/goodwill",
        {"amount": "10.00", "currency": "CNY", "reason": "sorry"},
        "strong",
    ),
]
PROBLEM_KEYS = {"type", "title", "status", "code", "required", "current"}


@pytest.fixture
def agent(db: Database) -> Member:
    return make_staff(db, "agent.li", per_action=50_00, per_day=100_00)


@pytest.fixture
def supervisor(db: Database) -> Member:
    return make_staff(db, "sup.chen", StaffRole.SUPERVISOR)


@pytest.fixture
def lina(db: Database, customer: Callable[..., Person], books: Books) -> Person:
    person = customer("李娜", phone=LINA_PHONE, email=LINA_EMAIL)
    customer("王芳", email="wang@example.com")
    send_money(db, books, person.id, "wang@example.com", 321_00)  # what she can tell an agent
    books.fund(person.id, 321_00)
    return person


def post(client: TestClient, member: Member, path: str, body: Any, key: str | None = None) -> Any:
    headers = {**member.auth, "Idempotency-Key": key or f"k{next(_keys)}"}
    return client.post(f"/v1/desk/{path}", json=body, headers=headers)


def call(
    client: TestClient, member: Member, contact_id: int, method: str, path: str, body: Any
) -> Any:
    if method == "GET":
        return client.get(f"/v1/desk/contacts/{contact_id}/{path}", headers=member.auth)
    return post(client, member, f"contacts/{contact_id}/{path}", body)


def open_call(client: TestClient, agent: Member, origin: str | None = LINA_PHONE) -> dict:
    answer = post(client, agent, "contacts", {"channel": "phone", "origin": origin})
    assert answer.status_code == 201, answer.text
    return answer.json()


def verify_knowledge(client: TestClient, agent: Member, contact_id: int) -> None:
    body = {"amount": "321.00", "currency": "CNY"}
    answer = post(client, agent, f"contacts/{contact_id}/verify/knowledge", body)
    assert answer.json()["verification_level"] == "knowledge", answer.text


def verify_strong(
    client: TestClient, db: Database, agent: Member, person: Person, contact_id: int
) -> None:
    sent = post(client, agent, f"contacts/{contact_id}/verify/code/send", {"channel": "sms"})
    assert sent.status_code == 202, sent.text
    _destination, code = latest_code(db, person.id)
    checked = post(client, agent, f"contacts/{contact_id}/verify/code/check", {"code": code})
    assert checked.json()["verification_level"] == "strong", checked.text


def assert_no_account_data(answer: Any) -> None:
    text = answer.text
    assert set(answer.json()) <= PROBLEM_KEYS
    for secret in ("李娜", "321", LINA_PHONE, LINA_EMAIL, "balance"):
        assert secret not in text


@pytest.mark.parametrize(("method", "path", "body", "level"), GUARDED)
def test_with_caller_id_alone_every_endpoint_is_refused_and_shows_nothing(
    client: TestClient,
    db: Database,
    agent: Member,
    lina: Person,
    method: str,
    path: str,
    body: Any,
    level: str,
) -> None:
    contact = open_call(client, agent)
    assert contact["verification_level"] == "caller_id"

    answer = call(client, agent, contact["id"], method, path, body)

    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "contact_verification_insufficient"
    assert answer.json()["required"] == level
    assert_no_account_data(answer)


@pytest.mark.parametrize(
    ("method", "path", "body", "level"), [g for g in GUARDED if g[3] == "strong"]
)
def test_knowledge_is_not_enough_for_sensitive_actions(
    client: TestClient,
    db: Database,
    agent: Member,
    lina: Person,
    method: str,
    path: str,
    body: Any,
    level: str,
) -> None:
    contact_id = open_call(client, agent)["id"]
    verify_knowledge(client, agent, contact_id)

    answer = call(client, agent, contact_id, method, path, body)

    assert answer.status_code == 403
    assert (answer.json()["code"], answer.json()["current"]) == (
        "contact_verification_insufficient",
        "knowledge",
    )
    assert_no_account_data(answer)
    assert messages(db, lina.id, "agent_action") == []
    assert status_of(db, lina.id) == "active"


def test_freeze_needs_no_verification_but_a_customer(
    client: TestClient, db: Database, agent: Member, lina: Person
) -> None:
    contact_id = open_call(client, agent, origin=None)["id"]
    path = f"contacts/{contact_id}/actions/freeze"

    nobody = post(client, agent, path, {"reason": "caller lost the phone"})
    post(client, agent, f"contacts/{contact_id}/customer", {"phone": LINA_PHONE})
    frozen = post(client, agent, path, {"reason": "caller lost the phone"})

    assert nobody.status_code == 409 and nobody.json()["code"] == "contact_customer_required"
    assert frozen.status_code == 200 and frozen.json()["account_status"] == "frozen"
    assert status_of(db, lina.id) == "frozen"


def test_attaching_a_claimed_customer_reveals_only_whether_one_matched(
    client: TestClient, agent: Member, lina: Person
) -> None:
    contact = open_call(client, agent, origin=None)
    assert contact["customer_attached"] is False

    found = post(client, agent, f"contacts/{contact['id']}/customer", {"email": LINA_EMAIL})
    missing = post(client, agent, f"contacts/{contact['id']}/customer", {"phone": "13700000000"})

    assert found.json()["customer_attached"] is True
    assert missing.json()["customer_attached"] is False
    for answer in (found, missing):
        assert set(answer.json()) == set(contact)
        assert "李娜" not in answer.text and "lina" not in answer.text


def test_a_verified_call_sees_the_account_and_acts_and_the_customer_gets_the_record(
    client: TestClient, db: Database, agent: Member, lina: Person
) -> None:
    contact_id = open_call(client, agent)["id"]
    verify_knowledge(client, agent, contact_id)

    account = client.get(f"/v1/desk/contacts/{contact_id}/account", headers=agent.auth)
    assert account.status_code == 200, account.text
    body = account.json()
    assert body["customer"]["display_name"] == "李娜"
    assert body["customer"]["phone"] == "+861****9000"  # enough to recognise, not to harvest
    assert body["balances"][0]["balance"] == "321.00"
    number = body["recent_transactions"][0]["number"]
    explained = client.get(
        f"/v1/desk/contacts/{contact_id}/transactions/{number}/explanation", headers=agent.auth
    )
    assert (
        explained.json()["status"] == "succeeded" and explained.json()["account_status"] == "active"
    )

    verify_strong(client, db, agent, lina, contact_id)
    credit = {"amount": "20.00", "currency": "CNY", "reason": "Refund took too long"}
    credited = post(client, agent, f"contacts/{contact_id}/actions/goodwill", credit)
    assert credited.status_code == 201, credited.text
    assert credited.json()["transaction"]["kind"] == "goodwill"
    assert credited.json()["transaction"]["direction"] == "in"

    ended = post(
        client,
        agent,
        f"contacts/{contact_id}/end",
        {"summary": "Explained a refund; credited 20.00", "next_steps": "Nothing to do"},
    )
    assert ended.status_code == 200 and ended.json()["ended_at"]
    [(_channel, _d, record), *_] = messages(db, lina.id, "contact_summary")
    assert record["summary"] == "Explained a refund; credited 20.00" and record["case_number"]
    again = client.get(f"/v1/desk/contacts/{contact_id}/account", headers=agent.auth)
    assert again.json()["code"] == "contact_ended"


def test_an_agent_reset_names_no_destination_and_goes_to_the_registered_email(
    client: TestClient, db: Database, agent: Member, lina: Person
) -> None:
    contact_id = open_call(client, agent)["id"]
    verify_strong(client, db, agent, lina, contact_id)
    path = f"contacts/{contact_id}/actions/password-reset"

    elsewhere = post(client, agent, path, {"channel": "email", "to": "thief@example.com"})
    assert elsewhere.status_code == 422
    sent = post(client, agent, path, {"channel": "email"})

    assert sent.status_code == 200 and sent.json() == {"status": "sent", "channel": "email"}
    [(_channel, destination, params)] = messages(db, lina.id, "password_reset_link")
    assert destination == LINA_EMAIL
    assert params["link"] not in sent.text


def test_unlock_through_the_api_waits_for_another_supervisor(
    client: TestClient,
    db: Database,
    agent: Member,
    supervisor: Member,
    lina: Person,
    books: Books,
) -> None:
    lock_by_risk_engine(db, books, lina.id)
    contact_id = open_call(client, agent)["id"]
    verify_strong(client, db, agent, lina, contact_id)

    asked = post(client, agent, f"contacts/{contact_id}/actions/unlock", {"reason": "new cards"})
    assert asked.status_code == 202, asked.text
    approval = asked.json()["approval"]
    assert asked.json()["status"] == "approval_pending"
    assert (approval["action"], approval["verification_level"]) == ("unlock", "strong")
    assert approval["verified_by"] == ["caller_id", "code_sms"]

    assert client.get("/v1/desk/approvals", headers=agent.auth).status_code == 403
    by_agent = post(client, agent, f"approvals/{approval['id']}/approve", {"note": "ok"})
    assert by_agent.status_code == 403
    assert status_of(db, lina.id) == "locked"

    listed = client.get("/v1/desk/approvals", headers=supervisor.auth).json()
    assert [a["id"] for a in listed] == [approval["id"]]
    approved = post(client, supervisor, f"approvals/{approval['id']}/approve", {"note": "ok"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert status_of(db, lina.id) == "active"
    again = post(client, supervisor, f"approvals/{approval['id']}/reject", {"note": "late"})
    assert again.json()["code"] == "approval_not_pending"


def test_a_wrong_code_is_counted_even_though_it_is_refused(
    client: TestClient, db: Database, agent: Member, lina: Person
) -> None:
    contact_id = open_call(client, agent)["id"]
    post(client, agent, f"contacts/{contact_id}/verify/code/send", {"channel": "sms"})
    _destination, code = latest_code(db, lina.id)
    wrong = "000000" if code != "000000" else "111111"

    missed = post(client, agent, f"contacts/{contact_id}/verify/code/check", {"code": wrong})

    assert missed.status_code == 422 and missed.json()["code"] == "code_invalid"
    contact = client.get(f"/v1/desk/contacts/{contact_id}", headers=agent.auth).json()
    assert contact["verification_steps"][-1]["passed"] is False
    assert code not in json.dumps(contact)


def test_changes_take_an_idempotency_key_and_a_retry_sends_no_second_code(
    client: TestClient, db: Database, agent: Member, lina: Person
) -> None:
    contact_id = open_call(client, agent)["id"]
    path = f"/v1/desk/contacts/{contact_id}/verify/code/send"

    unkeyed = client.post(path, json={"channel": "sms"}, headers=agent.auth)
    first = post(client, agent, path.removeprefix("/v1/desk/"), {"channel": "sms"}, key="same")
    retry = post(client, agent, path.removeprefix("/v1/desk/"), {"channel": "sms"}, key="same")

    assert unkeyed.status_code == 400
    assert first.status_code == retry.status_code == 202
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert len(messages(db, lina.id, "support_verification_code")) == 1


def test_the_desk_is_for_signed_in_agents(client: TestClient, lina: Person) -> None:
    answer = client.post(
        "/v1/desk/contacts", json={"channel": "phone"}, headers={"Idempotency-Key": "x"}
    )
    assert answer.status_code == 401
    as_customer = client.get("/v1/desk/approvals", headers=lina.auth)
    assert as_customer.status_code == 401


def test_another_agent_cannot_use_someone_elses_contact(
    client: TestClient, db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    other = make_staff(db, "agent.sam")
    contact_id = open_call(client, agent)["id"]
    verify_knowledge(client, agent, contact_id)

    answer = client.get(f"/v1/desk/contacts/{contact_id}/account", headers=other.auth)

    assert answer.status_code == 403 and answer.json()["code"] == "contact_not_yours"
    assert "321" not in answer.text
