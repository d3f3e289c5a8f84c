"""Contact-center metrics from a scripted morning: what a supervisor reads on the wallboard and
in the report, the staffing forecast, and the Prometheus scrape."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from tests.integration.queue_support import agent, answer, call_of, hang_up_after, new_call, staff
from tests.integration.wallet_support import Person

from walletdesk.db import Database
from walletdesk.hotline import queue
from walletdesk.kit.clock import FrozenClock
from walletdesk.staff.models import StaffRole
from walletdesk.support.cases import open_case
from walletdesk.support.models import CsatRating

SAMPLE = re.compile(r'^([a-z_]+)\{([a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*)\} (\S+)$')


def script_a_morning(db: Database, frozen_clock: FrozenClock) -> int:
    """Four queued calls and one self-served, 02:00–02:06 UTC; returns the agent's id."""
    start = frozen_clock.now()
    li, _ = agent(db, "agent.li")
    first = new_call(db)
    frozen_clock.advance(timedelta(seconds=5))
    second = new_call(db)
    frozen_clock.advance(timedelta(seconds=5))  # first answered after 10 s: in target
    hang_up_after(db, frozen_clock, li, answer(db, li, first), 120)
    frozen_clock.advance(timedelta(seconds=5))  # second answered after 130 s: not in target
    hang_up_after(db, frozen_clock, li, answer(db, li, second), 60)
    frozen_clock.set(start + timedelta(seconds=200))
    with db.unit_of_work() as session:
        queue.set_presence(session, staff(session, li), "away")
    gone = new_call(db)
    frozen_clock.advance(timedelta(seconds=60))
    with db.unit_of_work() as session:
        queue.abandon(session, call_of(session, gone))
    called_back = new_call(db)
    with db.unit_of_work() as session:
        queue.request_callback(session, call_of(session, called_back), "+8613911112222")
        queue.set_presence(session, staff(session, li), "available")
    entry = answer(db, li, called_back)
    with db.unit_of_work() as session:
        queue.callback_answered(session, session.get(queue.QueueEntry, entry))
    hang_up_after(db, frozen_clock, li, entry, 30)
    new_call(db, None)  # balance heard in the IVR, no agent needed
    return li


def test_history_of_a_scripted_morning(
    client: TestClient,
    db: Database,
    frozen_clock: FrozenClock,
    customer: Callable[..., Person],
) -> None:
    start = frozen_clock.now()
    li = script_a_morning(db, frozen_clock)
    rater = customer("评分人")
    with db.unit_of_work() as session:
        for score in (4, 2):
            case = open_case(
                session,
                customer_id=rater.id,
                type="other",
                subject="call",
                channel="phone",
                actor="system",
            )
            session.add(
                CsatRating(
                    case_id=case.id,
                    customer_id=rater.id,
                    agent_id=li,
                    queue="general",
                    case_type="other",
                    score=score,
                    created_at=start,
                )
            )
    _, token = agent(db, "sup.chen", role=StaffRole.SUPERVISOR, available=False)
    response = client.get(
        "/v1/desk/metrics/history",
        params={
            "from": start.isoformat(),
            "to": (start + timedelta(hours=2)).isoformat(),
            "interval": "hour",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    morning, later = response.json()
    total = morning["total"]
    assert (total["offered"], total["answered"], total["abandoned"]) == (4, 3, 1)
    assert total["abandon_rate"] == 0.25
    assert total["asa_seconds"] == 70.0  # (10 + 130) / 2; the callback did not hold
    assert total["service_level"] == round(1 / 3, 4)  # 1 of 2 answered + 1 abandoned
    assert total["aht_seconds"] == 100.0  # (120 + 60 + 30) / 3 + 30 s wrap-up
    assert (total["callbacks_requested"], total["callbacks_completed"]) == (1, 1)
    assert (morning["inbound_calls"], morning["self_served"], morning["containment"]) == (5, 1, 0.2)
    assert total["csat"] == 3.0
    assert morning["agents"][str(li)]["answered"] == 3
    assert morning["queues"]["general"]["offered"] == 4
    assert later["total"]["offered"] == 0


def test_realtime_forecast_and_prometheus(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    agent(db, "agent.li", ("zh-CN", "payments"))
    _, token = agent(db, "sup.chen", role=StaffRole.SUPERVISOR, available=False)
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        new_call(db, "payments")
        frozen_clock.advance(timedelta(seconds=20))
    board = {q["queue"]: q for q in client.get("/v1/desk/metrics/realtime", headers=auth).json()}
    payments = board["payments"]
    assert payments["waiting"] == 3 and payments["oldest_wait_seconds"] == 60
    assert payments["agents"]["available"] == 1  # ringing with the first call
    # A fourth caller would wait for three calls of 300 s (the queue's assumed handle time).
    assert payments["estimated_wait"]["seconds"] == 900
    assert payments["estimated_wait"]["more_than"] is True
    assert board["fraud"]["estimated_wait"]["seconds"] is None  # nobody with the skill

    forecast = client.get(
        "/v1/desk/forecast",
        params={"arrivals_per_hour": 200, "handle_seconds": 180, "target_seconds": 20},
        headers=auth,
    ).json()
    assert forecast["agents"] == 14 and forecast["service_level"] >= 0.8

    scrape = client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    declared, values = set(), {}
    for line in scrape.text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif not line.startswith("# HELP "):
            name, labels, value = SAMPLE.match(line).groups()
            assert name in declared
            values[(name, labels)] = float(value)
    assert values[("walletdesk_queue_waiting", 'queue="payments"')] == 3
    assert values[("walletdesk_queue_offered_total", 'queue="payments"')] == 3
    assert values[("walletdesk_queue_agents", 'queue="payments",state="available"')] == 1
    assert values[("walletdesk_queue_estimated_wait_seconds", 'queue="fraud"')] == float("inf")
