"""Ledger tables.

A transfer moves `amount` from its debit account to its credit account in one currency and is
never changed afterwards. A posted transfer writes two entries (-amount, +amount) that sum to
zero; the database refuses an unbalanced pair, any UPDATE or DELETE of entries and transfers,
and a second resolution of a pending transfer (unique `pending_id`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId


class AccountKind(StrEnum):
    CUSTOMER_WALLET = "customer_wallet"
    MERCHANT_SETTLEMENT = "merchant_settlement"
    GATEWAY_CLEARING = "gateway_clearing"
    BANK_CLEARING = "bank_clearing"
    FEE_INCOME = "fee_income"
    DISPUTE = "dispute"
    SUSPENSE = "suspense"
    EXCHANGE = "exchange"
    GOODWILL = "goodwill"  # expense: credits the support desk grants
    TEST = "test"


class Phase(StrEnum):
    SINGLE = "single"  # posted at once
    PENDING = "pending"  # reserves funds until posted or voided
    POST = "post"  # posts (all or part of) a pending transfer
    VOID = "void"  # releases a pending transfer


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("NOT no_overdraft OR balance - pending_debits >= 0", name="no_overdraft"),
        CheckConstraint(
            "pending_debits >= 0 AND pending_credits >= 0", name="pending_not_negative"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(8))
    # debits_must_not_exceed_credits, in TigerBeetle's words: customer wallets never go negative.
    no_overdraft: Mapped[bool] = mapped_column(Boolean, default=False)
    # Posted credits minus posted debits; pending amounts are counted apart.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_debits: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    @property
    def available(self) -> int:
        return self.balance - self.pending_debits


class Transfer(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        CheckConstraint("phase IN ('single', 'pending', 'post', 'void')", name="phase_known"),
        CheckConstraint(
            "(phase IN ('post', 'void')) = (pending_id IS NOT NULL)", name="resolution_has_pending"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The caller's own id: posting the same external_id twice is reported, never applied twice.
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(8))
    pending_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), unique=True, default=None
    )
    # Set on the two legs of an exchange: units of the credit currency per unit of the debit one.
    exchange_rate: Mapped[str | None] = mapped_column(String(40), default=None)
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Entry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("(leg = 1 AND amount < 0) OR (leg = 2 AND amount > 0)", name="leg_sign"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
        Index("uq_ledger_entries_transfer_leg", "transfer_id", "leg", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("ledger_transfers.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    leg: Mapped[int] = mapped_column(SmallInteger)  # 1 debit, 2 credit
    amount: Mapped[int] = mapped_column(BigInteger)  # signed: debit < 0 < credit
    balance_after: Mapped[int] = mapped_column(BigInteger)
