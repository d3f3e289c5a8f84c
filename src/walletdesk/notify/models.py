"""Notification tables: the outbox of messages still to send, and the customer's in-app inbox.

An outbox row is written in the same transaction as the change it announces, so it exists
exactly when that change was committed. Its params are sealed (AES-GCM, kit.crypto): they may
carry one-time codes and password-reset links, which must never sit in the database in clear.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    INAPP = "inapp"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or leased by a worker that is sending)
    SENT = "sent"
    FAILED = "failed"  # gave up: out of attempts, or a failure that retrying cannot fix


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The worker's claim query: due pending rows, oldest first.
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_messages_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(8))
    event: Mapped[str] = mapped_column(String(40))
    # The customer's language when the event happened; the worker renders in it.
    language: Mapped[str] = mapped_column(String(8))
    # Email address or phone number; None for the in-app inbox.
    destination: Mapped[str | None] = mapped_column(String(254), default=None)
    params_sealed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a worker may next pick it up; a claim pushes it forward (a lease), so a worker that
    # dies mid-send leaves the row to be retried rather than lost.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Error class and protocol code only: provider messages can echo what was sent.
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class InboxMessage(Base):
    """A message in the customer's in-app inbox, rendered in their language when delivered."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_messages_customer_id_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The outbox row it came from; unique, so a message can never land in the inbox twice.
    outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id"), unique=True, default=None
    )
    event: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
