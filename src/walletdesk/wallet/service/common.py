"""What every money movement shares: recording the attempt, its checks, posting to the ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.db import get_or_create, is_sqlite
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.ids import new_number
from walletdesk.kit.money import format_minor, parse_amount
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind
from walletdesk.wallet import errors as _errors  # noqa: F401  (registers the wallet codes)
from walletdesk.wallet.models import (
    Customer,
    CustomerStatus,
    TxnKind,
    TxnStatus,
    Wallet,
    WalletTransaction,
)
from walletdesk.wallet.rules import check_limits

OUTGOING_KINDS = (TxnKind.PAYMENT, TxnKind.TRANSFER, TxnKind.WITHDRAWAL, TxnKind.EXCHANGE)

# What a ledger refusal means to a customer.
LEDGER_FAILURES = {
    ledger.Result.INSUFFICIENT_FUNDS: "insufficient_balance",
    ledger.Result.CURRENCY_MISMATCH: "currency_mismatch",
}


def new_transaction(session: Session, **fields: Any) -> WalletTransaction:
    now = clock.now()
    txn = WalletTransaction(number=new_number(), created_at=now, updated_at=now, **fields)
    session.add(txn)
    session.flush()
    return txn


def find_attempt(session: Session, request_key: str | None) -> WalletTransaction | None:
    """The transaction an earlier try of the same request already recorded."""
    if request_key is None:
        return None
    return session.execute(
        select(WalletTransaction).where(WalletTransaction.request_key == request_key)
    ).scalar_one_or_none()


def fail(txn: WalletTransaction, code: str, **params: Any) -> WalletTransaction:
    txn.status = TxnStatus.FAILED
    txn.failure_code = code
    txn.failure_params = params or None
    txn.updated_at = clock.now()
    return txn


def succeed(txn: WalletTransaction, status: TxnStatus = TxnStatus.SUCCEEDED) -> WalletTransaction:
    txn.status = status
    txn.updated_at = clock.now()
    return txn


def blocked_reason(customer: Customer) -> str | None:
    """Why money may not leave this customer's wallets, if it may not."""
    if customer.status == CustomerStatus.FROZEN:
        return "account_frozen"
    if customer.status == CustomerStatus.LOCKED:
        return "account_locked"
    return None


def wallet_for(session: Session, customer_id: int, currency: str, *, lock: bool) -> Wallet | None:
    """The customer's wallet in `currency`; `lock` serialises their outgoing payments (limits)."""
    query = select(Wallet).where(Wallet.customer_id == customer_id, Wallet.currency == currency)
    if lock and not is_sqlite(session):
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def ensure_wallet(session: Session, customer_id: int, currency: str) -> Wallet:
    """The customer's wallet in `currency`, opened on first use (e.g. by an incoming transfer)."""

    def create() -> Wallet:
        account = ledger.open_account(
            session,
            f"wallet:{customer_id}:{currency}",
            AccountKind.CUSTOMER_WALLET,
            currency,
            no_overdraft=True,
        )
        wallet = Wallet(
            customer_id=customer_id,
            currency=currency,
            ledger_account_id=account.id,
            created_at=clock.now(),
        )
        session.add(wallet)
        session.flush()
        return wallet

    return get_or_create(
        session, lambda: wallet_for(session, customer_id, currency, lock=False), create
    )


def limit_in_minor(table: dict[str, str], currency: str) -> int:
    return parse_amount(table[currency], currency) if currency in table else 0


def used_today(session: Session, customer_id: int, currency: str, now: datetime) -> int:
    """Outgoing money (succeeded or still pending) since the local day began."""
    zone = ZoneInfo(get_settings().timezone)
    day_start = clock.start_of_local_day(now, zone)
    total = session.execute(
        select(func.coalesce(func.sum(WalletTransaction.amount), 0)).where(
            WalletTransaction.customer_id == customer_id,
            WalletTransaction.currency == currency,
            WalletTransaction.kind.in_([str(k) for k in OUTGOING_KINDS]),
            WalletTransaction.status.in_([TxnStatus.SUCCEEDED, TxnStatus.PENDING]),
            WalletTransaction.created_at >= day_start,
        )
    ).scalar_one()
    return int(total)


def refuse_outgoing(
    session: Session, txn: WalletTransaction, customer: Customer
) -> WalletTransaction | None:
    """Record why an outgoing movement may not happen (frozen, locked, over a limit), if so."""
    reason = blocked_reason(customer)
    if reason:
        return fail(txn, reason, reason_detail=customer.status_reason)
    settings = get_settings()
    breach = check_limits(
        txn.amount,
        limit_in_minor(settings.limits_per_transaction, txn.currency),
        limit_in_minor(settings.limits_daily, txn.currency),
        # The attempt itself is already recorded as pending: don't count it twice.
        used_today(session, customer.id, txn.currency, txn.created_at) - txn.amount,
    )
    if breach:
        return fail(
            txn, "limit_exceeded", window=breach.window, limit=breach.limit, used=breach.used
        )
    return None


def post_chain(session: Session, requests: list[ledger.TransferRequest]) -> str | None:
    """Post transfers as one linked chain; None if posted, else the customer-facing reason."""
    chain = [replace(r, linked=i < len(requests) - 1) for i, r in enumerate(requests)]
    outcomes = ledger.post(session, chain)
    refused = next((o.result for o in outcomes if not o.ok and o.result != _CHAINED), None)
    if refused is None:
        return None
    if refused not in LEDGER_FAILURES:
        raise RuntimeError(f"the ledger refused {requests[0].external_id}: {refused}")
    return LEDGER_FAILURES[refused]


_CHAINED = ledger.Result.LINKED_EVENT_FAILED


def available(session: Session, wallet: Wallet) -> int:
    return ledger.get_account(session, wallet.ledger_account_id).available


def large_amount(currency: str) -> int | None:
    """From this amount a movement needs a second factor and always tells the customer."""
    text = get_settings().step_up_thresholds.get(currency)
    return parse_amount(text, currency) if text else None


def succeed_outgoing(session: Session, txn: WalletTransaction) -> WalletTransaction:
    """Mark an outgoing movement done, telling the customer if it was a large one."""
    notify_if_large(session, txn)
    return succeed(txn)


def notify_if_large(session: Session, txn: WalletTransaction) -> None:
    """A large outgoing movement is a security event: the customer always hears of it."""
    threshold = large_amount(txn.currency)
    if threshold is not None and txn.amount >= threshold:
        from walletdesk.notify.service import notify  # notify sits above the wallet

        notify(
            session,
            txn.customer_id,
            "large_payment",
            {
                "amount": f"{txn.currency} {format_minor(txn.amount, txn.currency)}",
                "counterparty": txn.counterparty_label or "",
            },
        )


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise DomainError("not_found")
    return customer
