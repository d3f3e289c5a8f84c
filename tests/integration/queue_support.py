"""What the queue tests share: agents with skills and presence, calls put in a queue."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy.orm import Session

from walletdesk.db import Database
from walletdesk.hotline import queue
from walletdesk.hotline.models import Call, QueueEntry
from walletdesk.kit import clock
from walletdesk.kit.clock import FrozenClock
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.staff.service import create_staff, issue_session

PASSWORD = "quiet harbour lantern 7"
_sids = itertools.count(1)


def agent(
    db: Database,
    username: str,
    skills: tuple[str, ...] = ("zh-CN", "en"),
    *,
    role: StaffRole = StaffRole.AGENT,
    available: bool = True,
) -> tuple[int, str]:
    """A staff member (id, bearer token), available for calls unless told otherwise."""
    with db.unit_of_work() as session:
        staff, _ = create_staff(
            session,
            username=username,
            display_name=username,
            role=role,
            password=PASSWORD,
            skills=skills,
        )
        if available:
            queue.set_presence(session, staff, "available")
        return staff.id, issue_session(session, staff)


def staff(session: Session, staff_id: int) -> StaffUser:
    found = session.get(StaffUser, staff_id)
    assert found is not None
    return found


def new_call(
    db: Database,
    queue_name: str | None = "general",
    *,
    skills: tuple[str, ...] = ("zh-CN",),
    priority: int = 0,
    number: str | None = None,
    customer_id: int | None = None,
    contact_id: int | None = None,
) -> int:
    """A call that went through the IVR into `queue_name` (None: not queued); returns its id."""
    with db.unit_of_work() as session:
        call = Call(
            sid=f"CA{next(_sids):032d}",
            from_number=number or f"+8613900{next(_sids):06d}",
            to_number="+864000000000",
            customer_id=customer_id,
            contact_id=contact_id,
            language="zh-CN",
            state="queue",
            memory={},
            path=[{"at": clock.now().isoformat(), "state": "menu", "digits": "0"}],
            actions=[],
            started_at=clock.now(),
        )
        session.add(call)
        session.flush()
        if queue_name is not None:
            queue.enqueue(session, call, queue=queue_name, skills=skills, priority=priority)
        return call.id


def call_of(session: Session, call_id: int) -> Call:
    call = session.get(Call, call_id)
    assert call is not None
    return call


def status(db: Database, call_id: int) -> queue.WaitStatus:
    with db.unit_of_work() as session:
        return queue.wait_status(session, call_of(session, call_id))


def entry_of(db: Database, call_id: int) -> QueueEntry:
    with db.unit_of_work() as session:
        entry = queue.latest_entry(session, call_of(session, call_id))
        assert entry is not None
        return entry


def offer_of(db: Database, staff_id: int) -> int | None:
    with db.unit_of_work() as session:
        entry = queue.current_offer(session, staff(session, staff_id))
        return entry.id if entry else None


def answer(db: Database, staff_id: int, call_id: int) -> int:
    """The agent accepts the call offered to them; returns the entry id."""
    with db.unit_of_work() as session:
        entry = queue.current_offer(session, staff(session, staff_id))
        assert entry is not None and entry.call_id == call_id, "the call is not offered to them"
        queue.accept(session, staff(session, staff_id), entry.id, queue.LoopbackDialer())
        return entry.id


def hang_up_after(
    db: Database, frozen_clock: FrozenClock, staff_id: int, entry_id: int, seconds: int
) -> None:
    """The agent talks `seconds`, ends the call and ends wrap-up at once."""
    frozen_clock.advance(timedelta(seconds=seconds))
    with db.unit_of_work() as session:
        queue.end_call(session, staff(session, staff_id), entry_id, "resolved")
        queue.end_wrap_up(session, staff(session, staff_id))
