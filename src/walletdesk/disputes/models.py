"""Dispute tables: the dispute itself and the evidence files the customer sends with it.

One payment is disputed at most once: a unique index over the payment's disputes that were not
withdrawn holds that even against two requests racing each other. Evidence files live in the
database (bytes, with their checked type and size), not on disk, so that every API worker of a
scaled-out deployment sees them and a database backup carries them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId


class DisputeReason(StrEnum):
    UNAUTHORISED = "unauthorised"  # "I never made this payment"
    DUPLICATE = "duplicate"
    AMOUNT_WRONG = "amount_wrong"
    NOT_RECEIVED = "not_received"
    CANCELLED_BUT_CHARGED = "cancelled_but_charged"


class DisputeStatus(StrEnum):
    """Where a dispute stands; won and lost are from the customer's side."""

    AWAITING_MERCHANT = "awaiting_merchant"  # filed; the merchant may accept or contest
    UNDER_REVIEW = "under_review"  # contested, or the merchant let the deadline pass
    WON = "won"  # the customer got the disputed amount back from the merchant
    LOST = "lost"
    WITHDRAWN = "withdrawn"


OPEN_STATUSES = (DisputeStatus.AWAITING_MERCHANT, DisputeStatus.UNDER_REVIEW)


class MerchantResponse(StrEnum):
    ACCEPT = "accept"
    CONTEST = "contest"


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "provisional_credit >= 0 AND provisional_credit <= amount", name="provisional_cap"
        ),
        Index(
            "uq_disputes_transaction_once",
            "transaction_id",
            unique=True,
            sqlite_where=text("status <> 'withdrawn'"),
            postgresql_where=text("status <> 'withdrawn'"),
        ),
        Index("ix_disputes_customer_id_id", "customer_id", "id"),
        Index("ix_disputes_merchant_id_id", "merchant_id", "id"),
        Index("ix_disputes_status_respond_by", "status", "respond_by"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("wallet_transactions.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    reason: Mapped[str] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(16))  # in_app, phone, chat, ivr
    filed_by: Mapped[str] = mapped_column(String(64))  # customer:12, staff:3, ivr
    respond_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    merchant_response: Mapped[str | None] = mapped_column(String(8), default=None)
    merchant_explanation: Mapped[str | None] = mapped_column(Text, default=None)
    merchant_responded_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    # Held for the customer (a pending ledger transfer) until the dispute is decided.
    provisional_credit: Mapped[int] = mapped_column(BigInteger, default=0)
    provisional_granted_by: Mapped[str | None] = mapped_column(String(64), default=None)
    refund_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("wallet_transactions.id"), default=None
    )
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    outcome_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def hold_id(self) -> str:
        """The ledger id of the provisional credit's pending transfer."""
        return f"dispute:{self.id}:provisional"


class DisputeEvidence(Base):
    __tablename__ = "dispute_evidence"
    __table_args__ = (
        CheckConstraint("size > 0", name="size_positive"),
        Index("ix_dispute_evidence_dispute_id", "dispute_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"))
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(40))  # as sniffed, never as claimed
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
