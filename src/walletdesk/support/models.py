"""Support-desk tables: service hours, cases and their timelines, contacts on every channel,
agent actions and the supervisor approvals some of them need, and satisfaction ratings.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId


class ServiceHours(Base):
    """Hours of operation in one time zone; the weekly and exception hours are text intervals."""

    __tablename__ = "service_hours"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    always_open: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"mon": ["08:00-22:00"], ...}; a day left out is closed.
    weekly: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    # [{"date": "2026-02-17", "hours": [] (closed) or ["09:00-12:00"], "note": "..."}]
    exceptions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseType(StrEnum):
    LOGIN = "login"  # password or sign-in trouble
    PAYMENT_FAILED = "payment_failed"
    UNRECOGNISED_CHARGE = "unrecognised_charge"
    REFUND = "refund"
    ACCOUNT_LOCKED = "account_locked"  # locked or frozen
    CARD = "card"
    LIMITS = "limits"
    OTHER = "other"


class CasePriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class CaseStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    WAITING_ON_MERCHANT = "waiting_on_merchant"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


class Case(Base):
    """One customer problem. `number` is what the customer keys in on a phone pad."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_customer_id", "customer_id"),
        Index("ix_cases_status_queue", "status", "queue"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    # Null only for mail from an address no customer has registered.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    requester_email: Mapped[str | None] = mapped_column(String(254), default=None)
    type: Mapped[str] = mapped_column(String(24))
    priority: Mapped[str] = mapped_column(String(8), default=CasePriority.NORMAL)
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.NEW)
    subject: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))  # where it began: phone, chat, email, in_app
    queue: Mapped[str] = mapped_column(String(32), default="general")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    is_complaint: Mapped[bool] = mapped_column(Boolean, default=False)
    # A complaint points at the case it escalates, whose record it carries.
    escalated_from_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    # SLA: deadlines, when they were met, and the clock stopped while waiting on the customer.
    first_response_due: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    resolution_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    first_response_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    sla_paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    first_response_breached_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    resolution_breached_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseLink(Base):
    """What a case is about: a transaction (by number), a dispute, a risk alert, another case."""

    __tablename__ = "case_links"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "ref"),
        Index("ix_case_links_ref", "kind", "ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(16))  # transaction, dispute, risk_alert, case
    ref: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VerificationLevel(StrEnum):
    """How sure we are that the person on the contact is the customer, weakest first."""

    NONE = "none"
    CALLER_ID = "caller_id"  # the calling number is the registered phone: never enough alone
    KNOWLEDGE = "knowledge"  # knew something only the customer should (a recent amount)
    STRONG = "strong"  # read back a code sent to the registered phone, email or device


class Contact(Base):
    """One conversation on one channel: a call, a chat, an email thread's message, an in-app note."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_customer_id", "customer_id"),
        Index("ix_contacts_case_id", "case_id"),
        Index("ix_contacts_external_ref", "external_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    # Who the contact is about, once known; verification says how sure we are.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    channel: Mapped[str] = mapped_column(String(16))  # phone, chat, email, in_app
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    # The calling number or the sender's address, as the channel reported it.
    origin: Mapped[str | None] = mapped_column(String(254), default=None)
    verification_level: Mapped[str] = mapped_column(String(16), default=VerificationLevel.NONE)
    # Each step reached: [{"level": "knowledge", "method": "recent_amount", "at": "...", "by": ...}]
    verification_steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    next_steps: Mapped[str | None] = mapped_column(Text, default=None)
    summary_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The channel's own id of what arrived (an email's Message-ID, hashed): a repeat is dropped.
    external_ref: Mapped[str | None] = mapped_column(String(255), default=None)


class CaseEvent(Base):
    """One line of a case's timeline. Internal notes are never shown to the customer."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_id", "case_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), default=None)
    # created, status, assigned, message_in, message_out, note, action, sla_breach, csat, ...
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))  # customer:12, staff:3, system
    customer_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    body: Mapped[str | None] = mapped_column(Text, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AgentAction(Base):
    """Every action an agent took for a customer, with the verification level it was taken at;
    goodwill credits also count against the agent's daily limit through these rows."""

    __tablename__ = "agent_actions"
    __table_args__ = (Index("ix_agent_actions_staff_day", "staff_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    action: Mapped[str] = mapped_column(String(32))
    verification_level: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str | None] = mapped_column(String(8), default=None)
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # and carried out
    REJECTED = "rejected"
    EXPIRED = "expired"


class Approval(Base):
    """Dual control: an agent's request that a supervisor must approve before it happens.

    The parameters may hold personal data (a new phone number), so they are sealed.
    """

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_status", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(32))  # unlock, change_phone, change_email, goodwill
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    requested_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    reason: Mapped[str] = mapped_column(String(500))
    params_sealed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ApprovalStatus.PENDING)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    decision_note: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CsatRating(Base):
    """The customer's 1-5 rating of a resolved case, with who and what it rates kept alongside
    so that results can be grouped by agent, queue and case type."""

    __tablename__ = "csat_ratings"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    queue: Mapped[str] = mapped_column(String(32))
    case_type: Mapped[str] = mapped_column(String(24))
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
