"""Top-up from a card, in two committed steps around the gateway call (Stripe's atomic phases).

1. Record the top-up and a pending ledger transfer (gateway clearing → wallet) and commit.
2. Charge the card under the top-up's number as the gateway's idempotency key.
3. Post the pending transfer (charged), void it (declined), or leave it pending (no answer).

If the process dies anywhere in between, the committed pending top-up is found again by a
retry (same Idempotency-Key) or by `reconcile`, which asks the gateway what became of the
charge: a top-up is never lost and never credited twice.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.db import Database, is_sqlite
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind, Phase
from walletdesk.wallet.gateway import CardGateway, ChargeResult, ChargeStatus, GatewayTimeout
from walletdesk.wallet.models import Card, TxnKind, TxnStatus, WalletTransaction
from walletdesk.wallet.rules import check_limits
from walletdesk.wallet.service.common import (
    blocked_reason,
    ensure_wallet,
    fail,
    find_attempt,
    get_customer,
    limit_in_minor,
    new_transaction,
    succeed,
)


def top_up(
    db: Database,
    session: Session,
    gateway: CardGateway,
    customer_id: int,
    card_id: int,
    amount: int,
    currency: str,
    *,
    request_key: str | None = None,
) -> WalletTransaction:
    """Charge the card and credit the wallet; `session` is the caller's unit of work for step 3."""
    with db.unit_of_work() as first:
        started = _start(first, customer_id, card_id, amount, currency, request_key)
        number, token = started.number, _card_token(first, started)
        chargeable = started.status == TxnStatus.PENDING and not _left_to_reconcile(started)
    if not chargeable:
        return _by_number(session, number)
    # Charge before touching `session`: on SQLite its first statement takes the writer lock,
    # which must not be held while an outside system answers.
    try:
        result: ChargeResult | None = gateway.charge(token, amount, currency, key=number)
    except GatewayTimeout:
        result = None
    txn = _by_number(session, number)
    if result is None:
        txn.failure_code = "gateway_timeout"
        txn.updated_at = clock.now()
        return txn
    return _resolve(session, txn, result)


def _left_to_reconcile(txn: WalletTransaction) -> bool:
    """A retry this late must not charge: reconcile may be voiding the hold right now."""
    window = timedelta(minutes=get_settings().gateway_timeout_hold_minutes)
    return clock.now() - as_utc(txn.created_at) >= window - RETRY_MARGIN


RETRY_MARGIN = timedelta(minutes=5)


def reconcile(session: Session, gateway: CardGateway) -> list[WalletTransaction]:
    """Settle pending top-ups from what the gateway says; give up on ones it never charged."""
    give_up_before = clock.now() - timedelta(minutes=get_settings().gateway_timeout_hold_minutes)
    settled = []
    for txn in _pending_topups(session):
        result = gateway.lookup(txn.number)
        if result is None and as_utc(txn.created_at) > give_up_before:
            continue  # a retry may still charge it; wait until the hold window closes
        if result is None:
            if _release_hold(session, txn, void=True) == ledger.Result.PENDING_ALREADY_POSTED:
                continue  # a late retry's charge got there first: it settled the top-up
            settled.append(fail(txn, "gateway_timeout", charged=False))
            continue
        settled.append(_resolve(session, txn, result))
    return settled


def _start(
    session: Session,
    customer_id: int,
    card_id: int,
    amount: int,
    currency: str,
    request_key: str | None,
) -> WalletTransaction:
    earlier = find_attempt(session, request_key)
    if earlier is not None:
        return earlier
    customer = get_customer(session, customer_id)
    card = _card_of(session, customer_id, card_id)
    wallet = ensure_wallet(session, customer_id, currency)
    txn = new_transaction(
        session,
        kind=TxnKind.TOPUP,
        status=TxnStatus.PENDING,
        customer_id=customer_id,
        card_id=card.id,
        amount=amount,
        currency=currency,
        counterparty_label=f"{card.brand} ****{card.last4}",
        request_key=request_key,
    )
    if reason := blocked_reason(customer):
        return fail(txn, reason, reason_detail=customer.status_reason)
    limit = limit_in_minor(get_settings().limits_topup_per_transaction, currency)
    if breach := check_limits(amount, limit, limit + amount, 0):
        return fail(txn, "limit_exceeded", window=breach.window, limit=breach.limit, used=0)
    clearing = ledger.system_account(session, AccountKind.GATEWAY_CLEARING, currency).id
    hold = ledger.TransferRequest(
        f"{txn.ledger_id}:hold",
        clearing,
        wallet.ledger_account_id,
        amount,
        currency,
        "topup",
        phase=Phase.PENDING,
    )
    outcome = ledger.post(session, [hold])[0]
    if not outcome.ok:
        raise RuntimeError(f"top-up {txn.number}: the ledger refused the hold: {outcome.result}")
    return txn


def _resolve(session: Session, txn: WalletTransaction, result: ChargeResult) -> WalletTransaction:
    if result.status == ChargeStatus.SUCCEEDED:
        if _release_hold(session, txn, void=False) == ledger.Result.PENDING_ALREADY_VOIDED:
            _credit_late(session, txn)
        txn.failure_code, txn.failure_params = None, None
        return succeed(txn)
    _release_hold(session, txn, void=True)
    return fail(txn, result.decline_code or "card_declined")


def _credit_late(session: Session, txn: WalletTransaction) -> None:
    """The card was charged after its hold was given up on: the money is the customer's."""
    wallet = ensure_wallet(session, txn.customer_id, txn.currency)
    clearing = ledger.system_account(session, AccountKind.GATEWAY_CLEARING, txn.currency).id
    late = ledger.TransferRequest(
        f"{txn.ledger_id}:late",
        clearing,
        wallet.ledger_account_id,
        txn.amount,
        txn.currency,
        "topup",
    )
    outcome = ledger.post(session, [late])[0]
    if not outcome.ok:
        raise RuntimeError(f"top-up {txn.number}: cannot credit a late charge: {outcome.result}")


def _release_hold(session: Session, txn: WalletTransaction, *, void: bool) -> ledger.Result:
    """Post or void the hold; a hold the other path already resolved is reported, not fatal."""
    suffix = "void" if void else "post"
    outcome = ledger.post(
        session,
        [ledger.resolve_pending(f"{txn.ledger_id}:{suffix}", f"{txn.ledger_id}:hold", void=void)],
    )[0]
    if outcome.result in (
        ledger.Result.PENDING_ALREADY_VOIDED,
        ledger.Result.PENDING_ALREADY_POSTED,
    ):
        return outcome.result
    if not outcome.ok:
        raise RuntimeError(f"top-up {txn.number}: cannot {suffix} the hold: {outcome.result}")
    return outcome.result


def _card_of(session: Session, customer_id: int, card_id: int) -> Card:
    card = session.get(Card, card_id)
    if card is None or card.customer_id != customer_id or card.removed_at is not None:
        raise DomainError("card_not_found")
    return card


def _card_token(session: Session, txn: WalletTransaction) -> str:
    card = session.get(Card, txn.card_id)
    return card.gateway_token if card else ""


def _by_number(session: Session, number: str) -> WalletTransaction:
    return session.execute(
        select(WalletTransaction).where(WalletTransaction.number == number)
    ).scalar_one()


def _pending_topups(session: Session) -> list[WalletTransaction]:
    """Pending top-ups, locked for this reconciliation (another one skips them)."""
    query = (
        select(WalletTransaction)
        .where(
            WalletTransaction.kind == TxnKind.TOPUP,
            WalletTransaction.status == TxnStatus.PENDING,
        )
        .order_by(WalletTransaction.id)
    )
    if not is_sqlite(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.execute(query).scalars())
