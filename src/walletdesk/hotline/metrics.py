"""Contact-center metrics: the queues now, what happened per interval, a staffing forecast,
and the same in Prometheus' text format.

Definitions (those of Amazon Connect and most wallboards):
- offered: entries that entered a queue in the interval (a transfer is a new offer);
- answered / abandoned: of those, accepted by an agent / hung up while waiting;
  abandon rate = abandoned / offered;
- ASA (average speed of answer): entered to answered, over answered calls that waited on the
  line (callbacks are left out: their caller was not holding);
- AHT (average handle time): answered to ended plus the queue's wrap-up, over completed calls;
- service level: answered within the queue's target / (answered + abandoned), callbacks aside;
- callbacks requested / completed (an agent talked with the customer);
- containment: inbound calls that never entered a queue (self-service), over all inbound calls;
- CSAT: mean score (1–5) of the ratings given in the interval.
Intervals are whole UTC hours or days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ScalarResult, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from walletdesk.hotline import erlang
from walletdesk.hotline.estimate import EstimatedWait
from walletdesk.hotline.models import AgentPresence, AgentState, Call, EntryStatus, QueueEntry
from walletdesk.hotline.queue import agents_at_work, estimate_for, live_queues, skills_of
from walletdesk.hotline.queue_config import QueueConfig, all_queues
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.staff.models import StaffUser
from walletdesk.support.models import CsatRating

T = TypeVar("T")
INTERVALS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_INTERVALS = 24 * 62  # a report of two months by the hour


# --- now ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueNow:
    queue: str
    waiting: int
    booked_callbacks: int
    oldest_wait_seconds: float
    agents: dict[str, int]  # available, on_call, wrap_up, away (agents with the queue's skills)
    estimate: EstimatedWait  # for a caller entering now


def realtime(session: Session) -> list[QueueNow]:
    """Every queue as it stands (after moving it)."""
    presences = session.execute(
        select(AgentPresence.state, StaffUser)
        .join(StaffUser, StaffUser.id == AgentPresence.staff_id)
        .where(StaffUser.disabled_at.is_(None))
    ).all()
    board = []
    views = live_queues(session)
    agents = agents_at_work(session)  # once for every queue's estimate, after the routing
    for view in views:
        needed = frozenset(view.config.skills)
        states = [state for state, staff in presences if needed <= skills_of(staff)]
        board.append(
            QueueNow(
                queue=view.config.name,
                waiting=view.waiting,
                booked_callbacks=view.booked,
                oldest_wait_seconds=view.oldest_wait_seconds,
                agents={
                    str(state): states.count(state)
                    for state in (
                        AgentState.AVAILABLE,
                        AgentState.ON_CALL,
                        AgentState.WRAP_UP,
                        AgentState.AWAY,
                    )
                },
                estimate=estimate_for(session, view.config, view.waiting + 1, agents=agents),
            )
        )
    return board


# --- history --------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_target: int = 0
    waited_answered: int = 0  # answered calls that held on the line (ASA's denominator)
    wait_seconds: float = 0.0
    handled: int = 0
    handle_seconds: float = 0.0
    callbacks_requested: int = 0
    callbacks_completed: int = 0
    csat_count: int = 0
    csat_total: int = 0

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    @property
    def asa_seconds(self) -> float | None:
        return self.wait_seconds / self.waited_answered if self.waited_answered else None

    @property
    def aht_seconds(self) -> float | None:
        return self.handle_seconds / self.handled if self.handled else None

    @property
    def service_level(self) -> float | None:
        held = self.waited_answered + self.abandoned
        return self.answered_in_target / held if held else None

    @property
    def csat(self) -> float | None:
        return self.csat_total / self.csat_count if self.csat_count else None

    def add(self, entry: QueueEntry, config: QueueConfig) -> None:
        self.offered += 1
        entered = as_utc(entry.entered_at)
        callback = entry.callback_requested_at is not None
        self.callbacks_requested += callback
        if entry.status == EntryStatus.ABANDONED:
            self.abandoned += 1
        if entry.answered_at is not None:
            answered = as_utc(entry.answered_at)
            self.answered += 1
            if not callback:
                wait = (answered - entered).total_seconds()
                self.waited_answered += 1
                self.wait_seconds += wait
                self.answered_in_target += wait <= config.service_level_seconds
            if entry.status == EntryStatus.COMPLETED and entry.ended_at is not None:
                talk = (as_utc(entry.ended_at) - answered).total_seconds()
                self.handled += 1
                self.handle_seconds += talk + config.wrap_up_seconds
                self.callbacks_completed += callback

    def rate(self, score: int) -> None:
        self.csat_count += 1
        self.csat_total += score


@dataclass(slots=True)
class Interval:
    start: datetime
    total: Tally = field(default_factory=Tally)
    queues: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    agents: dict[int, Tally] = field(default_factory=lambda: defaultdict(Tally))
    inbound_calls: int = 0
    self_served: int = 0

    @property
    def containment(self) -> float | None:
        return self.self_served / self.inbound_calls if self.inbound_calls else None


def history(session: Session, start: datetime, end: datetime, interval: str) -> list[Interval]:
    """The intervals from `start` (rounded down to the interval) to `end`, each with totals,
    per queue and per agent (the agent who answered)."""
    step = INTERVALS.get(interval)
    if step is None or end <= start:
        raise DomainError("invalid_request")
    first = _floor(start, interval)
    if (end - first) / step > MAX_INTERVALS:
        raise DomainError("invalid_request")
    intervals: dict[datetime, Interval] = {}
    moment = first
    while moment < end:
        intervals[moment] = Interval(moment)
        moment += step
    configs = all_queues()
    for entry in _between(session, QueueEntry, QueueEntry.entered_at, first, end):
        bucket = intervals[_floor(as_utc(entry.entered_at), interval)]
        config = configs.get(entry.queue)
        if config is None:
            continue  # a queue since removed from the configuration
        for tally in _tallies(bucket, entry.queue, entry.agent_id if entry.answered_at else None):
            tally.add(entry, config)
    queued_calls = set(session.execute(select(QueueEntry.call_id).distinct()).scalars())
    for call in _between(session, Call, Call.started_at, first, end):
        if call.direction != "inbound":
            continue
        bucket = intervals[_floor(as_utc(call.started_at), interval)]
        bucket.inbound_calls += 1
        bucket.self_served += call.id not in queued_calls
    for rating in _between(session, CsatRating, CsatRating.created_at, first, end):
        bucket = intervals[_floor(as_utc(rating.created_at), interval)]
        for tally in _tallies(bucket, rating.queue, rating.agent_id):
            tally.rate(rating.score)
    return list(intervals.values())


def _tallies(bucket: Interval, queue: str, agent_id: int | None) -> list[Tally]:
    tallies = [bucket.total, bucket.queues[queue]]
    if agent_id is not None:
        tallies.append(bucket.agents[agent_id])
    return tallies


def _between(
    session: Session,
    model: type[T],
    column: InstrumentedAttribute[datetime],
    start: datetime,
    end: datetime,
) -> ScalarResult[T]:
    return session.execute(select(model).where(column >= start, column < end)).scalars()


def _floor(moment: datetime, interval: str) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if interval == "day" else moment


# --- forecast -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Forecast:
    agents: int
    load_erlangs: float
    service_level: float  # expected with that many agents
    asa_seconds: float
    occupancy: float


def forecast(
    arrivals_per_hour: float, handle_seconds: float, target_level: float, target_seconds: float
) -> Forecast:
    """Agents needed to answer `target_level` of calls within `target_seconds` (Erlang C)."""
    try:
        rate = arrivals_per_hour / 3600
        agents = erlang.agents_needed(rate, handle_seconds, target_level, target_seconds)
        load = erlang.offered_load(rate, handle_seconds)
    except ValueError:
        raise DomainError("invalid_request") from None
    if agents == 0:
        return Forecast(0, 0.0, 1.0, 0.0, 0.0)
    return Forecast(
        agents=agents,
        load_erlangs=load,
        service_level=erlang.service_level(rate, handle_seconds, agents, target_seconds),
        asa_seconds=erlang.average_speed_of_answer(rate, handle_seconds, agents),
        occupancy=load / agents,
    )


# --- Prometheus -----------------------------------------------------------------------------


def prometheus_text(session: Session) -> str:
    """The queues now (gauges) and since the database began (counters), in the text format."""
    now = realtime(session)
    counts = session.execute(
        select(QueueEntry.queue, QueueEntry.status, func.count()).group_by(
            QueueEntry.queue, QueueEntry.status
        )
    ).all()
    answered = dict(
        session.execute(
            select(QueueEntry.queue, func.count())
            .where(QueueEntry.answered_at.is_not(None))
            .group_by(QueueEntry.queue)
        ).all()
    )
    offered: dict[str, int] = defaultdict(int)
    abandoned: dict[str, int] = defaultdict(int)
    for queue, status, count in counts:
        offered[queue] += count
        if status == EntryStatus.ABANDONED:
            abandoned[queue] += count
    lines: list[str] = []
    _family(
        lines,
        "walletdesk_queue_waiting",
        "gauge",
        "Callers waiting in the queue now",
        ((q.queue, {}, q.waiting) for q in now),
    )
    _family(
        lines,
        "walletdesk_queue_oldest_wait_seconds",
        "gauge",
        "How long the longest-waiting caller has waited",
        ((q.queue, {}, q.oldest_wait_seconds) for q in now),
    )
    _family(
        lines,
        "walletdesk_queue_estimated_wait_seconds",
        "gauge",
        "Expected wait of a caller entering the queue now (+Inf with nobody staffed)",
        ((q.queue, {}, q.estimate.seconds) for q in now),
    )
    _family(
        lines,
        "walletdesk_queue_agents",
        "gauge",
        "Agents with the queue's skills, by state",
        ((q.queue, {"state": state}, n) for q in now for state, n in q.agents.items()),
    )
    names = [q.queue for q in now]
    _family(
        lines,
        "walletdesk_queue_offered_total",
        "counter",
        "Calls that entered the queue",
        ((q, {}, offered[q]) for q in names),
    )
    _family(
        lines,
        "walletdesk_queue_answered_total",
        "counter",
        "Calls an agent accepted",
        ((q, {}, answered.get(q, 0)) for q in names),
    )
    _family(
        lines,
        "walletdesk_queue_abandoned_total",
        "counter",
        "Callers who hung up while waiting",
        ((q, {}, abandoned[q]) for q in names),
    )
    return "\n".join(lines) + "\n"


def _family(
    lines: list[str],
    name: str,
    kind: str,
    help_text: str,
    samples: Iterable[tuple[str, dict[str, str], float]],
) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for queue, labels, value in samples:
        label_text = ",".join(f'{k}="{v}"' for k, v in {"queue": queue, **labels}.items())
        lines.append(f"{name}{{{label_text}}} {_number(value)}")


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
