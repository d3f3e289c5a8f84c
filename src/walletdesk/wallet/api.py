"""Wallet REST API: the customer's wallet, merchants' refunds, and the operator's settlement."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from walletdesk.identity.api import CallerDep, guard_movement, request_digest
from walletdesk.identity.guard import Movement
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import (
    MAX_ID,
    RowId,
    bearer_token,
    db_of,
    language_of,
    problem,
    problem_body,
    require_admin,
    run_idempotent,
    settings_of,
)
from walletdesk.kit.money import check_currency, parse_amount
from walletdesk.ledger import service as ledger
from walletdesk.wallet import schemas
from walletdesk.wallet.explain import explain
from walletdesk.wallet.models import TxnStatus, WalletTransaction
from walletdesk.wallet.rules import card_digits
from walletdesk.wallet.service import (
    cards,
    customers,
    exchange,
    history,
    payments,
    topups,
    transfers,
    withdrawals,
)
from walletdesk.wallet.service.common import get_customer

router = APIRouter(prefix="/v1", tags=["wallet"])
merchant_router = APIRouter(prefix="/v1/merchant", tags=["merchant"])
admin_router = APIRouter(
    prefix="/v1/admin", tags=["operator"], dependencies=[Depends(require_admin)]
)


def current_customer(caller: CallerDep) -> int:
    return caller.customer_id


def current_merchant(request: Request) -> int:
    token = bearer_token(request)
    with db_of(request).unit_of_work() as session:
        merchant = customers.merchant_by_key(session, token)
        if merchant is None:
            raise DomainError("unauthorized")
        return merchant.id


CustomerId = Annotated[int, Depends(current_customer)]
MerchantId = Annotated[int, Depends(current_merchant)]
Language = Annotated[str, Depends(language_of)]


def transaction_answer(
    txn: WalletTransaction, viewer_id: int, language: str
) -> tuple[int, dict[str, Any]]:
    """201 when done, 202 while pending, the failure's own problem status when refused."""
    out = schemas.transaction_out(txn, viewer_id, language)
    if txn.status == TxnStatus.SUCCEEDED:
        return 201, out
    if txn.status == TxnStatus.PENDING:
        return 202, out
    failure = out["failure"]
    body = problem_body(
        txn.failure_code or "internal_error",
        language,
        detail=f"{failure['summary']} {failure['next_step']}",
        transaction=out,
    )
    return body["status"], body


def amount_of(value: str | int, currency: str) -> int:
    return parse_amount(value, check_currency(currency))


# --- the customer's wallet -------------------------------------------------------------------


@router.get("/me")
def me(request: Request, customer_id: CustomerId) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        # get_customer lives in service.common (customers never had it: /v1/me was a 500).
        customer = get_customer(session, customer_id)
        return {
            **schemas.customer_out(customer),
            "wallets": [schemas.balance_out(b) for b in customers.balances(session, customer_id)],
        }


@router.get("/wallets")
def list_wallets(request: Request, customer_id: CustomerId) -> list[dict[str, Any]]:
    with db_of(request).unit_of_work() as session:
        return [schemas.balance_out(b) for b in customers.balances(session, customer_id)]


@router.post("/wallets", status_code=201)
def open_wallet(request: Request, body: schemas.WalletIn, customer_id: CustomerId) -> Response:
    check_currency(body.currency)

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        customers.open_wallet(session, customer_id, body.currency)
        found = [b for b in customers.balances(session, customer_id) if b.currency == body.currency]
        return 201, schemas.balance_out(found[0])

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.post("/cards", status_code=201)
def add_card(request: Request, body: schemas.CardIn, caller: CallerDep) -> Response:
    gateway, customer_id = request.app.state.gateway, caller.customer_id
    movement = Movement(
        "card_added",
        None,
        None,
        request_digest(request, body),
        card_fingerprint=cards.card_fingerprint(card_digits(body.number)),
    )
    guard_movement(request, caller, body, movement)

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        card = cards.add_card(
            session, gateway, customer_id, body.number, body.exp_month, body.exp_year, body.cvc
        )
        return 201, schemas.card_out(card)

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.get("/cards")
def list_cards(request: Request, customer_id: CustomerId) -> list[dict[str, Any]]:
    with db_of(request).unit_of_work() as session:
        return [schemas.card_out(c) for c in cards.list_cards(session, customer_id)]


@router.delete("/cards/{card_id}")
def remove_card(request: Request, card_id: RowId, customer_id: CustomerId) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 200, schemas.card_out(cards.remove_card(session, customer_id, card_id))

    return run_idempotent(request, f"customer:{customer_id}", None, operation)


@router.post("/topups", status_code=201)
def top_up(
    request: Request, body: schemas.TopUpIn, caller: CallerDep, language: Language
) -> Response:
    customer_id, amount = caller.customer_id, amount_of(body.amount, body.currency)
    db, gateway = db_of(request), request.app.state.gateway
    guard_movement(
        request,
        caller,
        body,
        Movement("topup", amount, body.currency, request_digest(request, body)),
    )

    def operation(session: Session, key: str) -> tuple[int, Any]:
        txn = topups.top_up(
            db, session, gateway, customer_id, body.card_id, amount, body.currency, request_key=key
        )
        return transaction_answer(txn, customer_id, language)

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.post("/payments", status_code=201)
def pay(
    request: Request, body: schemas.PaymentIn, caller: CallerDep, language: Language
) -> Response:
    customer_id, amount = caller.customer_id, amount_of(body.amount, body.currency)
    movement = Movement("payment", amount, body.currency, request_digest(request, body))
    guard_movement(request, caller, body, movement)

    def operation(session: Session, key: str) -> tuple[int, Any]:
        txn = payments.pay(
            session,
            customer_id,
            body.merchant_code,
            amount,
            body.currency,
            description=body.description,
            request_key=key,
        )
        return transaction_answer(txn, customer_id, language)

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.post("/transfers", status_code=201)
def send_money(
    request: Request, body: schemas.TransferIn, caller: CallerDep, language: Language
) -> Response:
    customer_id, amount = caller.customer_id, amount_of(body.amount, body.currency)
    movement = Movement(
        "transfer", amount, body.currency, request_digest(request, body), recipient=body.to
    )
    guard_movement(request, caller, body, movement)

    def operation(session: Session, key: str) -> tuple[int, Any]:
        txn = transfers.send(
            session, customer_id, body.to, amount, body.currency, note=body.note, request_key=key
        )
        return transaction_answer(txn, customer_id, language)

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.post("/withdrawals", status_code=202)
def withdraw(
    request: Request, body: schemas.WithdrawalIn, caller: CallerDep, language: Language
) -> Response:
    customer_id, amount = caller.customer_id, amount_of(body.amount, body.currency)
    movement = Movement("withdrawal", amount, body.currency, request_digest(request, body))
    guard_movement(request, caller, body, movement)
    account = body.bank_account.replace(" ", "")

    def operation(session: Session, key: str) -> tuple[int, Any]:
        txn = withdrawals.withdraw(
            session, customer_id, amount, body.currency, account, request_key=key
        )
        return transaction_answer(txn, customer_id, language)

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.post("/exchanges", status_code=201)
def exchange_currency(
    request: Request, body: schemas.ExchangeIn, caller: CallerDep, language: Language
) -> Response:
    customer_id, amount = caller.customer_id, amount_of(body.amount, body.from_currency)
    movement = Movement("exchange", amount, body.from_currency, request_digest(request, body))
    guard_movement(request, caller, body, movement)
    check_currency(body.to_currency)

    def operation(session: Session, key: str) -> tuple[int, Any]:
        txn = exchange.exchange(
            session, customer_id, amount, body.from_currency, body.to_currency, request_key=key
        )
        return transaction_answer(txn, customer_id, language)

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.get("/transactions")
def list_transactions(
    request: Request,
    customer_id: CustomerId,
    language: Language,
    kind: str | None = None,
    status: str | None = None,
    currency: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: int | None = Query(
        default=None, ge=1, le=MAX_ID, description="next_cursor of the previous page"
    ),
    limit: int = Query(default=20, ge=1, le=100),
) -> dict[str, Any]:
    filters = history.HistoryFilter(kind, status, currency, since, until)
    with db_of(request).unit_of_work() as session:
        page = history.list_transactions(
            session, customer_id, filters, before_id=cursor, limit=limit
        )
        return {
            "items": [schemas.transaction_out(t, customer_id, language) for t in page.items],
            "next_cursor": page.next_cursor,
        }


@router.get("/transactions/{number}")
def get_transaction(
    request: Request, number: str, customer_id: CustomerId, language: Language
) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        txn = history.get_by_number(session, customer_id, number)
        return schemas.transaction_out(txn, customer_id, language)


@router.get("/transactions/{number}/explanation")
def explain_transaction(
    request: Request, number: str, customer_id: CustomerId, language: Language
) -> dict[str, Any]:
    """Why did this transaction fail, or why is it still pending, and what to do next."""
    with db_of(request).unit_of_work() as session:
        why = explain(history.get_by_number(session, customer_id, number), language)
        return {
            "number": why.number,
            "status": why.status,
            "code": why.code,
            "summary": why.summary,
            "next_step": why.next_step,
        }


@router.get("/statements/{currency}.csv", response_class=Response)
def statement_csv(
    request: Request,
    currency: str,
    customer_id: CustomerId,
    since: date,
    until: date,
) -> Response:
    """Posted movements of one wallet between two local dates (until is exclusive)."""
    check_currency(currency)
    zone = ZoneInfo(settings_of(request).timezone)
    start, end = (datetime.combine(d, time(), zone).astimezone(UTC) for d in (since, until))
    with db_of(request).unit_of_work() as session:
        lines = history.statement(session, customer_id, currency, start, end)
    filename = f"walletdesk-{currency}-{since}-{until}.csv"
    return Response(
        history.statement_csv(lines, currency),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- merchants ---------------------------------------------------------------------------------


@merchant_router.post("/refunds", status_code=201)
def refund(
    request: Request, body: schemas.RefundIn, merchant_id: MerchantId, language: Language
) -> Response:
    def operation(session: Session, key: str) -> tuple[int, Any]:
        payment = payments.payment_of_merchant(session, merchant_id, body.payment_number)
        amount = None if body.amount is None else amount_of(body.amount, payment.currency)
        txn = payments.refund(
            session, merchant_id, payment.number, amount, reason=body.reason, request_key=key
        )
        return transaction_answer(txn, txn.customer_id, language)

    return run_idempotent(request, f"merchant:{merchant_id}", body, operation)


# --- the operator ------------------------------------------------------------------------------


@admin_router.post("/reconcile")
def reconcile(request: Request, language: Language) -> Response:
    """Settle top-ups the card gateway never answered, from what it says now."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        settled = topups.reconcile(session, request.app.state.gateway)
        return 200, [schemas.transaction_out(t, t.customer_id, language) for t in settled]

    return run_idempotent(request, "admin", None, operation)


@admin_router.post("/withdrawals/{number}/settle")
def settle_withdrawal(request: Request, number: str, language: Language) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        txn = withdrawals.settle(session, number)
        return 200, schemas.transaction_out(txn, txn.customer_id, language)

    return run_idempotent(request, "admin", None, operation)


@admin_router.post("/withdrawals/{number}/return")
def return_withdrawal(request: Request, number: str, language: Language) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        txn = withdrawals.settle(session, number, returned=True)
        return 200, schemas.transaction_out(txn, txn.customer_id, language)

    return run_idempotent(request, "admin", None, operation)


@admin_router.get("/ledger/verify")
def verify_ledger(request: Request) -> JSONResponse:
    """Conservation per currency, balances equal to entries, no overdrawn wallet."""
    with db_of(request).unit_of_work() as session:
        problems = ledger.verify(session)
    body = {"ok": not problems, "problems": [asdict(p) for p in problems]}
    if problems:
        return problem(500, {**problem_body("internal_error", "en"), **body})
    return JSONResponse(body)
