"""Cases over HTTP on a real database: the customer's /v1/support and the desk's /v1/desk.

Every write carries an Idempotency-Key; refusals are problem+json with a stable code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.integration.desk_support import Member, audit_events, make_staff, messages
from tests.integration.wallet_support import Books, Person

from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.staff.service import issue_session
from walletdesk.support import cases

PROBLEM = "application/problem+json"
_keys = itertools.count(1)
Who = Person | Member | None


def auth(who: Who) -> dict[str, str]:
    return who.auth if who is not None else {}


def post(
    client: TestClient, path: str, who: Who, body: Any = None, key: str | None = None
) -> httpx.Response:
    headers = {**auth(who), "Idempotency-Key": key or f"case-key-{next(_keys)}"}
    return client.post(path, json=body, headers=headers)


def get(client: TestClient, path: str, who: Who, **params: Any) -> httpx.Response:
    return client.get(path, headers=auth(who), params=params)


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["code"] == code, body
    return body


def contact_support(client: TestClient, person: Person, **fields: Any) -> dict[str, Any]:
    body = {
        "type": "payment_failed",
        "subject": "Payment failed at Lucky Coffee",
        "message": "My latte payment failed but I had money.",
        **fields,
    }
    return ok(post(client, "/v1/support/cases", person, body), 201)


def fresh_token(db: Database, member: Member) -> Member:
    """A new session for `member` (staff sessions end after 30 idle minutes of moved clock)."""
    with db.unit_of_work() as session:
        staff = session.get(StaffUser, member.id)
        assert staff is not None
        return Member(member.id, issue_session(session, staff))


@pytest.fixture
def agent(db: Database, client: TestClient) -> Member:
    return make_staff(db, "agent.li")


@pytest.fixture
def supervisor(db: Database, client: TestClient) -> Member:
    return make_staff(db, "sup.chen", StaffRole.SUPERVISOR)


@pytest.fixture
def zhang(customer: Callable[..., Person], client: TestClient) -> Person:
    return customer("张伟", email="zhangwei@example.com")


# --- the customer ------------------------------------------------------------------------------


def test_contact_support_opens_a_case_with_the_message_and_the_transaction(
    client: TestClient, db: Database, books: Books, zhang: Person, agent: Member
) -> None:
    txn = books.top_up(zhang.id, books.card(zhang.id), 5_000)
    body = {
        "type": "payment_failed",
        "subject": "Payment\nfailed",
        "message": "It failed twice.",
        "transaction_number": txn.number,
    }
    first = post(client, "/v1/support/cases", zhang, body, key="contact-1")
    case = ok(first, 201)
    assert (case["status"], case["channel"], case["subject"]) == ("new", "in_app", "Payment failed")
    assert [(e["kind"], e["by"], e["body"]) for e in case["timeline"]] == [
        ("created", "customer", "Payment failed"),
        ("message_in", "customer", "It failed twice."),
    ]
    again = post(client, "/v1/support/cases", zhang, body, key="contact-1")
    assert again.json()["number"] == case["number"]
    assert again.headers["idempotent-replayed"] == "true"
    assert [c["number"] for c in ok(get(client, "/v1/support/cases", zhang))] == [case["number"]]
    desk = ok(get(client, f"/v1/desk/cases/{case['number']}", agent))
    assert desk["links"] == [{"kind": "transaction", "ref": txn.number}]
    # Staff reading a case leave a trace; the customer reading their own does not.
    viewed = [(actor, subject) for actor, subject, _d in audit_events(db, "desk.case_viewed")]
    assert viewed == [(f"staff:{agent.id}", f"case:{case['number']}")]


def test_someone_elses_transaction_cannot_be_attached(
    client: TestClient, books: Books, zhang: Person, customer: Callable[..., Person]
) -> None:
    txn = books.top_up(zhang.id, books.card(zhang.id), 5_000)
    stranger = customer()
    answer = post(
        client,
        "/v1/support/cases",
        stranger,
        {"type": "other", "subject": "x", "message": "y", "transaction_number": txn.number},
    )
    problem(answer, 404, "transaction_not_found")
    assert ok(get(client, "/v1/support/cases", stranger)) == []


def test_someone_elses_case_does_not_exist_for_you(
    client: TestClient, zhang: Person, customer: Callable[..., Person]
) -> None:
    number = contact_support(client, zhang)["number"]
    stranger = customer()
    unknown = "1234567890"
    assert problem(get(client, f"/v1/support/cases/{unknown}", stranger), 404, "case_not_found")
    hidden = problem(get(client, f"/v1/support/cases/{number}", stranger), 404, "case_not_found")
    assert hidden.keys() == {"type", "title", "status", "code", "number"}
    for path, body in (
        ("messages", {"body": "hi"}),
        ("reopen", {"reason": "x"}),
        ("escalate", {"reason": "x"}),
        ("rating", {"score": 1}),
    ):
        problem(
            post(client, f"/v1/support/cases/{number}/{path}", stranger, body),
            404,
            "case_not_found",
        )
    assert ok(get(client, "/v1/support/timeline", stranger)) == []


def test_the_customer_lists_newest_first_and_sees_one_timeline_across_cases(
    client: TestClient, zhang: Person, agent: Member
) -> None:
    older = contact_support(client, zhang, subject="first")["number"]
    newer = contact_support(client, zhang, subject="second", type="refund")["number"]
    ok(post(client, f"/v1/desk/cases/{older}/replies", agent, {"body": "Looking into it"}))
    ok(post(client, f"/v1/desk/cases/{older}/notes", agent, {"body": "internal only"}))
    mine = ok(get(client, "/v1/support/cases", zhang))
    assert [c["number"] for c in mine] == [newer, older]
    everything = ok(get(client, "/v1/support/timeline", zhang))
    assert [(e["case_number"], e["kind"]) for e in everything] == [
        (older, "created"),
        (older, "message_in"),
        (newer, "created"),
        (newer, "message_in"),
        (older, "status"),
        (older, "message_out"),
    ]
    assert "internal only" not in str(everything)


# --- the desk ----------------------------------------------------------------------------------


def test_the_desk_sees_notes_sla_and_suggested_articles_the_customer_does_not(
    client: TestClient, zhang: Person, agent: Member
) -> None:
    number = contact_support(
        client, zhang, subject="付款失败", message="在幸运咖啡付款失败，余额不足吗？"
    )["number"]
    ok(post(client, f"/v1/desk/cases/{number}/notes", agent, {"body": "网关日志显示余额不足"}))
    desk = ok(
        client.get(f"/v1/desk/cases/{number}", headers={**agent.auth, "Accept-Language": "zh-CN"})
    )
    assert [(e["kind"], e["customer_visible"]) for e in desk["timeline"]][-1] == ("note", False)
    assert desk["sla"]["policy"] == "normal" and desk["sla"]["first_response"]["state"] == "running"
    assert desk["sla"]["business_hours"] == "phone"
    assert (
        desk["suggested_articles"]
        and {"slug", "title", "snippet"} <= desk["suggested_articles"][0].keys()
    )
    assert desk["customer_id"] == zhang.id and "phone" not in desk and "email" not in desk
    seen = ok(get(client, f"/v1/support/cases/{number}", zhang))
    assert "网关日志显示余额不足" not in str(seen) and "sla" not in seen


def test_a_macro_reply_reaches_the_customer_and_their_answer_reopens_the_work(
    client: TestClient, db: Database, zhang: Person, agent: Member
) -> None:
    number = contact_support(client, zhang)["number"]
    reply = {"macro": "ask_transaction_number", "language": "en", "then": "waiting_on_customer"}
    desk = ok(post(client, f"/v1/desk/cases/{number}/replies", agent, reply))
    assert desk["status"] == "waiting_on_customer"
    assert desk["sla"]["first_response"]["state"] == "met"
    assert desk["sla"]["resolution"]["state"] == "paused"
    sent = messages(db, zhang.id, "case_reply")
    assert [channel for channel, *_ in sent] == ["inapp", "email"]
    text = sent[0][2]["reply"]
    assert text.startswith("Hello there,") and number in text and "agent.li" in text
    answered = ok(
        post(client, f"/v1/support/cases/{number}/messages", zhang, {"body": "123456789012"})
    )
    assert answered["status"] == "open" and answered["number"] == number


def test_a_reply_needs_text_or_a_macro_with_all_its_values(
    client: TestClient, zhang: Person, agent: Member
) -> None:
    number = contact_support(client, zhang)["number"]
    path = f"/v1/desk/cases/{number}/replies"
    problem(post(client, path, agent, {}), 422, "reply_text_required")
    problem(
        post(client, path, agent, {"body": "x", "macro": "refund_timeline"}),
        422,
        "reply_text_required",
    )
    problem(post(client, path, agent, {"macro": "refund_timeline"}), 422, "macro_values_missing")
    problem(post(client, path, agent, {"macro": "lottery"}), 404, "macro_not_found")
    sent = ok(post(client, path, agent, {"macro": "refund_timeline", "values": {"days": "5"}}))
    assert "5 天" in sent["timeline"][-1]["body"]  # the customer's own language: zh-CN


def test_a_bad_transition_is_a_conflict_naming_both_ends(
    client: TestClient, zhang: Person, agent: Member
) -> None:
    number = contact_support(client, zhang)["number"]
    body = problem(
        post(client, f"/v1/desk/cases/{number}/status", agent, {"status": "closed"}),
        409,
        "case_transition_invalid",
    )
    assert (body["from_status"], body["to_status"]) == ("new", "closed")
    problem(
        post(client, f"/v1/desk/cases/{number}/status", agent, {"status": "lost"}),
        422,
        "invalid_request",
    )


def test_assign_prioritise_and_filter_the_queue(
    client: TestClient, zhang: Person, agent: Member, supervisor: Member
) -> None:
    mine = contact_support(client, zhang)["number"]
    other = contact_support(client, zhang, type="refund")["number"]
    ok(post(client, f"/v1/desk/cases/{mine}/assign", agent, {"staff_id": agent.id}))
    high = ok(post(client, f"/v1/desk/cases/{mine}/priority", agent, {"priority": "high"}))
    assert (high["priority"], high["sla"]["policy"]) == ("high", "high")
    ok(post(client, f"/v1/desk/cases/{mine}/status", agent, {"status": "open", "note": "on it"}))
    assert [c["number"] for c in ok(get(client, "/v1/desk/cases", agent, owner="me"))] == [mine]
    assert ok(get(client, "/v1/desk/cases", supervisor, owner="me")) == []
    listed = ok(get(client, "/v1/desk/cases", supervisor, status="new", type="refund"))
    assert [c["number"] for c in listed] == [other]
    assert len(ok(get(client, "/v1/desk/cases", agent))) == 2
    problem(
        post(client, f"/v1/desk/cases/{mine}/assign", agent, {"staff_id": 987654}),
        422,
        "case_assignee_invalid",
    )


def test_only_agents_and_supervisors_use_the_desk(
    client: TestClient, db: Database, zhang: Person
) -> None:
    number = contact_support(client, zhang)["number"]
    problem(get(client, f"/v1/desk/cases/{number}", None), 401, "staff_auth_required")
    problem(get(client, f"/v1/desk/cases/{number}", zhang), 401, "staff_auth_required")
    analyst = make_staff(db, "risk.zhao", StaffRole.RISK_ANALYST)
    problem(get(client, f"/v1/desk/cases/{number}", analyst), 403, "staff_forbidden")
    problem(get(client, "/v1/support/cases", None), 401, "unauthorized")


def test_writes_need_an_idempotency_key(client: TestClient, zhang: Person) -> None:
    answer = client.post(
        "/v1/support/cases",
        json={"type": "other", "subject": "x", "message": "y"},
        headers=zhang.auth,
    )
    problem(answer, 400, "idempotency_key_required")


# --- resolution, rating, reopening, complaints ---------------------------------------------------


def test_resolve_rate_once_reopen_and_complain_with_the_record_attached(
    client: TestClient, db: Database, zhang: Person, agent: Member
) -> None:
    number = contact_support(client, zhang)["number"]
    rating = f"/v1/support/cases/{number}/rating"
    problem(post(client, rating, zhang, {"score": 5}), 409, "csat_not_ready")
    ok(
        post(
            client,
            f"/v1/desk/cases/{number}/replies",
            agent,
            {"body": "Refunded", "then": "resolved"},
        )
    )
    requests = [params for *_, params in messages(db, zhang.id, "csat_request")]
    assert requests[0] == {"case_number": number}
    problem(post(client, rating, zhang, {"score": 6}), 422, "invalid_request")
    assert ok(post(client, rating, zhang, {"score": 2, "comment": "slow"}), 201)["score"] == 2
    problem(post(client, rating, zhang, {"score": 5}), 409, "csat_already_rated")

    reopened = ok(
        post(client, f"/v1/support/cases/{number}/reopen", zhang, {"reason": "Not refunded"})
    )
    assert reopened["status"] == "reopened" and reopened["rating"] == {
        "score": 2,
        "comment": "slow",
    }
    problem(
        post(client, f"/v1/support/cases/{number}/reopen", zhang, {"reason": "again"}),
        409,
        "case_transition_invalid",
    )

    complaint = ok(
        post(client, f"/v1/support/cases/{number}/escalate", zhang, {"reason": "Still nothing"}),
        201,
    )
    assert complaint["is_complaint"] and complaint["escalated_from"] == number
    first = complaint["timeline"][0]
    assert (first["kind"], first["body"]) == ("created", "Still nothing")
    assert [line["kind"] for line in first["data"]["record"]][-3:] == ["status", "csat", "status"]
    assert "Refunded" in [line["body"] for line in first["data"]["record"]]
    desk = ok(get(client, f"/v1/desk/cases/{complaint['number']}", agent))
    assert (desk["queue"], desk["priority"], desk["sla"]["policy"]) == (
        "complaints",
        "high",
        "complaint",
    )
    assert desk["links"] == [{"kind": "case", "ref": number}]
    problem(
        post(client, f"/v1/support/cases/{number}/escalate", zhang, {"reason": "more"}),
        409,
        "complaint_exists",
    )
    assert messages(db, zhang.id, "complaint_opened")[0][2]["original_number"] == number


def test_a_young_open_case_cannot_be_escalated_yet(client: TestClient, zhang: Person) -> None:
    number = contact_support(client, zhang)["number"]
    body = problem(
        post(client, f"/v1/support/cases/{number}/escalate", zhang, {"reason": "hurry"}),
        409,
        "complaint_not_allowed",
    )
    assert body["days"] == 5


def test_a_message_on_a_closed_case_starts_a_new_one(
    client: TestClient, db: Database, zhang: Person, agent: Member
) -> None:
    number = contact_support(client, zhang)["number"]
    ok(
        post(
            client, f"/v1/desk/cases/{number}/replies", agent, {"body": "Done", "then": "resolved"}
        )
    )
    ok(post(client, f"/v1/desk/cases/{number}/status", agent, {"status": "closed"}))
    landed = ok(
        post(client, f"/v1/support/cases/{number}/messages", zhang, {"body": "It broke again"})
    )
    assert landed["number"] != number and landed["status"] == "new"
    problem(
        post(client, f"/v1/desk/cases/{number}/replies", agent, {"body": "hello?"}),
        409,
        "case_closed",
    )


# --- supervisors ---------------------------------------------------------------------------------


def test_supervisors_read_csat_by_group_and_agents_may_not(
    client: TestClient, zhang: Person, agent: Member, supervisor: Member
) -> None:
    for score, case_type in ((5, "refund"), (3, "payment_failed")):
        number = contact_support(client, zhang, type=case_type)["number"]
        ok(post(client, f"/v1/desk/cases/{number}/assign", agent, {"staff_id": agent.id}))
        ok(
            post(
                client,
                f"/v1/desk/cases/{number}/replies",
                agent,
                {"body": "ok", "then": "resolved"},
            )
        )
        ok(post(client, f"/v1/support/cases/{number}/rating", zhang, {"score": score}), 201)
    problem(get(client, "/v1/desk/reports/csat", agent), 403, "staff_forbidden")
    report = ok(get(client, "/v1/desk/reports/csat", supervisor, group_by="agent"))
    assert report["overall"] == {
        "group": None,
        "label": None,
        "count": 2,
        "average": 4.0,
        "satisfied_percent": 50.0,
    }
    assert [(g["group"], g["label"], g["count"]) for g in report["groups"]] == [
        (str(agent.id), "agent.li", 2)
    ]
    by_type = ok(get(client, "/v1/desk/reports/csat", supervisor, group_by="case_type"))
    assert sorted((g["group"], g["average"]) for g in by_type["groups"]) == [
        ("payment_failed", 3.0),
        ("refund", 5.0),
    ]
    past = ok(
        get(client, "/v1/desk/reports/csat", supervisor, since="2025-01-01", until="2025-12-31")
    )
    assert past["overall"]["count"] == 0 and past["groups"] == []
    problem(
        get(client, "/v1/desk/reports/csat", supervisor, group_by="weather"), 422, "invalid_request"
    )


def test_supervisors_see_sla_breaches_after_the_sweep(
    client: TestClient,
    db: Database,
    frozen_clock: FrozenClock,
    zhang: Person,
    agent: Member,
    supervisor: Member,
) -> None:
    late = contact_support(client, zhang)["number"]
    answered = contact_support(client, zhang)["number"]
    ok(post(client, f"/v1/desk/cases/{answered}/replies", agent, {"body": "on it"}))
    frozen_clock.advance(timedelta(hours=5))
    with db.unit_of_work() as session:
        assert [c.number for c in cases.sweep_sla(session)] == [late]
    boss, agent = fresh_token(db, supervisor), fresh_token(db, agent)
    problem(get(client, "/v1/desk/sla/breaches", agent), 403, "staff_forbidden")
    breaches = ok(get(client, "/v1/desk/sla/breaches", boss))
    assert [c["number"] for c in breaches] == [late]
    assert breaches[0]["sla"]["first_response"]["state"] == "breached"
    timeline = ok(get(client, f"/v1/desk/cases/{late}", agent))["timeline"]
    assert timeline[-1]["kind"] == "sla_breach" and not timeline[-1]["customer_visible"]


def test_macros_are_listed_with_their_placeholders(client: TestClient, agent: Member) -> None:
    both = ok(get(client, "/v1/desk/macros", agent))
    ask = next(m for m in both if m["slug"] == "ask_transaction_number")
    assert {"zh-CN", "en"} <= ask.keys() and "case_number" in ask["placeholders"]
    english = ok(get(client, "/v1/desk/macros", agent, language="en"))
    assert all("zh-CN" not in m for m in english)
