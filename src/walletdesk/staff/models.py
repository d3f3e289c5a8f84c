"""Staff accounts and their sessions.

Passwords are argon2id hashes and the TOTP secret is sealed, as for customers; the goodwill
limits are in minor units of `limits_currency` and bound what an agent may credit without a
supervisor's approval.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId


class StaffRole(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    RISK_ANALYST = "risk_analyst"
    ADMIN = "admin"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret_sealed: Mapped[str | None] = mapped_column(String(200), default=None)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)  # no replay
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Skills route calls and chats ("zh-CN", "en", "fraud", "payments", "disputes").
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    limits_currency: Mapped[str] = mapped_column(String(8), default="CNY")
    goodwill_per_action: Mapped[int] = mapped_column(BigInteger, default=0)
    goodwill_per_day: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def actor(self) -> str:
        """How this person appears in the audit log and on case timelines."""
        return f"staff:{self.id}"


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
