"""Many writers at once: what a customer would notice if the ledger's locking were wrong —
money created or lost, a wallet spent twice, a retried payment applied twice.

Threads start together on a Barrier; each transfer is its own unit of work, as a request is.
Every test runs on SQLite and on PostgreSQL (through the `database_url` fixture). The pool is
kept small on PostgreSQL so that the server's connection limit holds with xdist workers alongside.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from tests.integration.threads_support import run_together

from walletdesk.db import Database
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind, LedgerAccount, Phase, Transfer
from walletdesk.ledger.service import Outcome, Result, TransferRequest, resolve_pending

pytestmark = pytest.mark.slow


@pytest.fixture
def ledger_db(database_url: str) -> Iterator[Database]:
    # SQLite has no connection limit: one connection per thread, waiting on its busy timeout.
    db = Database(database_url, pool_size=50 if database_url.startswith("sqlite") else 10)
    yield db
    db.dispose()


def open_accounts(db: Database, *codes: str, no_overdraft: bool = True) -> list[int]:
    kind = AccountKind.CUSTOMER_WALLET if no_overdraft else AccountKind.BANK_CLEARING
    with db.unit_of_work() as session:
        return [
            ledger.open_account(session, code, kind, "CNY", no_overdraft=no_overdraft).id
            for code in codes
        ]


def move(
    external_id: str, debit: int, credit: int, amount: int, *, linked: bool = False
) -> TransferRequest:
    return TransferRequest(external_id, debit, credit, amount, "CNY", "test", linked=linked)


def post(db: Database, *requests: TransferRequest) -> list[Outcome]:
    with db.unit_of_work() as session:
        return ledger.post(session, requests)


def fund(db: Database, accounts: list[int], amount: int) -> None:
    (clearing,) = open_accounts(db, "clearing", no_overdraft=False)
    for account in accounts:
        (outcome,) = post(db, move(f"fund-{account}", clearing, account, amount))
        assert outcome.result is Result.OK


def balances(db: Database, accounts: list[int]) -> list[int]:
    """The balances of `accounts`, read in one statement (one consistent snapshot)."""
    with db.unit_of_work() as session:
        rows = dict(
            session.execute(
                select(LedgerAccount.id, LedgerAccount.balance).where(
                    LedgerAccount.id.in_(accounts)
                )
            ).all()
        )
    return [rows[a] for a in accounts]


def problems(db: Database) -> list[ledger.Discrepancy]:
    with db.unit_of_work() as session:
        return ledger.verify(session)


# --- (a) Jepsen's bank workload -------------------------------------------------------------

ACCOUNTS = 8
OPENING = 1_000
WRITERS = 8
OPERATIONS = 25


def bank_writer(db: Database, accounts: list[int], seed: int) -> list[tuple[int, int, int]]:
    """Random transfers (some as linked pairs); returns the moves the ledger said it applied."""
    rng = random.Random(seed)
    applied: list[tuple[int, int, int]] = []
    for op in range(OPERATIONS):
        a, b, c = rng.sample(accounts, 3)
        moves = [(a, b, rng.randint(1, 400))]
        if rng.random() < 0.3:
            moves.append((b, c, rng.randint(1, 400)))
        requests = [
            move(f"w{seed}-{op}-{n}", d, cr, amt, linked=n < len(moves) - 1)
            for n, (d, cr, amt) in enumerate(moves)
        ]
        outcomes = post(db, *requests)
        results = {o.result for o in outcomes}
        assert results <= {Result.OK, Result.INSUFFICIENT_FUNDS, Result.LINKED_EVENT_FAILED}
        if results == {Result.OK}:
            applied.extend(moves)
    return applied


def test_concurrent_transfers_never_create_lose_or_overdraw_money(ledger_db: Database) -> None:
    accounts = open_accounts(ledger_db, *(f"bank-{n}" for n in range(ACCOUNTS)))
    fund(ledger_db, accounts, OPENING)
    writers_left = [WRITERS]
    lock = threading.Lock()
    writers_done = threading.Event()
    reads = [0]

    def writer(seed: int) -> list[tuple[int, int, int]]:
        try:
            return bank_writer(ledger_db, accounts, seed)
        finally:
            with lock:
                writers_left[0] -= 1
                if writers_left[0] == 0:
                    writers_done.set()

    def reader() -> list[tuple[int, int, int]]:
        while not writers_done.is_set() or not reads[0]:
            snapshot = balances(ledger_db, accounts)
            assert sum(snapshot) == ACCOUNTS * OPENING, snapshot
            assert min(snapshot) >= 0, snapshot
            reads[0] += 1
        return []

    per_thread = run_together(WRITERS + 1, lambda i: reader() if i == WRITERS else writer(i))

    applied = [m for moves in per_thread for m in moves]
    assert applied, "no transfer succeeded: the workload tested nothing"
    expected = dict.fromkeys(accounts, OPENING)
    for debit, credit, amount in applied:
        expected[debit] -= amount
        expected[credit] += amount
    assert balances(ledger_db, accounts) == [expected[a] for a in accounts]
    assert problems(ledger_db) == []


# --- (b) double spend -----------------------------------------------------------------------


def test_a_full_balance_can_be_spent_only_once(ledger_db: Database) -> None:
    spender, *payees = open_accounts(
        ledger_db, "spender", "payee-0", "payee-1", "payee-2", "payee-3"
    )
    fund(ledger_db, [spender], 5_000)

    outcomes = run_together(
        100, lambda i: post(ledger_db, move(f"spend-{i}", spender, payees[i % 4], 5_000))[0]
    )

    results = [o.result for o in outcomes]
    assert results.count(Result.OK) == 1
    assert results.count(Result.INSUFFICIENT_FUNDS) == 99
    assert balances(ledger_db, [spender]) == [0]
    assert sum(balances(ledger_db, payees)) == 5_000
    assert problems(ledger_db) == []


# --- (c) one external id, many senders ------------------------------------------------------


def transfers_named(db: Database, external_id: str) -> int:
    with db.unit_of_work() as session:
        query = select(func.count()).select_from(Transfer)
        return session.scalar(query.where(Transfer.external_id == external_id)) or 0


def test_a_retried_transfer_sent_fifty_times_at_once_applies_once(ledger_db: Database) -> None:
    payer, payee = open_accounts(ledger_db, "payer", "payee")
    fund(ledger_db, [payer], 10_000)

    outcomes = run_together(50, lambda _: post(ledger_db, move("pay-1", payer, payee, 1_000))[0])

    results = [o.result for o in outcomes]
    assert results.count(Result.OK) == 1
    assert results.count(Result.EXISTS) == 49
    assert len({o.transfer_id for o in outcomes}) == 1
    assert transfers_named(ledger_db, "pay-1") == 1
    assert balances(ledger_db, [payer, payee]) == [9_000, 1_000]
    assert problems(ledger_db) == []


def test_one_id_sent_at_once_for_different_transfers_applies_one_of_them(
    ledger_db: Database,
) -> None:
    # No two requests share an account, so no row lock orders them: only the unique external id.
    payers = open_accounts(ledger_db, *(f"payer-{i}" for i in range(20)))
    payees = open_accounts(ledger_db, *(f"payee-{i}" for i in range(20)))
    fund(ledger_db, payers, 1_000)

    outcomes = run_together(
        20, lambda i: post(ledger_db, move("clash", payers[i], payees[i], 100 + i))[0]
    )

    results = [o.result for o in outcomes]
    assert results.count(Result.OK) == 1
    assert results.count(Result.EXISTS_WITH_DIFFERENT_FIELDS) == 19
    assert transfers_named(ledger_db, "clash") == 1
    winner = results.index(Result.OK)
    assert balances(ledger_db, [payers[winner], payees[winner]]) == [900 - winner, 100 + winner]
    assert sum(balances(ledger_db, payees)) == 100 + winner
    assert problems(ledger_db) == []


def test_a_hold_captured_and_voided_at_once_resolves_once(ledger_db: Database) -> None:
    payer, shop = open_accounts(ledger_db, "payer", "shop")
    fund(ledger_db, [payer], 10_000)
    hold = TransferRequest("hold-1", payer, shop, 6_000, "CNY", "test", phase=Phase.PENDING)
    assert post(ledger_db, hold)[0].result is Result.OK

    outcomes = run_together(
        20, lambda i: post(ledger_db, resolve_pending(f"end-{i}", "hold-1", void=i % 2 == 1))[0]
    )

    results = [o.result for o in outcomes]
    assert results.count(Result.OK) == 1
    voided = results.index(Result.OK) % 2 == 1
    refusal = Result.PENDING_ALREADY_VOIDED if voided else Result.PENDING_ALREADY_POSTED
    assert results.count(refusal) == 19
    assert balances(ledger_db, [payer, shop]) == ([10_000, 0] if voided else [4_000, 6_000])
    with ledger_db.unit_of_work() as session:
        assert ledger.pending_transfers(session, payer) == []
        assert ledger.get_account(session, payer).pending_debits == 0
    assert problems(ledger_db) == []
