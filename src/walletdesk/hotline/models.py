"""Hotline tables: calls and what happened on them, queue entries (callbacks included), and
each agent's presence. The queue lives here rather than in memory, so calls waiting survive a
restart and every server process sees the same queue.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from walletdesk.db import Base, BigId
from walletdesk.support.models import Contact


class CallStatus(StrEnum):
    IN_FLOW = "in_flow"  # the IVR is talking to the caller
    QUEUED = "queued"
    CONNECTED = "connected"  # talking to an agent
    COMPLETED = "completed"
    ABANDONED = "abandoned"  # hung up while waiting in a queue
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


class Call(Base):
    """One phone call, from the carrier's first webhook to its status callback.

    The flow's position and working memory are kept here so that any server process can
    answer the call's next webhook. Digits the caller keyed are kept masked where they are
    secrets (PINs, codes): `path` records where the call went, never what a PIN was.
    """

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_customer_id", "customer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)  # the carrier's CallSid
    direction: Mapped[str] = mapped_column(String(8), default="inbound")  # or "callback"
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), default=None)
    # Held by the call once read: a webhook notes verification on the contact and ends it there.
    contact: Mapped[Contact | None] = relationship()
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    state: Mapped[str] = mapped_column(String(64))  # the flow state the call is in
    # Retries left, saved inputs, the option to resume after verification, ...
    memory: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    verification: Mapped[str] = mapped_column(String(16), default="none")
    # [{"at": ..., "state": ..., "digits": "1" or "******", "result": ...}]
    path: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.IN_FLOW)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    disposition: Mapped[str | None] = mapped_column(String(64), default=None)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class EntryStatus(StrEnum):
    WAITING = "waiting"  # on hold, listening to announcements
    CALLBACK = "callback"  # hung up, keeps its place; we call back when its turn comes
    OFFERED = "offered"  # offered to one agent, who has until offer_expires_at to accept
    CONNECTED = "connected"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    CALLBACK_FAILED = "callback_failed"  # no answer after the last retry


class QueueEntry(Base):
    """A caller's place in a queue. Order: priority (higher first), then entered_at."""

    __tablename__ = "queue_entries"
    __table_args__ = (Index("ix_queue_entries_queue_status", "queue", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    # Set on a new entry, so that a call not written yet (its first webhook) is written first.
    call: Mapped[Call] = relationship()
    queue: Mapped[str] = mapped_column(String(32))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=EntryStatus.WAITING)
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The agent the entry is offered to or connected with, and since when.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Agents who let the offer lapse are not offered this entry again.
    skipped_agents: Mapped[list[int]] = mapped_column(JSON, default=list)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    callback_number: Mapped[str | None] = mapped_column(String(32), default=None)
    callback_requested_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When set, the entry is not routed before this moment (a callback booked for opening time).
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class AgentState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    AWAY = "away"


class AgentPresence(Base):
    """Where each agent is. `idle_since` orders the longest-idle agent first; `calls_taken`
    serves the fewest-calls strategy."""

    __tablename__ = "agent_presence"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=AgentState.OFFLINE)
    state_since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    idle_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    wrap_up_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    calls_taken: Mapped[int] = mapped_column(Integer, default=0)
    current_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("queue_entries.id"), default=None
    )
