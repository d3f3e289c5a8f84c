"""Identity tables: credentials, sessions, devices, one-time codes, reset tokens, challenges.

Every secret here is stored as a hash (argon2id for passwords, a keyed HMAC for payment PINs,
SHA-256 for random tokens and codes) or sealed (the TOTP secret): a copy of this database logs
nobody in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId


class Credential(Base):
    __tablename__ = "credentials"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    pin_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    pin_failures: Mapped[int] = mapped_column(Integer, default=0)
    pin_locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Login throttling: failures since the last success, and until when logins wait.
    login_failures: Mapped[int] = mapped_column(Integer, default=0)
    login_locked_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    last_password_reset_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    # Large outgoing payments wait 48 h after the phone or email changes (SIM-swap defence).
    contact_changed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    totp_secret_sealed: Mapped[str | None] = mapped_column(String(200), default=None)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # A new authenticator being set up: it replaces the active one only once confirmed.
    totp_pending_sealed: Mapped[str | None] = mapped_column(String(200), default=None)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)  # no replay
    phone_verified_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    email_verified_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("customer_id", "device_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    device_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the app's device id
    label: Mapped[str] = mapped_column(String(100))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    first_payment_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class AuthSession(Base):
    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_customer_id", "customer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), default=None)
    kind: Mapped[str] = mapped_column(String(8))  # "api" (bearer) or "web" (cookie)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # absolute timeout
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)


class OneTimeCode(Base):
    """A 6-digit code sent by SMS or email; single use, short-lived, five guesses at most."""

    __tablename__ = "one_time_codes"
    __table_args__ = (Index("ix_one_time_codes_customer_purpose", "customer_id", "purpose"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    purpose: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))
    destination: Mapped[str] = mapped_column(String(254))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ResetToken(Base):
    """A password-reset link (256-bit token) or code; stored hashed, single use."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Challenge(Base):
    """A step-up verification that one request (by its fingerprint) is waiting for."""

    __tablename__ = "challenges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("auth_sessions.id"))
    purpose: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(80))
    request_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    passed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    passed_with: Mapped[str | None] = mapped_column(String(16), default=None)
