"""Paying a merchant, and the merchant's refunds (full or partial, never more than was paid)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.db import is_sqlite
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.ids import is_valid_number, normalize_number
from walletdesk.kit.money import format_minor
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind
from walletdesk.wallet.models import Merchant, TxnKind, TxnStatus, WalletTransaction
from walletdesk.wallet.rules import fee_for
from walletdesk.wallet.service.common import (
    available,
    ensure_wallet,
    fail,
    find_attempt,
    get_customer,
    new_transaction,
    post_chain,
    refuse_outgoing,
    succeed,
    succeed_outgoing,
    wallet_for,
)


def merchant_account(session: Session, merchant: Merchant, currency: str) -> int:
    return ledger.open_account(
        session,
        f"merchant:{merchant.code}:{currency}",
        AccountKind.MERCHANT_SETTLEMENT,
        currency,
        no_overdraft=False,
    ).id


def merchant_by_code(session: Session, code: str) -> Merchant:
    merchant = session.execute(
        select(Merchant).where(Merchant.code == code.strip().upper())
    ).scalar_one_or_none()
    if merchant is None:
        raise DomainError("merchant_not_found")
    return merchant


def pay(
    session: Session,
    customer_id: int,
    merchant_code: str,
    amount: int,
    currency: str,
    *,
    description: str | None = None,
    request_key: str | None = None,
) -> WalletTransaction:
    """Pay a merchant from the customer's wallet; a refusal is recorded, not raised."""
    earlier = find_attempt(session, request_key)
    if earlier is not None:
        return earlier
    merchant = merchant_by_code(session, merchant_code)
    customer = get_customer(session, customer_id)
    wallet = wallet_for(session, customer_id, currency, lock=True)
    txn = new_transaction(
        session,
        kind=TxnKind.PAYMENT,
        status=TxnStatus.PENDING,
        customer_id=customer_id,
        merchant_id=merchant.id,
        amount=amount,
        currency=currency,
        description=description,
        counterparty_label=merchant.name,
        request_key=request_key,
    )
    if not merchant.accepts(currency):
        return fail(txn, "currency_mismatch", accepted=merchant.currencies)
    if refused := refuse_outgoing(session, txn, customer):
        return refused
    if wallet is None:
        return fail(txn, "insufficient_balance", available=0)
    txn.fee = fee_for(amount, merchant.fee_bps)
    settlement = merchant_account(session, merchant, currency)
    transfers = [
        ledger.TransferRequest(
            txn.ledger_id, wallet.ledger_account_id, settlement, amount, currency, "payment"
        )
    ]
    if txn.fee:
        fees = ledger.system_account(session, AccountKind.FEE_INCOME, currency).id
        transfers.append(
            ledger.TransferRequest(
                f"{txn.ledger_id}:fee", settlement, fees, txn.fee, currency, "merchant_fee"
            )
        )
    if reason := post_chain(session, transfers):
        return fail(txn, reason, available=available(session, wallet))
    return succeed_outgoing(session, txn)


def refund(
    session: Session,
    merchant_id: int,
    payment_number: str,
    amount: int | None,
    *,
    reason: str | None = None,
    request_key: str | None = None,
) -> WalletTransaction:
    """Return all or part of a payment to the customer, from the merchant's settlement account.

    The part under an open dispute waits for the dispute's decision, which refunds it through
    `post_refund` (won) or leaves it with the merchant (lost, withdrawn).
    """
    earlier = find_attempt(session, request_key)
    if earlier is not None:
        return earlier
    payment = payment_for_refund(session, merchant_id, payment_number)
    from walletdesk.disputes.service import amount_in_dispute  # disputes sit above the wallet

    in_dispute = amount_in_dispute(session, payment.id)
    remaining = payment.amount - payment.refunded_amount - in_dispute
    amount = remaining if amount is None else amount
    if amount > remaining or amount <= 0:  # nothing left to refund is no refund at all
        if in_dispute:
            raise DomainError(
                "amount_under_dispute",
                disputed=format_minor(in_dispute, payment.currency),
                refundable=format_minor(max(remaining, 0), payment.currency),
                currency=payment.currency,
            )
        raise DomainError("refund_exceeds_payment")
    return post_refund(session, payment, amount, reason=reason, request_key=request_key)


def post_refund(
    session: Session,
    payment: WalletTransaction,
    amount: int,
    *,
    reason: str | None,
    request_key: str | None,
) -> WalletTransaction:
    """Post a refund of `amount` of a payment (locked by `payment_for_refund`, amount checked by
    the caller) from the merchant's settlement account to the customer's wallet."""
    merchant = session.get(Merchant, payment.merchant_id)
    assert merchant is not None
    wallet = ensure_wallet(session, payment.customer_id, payment.currency)
    txn = new_transaction(
        session,
        kind=TxnKind.REFUND,
        status=TxnStatus.PENDING,
        customer_id=payment.customer_id,
        merchant_id=merchant.id,
        parent_id=payment.id,
        amount=amount,
        currency=payment.currency,
        description=reason,
        counterparty_label=merchant.name,
        request_key=request_key,
    )
    settlement = merchant_account(session, merchant, payment.currency)
    request = ledger.TransferRequest(
        txn.ledger_id, settlement, wallet.ledger_account_id, amount, payment.currency, "refund"
    )
    if failure := post_chain(session, [request]):
        raise RuntimeError(f"refund {txn.number} refused by the ledger: {failure}")
    payment.refunded_amount += amount
    payment.updated_at = clock.now()
    return succeed(txn)


def payment_of_merchant(session: Session, merchant_id: int, number: str) -> WalletTransaction:
    """A payment made to this merchant, by its number (other merchants' payments are not found)."""
    digits = normalize_number(number)
    if not is_valid_number(digits):
        raise DomainError("transaction_number_invalid")
    payment = session.execute(
        select(WalletTransaction).where(
            WalletTransaction.number == digits,
            WalletTransaction.merchant_id == merchant_id,
            WalletTransaction.kind == TxnKind.PAYMENT,
        )
    ).scalar_one_or_none()
    if payment is None:
        raise DomainError("transaction_not_found")
    return payment


def payment_for_refund(session: Session, merchant_id: int, number: str) -> WalletTransaction:
    """The payment, locked so that two concurrent refunds cannot both take the last yuan.

    Read afresh even if the session holds it already: a refund committed while we waited for
    the lock has changed what is left.
    """
    query = (
        select(WalletTransaction)
        .where(
            WalletTransaction.number == number,
            WalletTransaction.merchant_id == merchant_id,
            WalletTransaction.kind == TxnKind.PAYMENT,
        )
        .execution_options(populate_existing=True)
    )
    if not is_sqlite(session):
        query = query.with_for_update()
    payment = session.execute(query).scalar_one_or_none()
    if payment is None:
        raise DomainError("transaction_not_found")
    if payment.status != TxnStatus.SUCCEEDED:
        raise DomainError("not_refundable")
    return payment
