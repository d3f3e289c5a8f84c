"""Sending money to another customer, found by phone number or email."""

from __future__ import annotations

from sqlalchemy.orm import Session

from walletdesk.ledger import service as ledger
from walletdesk.wallet.models import TxnKind, TxnStatus, WalletTransaction
from walletdesk.wallet.rules import mask_recipient
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
from walletdesk.wallet.service.customers import find_by_contact


def send(
    session: Session,
    customer_id: int,
    to: str,
    amount: int,
    currency: str,
    *,
    note: str | None = None,
    request_key: str | None = None,
) -> WalletTransaction:
    earlier = find_attempt(session, request_key)
    if earlier is not None:
        return earlier
    sender = get_customer(session, customer_id)
    wallet = wallet_for(session, customer_id, currency, lock=True)
    recipient = find_by_contact(session, to)
    txn = new_transaction(
        session,
        kind=TxnKind.TRANSFER,
        status=TxnStatus.PENDING,
        customer_id=customer_id,
        counterparty_customer_id=recipient.id if recipient else None,
        amount=amount,
        currency=currency,
        description=note,
        counterparty_label=mask_recipient(to.strip()),
        sender_label=sender.display_name,
        request_key=request_key,
    )
    # Own checks first: who is registered is answered only to someone who could pay them.
    if refused := refuse_outgoing(session, txn, sender):
        return refused
    balance = available(session, wallet) if wallet is not None else 0
    if wallet is None or balance < amount:
        return fail(txn, "insufficient_balance", available=balance)
    if recipient is None:
        return fail(txn, "invalid_recipient", recipient=mask_recipient(to.strip()))
    if recipient.id == customer_id:
        # Recorded apart so the explanation says "that is you", not "nobody is registered".
        return fail(txn, "invalid_recipient", recipient=mask_recipient(to.strip()), own=True)
    target = ensure_wallet(session, recipient.id, currency)
    request = ledger.TransferRequest(
        txn.ledger_id, wallet.ledger_account_id, target.ledger_account_id, amount, currency, "p2p"
    )
    if reason := post_chain(session, [request]):
        return fail(txn, reason, available=available(session, wallet))
    return succeed_outgoing(session, txn)
