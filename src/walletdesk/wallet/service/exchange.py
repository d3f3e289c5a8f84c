"""Exchange between a customer's own wallets: two linked ledger transfers at a recorded rate."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.kit.errors import DomainError
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind
from walletdesk.wallet.models import TxnKind, TxnStatus, WalletTransaction
from walletdesk.wallet.rules import convert
from walletdesk.wallet.service.common import (
    available,
    ensure_wallet,
    fail,
    find_attempt,
    get_customer,
    new_transaction,
    post_chain,
    refuse_outgoing,
    succeed_outgoing,
    wallet_for,
)


def rate_for(source: str, target: str) -> Decimal:
    rate = get_settings().exchange_rates.get(f"{source}:{target}")
    if source == target or rate is None:
        raise DomainError("exchange_rate_unavailable", source=source, target=target)
    return Decimal(rate)


def exchange(
    session: Session,
    customer_id: int,
    amount: int,
    source: str,
    target: str,
    *,
    request_key: str | None = None,
) -> WalletTransaction:
    """Sell `amount` of `source` for `target` at today's rate; the rate is kept on both legs."""
    earlier = find_attempt(session, request_key)
    if earlier is not None:
        return earlier
    rate = rate_for(source, target)
    received = convert(amount, source, target, rate)
    if received <= 0:
        raise DomainError("amount_not_positive")
    customer = get_customer(session, customer_id)
    wallet = wallet_for(session, customer_id, source, lock=True)
    txn = new_transaction(
        session,
        kind=TxnKind.EXCHANGE,
        status=TxnStatus.PENDING,
        customer_id=customer_id,
        amount=amount,
        currency=source,
        counter_amount=received,
        counter_currency=target,
        exchange_rate=str(rate),
        counterparty_label=f"{source} → {target}",
        request_key=request_key,
    )
    if refused := refuse_outgoing(session, txn, customer):
        return refused
    if wallet is None:
        return fail(txn, "insufficient_balance", available=0)
    destination = ensure_wallet(session, customer_id, target)
    legs = [
        ledger.TransferRequest(
            f"{txn.ledger_id}:sell",
            wallet.ledger_account_id,
            ledger.system_account(session, AccountKind.EXCHANGE, source).id,
            amount,
            source,
            "exchange",
            exchange_rate=str(rate),
        ),
        ledger.TransferRequest(
            f"{txn.ledger_id}:buy",
            ledger.system_account(session, AccountKind.EXCHANGE, target).id,
            destination.ledger_account_id,
            received,
            target,
            "exchange",
            exchange_rate=str(rate),
        ),
    ]
    if reason := post_chain(session, legs):
        return fail(txn, reason, available=available(session, wallet))
    return succeed_outgoing(session, txn)
