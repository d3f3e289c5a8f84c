"""Withdrawals to a bank account: funds are held at once and leave when the bank settles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.db import is_sqlite
from walletdesk.kit.errors import DomainError
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind, Phase
from walletdesk.wallet.models import TxnKind, TxnStatus, WalletTransaction
from walletdesk.wallet.service.common import (
    available,
    fail,
    find_attempt,
    get_customer,
    new_transaction,
    notify_if_large,
    post_chain,
    refuse_outgoing,
    succeed,
    wallet_for,
)


def withdraw(
    session: Session,
    customer_id: int,
    amount: int,
    currency: str,
    bank_account: str,
    *,
    request_key: str | None = None,
) -> WalletTransaction:
    earlier = find_attempt(session, request_key)
    if earlier is not None:
        return earlier
    customer = get_customer(session, customer_id)
    wallet = wallet_for(session, customer_id, currency, lock=True)
    txn = new_transaction(
        session,
        kind=TxnKind.WITHDRAWAL,
        status=TxnStatus.PENDING,
        customer_id=customer_id,
        amount=amount,
        currency=currency,
        counterparty_label=f"bank ****{bank_account[-4:]}",
        request_key=request_key,
    )
    if refused := refuse_outgoing(session, txn, customer):
        return refused
    if wallet is None:
        return fail(txn, "insufficient_balance", available=0)
    clearing = ledger.system_account(session, AccountKind.BANK_CLEARING, currency).id
    hold = ledger.TransferRequest(
        f"{txn.ledger_id}:hold",
        wallet.ledger_account_id,
        clearing,
        amount,
        currency,
        "withdrawal",
        phase=Phase.PENDING,
    )
    if reason := post_chain(session, [hold]):
        return fail(txn, reason, available=available(session, wallet))
    notify_if_large(session, txn)
    return txn  # stays pending until the bank settles or returns it


def settle(session: Session, number: str, *, returned: bool = False) -> WalletTransaction:
    """The bank paid the withdrawal out (post the hold) or returned it (void the hold)."""
    query = select(WalletTransaction).where(
        WalletTransaction.number == number, WalletTransaction.kind == TxnKind.WITHDRAWAL
    )
    if not is_sqlite(session):
        query = query.with_for_update()
    txn = session.execute(query).scalar_one_or_none()
    if txn is None:
        raise DomainError("transaction_not_found")
    if txn.status != TxnStatus.PENDING:
        raise DomainError("withdrawal_not_pending")
    suffix = "returned" if returned else "settled"
    outcome = ledger.post(
        session,
        [
            ledger.resolve_pending(
                f"{txn.ledger_id}:{suffix}", f"{txn.ledger_id}:hold", void=returned
            )
        ],
    )[0]
    if not outcome.ok:
        raise RuntimeError(f"withdrawal {number}: the ledger refused to resolve: {outcome.result}")
    return fail(txn, "bank_rejected") if returned else succeed(txn)


def pending_withdrawals(session: Session) -> list[WalletTransaction]:
    return list(
        session.execute(
            select(WalletTransaction)
            .where(
                WalletTransaction.kind == TxnKind.WITHDRAWAL,
                WalletTransaction.status == TxnStatus.PENDING,
            )
            .order_by(WalletTransaction.id)
        ).scalars()
    )
