"""Service hours against a real database, through the service and the HTTP API."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from walletdesk.app import create_app
from walletdesk.audit import service as audit
from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.support import service
from walletdesk.support.hours import OpenStatus

ADMIN_TOKEN = "hours-admin-token"
BEIJING = timezone(timedelta(hours=8))
NEW_YORK_EDT = timezone(timedelta(hours=-4))
FESTIVAL = date(2026, 2, 17)
_keys = itertools.count(1)


def beijing(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


def test_phone_and_chat_have_default_hours(db: Database, frozen_clock: FrozenClock) -> None:
    frozen_clock.set(beijing(2026, 1, 15, 10, 0))
    with db.unit_of_work() as session:
        assert service.is_open(session, "phone") == OpenStatus(True, None, beijing(2026, 1, 15, 22))
        late = service.is_open(session, "chat", beijing(2026, 1, 15, 23, 0))
        assert late == OpenStatus(False, beijing(2026, 1, 16, 8), None)
        assert set(service.list_schedules(session)) >= {"phone", "chat"}


def test_an_unknown_name_is_not_found_in_both_languages(db: Database) -> None:
    with db.unit_of_work() as session, pytest.raises(DomainError) as raised:
        service.is_open(session, "queue:vip")
    assert raised.value.code == "hours_not_found" and raised.value.status == 404
    assert "queue:vip" in raised.value.message("en") and "服务时间" in raised.value.message("zh")


def test_a_queue_in_a_dst_zone_can_be_set_and_asked(db: Database) -> None:
    with db.unit_of_work() as session:
        service.set_schedule(
            session,
            "queue:fraud",
            time_zone="America/New_York",
            weekly={"sun": ["09:00-17:00"]},
            actor="test",
        )
    with db.unit_of_work() as session:
        # The Saturday before the spring jump: Sunday nine o'clock is already EDT.
        answer = service.is_open(session, "queue:fraud", datetime(2026, 3, 7, 23, tzinfo=UTC))
        assert answer.opens_at == datetime(2026, 3, 8, 9, tzinfo=NEW_YORK_EDT)
        assert "queue:fraud" in service.list_schedules(session)
        assert audit.tail(session, 1)[0].action == "hours.set"


def test_holiday_and_partial_day_then_back_to_normal(db: Database) -> None:
    with db.unit_of_work() as session:
        service.add_exception(session, "phone", FESTIVAL, note="Spring Festival", actor="test")
        service.add_exception(session, "phone", date(2026, 2, 16), ["09:00-12:00"], actor="test")
    with db.unit_of_work() as session:
        assert service.is_open(session, "phone", beijing(2026, 2, 16, 12, 30)) == OpenStatus(
            False, beijing(2026, 2, 18, 8), None
        )
        status = service.is_open(session, "phone", beijing(2026, 2, 17, 3), action="freeze_account")
        assert status.open  # emergencies do not wait for the holiday to end
        # Chat keeps its own hours.
        assert service.is_open(session, "chat", beijing(2026, 2, 17, 12)).open
    with db.unit_of_work() as session:
        service.remove_exception(session, "phone", FESTIVAL, actor="test")
    with db.unit_of_work() as session:
        assert service.is_open(session, "phone", beijing(2026, 2, 17, 12)).open
        with pytest.raises(DomainError, match="hours_exception_not_found"):
            service.remove_exception(session, "phone", FESTIVAL, actor="test")


@pytest.mark.parametrize(
    ("name", "zone", "weekly"),
    [
        ("queue:x", "Asia/Shanghai", {"mon": ["22:00-06:00"]}),
        ("queue:x", "Nowhere/Land", {"mon": ["08:00-22:00"]}),
        ("Phone Line", "Asia/Shanghai", {"mon": ["08:00-22:00"]}),
    ],
)
def test_unusable_hours_change_nothing(
    db: Database, name: str, zone: str, weekly: dict[str, list[str]]
) -> None:
    with pytest.raises(DomainError, match="hours_invalid"), db.unit_of_work() as session:
        service.set_schedule(session, name, time_zone=zone, weekly=weekly, actor="test")
    with db.unit_of_work() as session:
        assert set(service.list_schedules(session)) == {"phone", "chat"}


# --- HTTP -------------------------------------------------------------------------------


@pytest.fixture
def client(db: Database, tmp_path: Path, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    settings = Settings(
        database_url=db.url,
        run_worker_in_process=False,
        gateway_sandbox_path=tmp_path / "gw.db",
        admin_token=ADMIN_TOKEN,
    )
    app = create_app(settings, db)
    frozen_clock.set(beijing(2026, 2, 16, 23, 0))
    with TestClient(app) as test_client:
        yield test_client


def admin(key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": key or f"k{next(_keys)}"}


def test_anyone_can_ask_when_the_hotline_opens(client: TestClient) -> None:
    answer = client.get("/v1/service-hours/phone")
    assert answer.status_code == 200
    body = answer.json()
    assert body["open"] is False and body["closes_at"] is None
    assert datetime.fromisoformat(body["opens_at"]) == beijing(2026, 2, 17, 8)
    assert body["time_zone"] == "Asia/Shanghai" and len(body["week"]) == 7
    assert body["week"][0] == {
        "date": "2026-02-16",
        "weekday": "mon",
        "hours": ["08:00-22:00"],
        "note": None,
    }
    emergency = client.get("/v1/service-hours/phone", params={"action": "freeze_account"})
    assert emergency.json()["open"] is True and emergency.json()["emergency"] is True


def test_an_unknown_channel_is_a_problem_in_chinese(client: TestClient) -> None:
    answer = client.get("/v1/service-hours/queue:nope", headers={"Accept-Language": "zh-CN"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "hours_not_found" and "服务时间" in answer.json()["title"]


def test_changing_hours_needs_the_operator_token(client: TestClient) -> None:
    body = {"time_zone": "Asia/Shanghai", "always_open": True}
    refused = client.put(
        "/v1/admin/service-hours/phone", json=body, headers={"Idempotency-Key": "a"}
    )
    assert refused.status_code == 401
    assert client.get("/v1/service-hours/phone").json()["always_open"] is False


def test_operator_sets_a_holiday_and_lifts_it(client: TestClient) -> None:
    holiday = {"date": FESTIVAL.isoformat(), "note": "Spring Festival"}
    added = client.post("/v1/admin/service-hours/phone/exceptions", json=holiday, headers=admin())
    assert added.status_code == 201
    assert added.json()["exceptions"] == [
        {"date": "2026-02-17", "closed": True, "hours": [], "note": "Spring Festival"}
    ]
    body = client.get("/v1/service-hours/phone").json()
    assert datetime.fromisoformat(body["opens_at"]) == beijing(2026, 2, 18, 8)
    assert body["week"][1]["hours"] == [] and body["week"][1]["note"] == "Spring Festival"
    lifted = client.delete("/v1/admin/service-hours/phone/exceptions/2026-02-17", headers=admin())
    assert lifted.status_code == 200 and lifted.json()["exceptions"] == []
    again = client.delete("/v1/admin/service-hours/phone/exceptions/2026-02-17", headers=admin())
    assert again.json()["code"] == "hours_exception_not_found"


def test_set_hours_is_idempotent_and_listed(client: TestClient) -> None:
    body = {"time_zone": "Asia/Shanghai", "always_open": True}
    headers = admin("set-chat-247")
    first = client.put("/v1/admin/service-hours/chat", json=body, headers=headers)
    replay = client.put("/v1/admin/service-hours/chat", json=body, headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert client.get("/v1/service-hours/chat").json()["open"] is True
    listed = client.get("/v1/admin/service-hours", headers=admin())
    assert [item["name"] for item in listed.json()] == ["chat", "phone"]


def test_unusable_hours_are_a_422_problem(client: TestClient) -> None:
    body = {"time_zone": "Asia/Shanghai", "weekly": {"mon": ["22:00-06:00"]}}
    answer = client.put("/v1/admin/service-hours/queue:night", json=body, headers=admin())
    assert answer.status_code == 422 and answer.json()["code"] == "hours_invalid"
    assert client.get("/v1/service-hours/queue:night").status_code == 404
