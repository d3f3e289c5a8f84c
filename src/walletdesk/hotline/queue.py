"""The call queue (automatic call distribution): callers waiting, agents offered their calls,
the agent's side of a call, and callbacks that keep the caller's place.

Everything lives in the database (QueueEntry, AgentPresence), so a restart loses no caller and
several server processes share one queue: routing locks the entries and agent rows it hands
out (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite transactions are serialized anyway). There is
no timer: the queue moves whenever anyone looks at it — a caller's wait announcement, an agent
polling for an offer, the console, or the `walletdesk hotline route` worker loop — and each
time it first settles what the clock says is due (lapsed offers, ended wrap-ups).

An agent who lets an offer lapse is skipped for that call and set away, as Asterisk's
autopause does: someone who is not at their desk should not be offered the next caller too.
A callback keeps the caller's `entered_at`, so it is routed in the order the caller would have
been answered. When its turn comes the agent accepts first and then the customer is dialled
(through a `Dialer`); a dial the customer does not answer puts the entry back, still in its
place, after a growing delay, until the last attempt, when it fails and the case says so.

Order in a queue: priority (higher first), then entered_at, then id. A transferred call enters
its new queue now, one priority step above its old one, so it is not sent to the back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, Engine, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from walletdesk.audit.service import record
from walletdesk.config import Settings, get_settings
from walletdesk.db import get_or_create
from walletdesk.hotline import queue_errors as _queue_errors  # noqa: F401  (registers the codes)
from walletdesk.hotline import voice_paths
from walletdesk.hotline.estimate import Abandonment, EstimatedWait, HandleTimes, estimate_wait
from walletdesk.hotline.models import (
    AgentPresence,
    AgentState,
    Call,
    CallStatus,
    EntryStatus,
    QueueEntry,
)
from walletdesk.hotline.queue_config import QueueConfig, all_queues, queue_config
from walletdesk.hotline.routing import SUPERVISOR_SKILL, Candidate, choose, qualified
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.notify.service import notify
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support.actions import AccountView, view_account
from walletdesk.support.cases import add_event, open_case
from walletdesk.support.models import Case, CaseEvent, CaseType, Contact, VerificationLevel
from walletdesk.support.verification import methods_passed

ACTIVE = (EntryStatus.WAITING, EntryStatus.CALLBACK, EntryStatus.OFFERED)
READY = (EntryStatus.WAITING, EntryStatus.CALLBACK)  # may be offered to an agent
STAFFED = (AgentState.AVAILABLE, AgentState.ON_CALL, AgentState.WRAP_UP)
BUSY = (AgentState.ON_CALL, AgentState.WRAP_UP)
SETTABLE = (AgentState.AVAILABLE, AgentState.AWAY, AgentState.OFFLINE)
RECENT_HANDLE = 200  # completed calls read for the handle-time mean (it weighs ~the last 50)
RECENT_LEFT = 400  # callers who left the queue read for the abandonment rate
HISTORY_FRESH = timedelta(seconds=5)  # how long those readings are reused for estimates
SYSTEM = "system"
CALLBACK_LEG = "callback"  # Call.direction of a callback's outbound dial


# --- the caller's side ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitStatus:
    status: EntryStatus
    position: int  # 1 = next; 0 once the entry no longer waits
    estimate: EstimatedWait | None  # None once the entry no longer waits
    agent: StaffUser | None  # the agent, once connected


def enqueue(
    session: Session, call: Call, *, queue: str, skills: Iterable[str] = (), priority: int = 0
) -> QueueEntry:
    """Put the call in `queue`; the queue's own skills and least priority are added. A call
    already waiting keeps the entry it has.

    The new entry is written with the call's row when the session next flushes (any query
    does, and the commit): the step that led here changed the row, and this way it is written
    once, with the entry as the caller finished it, rather than before the look and again after.
    """
    config = queue_config(queue)
    existing = _unwritten_entry(session, call) or _written_entry(session, call)
    if existing is not None:
        return existing
    entry = QueueEntry(
        call=call,
        queue=queue,
        skills=sorted({*config.skills, *skills}),
        priority=max(priority, config.priority),
        status=EntryStatus.WAITING,
        entered_at=clock.now(),
        skipped_agents=[],
        callback_attempts=0,
    )
    session.add(entry)
    call.status = CallStatus.QUEUED
    return entry


def _unwritten_entry(session: Session, call: Call) -> QueueEntry | None:
    """An active entry of the call's added in this session and not written yet."""
    return next(
        (
            pending
            for pending in session.new
            if isinstance(pending, QueueEntry) and pending.call is call and pending.status in ACTIVE
        ),
        None,
    )


def _written_entry(session: Session, call: Call) -> QueueEntry | None:
    """The call's active entry in the database, looked for without writing anything first.
    A call still in the flow has none: the only places that make an entry mark its call queued,
    and nothing marks a call in the flow again (a call that asked for a callback and hung up is
    ended, and its entry still waits). Nor has a call not written yet (its first webhook)."""
    if call.id is None or call.status == CallStatus.IN_FLOW:
        return None
    with session.no_autoflush:
        return active_entry(session, call)


def wait_status(session: Session, call: Call) -> WaitStatus:
    """Where the call stands, after moving its queue: position, estimate, agent when connected.

    The place is read with the entry, before routing, and holds after it: routing moves entries
    only between the statuses that count as ahead (waiting, callback, offered) and changes no
    entry's queue, priority or time."""
    found = session.execute(_PLACED, {"call_id": call.id, "now": clock.now()}).first()
    if found is None:
        raise DomainError("queue_call_not_waiting")
    entry, position = found[0], int(found[1])
    # One look at the agents serves routing and the estimate, unless routing moved someone.
    agents = agents_at_work(session)
    _, moved = _route(session, entry.queue, agents)
    status = EntryStatus(entry.status)
    if status not in ACTIVE:
        agent = session.get(StaffUser, entry.agent_id) if entry.agent_id else None
        return WaitStatus(status, 0, None, agent if status == EntryStatus.CONNECTED else None)
    if moved:
        agents = agents_at_work(session)
    config = queue_config(entry.queue)
    estimate = estimate_for(session, config, position, entry.skills, agents=agents)
    return WaitStatus(status, position, estimate, None)


def request_callback(session: Session, call: Call, number: str) -> QueueEntry:
    """The caller hangs up and is called back at `number`, keeping their place."""
    entry = _waiting_entry(session, call)
    _release_offer(session, entry, skip=False)
    entry.status = EntryStatus.CALLBACK
    entry.callback_number = number
    entry.callback_requested_at = clock.now()
    return entry


def book_callback(session: Session, call: Call, *, queue: str, at: datetime) -> QueueEntry:
    """A callback not routed before `at` (out of hours: the opening time); its place counts
    from the moment it was booked."""
    entry = enqueue(session, call, queue=queue)
    entry.status = EntryStatus.CALLBACK
    entry.callback_number = call.from_number
    entry.callback_requested_at = clock.now()
    entry.not_before = at
    return entry


def abandon(session: Session, call: Call) -> QueueEntry | None:
    """The caller hung up while waiting (or while an agent's phone rang). A callback entry is
    left alone: its caller hung up on purpose. Returns the abandoned entry, if there was one.

    The entry and the call record it, the wait included (metrics read them there); the audit
    log does not: nobody acted, and appending takes the chain's one lock, for which every
    hang-up in a busy queue would then take turns."""
    entry = active_entry(session, call)
    if entry is None or entry.status == EntryStatus.CALLBACK:
        return None
    _release_offer(session, entry, skip=False)
    now = clock.now()
    entry.status = EntryStatus.ABANDONED
    entry.ended_at = now
    call.status = CallStatus.ABANDONED
    call.outcome = "abandoned"
    call.ended_at = call.ended_at or now
    return entry


def latest_entry(session: Session, call: Call) -> QueueEntry | None:
    return session.execute(_LATEST, {"call_id": call.id}).scalar_one_or_none()


def active_entry(session: Session, call: Call) -> QueueEntry | None:
    entry = latest_entry(session, call)
    return entry if entry is not None and entry.status in ACTIVE else None


def _waiting_entry(session: Session, call: Call) -> QueueEntry:
    entry = active_entry(session, call)
    if entry is None or entry.status == EntryStatus.CALLBACK:
        raise DomainError("queue_call_not_waiting")
    return entry


# --- position and estimate ------------------------------------------------------------------


_Ahead = aliased(QueueEntry, name="ahead")


def _due(
    now: datetime | ColumnElement[datetime], entries: type[QueueEntry] = QueueEntry
) -> ColumnElement[bool]:
    return or_(entries.not_before.is_(None), entries.not_before <= now)


def _ahead_of(entry: type[QueueEntry], now: ColumnElement[datetime]) -> ColumnElement[bool]:
    """The entries (`_Ahead`) that `entry` waits for: the same queue, still queued, due `now`,
    and ahead in the order (higher priority, or the same priority and earlier)."""
    return and_(
        _Ahead.queue == entry.queue,
        _Ahead.status.in_(ACTIVE),
        _Ahead.id != entry.id,
        _due(now, _Ahead),
        or_(
            _Ahead.priority > entry.priority,
            and_(
                _Ahead.priority == entry.priority,
                or_(
                    _Ahead.entered_at < entry.entered_at,
                    and_(_Ahead.entered_at == entry.entered_at, _Ahead.id < entry.id),
                ),
            ),
        ),
    )


# Built once: every waiting caller's poll runs them (building the place's test took longer
# than running it).
_LATEST = (
    select(QueueEntry)
    .where(QueueEntry.call_id == bindparam("call_id"))
    .order_by(QueueEntry.id.desc())
    .limit(1)
)
# The call's latest entry and its place in the queue: 1 + the entries ahead of it.
_PLACED = _LATEST.add_columns(
    select(func.count())
    .select_from(_Ahead)
    .where(_ahead_of(QueueEntry, bindparam("now", type_=QueueEntry.not_before.type)))
    .scalar_subquery()
    + 1
)


def estimate_for(
    session: Session,
    config: QueueConfig,
    position: int,
    skills: Iterable[str] = (),
    *,
    agents: Sequence[AgentAtWork] | None = None,
) -> EstimatedWait:
    """The expected wait at `position` from the queue's observed handle times and abandonment
    and the agents now staffed for calls needing `skills` (the queue's own when empty);
    `agents` when the caller has just read them (agents_at_work)."""
    if agents is None:
        agents = agents_at_work(session)
    staffed, busy = staffing(agents, skills or config.skills)
    return estimate_wait(position, staffed, busy, *history(session, config))


@dataclass(frozen=True, slots=True)
class _History:
    read_at: datetime
    handle_times: HandleTimes
    abandonment: float


# A queue's history as last read, per database (engine) and queue name.
_histories: WeakKeyDictionary[Engine, dict[str, _History]] = WeakKeyDictionary()


def history(session: Session, config: QueueConfig) -> tuple[HandleTimes, float]:
    """The queue's observed handle times and abandonment rate, read again once HISTORY_FRESH
    has passed. Every waiting caller's announcement asks for them, and they move with tens of
    calls, not seconds; the position and the agents staffed are always read live."""
    now, engine = clock.now(), session.get_bind()
    assert isinstance(engine, Engine)
    known = _histories.setdefault(engine, {}).get(config.name)
    if known is None or not timedelta(0) <= now - known.read_at < HISTORY_FRESH:
        known = _History(now, handle_times(session, config), abandonment(session, config.name))
        _histories[engine][config.name] = known
    return known.handle_times, known.abandonment


def handle_times(session: Session, config: QueueConfig) -> HandleTimes:
    """Answered to available again (the queue's wrap-up added) of its recent completed calls."""
    rows = session.execute(
        select(QueueEntry.answered_at, QueueEntry.ended_at)
        .where(
            QueueEntry.queue == config.name,
            QueueEntry.status == EntryStatus.COMPLETED,
            QueueEntry.answered_at.is_not(None),
            QueueEntry.ended_at.is_not(None),
        )
        .order_by(QueueEntry.ended_at.desc(), QueueEntry.id.desc())
        .limit(RECENT_HANDLE)
    ).all()
    times = HandleTimes(mean=float(config.handle_seconds))
    for answered, ended in reversed(rows):
        talk = (as_utc(ended) - as_utc(answered)).total_seconds()
        times = times.observe(talk + config.wrap_up_seconds)
    return times


def abandonment(session: Session, queue: str) -> float:
    """Hang-ups per second waited among the queue's recent callers (callbacks aside: they did
    not wait on the line)."""
    rows = session.execute(
        select(QueueEntry.entered_at, QueueEntry.answered_at, QueueEntry.ended_at)
        .where(
            QueueEntry.queue == queue,
            QueueEntry.callback_requested_at.is_(None),
            or_(
                QueueEntry.status == EntryStatus.ABANDONED,
                QueueEntry.answered_at.is_not(None),
            ),
        )
        .order_by(QueueEntry.id.desc())
        .limit(RECENT_LEFT)
    ).all()
    observed = Abandonment()
    for entered, answered, ended in reversed(rows):
        left = answered or ended
        if left is not None:
            waited = (as_utc(left) - as_utc(entered)).total_seconds()
            observed = observed.observe(waited, abandoned=answered is None)
    return observed.rate


@dataclass(frozen=True, slots=True)
class AgentAtWork:
    """An agent signed in (available, on a call or in wrap-up), as routing and estimates see
    them."""

    state: str
    wrap_up_until: datetime | None
    entry_id: int | None  # the queue entry offered to or taken by them
    skills: frozenset[str]
    enabled: bool


# Built once: every waiting caller's poll runs it.
_AT_WORK = (
    select(
        AgentPresence.state,
        AgentPresence.wrap_up_until,
        AgentPresence.current_entry_id,
        StaffUser.role,
        StaffUser.skills,
        StaffUser.disabled_at,
    )
    .join(StaffUser, StaffUser.id == AgentPresence.staff_id)
    .where(AgentPresence.state.in_(STAFFED))
)


def agents_at_work(session: Session) -> list[AgentAtWork]:
    """One unlocked look at the agents signed in."""
    return [
        AgentAtWork(state, until, entry, _skills(role, skills), disabled is None)
        for state, until, entry, role, skills, disabled in session.execute(_AT_WORK)
    ]


def staffing(agents: Iterable[AgentAtWork], skills: Iterable[str]) -> tuple[int, int]:
    """(staffed, busy): of `agents`, the enabled ones with `skills`, and how many of them are
    on a call or in wrap-up."""
    needed = frozenset(skills)
    able = [agent.state for agent in agents if agent.enabled and needed <= agent.skills]
    return len(able), sum(1 for state in able if state in BUSY)


def skills_of(staff: StaffUser) -> frozenset[str]:
    return _skills(staff.role, staff.skills)


def _skills(role: str, skills: Iterable[str]) -> frozenset[str]:
    extra = {SUPERVISOR_SKILL} if role == StaffRole.SUPERVISOR else set()
    return frozenset({*skills, *extra})


# --- routing --------------------------------------------------------------------------------


def route_all(session: Session) -> int:
    """Move every queue; returns how many calls were offered. The agents are read once, and
    again only after a queue's routing may have changed them."""
    agents, offered = agents_at_work(session), 0
    for name in all_queues():
        entries, moved = _route(session, name, agents)
        offered += len(entries)
        if moved:
            agents = agents_at_work(session)
    return offered


def route(session: Session, queue: str) -> list[QueueEntry]:
    """Settle what is due, then offer the queue's calls, in order, to free qualified agents."""
    offered, _ = _route(session, queue, agents_at_work(session))
    return offered


def _route(
    session: Session, queue: str, agents: Sequence[AgentAtWork]
) -> tuple[list[QueueEntry], bool]:
    """`route`, given the agents at work as just read: the calls offered, and whether any
    agent may have changed state since (a wrap-up or an offer was due, or a call was offered)."""
    now = clock.now()
    settled, anyone_free = _settle(session, queue, now, agents)
    if not anyone_free:  # the usual case under load: skip reading the queue
        return [], settled
    offered = _offer_calls(session, queue, now)
    return offered, settled or bool(offered)


def _offer_calls(session: Session, queue: str, now: datetime) -> list[QueueEntry]:
    config = queue_config(queue)
    entries = (
        session.execute(
            select(QueueEntry)
            .where(QueueEntry.queue == queue, QueueEntry.status.in_(READY), _due(now))
            .order_by(QueueEntry.priority.desc(), QueueEntry.entered_at, QueueEntry.id)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not entries:
        return []
    free = _free_agents(session)
    last = _last_offered(session, queue) if config.strategy == "rrmemory" else None
    offered: list[QueueEntry] = []
    for entry in entries:
        candidates = [candidate for candidate, _ in free.values()]
        chosen = choose(config.strategy, _pool(entry, candidates), last_offered=last)
        if chosen is None:
            continue
        _, presence = free.pop(chosen.staff_id)
        _offer(entry, presence, now, config)
        last = chosen.staff_id
        offered.append(entry)
    return offered


def _pool(entry: QueueEntry, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Qualified agents who have not let this call lapse; when every one of them has, a new
    round starts (the skipped ones are away by then, so the next is someone back at a desk)."""
    pool = qualified(candidates, entry.skills, entry.skipped_agents)
    if not pool and entry.skipped_agents:
        pool = qualified(candidates, entry.skills)
        if pool:
            entry.skipped_agents = []
    return pool


def _settle(
    session: Session, queue: str, now: datetime, agents: Sequence[AgentAtWork]
) -> tuple[bool, bool]:
    """End the wrap-ups and take back the offers that are due: (whether anything was due,
    whether any agent is free then).

    The unlocked look at the agents at work decides what needs doing: a wrap-up is due only on
    an agent in wrap-up, and an offer is pending only on an available agent holding an entry
    (`_offer` links them both ways). Only what is due is then read again, locked."""
    wrap_ups_due = any(
        agent.state == AgentState.WRAP_UP
        and agent.wrap_up_until is not None
        and as_utc(agent.wrap_up_until) <= now
        for agent in agents
    )
    offers_pending = any(
        agent.state == AgentState.AVAILABLE and agent.entry_id is not None for agent in agents
    )
    if wrap_ups_due:
        _end_wrap_ups(session, now)
    if offers_pending:
        _lapse_offers(session, queue, now)
    if wrap_ups_due or offers_pending:  # agents freed or set away: look again
        return True, _anyone_free(session)
    free = any(agent.state == AgentState.AVAILABLE and agent.entry_id is None for agent in agents)
    return False, free


def _anyone_free(session: Session) -> bool:
    """An unlocked look; `_free_agents` locks the ones it will offer calls to."""
    return (
        session.execute(
            select(AgentPresence.staff_id)
            .where(
                AgentPresence.state == AgentState.AVAILABLE,
                AgentPresence.current_entry_id.is_(None),
            )
            .limit(1)
        ).first()
        is not None
    )


def _free_agents(session: Session) -> dict[int, tuple[Candidate, AgentPresence]]:
    rows = session.execute(
        select(AgentPresence, StaffUser)
        .join(StaffUser, StaffUser.id == AgentPresence.staff_id)
        .where(
            AgentPresence.state == AgentState.AVAILABLE,
            AgentPresence.current_entry_id.is_(None),
            StaffUser.disabled_at.is_(None),
        )
        .with_for_update(of=AgentPresence, skip_locked=True)
    ).all()
    return {
        staff.id: (
            Candidate(
                staff_id=staff.id,
                skills=skills_of(staff),
                idle_since=as_utc(presence.idle_since or presence.state_since),
                calls_taken=presence.calls_taken,
            ),
            presence,
        )
        for presence, staff in rows
    }


def _last_offered(session: Session, queue: str) -> int | None:
    return session.execute(
        select(QueueEntry.agent_id)
        .where(QueueEntry.queue == queue, QueueEntry.offered_at.is_not(None))
        .order_by(QueueEntry.offered_at.desc(), QueueEntry.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _offer(entry: QueueEntry, presence: AgentPresence, now: datetime, config: QueueConfig) -> None:
    entry.status = EntryStatus.OFFERED
    entry.agent_id = presence.staff_id
    entry.offered_at = now
    entry.offer_expires_at = now + timedelta(seconds=config.offer_timeout_seconds)
    presence.current_entry_id = entry.id


def _lapse_offers(session: Session, queue: str, now: datetime) -> None:
    lapsed = (
        session.execute(
            select(QueueEntry)
            .where(
                QueueEntry.queue == queue,
                QueueEntry.status == EntryStatus.OFFERED,
                QueueEntry.offer_expires_at <= now,
            )
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for entry in lapsed:
        agent_id = entry.agent_id
        _release_offer(session, entry, skip=True)
        presence = session.get(AgentPresence, agent_id)
        if presence is not None and presence.state == AgentState.AVAILABLE:
            _set_state(presence, AgentState.AWAY, now)
        record(
            session,
            actor=SYSTEM,
            action="hotline.offer_lapsed",
            subject=f"staff:{agent_id}",
            detail={"queue": queue, "entry_id": entry.id, "set_away": True},
        )


def _release_offer(session: Session, entry: QueueEntry, *, skip: bool) -> None:
    """Take an offered entry back into the queue, in its place (a no-op for other states)."""
    if entry.status != EntryStatus.OFFERED:
        return
    presence = session.get(AgentPresence, entry.agent_id)
    if presence is not None and presence.current_entry_id == entry.id:
        presence.current_entry_id = None
    if skip and entry.agent_id not in entry.skipped_agents:
        entry.skipped_agents = [*entry.skipped_agents, entry.agent_id]
    callback = entry.callback_requested_at is not None
    entry.status = EntryStatus.CALLBACK if callback else EntryStatus.WAITING
    entry.agent_id = entry.offered_at = entry.offer_expires_at = None


def _end_wrap_ups(session: Session, now: datetime) -> None:
    done = (
        session.execute(
            select(AgentPresence)
            .where(AgentPresence.state == AgentState.WRAP_UP, AgentPresence.wrap_up_until <= now)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for presence in done:
        assert presence.wrap_up_until is not None
        _set_state(presence, AgentState.AVAILABLE, as_utc(presence.wrap_up_until))


# --- presence ------------------------------------------------------------------------------


def presence_of(session: Session, staff_id: int) -> AgentPresence:
    """The agent's presence row (offline until they first sign in to the queue)."""

    def find() -> AgentPresence | None:
        return session.get(AgentPresence, staff_id, with_for_update=True)

    def create() -> AgentPresence:
        presence = AgentPresence(
            staff_id=staff_id, state=AgentState.OFFLINE, state_since=clock.now(), calls_taken=0
        )
        session.add(presence)
        session.flush()
        return presence

    return get_or_create(session, find, create)


def set_presence(session: Session, staff: StaffUser, state: str) -> AgentPresence:
    """available, away or offline. Not during a call; leaving drops a pending offer (the call
    goes to the next agent)."""
    if state not in SETTABLE:
        raise DomainError("invalid_request")
    presence = presence_of(session, staff.id)
    if presence.state == AgentState.ON_CALL:
        raise DomainError("presence_on_call")
    if presence.current_entry_id is not None and state != AgentState.AVAILABLE:
        entry = session.get(QueueEntry, presence.current_entry_id, with_for_update=True)
        if entry is not None:
            _release_offer(session, entry, skip=True)
    if presence.state != state:
        _set_state(presence, AgentState(state), clock.now())
        _audit_presence(session, staff, presence)
    return presence


def end_wrap_up(session: Session, staff: StaffUser) -> AgentPresence:
    presence = presence_of(session, staff.id)
    if presence.state != AgentState.WRAP_UP:
        raise DomainError("presence_not_in_wrap_up")
    _set_state(presence, AgentState.AVAILABLE, clock.now())
    _audit_presence(session, staff, presence)
    return presence


def _set_state(presence: AgentPresence, state: AgentState, since: datetime) -> None:
    presence.state = state
    presence.state_since = since
    presence.wrap_up_until = None
    if state == AgentState.AVAILABLE:
        presence.idle_since = since
    presence.current_entry_id = None  # a call taken sets it again


def _audit_presence(session: Session, staff: StaffUser, presence: AgentPresence) -> None:
    record(
        session,
        actor=staff.actor,
        action="hotline.presence",
        subject=staff.actor,
        detail={"state": presence.state},
    )


# --- the agent's side of a call --------------------------------------------------------------


class Dialer(Protocol):
    """Places the outbound leg of a callback; returns the carrier's call id (sid)."""

    def dial(self, *, to: str, caller_id: str, entry_id: int) -> str: ...


class LoopbackDialer:
    """No carrier: the dial is only recorded (the callback Call row, direction "callback"),
    where the local softphone finds it and answers it through the same webhooks."""

    def dial(self, *, to: str, caller_id: str, entry_id: int) -> str:
        return f"CB{uuid.uuid4().hex}"


class TwilioDialer:
    """Dials through Twilio's REST API; the answered call asks `answer_url` what to do
    (connect it to the agent) and reports its progress to `status_url`."""

    def __init__(self, account_sid: str, auth_token: str, answer_url: str, status_url: str):
        from twilio.rest import Client  # only when Twilio is configured

        self._client = Client(account_sid, auth_token)
        self._answer_url, self._status_url = answer_url, status_url

    def dial(self, *, to: str, caller_id: str, entry_id: int) -> str:
        call = self._client.calls.create(
            to=to,
            from_=caller_id,
            url=f"{self._answer_url}?entry={entry_id}",
            status_callback=self._status_url,
            status_callback_event=["answered", "completed"],
        )
        return str(call.sid)


def dialer_for(settings: Settings | None = None) -> Dialer:
    """Twilio when its credentials are set, else the loopback dialer."""
    settings = settings or get_settings()
    if settings.twilio_account_sid and settings.twilio_auth_token:
        # The URL the carrier reaches us on: the one webhook signatures are checked against.
        base = (settings.twilio_public_url or settings.public_base_url).rstrip("/")
        return TwilioDialer(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            base + voice_paths.CALLBACK,
            base + voice_paths.STATUS,
        )
    return LoopbackDialer()


def current_offer(session: Session, staff: StaffUser) -> QueueEntry | None:
    """The call offered to this agent now, after moving the queues."""
    route_all(session)
    presence = session.get(AgentPresence, staff.id)
    if presence is None or presence.current_entry_id is None:
        return None
    entry = session.get(QueueEntry, presence.current_entry_id)
    if entry is None or entry.status != EntryStatus.OFFERED or entry.agent_id != staff.id:
        return None
    return entry


def accept(session: Session, staff: StaffUser, entry_id: int, dialer: Dialer) -> QueueEntry:
    """Take the offered call. A callback then dials the customer, the agent already on."""
    entry = _entry(session, entry_id)
    now = clock.now()
    if (
        entry.status != EntryStatus.OFFERED
        or entry.agent_id != staff.id
        or entry.offer_expires_at is None
        or as_utc(entry.offer_expires_at) <= now
    ):
        raise DomainError("queue_offer_gone")
    call = _call(session, entry)
    entry.status = EntryStatus.CONNECTED
    entry.answered_at = now
    call.agent_id = staff.id
    presence = presence_of(session, staff.id)
    _set_state(presence, AgentState.ON_CALL, now)
    presence.current_entry_id = entry.id
    presence.calls_taken += 1
    contact = session.get(Contact, call.contact_id) if call.contact_id else None
    if contact is not None:  # whoever answers handles the caller's contact now
        contact.agent_id = staff.id
    record(
        session,
        actor=staff.actor,
        action="hotline.call_accepted",
        subject=f"call:{call.id}",
        detail={"queue": entry.queue, "entry_id": entry.id, "callback": _is_callback(entry)},
    )
    if _is_callback(entry):
        _dial_back(session, entry, call, dialer, actor=staff.actor)
    else:
        call.status = CallStatus.CONNECTED
    return entry


def _dial_back(
    session: Session, entry: QueueEntry, call: Call, dialer: Dialer, *, actor: str
) -> Call:
    """Dial the customer for a callback: one attempt, recorded as its own outbound call."""
    assert entry.callback_number is not None
    settings = get_settings()
    entry.callback_attempts += 1
    sid = dialer.dial(
        to=entry.callback_number, caller_id=settings.hotline_callback_from, entry_id=entry.id
    )
    leg = Call(
        sid=sid,
        direction=CALLBACK_LEG,
        from_number=settings.hotline_callback_from,
        to_number=entry.callback_number,
        customer_id=call.customer_id,
        contact_id=call.contact_id,
        language=call.language,
        state="callback",
        memory={"callback_entry_id": entry.id},
        verification="none",
        path=[],
        actions=[],
        status=CallStatus.IN_FLOW,
        started_at=clock.now(),
    )
    session.add(leg)
    session.flush()
    record(
        session,
        actor=actor,
        action="hotline.callback_dialled",
        subject=f"call:{call.id}",
        detail={"entry_id": entry.id, "attempt": entry.callback_attempts, "leg": leg.id},
    )
    return leg


def callback_entry_of(session: Session, leg: Call) -> QueueEntry | None:
    """The queue entry a callback's outbound call belongs to (for its status webhook)."""
    entry_id = (leg.memory or {}).get("callback_entry_id")
    return session.get(QueueEntry, entry_id, with_for_update=True) if entry_id else None


def callback_agent(session: Session, leg: Call, entry_id: int) -> StaffUser | None:
    """The agent waiting on the line for the customer this callback dial reached (entry
    `entry_id`, the one it was dialled for); None once nobody waits for them any more."""
    entry = callback_entry_of(session, leg)
    if entry is None or entry.id != entry_id or entry.status != EntryStatus.CONNECTED:
        return None
    return session.get(StaffUser, entry.agent_id) if entry.agent_id else None


def callback_answered(session: Session, entry: QueueEntry) -> QueueEntry:
    """The customer picked up a callback: they are now talking with the agent."""
    call = _call(session, entry)
    call.status = CallStatus.CONNECTED
    _case_note(session, entry, call, f"Callback answered (attempt {entry.callback_attempts}).")
    return entry


def callback_failed_attempt(session: Session, entry: QueueEntry) -> QueueEntry:
    """The customer did not answer a callback dial. The agent is free again; the entry waits,
    in its place, before the next attempt (the delay doubles), or fails after the last one."""
    settings = get_settings()
    now = clock.now()
    presence = session.get(AgentPresence, entry.agent_id) if entry.agent_id else None
    if presence is not None and presence.current_entry_id == entry.id:
        _set_state(presence, AgentState.AVAILABLE, now)
    call = _call(session, entry)
    if entry.callback_attempts >= settings.hotline_callback_attempts:
        entry.status = EntryStatus.CALLBACK_FAILED
        entry.ended_at = now
        call.outcome = "callback_failed"
        _case_note(
            session,
            entry,
            call,
            f"Callback failed: no answer after {entry.callback_attempts} attempts.",
        )
        record(
            session,
            actor=SYSTEM,
            action="hotline.callback_failed",
            subject=f"call:{call.id}",
            detail={"entry_id": entry.id, "attempts": entry.callback_attempts},
        )
        if call.customer_id is not None:  # tell them, so they call again rather than wait
            notify(
                session,
                call.customer_id,
                "hotline_callback_failed",
                {"attempts": entry.callback_attempts},
            )
        return entry
    delay = settings.hotline_callback_retry_seconds * 2 ** (entry.callback_attempts - 1)
    entry.status = EntryStatus.CALLBACK
    entry.agent_id = entry.offered_at = entry.offer_expires_at = entry.answered_at = None
    entry.not_before = now + timedelta(seconds=delay)
    return entry


def end_call(session: Session, staff: StaffUser, entry_id: int, disposition: str) -> QueueEntry:
    """The agent ends the call with a disposition and goes into the queue's wrap-up."""
    entry = _connected(session, staff, entry_id)
    now = clock.now()
    entry.status = EntryStatus.COMPLETED
    entry.ended_at = now
    call = _call(session, entry)
    call.disposition = disposition
    call.status = CallStatus.COMPLETED
    call.outcome = call.outcome or "agent"
    call.ended_at = call.ended_at or now
    _start_wrap_up(session, staff, entry.queue, now)
    record(
        session,
        actor=staff.actor,
        action="hotline.call_ended",
        subject=f"call:{call.id}",
        detail={"entry_id": entry.id, "disposition": disposition},
    )
    return entry


def transfer(
    session: Session,
    staff: StaffUser,
    entry_id: int,
    *,
    queue: str | None = None,
    supervisor: bool = False,
) -> QueueEntry:
    """Send the caller to another queue or to a supervisor (any supervisor with the call's
    language); the agent goes into wrap-up. Returns the caller's new entry."""
    if (queue is None) == (not supervisor):
        raise DomainError("transfer_target_required")
    entry = _connected(session, staff, entry_id)
    target = queue_config(queue or entry.queue)
    now = clock.now()
    entry.status = EntryStatus.COMPLETED
    entry.ended_at = now
    call = _call(session, entry)
    call.disposition = "transferred"
    own_skills = set(entry.skills) - set(queue_config(entry.queue).skills)  # the language
    moved = QueueEntry(
        call_id=call.id,
        queue=target.name,
        skills=sorted({*own_skills, *target.skills, *([SUPERVISOR_SKILL] if supervisor else [])}),
        priority=max(entry.priority + 1, target.priority),
        status=EntryStatus.WAITING,
        entered_at=now,
        skipped_agents=[staff.id],
        callback_attempts=0,
    )
    session.add(moved)
    call.status = CallStatus.QUEUED
    contact = session.get(Contact, call.contact_id) if call.contact_id else None
    if contact is not None:  # nobody's until the next agent accepts
        contact.agent_id = None
    _start_wrap_up(session, staff, entry.queue, now)
    session.flush()
    record(
        session,
        actor=staff.actor,
        action="hotline.call_transferred",
        subject=f"call:{call.id}",
        detail={
            "from_entry": entry.id,
            "to_entry": moved.id,
            "queue": target.name,
            "supervisor": supervisor,
        },
    )
    return moved


def add_note(session: Session, staff: StaffUser, entry_id: int, text: str) -> CaseEvent:
    """An internal note on the call's case (opened now if the call has none yet)."""
    entry = _entry(session, entry_id)
    if entry.agent_id != staff.id:
        raise DomainError("queue_call_not_yours")
    call = _call(session, entry)
    case = _case_of(session, call, staff.actor)
    return add_event(
        session,
        case,
        "note",
        actor=staff.actor,
        body=text,
        contact_id=call.contact_id,
        customer_visible=False,
        data={"call_id": call.id},
    )


def _start_wrap_up(session: Session, staff: StaffUser, queue: str, now: datetime) -> None:
    presence = presence_of(session, staff.id)
    seconds = queue_config(queue).wrap_up_seconds
    if seconds == 0:
        _set_state(presence, AgentState.AVAILABLE, now)
        return
    _set_state(presence, AgentState.WRAP_UP, now)
    presence.wrap_up_until = now + timedelta(seconds=seconds)


def _entry(session: Session, entry_id: int) -> QueueEntry:
    entry = session.get(QueueEntry, entry_id, with_for_update=True)
    if entry is None:
        raise DomainError("queue_entry_not_found")
    return entry


def own_entry(session: Session, staff: StaffUser, entry_id: int) -> QueueEntry:
    """An entry offered to, taken or ended by this agent."""
    entry = _entry(session, entry_id)
    if entry.agent_id != staff.id:
        raise DomainError("queue_call_not_yours")
    return entry


def _connected(session: Session, staff: StaffUser, entry_id: int) -> QueueEntry:
    entry = own_entry(session, staff, entry_id)
    if entry.status != EntryStatus.CONNECTED:
        raise DomainError("queue_call_not_connected")
    return entry


def _call(session: Session, entry: QueueEntry) -> Call:
    call = session.get(Call, entry.call_id, with_for_update=True)
    assert call is not None
    return call


def _is_callback(entry: QueueEntry) -> bool:
    return entry.callback_requested_at is not None


def _case_of(session: Session, call: Call, actor: str) -> Case:
    """The case of the call's contact, opened now (and put on the contact) if there is none."""
    contact = session.get(Contact, call.contact_id) if call.contact_id else None
    if contact is not None and contact.case_id is not None:
        case = session.get(Case, contact.case_id)
        assert case is not None
        return case
    case = open_case(
        session,
        customer_id=call.customer_id,
        type=CaseType.OTHER,
        subject="Phone call",
        channel="phone",
        actor=actor,
    )
    if contact is not None:
        contact.case_id = case.id
    return case


def _case_note(session: Session, entry: QueueEntry, call: Call, text: str) -> None:
    add_event(
        session,
        _case_of(session, call, SYSTEM),
        "note",
        actor=SYSTEM,
        body=text,
        contact_id=call.contact_id,
        customer_visible=False,
        data={"call_id": call.id, "entry_id": entry.id, "callback": True},
    )


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the agent sees of a call: always the flow's own knowledge (verification reached,
    whether the number matched a customer, the path, masked); the account only when the IVR
    verified the caller strongly (support.actions.view_account, which audits the look)."""

    entry: QueueEntry
    call: Call
    caller_id_match: bool
    verification_methods: list[str]
    account: AccountView | None


def call_context(session: Session, staff: StaffUser, entry_id: int, language: str) -> CallContext:
    entry = own_entry(session, staff, entry_id)
    call = _call(session, entry)
    contact = session.get(Contact, call.contact_id) if call.contact_id else None
    steps = contact.verification_steps if contact is not None else []
    account = None
    if contact is not None and call.verification == VerificationLevel.STRONG:
        try:
            account = view_account(session, staff, contact.id, language)
        except DomainError:
            account = None  # the contact ended (a callback) or was verified for someone else
    return CallContext(
        entry=entry,
        call=call,
        caller_id_match=call.customer_id is not None,
        verification_methods=methods_passed(steps, contact.customer_id if contact else None),
        account=account,
    )


# --- the live queue (console, wallboard) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryView:
    entry: QueueEntry
    position: int
    waited_seconds: float


@dataclass(frozen=True, slots=True)
class QueueView:
    config: QueueConfig
    entries: list[EntryView]  # in the order they will be answered
    booked: int  # callbacks booked for later (out of hours), not yet due

    @property
    def waiting(self) -> int:
        return len(self.entries)

    @property
    def oldest_wait_seconds(self) -> float:
        return max((view.waited_seconds for view in self.entries), default=0.0)


def live_queues(session: Session) -> list[QueueView]:
    """Every queue with its callers, after moving them all (what a console polls)."""
    route_all(session)
    now = clock.now()
    rows = session.execute(select(QueueEntry).where(QueueEntry.status.in_(ACTIVE))).scalars().all()
    due = [e for e in rows if e.not_before is None or as_utc(e.not_before) <= now]
    views = []
    for name, config in all_queues().items():
        mine = sorted(
            (e for e in due if e.queue == name),
            key=lambda e: (-e.priority, as_utc(e.entered_at), e.id),
        )
        views.append(
            QueueView(
                config,
                [
                    EntryView(e, place, (now - as_utc(e.entered_at)).total_seconds())
                    for place, e in enumerate(mine, start=1)
                ],
                booked=sum(1 for e in rows if e.queue == name) - len(mine),
            )
        )
    return views


# --- demo -----------------------------------------------------------------------------------

DEMO_SKILLS = {"agent.li": ("fraud",), "agent.sam": ("payments",)}


def seed_demo(session: Session, staff_ids: dict[str, int]) -> None:
    """agent.li and agent.sam available, between them holding every queue's skill, so that a
    demo call reaches an agent (safe to run again)."""
    for username, extra in DEMO_SKILLS.items():
        staff = session.get(StaffUser, staff_ids[username])
        assert staff is not None
        missing = [skill for skill in extra if skill not in staff.skills]
        if missing:
            staff.skills = [*staff.skills, *missing]
        presence = presence_of(session, staff.id)
        if presence.state in (AgentState.OFFLINE, AgentState.AWAY):
            set_presence(session, staff, AgentState.AVAILABLE)
