"""Audit tables: the events themselves and the one-row head of their hash chain.

The database refuses UPDATE and DELETE on `audit_events` (triggers in migration 0004) and lets
`audit_head` only move forward one step at a time, so rewriting history takes deliberate DDL;
`audit.service.verify` still detects it afterwards.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId

GENESIS_HASH = "0" * 64  # the prev_hash of event 1
HEAD_ID = 1


class AuditEvent(Base):
    __tablename__ = "audit_events"

    # The position in the chain, handed out under the head's lock: gaps mean deleted events.
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))  # "customer:12", "agent:3", "system"
    action: Mapped[str] = mapped_column(String(64))  # "login", "account.frozen", ...
    subject: Mapped[str | None] = mapped_column(String(200), default=None)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)  # IPv6 text is <= 45
    # Kept as the exact canonical JSON text that was hashed, so no JSON type can reorder it.
    detail_json: Mapped[str | None] = mapped_column(Text, default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def detail(self) -> dict[str, Any] | None:
        return None if self.detail_json is None else json.loads(self.detail_json)


class AuditHead(Base):
    """Where the chain ends: the last sequence number and its hash.

    Appenders lock this row (FOR UPDATE on PostgreSQL) so the chain stays linear across
    processes; `verify` compares it with the last event to notice a cut-off tail.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
