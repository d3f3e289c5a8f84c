"""Disputes through the HTTP API: the customer files and uploads, the merchant answers, the desk
grants provisional credit and a supervisor decides; an agent files for a verified caller."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.integration.desk_support import audit_events, make_staff, open_call, staff_in
from tests.integration.wallet_support import Books, Person, Shop

from walletdesk.db import Database
from walletdesk.staff.models import StaffRole
from walletdesk.support import verification
from walletdesk.wallet.service import payments

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
_keys = itertools.count(1)


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"dispute-test-{next(_keys)}"}


class Scene:
    def __init__(self, client: TestClient, db: Database, buyer: Person, shop: Shop, number: str):
        self.client, self.db, self.buyer, self.shop, self.payment = client, db, buyer, shop, number

    def post(self, path: str, who: Any, json: Any = None, **kwargs: Any) -> Any:
        headers = {**who.auth, **key(), **kwargs.pop("headers", {})}
        return self.client.post(path, json=json, headers=headers, **kwargs)

    def get(self, path: str, who: Any, **kwargs: Any) -> Any:
        return self.client.get(path, headers=who.auth, **kwargs)

    def file(self, **body: Any) -> dict[str, Any]:
        body = {
            "transaction_number": self.payment,
            "reason": "not_received",
            "description": "The game pack never arrived",
            **body,
        }
        answer = self.post("/v1/disputes", self.buyer, body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def wallet(self) -> dict[str, Any]:
        (cny,) = [w for w in self.get("/v1/wallets", self.buyer).json() if w["currency"] == "CNY"]
        return cny


@pytest.fixture
def scene(
    client: TestClient,
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
) -> Scene:
    buyer = customer("张伟", phone="+8613800138000", email="zhangwei@example.com")
    shop = merchant("GAMEZONE", fee_bps=100)
    books.fund(buyer.id, 1000_00)
    with db.unit_of_work() as session:
        number = payments.pay(session, buyer.id, shop.code, 648_00, "CNY").number
    return Scene(client, db, buyer, shop, number)


def test_the_customer_files_replays_reads_and_withdraws(scene: Scene) -> None:
    body = {
        "transaction_number": scene.payment,
        "reason": "unauthorised",
        "description": "我没有买过这个",
        "amount": "600.00",
    }
    headers = {**scene.buyer.auth, "Idempotency-Key": "file-once"}
    first = scene.client.post("/v1/disputes", json=body, headers=headers)
    again = scene.client.post("/v1/disputes", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    dispute = first.json()
    assert (dispute["status"], dispute["amount"], dispute["reason"]) == (
        "awaiting_merchant",
        "600.00",
        "unauthorised",
    )
    assert dispute["offers"] == ["freeze_account", "replace_card"]
    assert len(dispute["case_number"]) == 10 and dispute["merchant"] == "GAMEZONE Ltd"
    listed = scene.get("/v1/disputes", scene.buyer).json()
    assert [d["id"] for d in listed["items"]] == [dispute["id"]]
    assert scene.get(f"/v1/disputes/{dispute['id']}", scene.buyer).json() == dispute
    withdrawn = scene.post(f"/v1/disputes/{dispute['id']}/withdraw", scene.buyer)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"


def test_refusals_are_problems_in_the_callers_language(scene: Scene) -> None:
    scene.file()
    second = scene.post(
        "/v1/disputes",
        scene.buyer,
        {"transaction_number": scene.payment, "reason": "duplicate", "description": "x"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["code"] == "already_disputed" and "争议" in second.json()["title"]
    malformed = scene.post(
        "/v1/disputes",
        scene.buyer,
        {"transaction_number": "000000000000", "reason": "bogus", "description": "x"},
    )
    assert malformed.status_code == 422 and malformed.json()["code"] == "invalid_request"


def test_the_unauthorised_charge_offer_freezes_the_account(scene: Scene) -> None:
    dispute = scene.file(reason="unauthorised")
    frozen = scene.post(f"/v1/disputes/{dispute['id']}/freeze-account", scene.buyer)
    assert frozen.status_code == 200 and frozen.json() == {"status": "frozen"}
    assert scene.get("/v1/me", scene.buyer).json()["status"] == "frozen"


def test_evidence_is_uploaded_as_the_body_and_checked(scene: Scene, settings: Any) -> None:
    dispute = scene.file()
    path = f"/v1/disputes/{dispute['id']}/evidence"
    png = {"Content-Type": "image/png"}
    added = scene.post(path, scene.buyer, content=PNG, params={"filename": "票据.png"}, headers=png)
    assert added.status_code == 201, added.text
    (evidence,) = added.json()["evidence"]
    assert (evidence["filename"], evidence["content_type"], evidence["size"]) == (
        "票据.png",
        "image/png",
        len(PNG),
    )
    program = scene.post(path, scene.buyer, content=b"MZ\x90\x00binary", headers=png)
    assert program.status_code == 415 and program.json()["code"] == "evidence_type_not_allowed"
    limit = settings.dispute_evidence_max_kb * 1024
    huge = scene.post(path, scene.buyer, content=b"a" * (limit + 1), headers=png)
    assert huge.status_code == 413 and huge.json()["code"] == "evidence_too_large"
    assert len(scene.get(f"/v1/disputes/{dispute['id']}", scene.buyer).json()["evidence"]) == 1


def test_merchant_contests_the_desk_holds_credit_and_a_supervisor_decides(
    scene: Scene, db: Database
) -> None:
    agent = make_staff(db, "agent-li")
    supervisor = make_staff(db, "sup-wang", StaffRole.SUPERVISOR)
    dispute = scene.file()
    desk = f"/v1/desk/disputes/{dispute['id']}"

    open_list = scene.get(
        "/v1/merchant/disputes", scene.shop, params={"status": "awaiting_merchant"}
    )
    (seen,) = open_list.json()["items"]
    assert seen["id"] == dispute["id"] and "description" not in seen  # the customer's own words
    held = scene.post(f"{desk}/provisional-credit", agent, {})
    assert held.status_code == 200, held.text
    assert held.json()["provisional_credit"] == {
        "state": "held",
        "amount": "648.00",
        "amount_minor": 648_00,
    }
    assert (scene.wallet()["available"], scene.wallet()["incoming_pending"]) == ("352.00", "648.00")

    answer = scene.post(
        f"/v1/merchant/disputes/{dispute['id']}/response",
        scene.shop,
        {"decision": "contest", "explanation": "Delivered to the account on the 15th"},
    )
    assert answer.status_code == 200 and answer.json()["status"] == "under_review"
    listed = scene.get("/v1/desk/disputes", agent, params={"status": "under_review"}).json()
    assert [d["id"] for d in listed["items"]] == [dispute["id"]]

    by_agent = scene.post(f"{desk}/decision", agent, {"outcome": "won", "reason": "no record"})
    assert by_agent.status_code == 403
    decided = scene.post(f"{desk}/decision", supervisor, {"outcome": "won", "reason": "no record"})
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decided_by"]) == (
        "won",
        f"staff:{supervisor.id}",
    )
    assert (scene.wallet()["balance"], scene.wallet()["incoming_pending"]) == ("1000.00", "0.00")
    refund = scene.get(f"/v1/transactions/{decided.json()['refund_number']}", scene.buyer).json()
    assert (refund["kind"], refund["amount"], refund["direction"]) == ("refund", "648.00", "in")


def test_the_desk_reads_evidence_and_customers_cannot(scene: Scene, db: Database) -> None:
    agent = make_staff(db, "agent-li")
    dispute = scene.file()
    scene.post(
        f"/v1/disputes/{dispute['id']}/evidence",
        scene.buyer,
        content=PNG,
        headers={"Content-Type": "image/png"},
    )
    (evidence,) = scene.get(f"/v1/desk/disputes/{dispute['id']}", agent).json()["evidence"]
    path = f"/v1/desk/disputes/{dispute['id']}/evidence/{evidence['id']}"
    download = scene.get(path, agent)
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert scene.get(path, scene.buyer).status_code == 401
    # Each look at the customer's dispute and each download is on the audit log.
    subject = f"dispute:{dispute['id']}"
    viewed = [(a, s) for a, s, _d in audit_events(db, "desk.dispute_viewed")]
    assert viewed == [(f"staff:{agent.id}", subject)]
    downloads = audit_events(db, "desk.evidence_downloaded")
    assert downloads == [(f"staff:{agent.id}", subject, {"evidence_id": evidence["id"]})]


def test_an_agent_files_for_a_caller_only_once_they_are_verified(
    scene: Scene, db: Database
) -> None:
    agent = make_staff(db, "agent-li")
    contact_id = open_call(db, agent, origin=scene.buyer.phone)  # caller ID: weak
    body = {"transaction_number": scene.payment, "reason": "unauthorised", "description": "不是我"}
    path = f"/v1/desk/contacts/{contact_id}/disputes"
    too_early = scene.post(path, agent, body)
    assert too_early.status_code == 403
    assert too_early.json()["code"] == "contact_verification_insufficient"
    with db.unit_of_work() as session:
        staff = staff_in(session, agent)
        contact = verification.own_contact(session, staff, contact_id)
        assert (
            verification.check_knowledge(session, contact, staff, amount=648_00, currency="CNY")
            is None
        )
    filed = scene.post(path, agent, body)
    assert filed.status_code == 201, filed.text
    assert (filed.json()["channel"], filed.json()["filed_by"]) == ("phone", f"staff:{agent.id}")
    mine = scene.get("/v1/disputes", scene.buyer).json()["items"]
    assert [d["id"] for d in mine] == [filed.json()["id"]]


def test_customers_and_merchants_see_only_their_own(
    scene: Scene, customer: Callable[..., Person], merchant: Callable[..., Shop]
) -> None:
    dispute = scene.file()
    stranger, other_shop = customer("王芳"), merchant("CITYMALL")
    assert scene.get(f"/v1/disputes/{dispute['id']}", stranger).status_code == 404
    assert scene.get("/v1/merchant/disputes", other_shop).json()["items"] == []
    answer = scene.post(
        f"/v1/merchant/disputes/{dispute['id']}/response", other_shop, {"decision": "accept"}
    )
    assert answer.status_code == 404
    assert scene.get("/v1/desk/disputes", scene.buyer).status_code == 401
