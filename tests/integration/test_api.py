"""The wallet through its HTTP API, on a real database: what an app or a merchant's server sees.

Answers: 201 when money moved, 202 while it is on its way, and `application/problem+json` with
a stable `code` otherwise. Every POST carries an Idempotency-Key with Stripe's semantics, so a
client that lost its connection can always retry without paying twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.integration.wallet_support import (
    ADMIN_TOKEN,
    DECLINED,
    Books,
    Person,
    Shop,
)

from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.idempotency import service as idempotency
from walletdesk.idempotency.models import IdempotencyRecord
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.ids import is_valid_number
from walletdesk.wallet.models import WalletTransaction
from walletdesk.wallet.schemas import PaymentIn

PROBLEM = "application/problem+json"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_keys = itertools.count(1)


def new_key() -> str:
    return f"key-{next(_keys):06d}"


def post(
    client: TestClient,
    path: str,
    who: Person | Shop | dict[str, str] | None,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = "new",
    language: str | None = None,
) -> httpx.Response:
    """POST as `who` with a fresh Idempotency-Key (or `key`; None sends none)."""
    headers = dict(who.auth if isinstance(who, Person | Shop) else who or {})
    if key is not None:
        headers["Idempotency-Key"] = new_key() if key == "new" else key
    if language:
        headers["Accept-Language"] = language
    return client.post(path, json=body, headers=headers)


def assert_problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["title"]
    return body


def wallets(client: TestClient, person: Person) -> dict[str, dict[str, Any]]:
    answer = client.get("/v1/wallets", headers=person.auth)
    assert answer.status_code == 200
    return {w["currency"]: w for w in answer.json()}


# --- happy paths -----------------------------------------------------------------------------


def test_every_movement_answers_201_or_202_with_amounts_as_strings(
    client: TestClient,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
) -> None:
    alice = customer("Alice", currencies=("CNY", "USD"))
    bob = customer("Bob")
    shop = merchant("SHOP", currencies=("CNY",), fee_bps=100)

    card = post(
        client,
        "/v1/cards",
        alice,
        {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    )
    assert card.status_code == 201, card.text
    assert (card.json()["brand"], card.json()["last4"]) == ("visa", "4242")
    assert "number" not in card.json()
    card_id = card.json()["id"]

    topup = post(
        client, "/v1/topups", alice, {"card_id": card_id, "amount": "200", "currency": "CNY"}
    )
    assert topup.status_code == 201, topup.text
    assert topup.headers["content-type"] == "application/json"
    body = topup.json()
    assert (body["kind"], body["status"], body["direction"]) == ("topup", "succeeded", "in")
    assert (body["amount"], body["amount_minor"], body["currency"]) == ("200.00", 200_00, "CNY")
    assert is_valid_number(body["number"])

    paid = post(
        client,
        "/v1/payments",
        alice,
        {"merchant_code": "SHOP", "amount": "12.50", "currency": "CNY", "description": "面条"},
    )
    assert paid.status_code == 201, paid.text
    assert (paid.json()["amount"], paid.json()["fee"], paid.json()["direction"]) == (
        "12.50",
        "0.12",
        "out",
    )

    sent = post(client, "/v1/transfers", alice, {"to": bob.phone, "amount": 30, "currency": "CNY"})
    assert sent.status_code == 201, sent.text
    assert (sent.json()["amount"], sent.json()["status"]) == ("30.00", "succeeded")

    withdrawal = post(
        client,
        "/v1/withdrawals",
        alice,
        {"amount": "20.00", "currency": "CNY", "bank_account": "6222 0202 0011 2233 445"},
    )
    assert withdrawal.status_code == 202, withdrawal.text
    assert (withdrawal.json()["status"], withdrawal.json()["amount"]) == ("pending", "20.00")
    assert wallets(client, alice)["CNY"]["outgoing_pending"] == "20.00"

    post(client, "/v1/topups", alice, {"card_id": card_id, "amount": "10.00", "currency": "USD"})
    exchanged = post(
        client,
        "/v1/exchanges",
        alice,
        {"amount": "10.00", "from_currency": "USD", "to_currency": "CNY"},
    )
    assert exchanged.status_code == 201, exchanged.text
    assert exchanged.json()["exchange"] == {
        "currency": "CNY",
        "rate": "7.1000",
        "amount": "71.00",
        "amount_minor": 71_00,
    }

    refund = post(
        client,
        "/v1/merchant/refunds",
        shop,
        {"payment_number": paid.json()["number"], "amount": "2.50", "reason": "少放了辣"},
    )
    assert refund.status_code == 201, refund.text
    assert (refund.json()["kind"], refund.json()["amount"]) == ("refund", "2.50")

    settled = post(
        client, f"/v1/admin/withdrawals/{withdrawal.json()['number']}/settle", ADMIN, None
    )
    assert settled.status_code == 200, settled.text
    assert settled.json()["status"] == "succeeded"

    # 200 - 12.50 - 30 - 20 + 71 + 2.50
    mine = wallets(client, alice)
    assert (mine["CNY"]["balance"], mine["CNY"]["available"]) == ("211.00", "211.00")
    assert mine["CNY"]["outgoing_pending"] == "0.00"
    assert mine["USD"]["balance"] == "0.00"
    assert wallets(client, bob)["CNY"]["balance"] == "30.00"
    me = client.get("/v1/me", headers=alice.auth).json()
    assert me["display_name"] == "Alice" and len(me["wallets"]) == 2
    listed = client.get("/v1/transactions", headers=alice.auth, params={"limit": 100}).json()
    assert len(listed["items"]) == 7 and listed["next_cursor"] is None
    # Everything happened at 10:00 in Shanghai (02:00 UTC); either way of saying it works.
    for since, count in (
        ("2026-01-15T10:00:00+08:00", 7),
        ("2026-01-15T02:00:00Z", 7),
        ("2026-01-15T10:00:01+08:00", 0),
    ):
        page = client.get("/v1/transactions", headers=alice.auth, params={"since": since})
        assert len(page.json()["items"]) == count, since
    check = client.get("/v1/admin/ledger/verify", headers=ADMIN)
    assert check.status_code == 200 and check.json() == {"ok": True, "problems": []}


# --- failed movements ------------------------------------------------------------------------


def test_a_failed_movement_is_a_problem_carrying_the_recorded_transaction(
    client: TestClient,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
) -> None:
    person = customer()
    merchant("SHOP", currencies=("CNY",))
    books.fund(person.id, 10_00)
    payment = {"merchant_code": "SHOP", "amount": "50.00", "currency": "CNY"}

    zh = post(client, "/v1/payments", person, payment, language="zh-CN,zh;q=0.9")
    en = post(client, "/v1/payments", person, payment, language="en-US,en;q=0.8")

    for answer, title, said in (
        (zh, "余额不足。", "10.00 CNY"),
        (en, "Your balance is too low.", "10.00 CNY"),
    ):
        body = assert_problem(answer, 402, "insufficient_balance")
        assert body["title"] == title
        assert said in body["detail"]
        txn = body["transaction"]
        assert (txn["status"], txn["amount"], txn["failure"]["code"]) == (
            "failed",
            "50.00",
            "insufficient_balance",
        )
        shown = client.get(f"/v1/transactions/{txn['number']}", headers=person.auth).json()
        assert (shown["status"], shown["failure"]["code"]) == ("failed", "insufficient_balance")
    why = client.get(
        f"/v1/transactions/{en.json()['transaction']['number']}/explanation",
        headers={**person.auth, "Accept-Language": "en"},
    ).json()
    assert why["code"] == "insufficient_balance" and "10.00 CNY" in why["summary"]

    # Other recorded failures answer the same way, each with its own code.
    declined_card = books.card(person.id, DECLINED)
    declined = post(
        client, "/v1/topups", person, {"card_id": declined_card, "amount": "5", "currency": "CNY"}
    )
    assert_problem(declined, 402, "card_declined")
    nobody = post(
        client, "/v1/transfers", person, {"to": "+8613999999999", "amount": "1", "currency": "CNY"}
    )
    assert nobody.json()["transaction"]["status"] == "failed"
    assert_problem(nobody, 422, "invalid_recipient")
    foreign = post(
        client, "/v1/payments", person, {"merchant_code": "SHOP", "amount": "1", "currency": "USD"}
    )
    assert_problem(foreign, 422, "currency_mismatch")
    assert wallets(client, person)["CNY"]["balance"] == "10.00"
    failed = client.get("/v1/transactions", headers=person.auth, params={"status": "failed"})
    assert len(failed.json()["items"]) == 5
    assert books.verify() == []


# --- bad input -------------------------------------------------------------------------------


def test_bad_input_is_refused_with_a_stable_code_and_changes_nothing(
    client: TestClient,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
) -> None:
    person = customer()
    friend = customer()
    merchant("SHOP", currencies=("CNY", "JPY"))
    books.fund(person.id, 100_00)
    card_id = books.card(person.id)
    payment = {"merchant_code": "SHOP", "amount": "10.00", "currency": "CNY"}
    transfer = {"to": friend.phone, "amount": "10.00", "currency": "CNY"}
    topup = {"card_id": card_id, "amount": "10.00", "currency": "CNY"}
    amount_cases: list[tuple[dict[str, Any], int, str]] = [
        ({"amount": "1,00"}, 422, "invalid_amount"),
        ({"amount": "abc"}, 422, "invalid_amount"),
        ({"amount": ""}, 422, "invalid_amount"),
        ({"amount": "1e3"}, 422, "invalid_amount"),
        ({"amount": 12.5}, 422, "invalid_request"),  # a JSON float: not exact, not accepted
        ({"amount": "-5.00"}, 422, "invalid_amount"),
        ({"amount": -5}, 422, "invalid_amount"),
        ({"amount": "0"}, 422, "amount_not_positive"),
        ({"amount": "0.00"}, 422, "amount_not_positive"),
        ({"amount": "1.001"}, 422, "too_many_decimals"),
        ({"amount": "1.5", "currency": "JPY"}, 422, "too_many_decimals"),
        ({"currency": "XYZ"}, 422, "unknown_currency"),
        ({"currency": "cny"}, 422, "invalid_request"),
        ({"amount": "99999999999999999999"}, 422, "amount_too_large"),
        ({"surprise": "field"}, 422, "invalid_request"),
        ({"amount": None}, 422, "invalid_request"),
    ]
    cases = [
        ("/v1/payments", {**payment, **change}, status, code)
        for change, status, code in amount_cases
    ]
    # Transfers and top-ups read amounts the same way; a few cases show it.
    cases += [
        (path, {**base, **change}, status, code)
        for path, base in (("/v1/transfers", transfer), ("/v1/topups", topup))
        for change, status, code in (
            ({"amount": "1,00"}, 422, "invalid_amount"),
            ({"amount": 12.5}, 422, "invalid_request"),
            ({"amount": "0"}, 422, "amount_not_positive"),
            ({"amount": "1.001"}, 422, "too_many_decimals"),
            ({"currency": "XYZ"}, 422, "unknown_currency"),
            ({"surprise": "field"}, 422, "invalid_request"),
        )
    ]
    cases += [
        ("/v1/payments", {**payment, "merchant_code": "NOSUCHSHOP"}, 404, "merchant_not_found"),
        ("/v1/payments", {"amount": "10.00", "currency": "CNY"}, 422, "invalid_request"),
        ("/v1/topups", {**topup, "card_id": card_id + 1000}, 404, "card_not_found"),
        ("/v1/transfers", {**transfer, "to": "+8613999999998"}, 422, "invalid_recipient"),
        ("/v1/transfers", {**transfer, "to": "not a phone"}, 422, "invalid_recipient"),
    ]
    before = books.snapshot()
    charges = books.charges()

    for path, body, status, code in cases:
        answer = post(client, path, person, body)
        problem = assert_problem(answer, status, code)
        if code == "invalid_recipient":
            # A transfer to nobody is recorded as failed, to show in the history.
            assert problem["transaction"]["status"] == "failed"

    # Nothing else was written: no money moved, no other transaction was recorded.
    accounts, count, transfers = books.snapshot()
    assert (accounts, count, transfers) == (before[0], before[1] + 2, before[2])
    assert books.charges() == charges

    # Idempotency-Key: required on every POST, 1 to 255 visible characters.
    for key, code in (
        (None, "idempotency_key_required"),
        ("", "idempotency_key_invalid"),
        (" padded", "idempotency_key_invalid"),
        ("k" * 256, "idempotency_key_invalid"),
    ):
        answer = post(client, "/v1/payments", person, payment, key=key)
        assert_problem(answer, 400, code)
    assert books.snapshot() == (accounts, count, transfers)

    # Titles follow Accept-Language; the code never does.
    zh = post(client, "/v1/payments", person, {**payment, "amount": "abc"}, language="zh-CN")
    en = post(client, "/v1/payments", person, {**payment, "amount": "abc"}, language="en")
    assert zh.json()["code"] == en.json()["code"] == "invalid_amount"
    assert "有效金额" in zh.json()["title"] and "not an amount" in en.json()["title"]
    assert books.verify() == []


# --- who may do what -------------------------------------------------------------------------


def test_callers_are_authenticated_and_see_only_their_own(
    client: TestClient,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
) -> None:
    alice = customer("Alice")
    bob = customer("Bob")
    shop = merchant("SHOP")
    other_shop = merchant("OTHER")
    alice_card = books.card(alice.id)

    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}):
        assert_problem(client.get("/v1/wallets", headers=headers), 401, "unauthorized")
        answer = post(
            client,
            "/v1/payments",
            headers,
            {"merchant_code": "SHOP", "amount": "1", "currency": "CNY"},
        )
        assert_problem(answer, 401, "unauthorized")
        answer = post(client, "/v1/merchant/refunds", headers, {"payment_number": "123456789012"})
        assert_problem(answer, 401, "unauthorized")

    topup = post(
        client, "/v1/topups", alice, {"card_id": alice_card, "amount": "100", "currency": "CNY"}
    )
    assert topup.status_code == 201
    paid = post(
        client, "/v1/payments", alice, {"merchant_code": "SHOP", "amount": "40", "currency": "CNY"}
    )
    assert paid.status_code == 201
    number = paid.json()["number"]

    # Bob cannot read Alice's transaction, its explanation, or her statement.
    assert client.get(f"/v1/transactions/{number}", headers=alice.auth).status_code == 200
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert_problem(
        client.get(f"/v1/transactions/{typo}", headers=alice.auth),
        422,
        "transaction_number_invalid",
    )
    assert_problem(
        client.get(f"/v1/transactions/{number}", headers=bob.auth), 404, "transaction_not_found"
    )
    assert_problem(
        client.get(f"/v1/transactions/{number}/explanation", headers=bob.auth),
        404,
        "transaction_not_found",
    )
    days = {"since": "2026-01-15", "until": "2026-01-16"}  # Shanghai dates
    hers = client.get("/v1/statements/CNY.csv", headers=alice.auth, params=days)
    his = client.get("/v1/statements/CNY.csv", headers=bob.auth, params=days)
    assert hers.status_code == his.status_code == 200
    assert hers.headers["content-type"].startswith("text/csv")
    assert number in hers.text and topup.json()["number"] in hers.text
    assert number not in his.text and len(his.text.splitlines()) == 1  # the header only
    assert client.get("/v1/transactions", headers=bob.auth).json()["items"] == []

    # Bob cannot top up from Alice's card: it is not found, and it is not charged.
    before, charges = books.snapshot(), books.charges()
    stolen = post(
        client, "/v1/topups", bob, {"card_id": alice_card, "amount": "50", "currency": "CNY"}
    )
    assert_problem(stolen, 404, "card_not_found")
    assert books.snapshot() == before and books.charges() == charges

    # A merchant refunds only its own payments.
    other = post(client, "/v1/merchant/refunds", other_shop, {"payment_number": number})
    assert_problem(other, 404, "transaction_not_found")
    assert books.snapshot() == before
    own = post(client, "/v1/merchant/refunds", shop, {"payment_number": number})
    assert own.status_code == 201 and own.json()["amount"] == "40.00"
    assert wallets(client, alice)["CNY"]["balance"] == "100.00"

    # The operator endpoints want the operator's token, and nobody else's.
    for headers in ({}, alice.auth, shop.auth, {"Authorization": "Bearer wrong-admin-token"}):
        assert_problem(post(client, "/v1/admin/reconcile", headers), 401, "unauthorized")
        assert_problem(client.get("/v1/admin/ledger/verify", headers=headers), 401, "unauthorized")
    assert post(client, "/v1/admin/reconcile", ADMIN).status_code == 200
    assert client.get("/v1/admin/ledger/verify", headers=ADMIN).json()["ok"] is True


# --- idempotency -----------------------------------------------------------------------------


def _payments_made(db: Database) -> int:
    with db.unit_of_work() as session:
        return session.execute(
            select(func.count(WalletTransaction.id)).where(WalletTransaction.kind == "payment")
        ).scalar_one()


def test_the_same_key_and_body_replays_the_first_answer(
    client: TestClient,
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
) -> None:
    person = customer()
    merchant("SHOP")
    card_id = books.card(person.id)
    topup = {"card_id": card_id, "amount": "100.00", "currency": "CNY"}
    payment = {"merchant_code": "SHOP", "amount": "25.00", "currency": "CNY"}

    first_topup = post(client, "/v1/topups", person, topup, key="topup-1")
    again_topup = post(client, "/v1/topups", person, topup, key="topup-1")
    first = post(client, "/v1/payments", person, payment, key="pay-1")
    again = post(client, "/v1/payments", person, payment, key="pay-1")

    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again_topup.json()["number"] == first_topup.json()["number"]
    assert books.charges() == 1
    assert list(books.transfers(first.json()["number"])) == [f"txn:{first.json()['number']}"]
    assert _payments_made(db) == 1
    assert wallets(client, person)["CNY"]["balance"] == "75.00"

    # A refusal is remembered too: the replay does not try again with today's balance.
    big = {"merchant_code": "SHOP", "amount": "80.00", "currency": "CNY"}
    refused = post(client, "/v1/payments", person, big, key="pay-2")
    assert_problem(refused, 402, "insufficient_balance")
    books.top_up(person.id, card_id, 100_00)
    replayed = post(client, "/v1/payments", person, big, key="pay-2")
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == refused.json()
    assert wallets(client, person)["CNY"]["balance"] == "175.00"

    # The same key with a different body is a mistake, not a new payment.
    before = books.snapshot()
    reused = post(client, "/v1/payments", person, {**payment, "amount": "26.00"}, key="pay-1")
    assert_problem(reused, 422, "idempotency_key_reused")
    assert books.snapshot() == before
    # Keys belong to their caller: another customer's "pay-1" is another payment.
    other = customer()
    books.fund(other.id, 30_00)
    theirs = post(client, "/v1/payments", other, payment, key="pay-1")
    assert theirs.status_code == 201 and theirs.json()["number"] != first.json()["number"]
    assert books.verify() == []


def test_a_key_in_flight_is_a_conflict_until_its_lock_expires(
    client: TestClient,
    db: Database,
    settings: Settings,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    merchant("SHOP")
    books.fund(person.id, 100_00)
    payment = {"merchant_code": "SHOP", "amount": "25.00", "currency": "CNY"}
    # Another worker took this key for the same request and has not finished (or has died).
    digest = idempotency.fingerprint(
        "POST", "/v1/payments", PaymentIn(**payment).model_dump(mode="json")
    )
    claimed = idempotency.claim(
        db,
        f"customer:{person.id}",
        "pay-in-flight",
        digest,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        lock=timedelta(seconds=settings.idempotency_lock_seconds),
    )
    assert isinstance(claimed, idempotency.Claim)
    before = books.snapshot()

    busy = post(client, "/v1/payments", person, payment, key="pay-in-flight")

    assert_problem(busy, 409, "idempotency_key_in_use")
    assert books.snapshot() == before

    frozen_clock.advance(timedelta(seconds=settings.idempotency_lock_seconds + 1))
    taken_over = post(client, "/v1/payments", person, payment, key="pay-in-flight")
    replayed = post(client, "/v1/payments", person, payment, key="pay-in-flight")

    assert taken_over.status_code == 201, taken_over.text
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["number"] == taken_over.json()["number"]
    assert _payments_made(db) == 1
    assert wallets(client, person)["CNY"]["balance"] == "75.00"
    # The first worker, if it was only slow, can no longer store its answer over this one.
    with pytest.raises(DomainError) as raised, db.unit_of_work() as session:
        idempotency.complete(session, claimed, 201, {"late": True})
    assert raised.value.code == "idempotency_key_in_use"
    assert post(client, "/v1/payments", person, payment, key="pay-in-flight").json() == (
        taken_over.json()
    )
    assert books.verify() == []


def test_keys_are_kept_at_least_a_day_then_purged(
    client: TestClient,
    db: Database,
    settings: Settings,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    merchant("SHOP")
    books.fund(person.id, 100_00)
    payment = {"merchant_code": "SHOP", "amount": "25.00", "currency": "CNY"}
    assert settings.idempotency_ttl_hours >= 24
    first = post(client, "/v1/payments", person, payment, key="pay-kept")

    frozen_clock.advance(timedelta(hours=23))
    later = post(client, "/v1/payments", person, payment, key="pay-kept")
    assert later.headers["Idempotent-Replayed"] == "true"
    assert later.json()["number"] == first.json()["number"]
    with db.unit_of_work() as session:
        assert idempotency.purge_expired(session) == 0

    frozen_clock.advance(timedelta(hours=settings.idempotency_ttl_hours - 23, seconds=1))
    with db.unit_of_work() as session:
        assert idempotency.purge_expired(session) >= 1
        left = session.execute(
            select(func.count(IdempotencyRecord.id)).where(IdempotencyRecord.key == "pay-kept")
        ).scalar_one()
    assert left == 0
    # Even with the key forgotten, the payment it made is found again, not made twice.
    retry = post(client, "/v1/payments", person, payment, key="pay-kept")
    assert retry.json()["number"] == first.json()["number"]
    assert _payments_made(db) == 1
    assert wallets(client, person)["CNY"]["balance"] == "75.00"
    assert books.verify() == []


# --- operations ------------------------------------------------------------------------------


def test_health_and_the_openapi_document(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": True}

    document = client.get("/openapi.json")
    assert document.status_code == 200
    spec = document.json()
    assert spec["info"]["title"] == "walletdesk"
    for path in (
        "/v1/topups",
        "/v1/payments",
        "/v1/transfers",
        "/v1/withdrawals",
        "/v1/exchanges",
        "/v1/transactions/{number}/explanation",
        "/v1/merchant/refunds",
        "/v1/admin/reconcile",
    ):
        assert path in spec["paths"], path
