"""Risk tables: every non-trivial decision with its reasons, and the alerts analysts resolve."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId
from walletdesk.wallet.models import WalletTransaction


class AlertStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class RiskDecision(Base):
    """What the engine decided about one event, and why, in words the customer can be told."""

    __tablename__ = "risk_decisions"
    __table_args__ = (
        CheckConstraint(
            "action IN ('allow', 'challenge', 'hold', 'decline', 'lock')", name="action_known"
        ),
        Index("ix_risk_decisions_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    event_kind: Mapped[str] = mapped_column(String(24))
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str | None] = mapped_column(String(8), default=None)
    action: Mapped[str] = mapped_column(String(16))
    # [{"rule": ..., "action": ..., "params": {...}}]: the facts the explanations were built from.
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    explanation_en: Mapped[str] = mapped_column(Text)
    explanation_zh: Mapped[str] = mapped_column(Text)
    # What was being decided on, such as a transaction number; None for a login.
    subject: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RiskAlert(Base):
    """A hold or lock waiting for an analyst or agent; resolved once, by someone named."""

    __tablename__ = "risk_alerts"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved')", name="status_known"),
        CheckConstraint(
            "status = 'open' OR (resolved_at IS NOT NULL AND resolved_by IS NOT NULL)",
            name="resolution_complete",
        ),
        Index("ix_risk_alerts_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    decision_id: Mapped[int] = mapped_column(BigId, ForeignKey("risk_decisions.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN)
    resolution: Mapped[str | None] = mapped_column(Text, default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(100), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The evaluator reads a customer's movements by time before every payment and transfer; the
# wallet's own indexes go by id. Declared here, with the access path that needs it (migration
# 0005 creates it).
HISTORY_INDEX = Index(
    "ix_wallet_transactions_customer_id_created_at",
    WalletTransaction.customer_id,
    WalletTransaction.created_at,
)
