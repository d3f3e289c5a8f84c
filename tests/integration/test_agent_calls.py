"""The agent's side of a call through the API: presence, the live queue, the offer, accepting,
the caller's context (account data only for a strongly verified caller), notes, transfer,
ending with a disposition and wrap-up."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from tests.integration.queue_support import agent, call_of, new_call
from tests.integration.wallet_support import Person

from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.staff.models import StaffRole
from walletdesk.support.cases import open_contact
from walletdesk.support.models import CaseEvent, VerificationLevel
from walletdesk.support.verification import step as verification_step

_keys = itertools.count(1)


def post(client: TestClient, path: str, token: str, body: dict | None = None) -> dict:
    response = client.post(
        path,
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"key-{next(_keys)}"},
    )
    assert response.status_code < 300, response.text
    return response.json()


def get(client: TestClient, path: str, token: str) -> dict:
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_agent_takes_a_call_from_offer_to_wrap_up(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    _, token = agent(db, "agent.li", available=False)
    assert post(client, "/v1/desk/presence", token, {"state": "available"})["state"] == "available"
    waiting = new_call(db, "general")
    behind = new_call(db, "general", priority=0)

    general = next(q for q in get(client, "/v1/desk/queues", token) if q["queue"] == "general")
    assert general["waiting"] == 2
    assert [e["position"] for e in general["entries"]] == [1, 2]
    assert general["entries"][0]["status"] == "offered"

    offer = get(client, "/v1/desk/calls/offer", token)["offer"]
    assert offer["call_id"] == waiting
    accepted = post(client, f"/v1/desk/calls/{offer['id']}/accept", token)
    assert accepted["status"] == "connected"

    # An unverified caller: what the IVR knows, no account.
    context = get(client, f"/v1/desk/calls/{offer['id']}/context", token)
    assert context["account"] is None
    assert context["call"]["path"][0]["state"] == "menu"

    note = post(client, f"/v1/desk/calls/{offer['id']}/notes", token, {"text": "asked about fees"})
    with db.unit_of_work() as session:
        event = session.get(CaseEvent, note["id"])
        assert event.body == "asked about fees" and not event.customer_visible

    frozen_clock.advance(timedelta(minutes=3))
    ended = post(client, f"/v1/desk/calls/{offer['id']}/end", token, {"disposition": "resolved"})
    assert ended["presence"]["state"] == "wrap_up"
    with db.unit_of_work() as session:
        assert call_of(session, waiting).disposition == "resolved"
    # In wrap-up no call is offered; ending it early brings the next one.
    assert get(client, "/v1/desk/calls/offer", token)["offer"] is None
    assert post(client, "/v1/desk/presence/wrap-up/end", token)["state"] == "available"
    assert get(client, "/v1/desk/calls/offer", token)["offer"]["call_id"] == behind


def test_wrap_up_ends_by_itself(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    _, token = agent(db, "agent.li")
    new_call(db)
    entry = get(client, "/v1/desk/calls/offer", token)["offer"]["id"]
    post(client, f"/v1/desk/calls/{entry}/accept", token)
    post(client, f"/v1/desk/calls/{entry}/end", token, {"disposition": "resolved"})
    frozen_clock.advance(timedelta(seconds=31))  # general wraps up for 30 s
    assert get(client, "/v1/desk/presence", token)["state"] == "wrap_up"  # nothing moved yet
    get(client, "/v1/desk/queues", token)
    assert get(client, "/v1/desk/presence", token)["state"] == "available"


def test_strongly_verified_caller_shows_the_account(
    client: TestClient, db: Database, customer: Callable[..., Person]
) -> None:
    person = customer("王芳")
    _, token = agent(db, "agent.li")
    with db.unit_of_work() as session:
        contact = open_contact(session, channel="phone", customer_id=person.id, origin=person.phone)
        verification_step(contact, VerificationLevel.STRONG, "payment_pin", by=None, passed=True)
        contact_id = contact.id
    call = new_call(db, customer_id=person.id, contact_id=contact_id, number=person.phone)
    with db.unit_of_work() as session:
        call_of(session, call).verification = VerificationLevel.STRONG
    entry = get(client, "/v1/desk/calls/offer", token)["offer"]["id"]
    post(client, f"/v1/desk/calls/{entry}/accept", token)
    context = get(client, f"/v1/desk/calls/{entry}/context", token)
    assert context["call"]["verification"] == "strong"
    assert context["call"]["verification_methods"] == ["payment_pin"]
    assert context["account"]["customer"]["display_name"] == "王芳"
    assert "recent_transactions" in context["account"]


def test_transfer_to_a_supervisor(client: TestClient, db: Database) -> None:
    _, agent_token = agent(db, "agent.li")
    _, supervisor_token = agent(db, "sup.chen", role=StaffRole.SUPERVISOR, available=False)
    call = new_call(db)
    entry = get(client, "/v1/desk/calls/offer", agent_token)["offer"]["id"]
    post(client, f"/v1/desk/calls/{entry}/accept", agent_token)
    moved = post(client, f"/v1/desk/calls/{entry}/transfer", agent_token, {"supervisor": True})
    assert moved["status"] == "waiting" and "supervisor" in moved["skills"]
    post(client, "/v1/desk/presence", supervisor_token, {"state": "available"})
    offer = get(client, "/v1/desk/calls/offer", supervisor_token)["offer"]
    assert offer["call_id"] == call and offer["id"] == moved["id"]
    assert get(client, "/v1/desk/presence", agent_token)["state"] == "wrap_up"


def test_someone_elses_call_is_refused(client: TestClient, db: Database) -> None:
    _, li = agent(db, "agent.li")
    _, sam = agent(db, "agent.sam", available=False)
    new_call(db)
    entry = get(client, "/v1/desk/calls/offer", li)["offer"]["id"]
    response = client.post(
        f"/v1/desk/calls/{entry}/accept",
        headers={"Authorization": f"Bearer {sam}", "Idempotency-Key": "sam-1"},
    )
    assert response.status_code == 409 and response.json()["code"] == "queue_offer_gone"
    context = client.get(
        f"/v1/desk/calls/{entry}/context", headers={"Authorization": f"Bearer {sam}"}
    )
    assert context.status_code == 403
