"""The call queue as callers and agents live it: positions and estimates as the queue moves,
the longest-idle agent with the right skills, fraud calls first, an agent who does not answer,
callbacks that keep their place, abandoned calls, and a restart with calls waiting."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from tests.integration.queue_support import (
    agent,
    answer,
    call_of,
    entry_of,
    hang_up_after,
    new_call,
    offer_of,
    staff,
    status,
)

from walletdesk.db import Database
from walletdesk.hotline import queue
from walletdesk.hotline.models import AgentPresence, CallStatus, EntryStatus, QueueEntry
from walletdesk.kit.clock import FrozenClock, as_utc
from walletdesk.kit.errors import DomainError

pytestmark = pytest.mark.usefixtures("frozen_clock")


def test_position_and_estimate_follow_the_queue(db: Database, frozen_clock: FrozenClock) -> None:
    li, _ = agent(db, "agent.li")
    calls = []
    for _ in range(4):
        calls.append(new_call(db))
        frozen_clock.advance(timedelta(seconds=5))
    # The first caller is offered to the one agent; the others wait behind.
    first = status(db, calls[0])
    assert first.status == EntryStatus.OFFERED
    assert [status(db, c).position for c in calls] == [1, 2, 3, 4]
    # One agent, 240 s assumed per call (the queue's setting) and nobody observed yet: uncertain.
    second = status(db, calls[1]).estimate
    assert second is not None and second.uncertain
    assert second.seconds == pytest.approx(240)
    assert status(db, calls[3]).estimate.seconds == pytest.approx(3 * 240)

    entry = answer(db, li, calls[0])
    assert status(db, calls[0]).agent is not None
    hang_up_after(db, frozen_clock, li, entry, 60)
    # The queue moved: everyone one place up, and the next caller offered.
    assert [status(db, c).position for c in calls[1:]] == [1, 2, 3]
    assert status(db, calls[1]).status == EntryStatus.OFFERED
    # One observed call (60 s + 30 s wrap-up) pulls the mean towards it.
    assert status(db, calls[2]).estimate.seconds < 240


def test_estimate_is_firm_after_steady_observed_calls(
    db: Database, frozen_clock: FrozenClock
) -> None:
    li, _ = agent(db, "agent.li")
    for _ in range(12):
        call = new_call(db)
        entry = answer(db, li, call)
        hang_up_after(db, frozen_clock, li, entry, 150)
    waiting = [new_call(db) for _ in range(3)]
    estimate = status(db, waiting[2]).estimate  # third in line, the first is offered to li
    assert estimate is not None and not estimate.uncertain
    assert estimate.seconds == pytest.approx(2 * 180, rel=0.01)  # 150 s talk + 30 s wrap-up
    assert estimate.announce_minutes == 6


def test_longest_idle_agent_with_the_skills_is_offered(
    db: Database, frozen_clock: FrozenClock
) -> None:
    payments_early, _ = agent(db, "agent.early", ("zh-CN", "payments"))
    frozen_clock.advance(timedelta(minutes=1))
    general_earliest, _ = agent(db, "agent.general", ("zh-CN",))  # no payments skill
    frozen_clock.advance(timedelta(minutes=1))
    payments_late, _ = agent(db, "agent.late", ("zh-CN", "payments"))
    frozen_clock.advance(timedelta(minutes=1))
    # agent.general is idle longer than agent.late but lacks the skill; agent.early wins.
    first = new_call(db, "payments")
    assert offer_of(db, payments_early) == entry_of(db, first).id
    second = new_call(db, "payments")
    assert offer_of(db, payments_late) == entry_of(db, second).id
    assert offer_of(db, general_earliest) is None
    # A general call goes to the only one free.
    third = new_call(db, "general")
    assert offer_of(db, general_earliest) == entry_of(db, third).id


def test_fraud_call_jumps_ahead(db: Database, frozen_clock: FrozenClock) -> None:
    li, _ = agent(db, "agent.li", ("zh-CN", "fraud"), available=False)
    ordinary = [new_call(db, "fraud", priority=0) for _ in range(2)]
    frozen_clock.advance(timedelta(minutes=2))
    locked = new_call(db, "fraud", priority=20)  # a locked account: above the queue's own 10
    assert status(db, locked).position == 1
    assert [status(db, c).position for c in ordinary] == [2, 3]
    with db.unit_of_work() as session:
        queue.set_presence(session, staff(session, li), "available")
    assert offer_of(db, li) == entry_of(db, locked).id


def test_agent_not_accepting_is_skipped_and_set_away(
    db: Database, frozen_clock: FrozenClock
) -> None:
    slow, _ = agent(db, "agent.slow")
    frozen_clock.advance(timedelta(seconds=10))
    quick, _ = agent(db, "agent.quick")
    call = new_call(db)
    assert offer_of(db, slow) == entry_of(db, call).id  # idle longest
    frozen_clock.advance(timedelta(seconds=21))  # general offers for 20 s
    assert offer_of(db, slow) is None
    assert offer_of(db, quick) == entry_of(db, call).id
    assert entry_of(db, call).skipped_agents == [slow]
    entry_id = entry_of(db, call).id
    with db.unit_of_work() as session:
        assert session.get(AgentPresence, slow).state == "away"
        # Too late to accept the lapsed offer.
        with pytest.raises(DomainError) as refused:
            queue.accept(session, staff(session, slow), entry_id, queue.LoopbackDialer())
        assert refused.value.code == "queue_offer_gone"
    answer(db, quick, call)
    assert status(db, call).status == EntryStatus.CONNECTED


def test_callback_keeps_its_place_and_is_routed_in_order(
    db: Database, frozen_clock: FrozenClock
) -> None:
    li, _ = agent(db, "agent.li", available=False)
    calls = []
    for _ in range(3):
        calls.append(new_call(db))
        frozen_clock.advance(timedelta(seconds=30))
    with db.unit_of_work() as session:
        queue.request_callback(session, call_of(session, calls[1]), "+8613911112222")
        # The caller hangs up on purpose: that is no abandon.
        assert queue.abandon(session, call_of(session, calls[1])) is None
    frozen_clock.advance(timedelta(minutes=5))
    later = new_call(db)
    after = status(db, calls[1])
    assert (after.status, after.position) == (EntryStatus.CALLBACK, 2)
    assert status(db, later).position == 4

    with db.unit_of_work() as session:
        queue.set_presence(session, staff(session, li), "available")
    hang_up_after(db, frozen_clock, li, answer(db, li, calls[0]), 30)
    # Its turn: the agent accepts first, then the customer is dialled.
    entry_id = answer(db, li, calls[1])
    with db.unit_of_work() as session:
        entry = session.get(queue.QueueEntry, entry_id)
        assert entry.status == EntryStatus.CONNECTED and entry.callback_attempts == 1
        queue.callback_answered(session, entry)
        assert call_of(session, calls[1]).status == CallStatus.CONNECTED
    hang_up_after(db, frozen_clock, li, entry_id, 30)
    assert offer_of(db, li) == entry_of(db, calls[2]).id


def test_callback_not_answered_retries_then_fails_with_a_case_note(
    db: Database, frozen_clock: FrozenClock
) -> None:
    li, _ = agent(db, "agent.li")
    call = new_call(db)
    with db.unit_of_work() as session:
        queue.request_callback(session, call_of(session, call), "+8613911112222")
    for attempt in (1, 2, 3):
        entry_id = answer(db, li, call)
        with db.unit_of_work() as session:
            entry = queue.callback_failed_attempt(session, session.get(queue.QueueEntry, entry_id))
            assert entry.callback_attempts == attempt
        if attempt < 3:
            # Back in its place, not before the retry delay (120 s, then 240 s).
            assert status(db, call).status == EntryStatus.CALLBACK
            frozen_clock.advance(timedelta(seconds=120 * 2 ** (attempt - 1)))
    assert status(db, call).status == EntryStatus.CALLBACK_FAILED
    with db.unit_of_work() as session:
        from walletdesk.support.models import CaseEvent

        notes = session.query(CaseEvent).filter(CaseEvent.kind == "note").all()
        assert any("no answer after 3 attempts" in (n.body or "") for n in notes)
    # The agent is free again, and the next caller is offered to them.
    behind = new_call(db)
    assert offer_of(db, li) == entry_of(db, behind).id


def test_abandon_records_how_long_the_caller_waited(
    db: Database, frozen_clock: FrozenClock
) -> None:
    call = new_call(db)
    behind = new_call(db)
    frozen_clock.advance(timedelta(seconds=95))
    with db.unit_of_work() as session:
        entry = queue.abandon(session, call_of(session, call))
        assert entry is not None
        assert (as_utc(entry.ended_at) - as_utc(entry.entered_at)).total_seconds() == pytest.approx(
            95
        )
        assert call_of(session, call).status == CallStatus.ABANDONED
    assert status(db, call).status == EntryStatus.ABANDONED
    assert status(db, behind).position == 1


def test_a_call_put_in_the_queue_twice_at_once_keeps_one_place(db: Database) -> None:
    """Within one webhook (a flow booking a callback, then queueing): one entry, not two."""
    queued = new_call(db, None)
    with db.unit_of_work() as session:
        call = call_of(session, queued)
        first = queue.enqueue(session, call, queue="general")
        assert queue.enqueue(session, call, queue="general") is first
    with db.unit_of_work() as session:
        entries = session.execute(select(QueueEntry).where(QueueEntry.call_id == queued))
        assert len(entries.all()) == 1


def test_booked_callback_waits_for_opening_time(db: Database, frozen_clock: FrozenClock) -> None:
    li, _ = agent(db, "agent.li")
    booked = new_call(db, None)  # out of hours: the caller books a callback for opening time
    with db.unit_of_work() as session:
        opening = frozen_clock.now() + timedelta(hours=8)
        queue.book_callback(session, call_of(session, booked), queue="general", at=opening)
    assert offer_of(db, li) is None
    frozen_clock.advance(timedelta(hours=8))
    assert offer_of(db, li) == entry_of(db, booked).id


def test_a_booked_callback_is_ahead_of_live_callers_only_once_it_is_due(
    db: Database, frozen_clock: FrozenClock
) -> None:
    booked = new_call(db, None)
    with db.unit_of_work() as session:
        opening = frozen_clock.now() + timedelta(hours=1)
        queue.book_callback(session, call_of(session, booked), queue="general", at=opening)
    frozen_clock.advance(timedelta(minutes=1))
    live = new_call(db)
    assert status(db, live).position == 1
    frozen_clock.advance(timedelta(hours=1))
    # Booked first, so answered first once we are open.
    assert status(db, live).position == 2


def test_a_call_that_ended_waiting_for_its_callback_is_not_queued_again(db: Database) -> None:
    """A late copy of a webhook may run the flow's queueing step for a call whose caller asked
    for a callback and hung up: the call keeps its one entry, and stays ended."""
    queued = new_call(db)
    with db.unit_of_work() as session:
        call = call_of(session, queued)
        queue.request_callback(session, call, "+8613911112222")
        call.status, call.ended_at = CallStatus.COMPLETED, call.started_at  # as the hang-up does
    with db.unit_of_work() as session:
        call = call_of(session, queued)
        assert queue.enqueue(session, call, queue="general").status == EntryStatus.CALLBACK
        assert call.status == CallStatus.COMPLETED
    with db.unit_of_work() as session:
        entries = session.execute(select(QueueEntry).where(QueueEntry.call_id == queued))
        assert len(entries.all()) == 1


def test_queue_survives_a_restart(db: Database, frozen_clock: FrozenClock) -> None:
    li, _ = agent(db, "agent.li", available=False)
    calls = [new_call(db) for _ in range(3)]
    with db.unit_of_work() as session:
        queue.request_callback(session, call_of(session, calls[1]), "+8613911112222")
    before = [(status(db, c).status, status(db, c).position) for c in calls]
    db.dispose()
    restarted = Database(db.url)
    try:
        after = [(status(restarted, c).status, status(restarted, c).position) for c in calls]
        assert (
            after
            == before
            == [
                (EntryStatus.WAITING, 1),
                (EntryStatus.CALLBACK, 2),
                (EntryStatus.WAITING, 3),
            ]
        )
        with restarted.unit_of_work() as session:
            queue.set_presence(session, staff(session, li), "available")
        assert offer_of(restarted, li) == entry_of(restarted, calls[0]).id
    finally:
        restarted.dispose()


def test_two_processes_routing_at_once_offer_each_call_once(db: Database) -> None:
    """Two server processes (two Databases) route the same queue at the same moment: no call is
    offered twice and no agent is offered two calls."""
    if db.url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: routing processes cannot overlap there")
    agents = {agent(db, "agent.li")[0], agent(db, "agent.sam")[0]}
    calls = [new_call(db), new_call(db)]
    processes = [Database(db.url, pool_size=2) for _ in range(2)]
    together = threading.Barrier(len(processes))
    offers: list[list[tuple[int, int | None]]] = []

    def route(database: Database) -> None:
        with database.unit_of_work() as session:
            together.wait(timeout=10)
            offered = queue.route(session, "general")
            offers.append([(entry.id, entry.agent_id) for entry in offered])

    try:
        threads = [threading.Thread(target=route, args=(p,)) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for database in processes:
            database.dispose()
    assert len(offers) == 2, "a routing process failed"
    made = [offer for offered in offers for offer in offered]
    assert len({entry for entry, _ in made}) == len(made)  # no call offered twice
    assert len({staff_id for _, staff_id in made}) == len(made)  # no agent offered two calls
    # Whatever one process left, the next routing offers: each caller to their own agent.
    with db.unit_of_work() as session:
        queue.route(session, "general")
    final = [entry_of(db, call) for call in calls]
    assert all(entry.status == EntryStatus.OFFERED for entry in final)
    assert {entry.agent_id for entry in final} == agents
    for staff_id in agents:
        assert offer_of(db, staff_id) in {entry.id for entry in final}
