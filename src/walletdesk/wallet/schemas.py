"""API shapes. Amounts travel as decimal strings ("12.50") next to their minor units."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from walletdesk.kit.clock import as_utc
from walletdesk.kit.money import format_minor
from walletdesk.wallet.explain import explain
from walletdesk.wallet.models import Card, Customer, WalletTransaction
from walletdesk.wallet.service.customers import WalletBalance
from walletdesk.wallet.service.history import direction


def _amount_text(value: object) -> str:
    """A JSON number such as 0.1 is a binary float: amounts are strings (or whole integers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError('write the amount as a decimal string, like "12.50"')


AmountText = Annotated[
    str,
    BeforeValidator(_amount_text),
    Field(description='Decimal amount in major units, as a string: "12.50"', examples=["12.50"]),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3,5}$", examples=["CNY"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WalletIn(Strict):
    currency: CurrencyCode


class CardIn(Strict):
    number: str = Field(min_length=12, max_length=23, examples=["4242 4242 4242 4242"])
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(ge=0, le=2100)
    cvc: str = Field(min_length=3, max_length=4, repr=False)


class TopUpIn(Strict):
    card_id: int = Field(ge=1, le=2**63 - 1)
    amount: AmountText
    currency: CurrencyCode


class PaymentIn(Strict):
    merchant_code: str = Field(min_length=1, max_length=32)
    amount: AmountText
    currency: CurrencyCode
    description: str | None = Field(default=None, max_length=200)


class TransferIn(Strict):
    to: str = Field(min_length=3, max_length=254, description="Recipient's phone number or email")
    amount: AmountText
    currency: CurrencyCode
    note: str | None = Field(default=None, max_length=200)


class WithdrawalIn(Strict):
    amount: AmountText
    currency: CurrencyCode
    bank_account: str = Field(pattern=r"^[0-9 ]{8,34}$", description="Bank account number")


class ExchangeIn(Strict):
    amount: AmountText
    from_currency: CurrencyCode
    to_currency: CurrencyCode


class RefundIn(Strict):
    payment_number: str = Field(min_length=12, max_length=20)
    amount: AmountText | None = Field(default=None, description="Omit to refund what is left")
    reason: str | None = Field(default=None, max_length=200)


class StatementQuery(Strict):
    since: date
    until: date


def money_fields(prefix: str, minor: int, currency: str) -> dict[str, Any]:
    return {prefix: format_minor(minor, currency), f"{prefix}_minor": minor}


def customer_out(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "display_name": customer.display_name,
        "national_id": _masked_id(customer.national_id),
        "phone": customer.phone,
        "email": customer.email,
        "language": customer.language,
        "status": customer.status,
    }


def _masked_id(national_id: str | None) -> str | None:
    """Enough to recognise one's own id, not enough to use it."""
    return f"{national_id[:3]}{'*' * 11}{national_id[-4:]}" if national_id else None


def balance_out(balance: WalletBalance) -> dict[str, Any]:
    currency = balance.currency
    return {
        "currency": currency,
        **money_fields("balance", balance.balance, currency),
        **money_fields("available", balance.available, currency),
        **money_fields("incoming_pending", balance.incoming_pending, currency),
        **money_fields("outgoing_pending", balance.outgoing_pending, currency),
    }


def card_out(card: Card) -> dict[str, Any]:
    return {
        "id": card.id,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }


def transaction_out(txn: WalletTransaction, viewer_id: int, language: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": txn.number,
        "kind": txn.kind,
        "status": txn.status,
        "direction": direction(txn, viewer_id),
        "currency": txn.currency,
        **money_fields("amount", txn.amount, txn.currency),
        **money_fields("fee", txn.fee, txn.currency),
        **money_fields("refunded_amount", txn.refunded_amount, txn.currency),
        "counterparty": txn.counterparty_for(viewer_id),
        "description": txn.description,
        "created_at": _iso(txn.created_at),
        "updated_at": _iso(txn.updated_at),
        "failure": None,
    }
    if txn.counter_currency and txn.counter_amount is not None:
        out["exchange"] = {
            "currency": txn.counter_currency,
            "rate": txn.exchange_rate,
            **money_fields("amount", txn.counter_amount, txn.counter_currency),
        }
    if txn.failure_code:
        why = explain(txn, language)
        out["failure"] = {"code": why.code, "summary": why.summary, "next_step": why.next_step}
    return out


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()
