"""Group commit: many callers share one transaction, yet each gets exactly its own outcomes, a
failing request fails alone, a failed transaction fails (and commits nothing) for everyone in its
group, and the books stay right throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletdesk.db import Database
from walletdesk.ledger import service as ledger
from walletdesk.ledger.group_commit import GroupCommitter
from walletdesk.ledger.models import AccountKind, Transfer
from walletdesk.ledger.service import Outcome, Result, TransferRequest


def open_wallets(db: Database, count: int, funds: int) -> list[int]:
    """`count` no-overdraft wallets holding `funds` each, paid in from a clearing account."""
    with db.unit_of_work() as session:
        source = ledger.system_account(session, AccountKind.BANK_CLEARING, "CNY").id
        ids = [
            ledger.open_account(
                session, f"w{i}", AccountKind.CUSTOMER_WALLET, "CNY", no_overdraft=True
            ).id
            for i in range(count)
        ]
        outcomes = ledger.post(
            session, [move(f"fund{i}", source, a, funds) for i, a in enumerate(ids)]
        )
        assert all(o.result is Result.OK for o in outcomes)
    return ids


def move(
    external_id: str, debit: int, credit: int, amount: int, **extra: object
) -> TransferRequest:
    return TransferRequest(external_id, debit, credit, amount, "CNY", "test", **extra)


def balances(db: Database, ids: Sequence[int]) -> list[int]:
    with db.unit_of_work() as session:
        return [ledger.get_account(session, a).balance for a in ids]


def books_are_right(db: Database) -> bool:
    with db.unit_of_work() as session:
        return ledger.verify(session) == []


def transfer_ids(session: Session) -> dict[str, int]:
    return {t.external_id: t.id for t in session.execute(select(Transfer)).scalars()}


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for other threads to reach a point (a bounded poll, not a bet on timing)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "threads never got there"
        time.sleep(0.001)


class Gate:
    """Stands in for ledger.post. Once armed, it records each group's size, holds the first
    group until released (so that the callers behind it queue up), and can fail a chosen group
    after writing it."""

    def __init__(self, real: Callable[[Session, Sequence[TransferRequest]], list[Outcome]]) -> None:
        self.real = real
        self.sizes: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_group: int | None = None
        self.armed = False

    def __call__(self, session: Session, requests: Sequence[TransferRequest]) -> list[Outcome]:
        if not self.armed:  # setting up the test's accounts
            return self.real(session, requests)
        self.sizes.append(len(requests))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(30)
        outcomes = self.real(session, requests)
        if len(self.sizes) == self.fail_group:
            raise RuntimeError("the disk is full")
        return outcomes


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate(ledger.post)
    monkeypatch.setattr(ledger, "post", gate)
    return gate


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


def queue_behind_first(
    committer: GroupCommitter,
    gate: Gate,
    pool: ThreadPoolExecutor,
    first: TransferRequest,
    rest: Sequence[TransferRequest | Sequence[TransferRequest]],
) -> list[Future[list[Outcome]]]:
    """Submit `first`, hold it inside post(), queue `rest` behind it, then let everything go."""
    gate.armed = True
    futures = [pool.submit(committer.submit, first)]
    assert gate.entered.wait(30)
    for submission in rest:
        futures.append(pool.submit(committer.submit, submission))
        wait_until(lambda n=len(futures) - 1: committer.queued() == n)
    gate.release.set()
    return futures


def test_concurrent_callers_each_get_their_own_outcome(db: Database) -> None:
    wallets = open_wallets(db, 8, 1_000_00)
    committer = GroupCommitter(db)
    requests = [
        move(f"t{i}", wallets[i % 8], wallets[(i * 3 + 1) % 8], 100 + i) for i in range(160)
    ]
    with ThreadPoolExecutor(max_workers=16) as executor:
        outcomes = list(executor.map(committer.submit, requests))

    assert all(len(o) == 1 and o[0].result is Result.OK for o in outcomes)
    with db.unit_of_work() as session:
        written = transfer_ids(session)
    # Each caller's transfer id is the one written under that caller's own external id.
    assert [o[0].transfer_id for o in outcomes] == [written[r.external_id] for r in requests]
    assert sum(balances(db, wallets)) == 8 * 1_000_00
    assert books_are_right(db)


def test_waiting_callers_are_committed_together(
    db: Database, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    wallets = open_wallets(db, 2, 100_00)
    committer = GroupCommitter(db)
    first = move("first", wallets[0], wallets[1], 1)
    rest = [move(f"t{i}", wallets[1], wallets[0], 1) for i in range(9)]

    futures = queue_behind_first(committer, gate, pool, first, rest)

    assert all(f.result()[0].result is Result.OK for f in futures)
    assert gate.sizes == [1, 9]  # the nine who waited shared one transaction


def test_insufficient_funds_fails_only_that_request(
    db: Database, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    poor, rich, shop = open_wallets(db, 3, 10_00)
    committer = GroupCommitter(db)
    first = move("warm-up", rich, shop, 1)
    rest = [
        move("coffee", rich, shop, 5_00),
        move("too-much", poor, shop, 10_01),
        [move("tea", poor, shop, 3_00), move("cake", rich, poor, 2_00)],
    ]

    futures = queue_behind_first(committer, gate, pool, first, rest)
    results = [[o.result for o in f.result()] for f in futures]

    assert gate.sizes == [1, 4]
    assert results == [
        [Result.OK],
        [Result.OK],
        [Result.INSUFFICIENT_FUNDS],
        [Result.OK, Result.OK],
    ]
    assert balances(db, [poor, rich, shop]) == [9_00, 2_99, 18_01]
    assert books_are_right(db)


def test_failed_transaction_fails_every_caller_in_the_group_and_commits_nothing(
    db: Database, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    payer, payee = open_wallets(db, 2, 10_00)
    committer = GroupCommitter(db)
    gate.fail_group = 2
    first = move("before", payer, payee, 1_00)
    rest = [move(f"lost{i}", payer, payee, 1_00) for i in range(3)]

    futures = queue_behind_first(committer, gate, pool, first, rest)

    assert futures[0].result()[0].result is Result.OK
    for future in futures[1:]:
        with pytest.raises(RuntimeError, match="disk is full"):
            future.result()
    assert balances(db, [payer, payee]) == [9_00, 11_00]
    # Nothing of the failed group was kept, so each caller can simply try again.
    retried = [committer.submit(r) for r in rest]
    assert [o[0].result for o in retried] == [Result.OK] * 3
    assert balances(db, [payer, payee]) == [6_00, 14_00]
    assert books_are_right(db)


def test_a_retry_racing_its_original_is_reported_as_existing(
    db: Database, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    payer, payee = open_wallets(db, 2, 10_00)
    committer = GroupCommitter(db)
    request = move("pay-once", payer, payee, 4_00)

    futures = queue_behind_first(
        committer, gate, pool, move("x", payer, payee, 1), [request, request]
    )
    original, retry = futures[1].result()[0], futures[2].result()[0]

    # Posted alone, the second would find the first; grouped, it must not look like a conflict.
    assert (original.result, retry.result) == (Result.OK, Result.EXISTS)
    assert retry.transfer_id == original.transfer_id
    assert balances(db, [payer, payee]) == [5_99, 14_01]


def test_an_open_linked_chain_never_links_into_another_callers_requests(
    db: Database, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    payer, payee = open_wallets(db, 2, 10_00)
    committer = GroupCommitter(db)
    open_chain = [move("fee", payer, payee, 1_00, linked=True)]
    other = move("other", payer, payee, 2_00)

    futures = queue_behind_first(
        committer, gate, pool, move("x", payer, payee, 1), [open_chain, other]
    )

    assert futures[1].result()[0].result is Result.LINKED_CHAIN_OPEN
    assert futures[2].result()[0].result is Result.OK
    with db.unit_of_work() as session:
        assert session.execute(select(func.count(Transfer.id))).scalar_one() == 4  # 2 funds + 2
    assert books_are_right(db)
