"""Concurrency through a real server: what a customer whose app retries, double-taps or loses the
network would notice if it went wrong — money moved twice, a payment that overdraws the wallet,
or a crash that leaves the books off or makes a retry charge again.

Every test runs on SQLite and on PostgreSQL (through the `database_url` fixture).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select

from tests.e2e.conftest import ServerProcess
from walletdesk.db import Database
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import LedgerAccount, Transfer
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.models import TxnKind, TxnStatus, WalletTransaction
from walletdesk.wallet.service import cards, customers, topups

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
LIMITS = httpx.Limits(max_connections=128, max_keepalive_connections=128)
_phones = itertools.count(1)


# --- set-up through the services, as an operator would ---------------------------------------


@dataclass(frozen=True)
class Person:
    id: int
    phone: str
    token: str


def make_customer(db: Database, name: str) -> Person:
    # Unique per test run, so a PostgreSQL database shared by a worker never clashes.
    phone = f"+86139{uuid.uuid4().int % 10**4:04d}{next(_phones) % 10**4:04d}"
    with db.unit_of_work() as session:
        customer, token = customers.create_customer(session, name, phone=phone)
        return Person(customer.id, customer.phone or phone, token)


def make_merchant(db: Database, fee_bps: int) -> str:
    code = f"SHOP{uuid.uuid4().hex[:8].upper()}"
    with db.unit_of_work() as session:
        customers.create_merchant(session, code, "Corner Shop", fee_bps=fee_bps)
    return code


def fund(db: Database, sandbox_path: Path, person: Person, amount: int) -> None:
    """Top the wallet up from a sandbox card that always succeeds."""
    gateway = SandboxGateway(sandbox_path)
    with db.unit_of_work() as session:
        card_id = cards.add_card(
            session, gateway, person.id, "4242424242424242", 12, 2035, "123"
        ).id
    with db.unit_of_work() as session:
        txn = topups.top_up(db, session, gateway, person.id, card_id, amount, "CNY")
        assert txn.status == TxnStatus.SUCCEEDED, txn.failure_code


def balance_of(db: Database, person: Person) -> tuple[int, int]:
    """(balance, available) of the person's CNY wallet, in fen."""
    with db.unit_of_work() as session:
        (wallet,) = [b for b in customers.balances(session, person.id) if b.currency == "CNY"]
        return wallet.balance, wallet.available


def books_problems(db: Database) -> list[ledger.Discrepancy]:
    with db.unit_of_work() as session:
        return ledger.verify(session)


def headers(person: Person, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}", "Idempotency-Key": key}


def number_in(answer: httpx.Response) -> str:
    """The transaction number in a 2xx answer, or in the `transaction` of a refusal."""
    body = answer.json()
    return body["number"] if answer.status_code < 400 else body["transaction"]["number"]


# --- firing requests together ------------------------------------------------------------------


Answer = httpx.Response | Exception


class Volley:
    """`n` threads that wait at a barrier, then each make one call at the same moment."""

    def __init__(self, n: int, call: Callable[[int], httpx.Response]) -> None:
        self._call = call
        self._barrier = threading.Barrier(n, timeout=30)
        self._answered = threading.Condition()
        self.answers: list[Answer | None] = [None] * n
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)
        ]

    def _run(self, index: int) -> None:
        try:
            self._barrier.wait()
            answer: Answer = self._call(index)
        except Exception as error:  # a dropped connection is an outcome the test inspects
            answer = error
        with self._answered:
            self.answers[index] = answer
            self._answered.notify_all()

    def start(self) -> Volley:
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_answers(self, count: int, timeout: float = 60.0) -> None:
        with self._answered:
            done = self._answered.wait_for(
                lambda: sum(a is not None for a in self.answers) >= count, timeout
            )
        assert done, f"fewer than {count} answers within {timeout}s"

    def join(self, timeout: float = 90.0) -> list[Answer]:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "requests still hanging"
        return [a for a in self.answers if a is not None]

    def run(self) -> list[httpx.Response]:
        answers = self.start().join()
        failed = [a for a in answers if not isinstance(a, httpx.Response)]
        assert not failed, f"{len(failed)} requests got no HTTP answer: {failed[:3]!r}"
        return [a for a in answers if isinstance(a, httpx.Response)]


# --- (a) one key, fifty taps ---------------------------------------------------------------------


def test_fifty_concurrent_transfers_with_one_key_move_money_once(
    server: str, e2e_db: Database, sandbox_path: Path
) -> None:
    alice, bob = make_customer(e2e_db, "Alice"), make_customer(e2e_db, "Bob")
    fund(e2e_db, sandbox_path, alice, 1_000_00)
    key = f"tap-{uuid.uuid4()}"
    body = {"to": bob.phone, "amount": "123.45", "currency": "CNY", "note": "rent"}

    with httpx.Client(base_url=server, timeout=TIMEOUT, limits=LIMITS) as client:
        answers = Volley(
            50, lambda _: client.post("/v1/transfers", json=body, headers=headers(alice, key))
        ).run()

        statuses = sorted({a.status_code for a in answers})
        assert set(statuses) <= {201, 409}, [(a.status_code, a.text[:200]) for a in answers]
        created = [a for a in answers if a.status_code == 201]
        conflicts = [a for a in answers if a.status_code == 409]
        assert created, "no request with the key ever succeeded"
        assert {a.json()["number"] for a in created} == {created[0].json()["number"]}
        number = created[0].json()["number"]
        assert all(a.json()["status"] == "succeeded" for a in created)
        originals = [a for a in created if a.headers.get("idempotent-replayed") != "true"]
        assert len(originals) == 1, "exactly one request ran; the other 201s are replays"
        for conflict in conflicts:
            assert conflict.headers["content-type"].startswith("application/problem+json")
            assert conflict.json()["code"] == "idempotency_key_in_use"

        retry = client.post("/v1/transfers", json=body, headers=headers(alice, key))
        assert retry.status_code == 201
        assert retry.headers.get("idempotent-replayed") == "true"
        assert retry.json()["number"] == number

        bobs_view = client.get("/v1/wallets", headers={"Authorization": f"Bearer {bob.token}"})
        assert bobs_view.status_code == 200
        assert bobs_view.json()[0]["balance"] == "123.45"

        # Alice goes on sending small sums until the risk engine wants a second factor (too
        # many in ten minutes). Her app retrying the first transfer must still get its answer:
        # nothing moves on a replay, so there is nothing to verify.
        small = {**body, "amount": "1.00", "note": "coffee"}
        more = 0
        for n in range(10):
            answer = client.post("/v1/transfers", json=small, headers=headers(alice, f"{key}-{n}"))
            if answer.status_code == 403:
                assert answer.json()["code"] == "verification_required"
                break
            assert answer.status_code == 201, answer.text[:300]
            more += 1
        late_retry = client.post("/v1/transfers", json=body, headers=headers(alice, key))
        assert late_retry.status_code == 201, late_retry.text[:300]
        assert late_retry.headers.get("idempotent-replayed") == "true"
        assert late_retry.json()["number"] == number

    with e2e_db.unit_of_work() as session:
        sent = session.execute(
            select(WalletTransaction.number).where(
                WalletTransaction.request_key == f"customer:{alice.id}:{key}"
            )
        ).scalars()
        assert list(sent) == [number]
        moved = session.execute(
            select(func.count()).select_from(Transfer).where(Transfer.kind == "p2p")
        ).scalar_one()
        assert moved == 1 + more
    left = 1_000_00 - 123_45 - more * 1_00
    assert balance_of(e2e_db, alice) == (left, left)
    assert balance_of(e2e_db, bob) == (123_45 + more * 1_00, 123_45 + more * 1_00)
    assert books_problems(e2e_db) == []


# --- (b) a hundred payments racing for one balance ------------------------------------------------


def test_hundred_concurrent_full_balance_payments_only_one_succeeds(
    server: str, e2e_db: Database, sandbox_path: Path
) -> None:
    alice = make_customer(e2e_db, "Alice")
    shop = make_merchant(e2e_db, fee_bps=150)
    fund(e2e_db, sandbox_path, alice, 500_00)
    body = {"merchant_code": shop, "amount": "500.00", "currency": "CNY"}
    run = uuid.uuid4().hex

    with httpx.Client(base_url=server, timeout=TIMEOUT, limits=LIMITS) as client:
        # A stranger tries to sign in as Alice (an operator-made customer, who has no password).
        # Refused, and it must not change anything for her app's payments below.
        guess = client.post(
            "/v1/auth/login",
            json={"login": alice.phone, "password": "x" * 12, "device_id": "strangers-pc"},
        )
        assert guess.status_code == 401
        assert guess.json()["code"] == "invalid_credentials"
        answers = Volley(
            100,
            lambda i: client.post("/v1/payments", json=body, headers=headers(alice, f"{run}-{i}")),
        ).run()
        wallets = client.get("/v1/wallets", headers={"Authorization": f"Bearer {alice.token}"})

    by_status: dict[int, list[httpx.Response]] = {}
    for answer in answers:
        by_status.setdefault(answer.status_code, []).append(answer)
    assert sorted(by_status) == [201, 402], {s: a[0].text[:300] for s, a in by_status.items()}
    assert len(by_status[201]) == 1
    assert by_status[201][0].json()["status"] == "succeeded"
    for refused in by_status[402]:
        problem = refused.json()
        assert problem["code"] == "insufficient_balance"
        assert problem["transaction"]["status"] == "failed"
    assert wallets.json()[0]["balance"] == "0.00"

    with e2e_db.unit_of_work() as session:
        attempts = session.execute(
            select(WalletTransaction.status, func.count())
            .where(WalletTransaction.customer_id == alice.id)
            .where(WalletTransaction.kind == TxnKind.PAYMENT)
            .group_by(WalletTransaction.status)
        ).all()
        assert dict(attempts) == {TxnStatus.SUCCEEDED: 1, TxnStatus.FAILED: 99}
        settlement = session.execute(
            select(LedgerAccount.balance).where(LedgerAccount.code == f"merchant:{shop}:CNY")
        ).scalar_one()
        assert settlement == 500_00 - 500_00 * 150 // 10_000  # the shop gets it, less a 1.5% fee
    assert balance_of(e2e_db, alice) == (0, 0)
    assert books_problems(e2e_db) == []


# --- (c) a crash in the middle of a batch, then retries -------------------------------------------


def test_crash_mid_batch_then_retries_never_double_spend(
    launch_server: Callable[..., ServerProcess], e2e_db: Database, sandbox_path: Path
) -> None:
    """Six customers each send 4 payments of 50.00 with 150.00 in the wallet, the server is
    killed mid-batch, a new one starts, and every payment is retried with its key until it has
    a final answer: exactly 3 per customer succeed, whatever the crash cut short.

    (Four payments each, not two dozen from one customer: after 5 outgoing payments in 10
    minutes the risk engine asks for a second factor, which is not what this test is about.)
    """
    first = launch_server(idempotency_lock_seconds="1")
    shop = make_merchant(e2e_db, fee_bps=0)
    people = [make_customer(e2e_db, f"Customer {n}") for n in range(6)]
    for person in people:
        fund(e2e_db, sandbox_path, person, 150_00)
    body = {"merchant_code": shop, "amount": "50.00", "currency": "CNY"}
    run = uuid.uuid4().hex
    requests = [(person, f"crash-{run}-{person.id}-{n}") for person in people for n in range(4)]

    def pay(client: httpx.Client, index: int) -> httpx.Response:
        person, key = requests[index]
        return client.post("/v1/payments", json=body, headers=headers(person, key))

    with httpx.Client(base_url=first.url, timeout=TIMEOUT, limits=LIMITS) as client:
        volley = Volley(len(requests), lambda i: pay(client, i)).start()
        volley.wait_for_answers(3)
        first.kill()  # mid-batch: the other requests are cut off wherever they happen to be
        volley.join()
    seen = {
        i: a for i, a in enumerate(volley.answers) if isinstance(a, httpx.Response)
    }  # answers the clients got before the crash
    assert len(seen) >= 3
    assert all(a.status_code in (201, 402) for a in seen.values()), [
        a.text[:200] for a in seen.values()
    ]

    # Right after the crash, before anyone retries: the books balance, nothing half-written.
    assert books_problems(e2e_db) == []
    with e2e_db.unit_of_work() as session:
        paid = dict(
            session.execute(
                select(WalletTransaction.customer_id, func.count())
                .where(WalletTransaction.kind == TxnKind.PAYMENT)
                .where(WalletTransaction.status == TxnStatus.SUCCEEDED)
                .group_by(WalletTransaction.customer_id)
            ).all()
        )
    for person in people:
        expected = 150_00 - paid.get(person.id, 0) * 50_00
        assert balance_of(e2e_db, person) == (expected, expected)

    second = launch_server(idempotency_lock_seconds="1")
    final: dict[int, httpx.Response] = {}
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=second.url, timeout=TIMEOUT, limits=LIMITS) as client:
        while len(final) < len(requests):
            left = [i for i in range(len(requests)) if i not in final]
            assert time.monotonic() < deadline, f"keys still locked: {left}"
            for index in left:
                answer = pay(client, index)
                if answer.status_code == 409:  # the dead server's claim; it lapses after 1 s
                    assert answer.json()["code"] == "idempotency_key_in_use"
                    continue
                final[index] = answer
            if len(final) < len(requests):
                threading.Event().wait(0.2)  # poll again once the lock had time to lapse

    for index, answer in final.items():
        assert answer.status_code in (201, 402), answer.text[:300]
        if index in seen:  # the client saw an answer before the crash: a retry replays it
            assert answer.headers.get("idempotent-replayed") == "true"
            assert answer.status_code == seen[index].status_code
            assert number_in(answer) == number_in(seen[index])
        if answer.status_code == 402:
            assert answer.json()["code"] == "insufficient_balance"
    succeeded = [a for a in final.values() if a.status_code == 201]
    assert len(succeeded) == 3 * len(people)
    assert len({number_in(a) for a in succeeded}) == len(succeeded)

    with e2e_db.unit_of_work() as session:
        recorded = session.execute(
            select(WalletTransaction.request_key, WalletTransaction.status).where(
                WalletTransaction.kind == TxnKind.PAYMENT
            )
        ).all()
        # One payment per key, never two, and each key's outcome is the one the client saw.
        assert sorted(k for k, _ in recorded) == sorted(
            f"customer:{person.id}:{key}" for person, key in requests
        )
        assert sum(s == TxnStatus.SUCCEEDED for _, s in recorded) == len(succeeded)
        moved = session.execute(
            select(func.count()).select_from(Transfer).where(Transfer.kind == "payment")
        ).scalar_one()
        assert moved == len(succeeded)
        shop_balance = session.execute(
            select(LedgerAccount.balance).where(LedgerAccount.code == f"merchant:{shop}:CNY")
        ).scalar_one()
        assert shop_balance == len(succeeded) * 50_00
    for person in people:
        assert balance_of(e2e_db, person) == (0, 0)
    assert books_problems(e2e_db) == []
