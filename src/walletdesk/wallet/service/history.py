"""History with filters and paging, look-up by number, and the CSV statement."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.ids import is_valid_number, normalize_number
from walletdesk.kit.money import format_minor
from walletdesk.ledger.models import Entry, Transfer
from walletdesk.wallet.models import TxnKind, TxnStatus, Wallet, WalletTransaction

INCOMING_KINDS = {TxnKind.TOPUP, TxnKind.REFUND, TxnKind.GOODWILL}


def direction(txn: WalletTransaction, viewer_id: int) -> str:
    """ "in" or "out", as the viewing customer sees it."""
    if txn.kind in INCOMING_KINDS:
        return "in"
    if txn.kind == TxnKind.TRANSFER and txn.customer_id != viewer_id:
        return "in"
    return "out"


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    kind: str | None = None
    status: str | None = None
    currency: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[WalletTransaction]
    next_cursor: int | None


def list_transactions(
    session: Session,
    customer_id: int,
    filters: HistoryFilter,
    *,
    before_id: int | None = None,
    limit: int = 20,
) -> Page:
    """Newest first; pass `next_cursor` back as `before_id` for the next page."""
    query = select(WalletTransaction).where(
        or_(
            WalletTransaction.customer_id == customer_id,
            # The other party sees only money that reached them, never a sender's failed
            # attempt (its reason would tell them the sender's balance or limits).
            and_(
                WalletTransaction.counterparty_customer_id == customer_id,
                WalletTransaction.status == TxnStatus.SUCCEEDED,
            ),
        )
    )
    for column, value in (
        (WalletTransaction.kind, filters.kind),
        (WalletTransaction.status, filters.status),
        (WalletTransaction.currency, filters.currency),
    ):
        if value is not None:
            query = query.where(column == value)
    # Stored times are UTC, and SQLite compares them as text: a bound given in another zone
    # ("...T10:00+08:00") must be converted first, or SQLite compares the wrong wall clock.
    # A bound without a zone is read as UTC, on both databases.
    if filters.since is not None:
        query = query.where(WalletTransaction.created_at >= _utc(filters.since))
    if filters.until is not None:
        query = query.where(WalletTransaction.created_at < _utc(filters.until))
    if before_id is not None:
        query = query.where(WalletTransaction.id < before_id)
    rows = list(
        session.execute(query.order_by(WalletTransaction.id.desc()).limit(limit + 1)).scalars()
    )
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, items[-1].id if more and items else None)


def _utc(moment: datetime) -> datetime:
    return as_utc(moment).astimezone(UTC)


def get_by_number(session: Session, customer_id: int, number: str) -> WalletTransaction:
    """The customer's own transaction (sent or received) with this number."""
    digits = normalize_number(number)
    if not is_valid_number(digits):
        raise DomainError("transaction_number_invalid")
    txn = session.execute(
        select(WalletTransaction).where(WalletTransaction.number == digits)
    ).scalar_one_or_none()
    if txn is None or not _visible_to(txn, customer_id):
        raise DomainError("transaction_not_found")
    return txn


def _visible_to(txn: WalletTransaction, customer_id: int) -> bool:
    if txn.customer_id == customer_id:
        return True
    return txn.counterparty_customer_id == customer_id and txn.status == TxnStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class StatementLine:
    posted_at: datetime
    number: str
    kind: str
    amount: int  # signed: money in > 0 > money out
    balance_after: int
    counterparty: str


def statement(
    session: Session, customer_id: int, currency: str, since: datetime, until: datetime
) -> list[StatementLine]:
    """Every posted movement of the wallet in [since, until), from the ledger's own entries."""
    wallet = session.execute(
        select(Wallet).where(Wallet.customer_id == customer_id, Wallet.currency == currency)
    ).scalar_one_or_none()
    if wallet is None:
        raise DomainError("wallet_not_found", currency=currency)
    rows = session.execute(
        select(
            Entry.amount,
            Entry.balance_after,
            Transfer.external_id,
            Transfer.kind,
            Transfer.created_at,
        )
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(
            Entry.account_id == wallet.ledger_account_id,
            Transfer.created_at >= _utc(since),  # see list_transactions: SQLite compares text
            Transfer.created_at < _utc(until),
        )
        .order_by(Entry.id)
    ).all()
    numbers = {_number_of(row.external_id) for row in rows} - {""}
    transactions = session.execute(
        select(WalletTransaction).where(WalletTransaction.number.in_(numbers))
    ).scalars()
    labels = {t.number: t.counterparty_for(customer_id) or "" for t in transactions}
    return [
        StatementLine(
            row.created_at,
            _number_of(row.external_id),
            row.kind,
            row.amount,
            row.balance_after,
            labels.get(_number_of(row.external_id), ""),
        )
        for row in rows
    ]


def _number_of(external_id: str) -> str:
    """The wallet transaction behind a ledger transfer ("txn:<number>[:leg]"), if any."""
    return external_id.split(":")[1] if external_id.startswith("txn:") else ""


def statement_csv(lines: Iterable[StatementLine], currency: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["posted_at", "number", "kind", "counterparty", "amount", "balance_after", "currency"]
    )
    for line in lines:
        writer.writerow(
            [
                as_utc(line.posted_at).isoformat(),
                line.number,
                line.kind,
                line.counterparty,
                format_minor(line.amount, currency),
                format_minor(line.balance_after, currency),
                currency,
            ]
        )
    return out.getvalue()
