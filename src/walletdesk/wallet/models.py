"""Wallet tables: customers, their wallets and cards, merchants, and customer-visible transactions.

A `WalletTransaction` is what the customer sees in their history, failed attempts included; the
money itself moves only as ledger transfers, whose external ids start with `txn:<number>`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base, BigId
from walletdesk.kit.crypto import open_sealed, seal


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"  # frozen by the customer or an agent: nothing moves out
    LOCKED = "locked"  # locked by the risk engine or security: nothing moves out


class TxnKind(StrEnum):
    TOPUP = "topup"
    PAYMENT = "payment"
    TRANSFER = "transfer"
    REFUND = "refund"
    WITHDRAWAL = "withdrawal"
    EXCHANGE = "exchange"
    GOODWILL = "goodwill"  # a credit from the support desk


class TxnStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Personal data is sealed at rest (AES-256-GCM, with the key id in the value).
    name_sealed: Mapped[str] = mapped_column(String(400))
    national_id_sealed: Mapped[str | None] = mapped_column(String(400), default=None)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, default=None)
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    status: Mapped[str] = mapped_column(String(16), default=CustomerStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    @property
    def display_name(self) -> str:
        return open_sealed(self.name_sealed, context=NAME_CONTEXT)

    @display_name.setter
    def display_name(self, value: str) -> None:
        self.name_sealed = seal(value, context=NAME_CONTEXT)

    @property
    def national_id(self) -> str | None:
        if self.national_id_sealed is None:
            return None
        return open_sealed(self.national_id_sealed, context=NATIONAL_ID_CONTEXT)

    @national_id.setter
    def national_id(self, value: str | None) -> None:
        self.national_id_sealed = (
            None if value is None else seal(value, context=NATIONAL_ID_CONTEXT)
        )


NAME_CONTEXT = "customers.name"
NATIONAL_ID_CONTEXT = "customers.national_id"


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (UniqueConstraint("customer_id", "currency"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(8))
    ledger_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Currencies the merchant accepts, comma-separated ("CNY,USD").
    currencies: Mapped[str] = mapped_column(String(100), default="CNY")
    fee_bps: Mapped[int] = mapped_column(Integer, default=0)  # platform fee, basis points
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def accepts(self, currency: str) -> bool:
        return currency in self.currencies.split(",")


class Card(Base):
    """A card as the gateway's token: the number and CVV never reach this database."""

    __tablename__ = "cards"
    __table_args__ = (Index("ix_cards_customer_fingerprint", "customer_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    gateway_token: Mapped[str] = mapped_column(String(64), unique=True)
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(SmallInteger)
    exp_year: Mapped[int] = mapped_column(SmallInteger)
    # HMAC of the number: recognises the same card added twice without keeping the number.
    fingerprint: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WalletTransaction(Base):
    __tablename__ = "wallet_transactions"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refund_cap"),
        Index("ix_wallet_transactions_customer_id_id", "customer_id", "id"),
        Index("ix_wallet_transactions_counterparty_id", "counterparty_customer_id", "id"),
        Index("ix_wallet_transactions_status_kind", "status", "kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    counterparty_customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id"), default=None
    )
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), default=None)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), default=None)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("wallet_transactions.id"), default=None
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # For an exchange: what arrived in the other wallet, and at what rate.
    counter_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    counter_currency: Mapped[str | None] = mapped_column(String(8), default=None)
    exchange_rate: Mapped[str | None] = mapped_column(String(40), default=None)
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    counterparty_label: Mapped[str | None] = mapped_column(String(200), default=None)
    # Who sent a transfer, as its recipient sees them (counterparty_label is the sender's view).
    sender_label: Mapped[str | None] = mapped_column(String(200), default=None)

    def counterparty_for(self, viewer_id: int) -> str | None:
        if self.kind == TxnKind.TRANSFER and self.customer_id != viewer_id:
            return self.sender_label
        return self.counterparty_label

    failure_code: Mapped[str | None] = mapped_column(String(40), default=None)
    # What the failure depended on (balance at the time, the limit...), for explanations.
    failure_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # customer id + Idempotency-Key: a retried request finds the attempt it already started.
    request_key: Mapped[str | None] = mapped_column(String(300), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    @property
    def ledger_id(self) -> str:
        return f"txn:{self.number}"
