"""Worked accounting examples for the ledger, in the spirit of django-hordak's tests.

Each example moves money between a few accounts and checks every affected account's balance and
pending fields, the entries written (signs and running balances) and that the books still
verify. Amounts are in fen (CNY minor units). Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from walletdesk.db import Database
from walletdesk.kit.money import MAX_MINOR_UNITS
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind, Entry, Phase, Transfer
from walletdesk.ledger.service import Outcome, Result, TransferRequest, resolve_pending


@dataclass(frozen=True)
class State:
    balance: int
    pending_debits: int = 0
    pending_credits: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.pending_debits


class Books:
    """A small driver over the ledger service: one unit of work per call, as a request would."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ids = itertools.count(1)
        self.clearing = self.open("clearing", no_overdraft=False)

    def open(self, code: str, currency: str = "CNY", *, no_overdraft: bool = True) -> int:
        with self.db.unit_of_work() as session:
            kind = AccountKind.CUSTOMER_WALLET if no_overdraft else AccountKind.BANK_CLEARING
            return ledger.open_account(session, code, kind, currency, no_overdraft=no_overdraft).id

    def post(self, *requests: TransferRequest) -> list[Outcome]:
        with self.db.unit_of_work() as session:
            return ledger.post(session, requests)

    def fund(self, account: int, amount: int) -> None:
        (outcome,) = self.post(move(f"fund-{next(self._ids)}", self.clearing, account, amount))
        assert outcome.result is Result.OK

    def state(self, account: int) -> State:
        with self.db.unit_of_work() as session:
            row = ledger.get_account(session, account)
            return State(row.balance, row.pending_debits, row.pending_credits)

    def entries(self, transfer_id: int | None) -> list[tuple[int, int, int]]:
        """(account, signed amount, balance after) of a transfer's entries, debit leg first."""
        with self.db.unit_of_work() as session:
            rows = session.execute(
                select(Entry.account_id, Entry.amount, Entry.balance_after)
                .where(Entry.transfer_id == transfer_id)
                .order_by(Entry.leg)
            )
            return [tuple(row) for row in rows]

    def transfer(self, external_id: str) -> Transfer | None:
        with self.db.unit_of_work() as session:
            query = select(Transfer).where(Transfer.external_id == external_id)
            return session.execute(query).scalar_one_or_none()

    def counts(self) -> tuple[int, int]:
        """How many transfers and entries the books hold."""
        with self.db.unit_of_work() as session:
            transfers = session.scalar(select(func.count()).select_from(Transfer))
            entries = session.scalar(select(func.count()).select_from(Entry))
            return transfers or 0, entries or 0

    def holds(self, account: int) -> list[str]:
        """External ids of the transfers still pending on `account`."""
        with self.db.unit_of_work() as session:
            return [t.external_id for t in ledger.pending_transfers(session, account)]

    def problems(self) -> list[ledger.Discrepancy]:
        with self.db.unit_of_work() as session:
            return ledger.verify(session)


def move(
    external_id: str,
    debit: int,
    credit: int,
    amount: int,
    currency: str = "CNY",
    *,
    phase: Phase = Phase.SINGLE,
    linked: bool = False,
) -> TransferRequest:
    return TransferRequest(
        external_id, debit, credit, amount, currency, "test", phase=phase, linked=linked
    )


def results(outcomes: list[Outcome]) -> list[Result]:
    return [outcome.result for outcome in outcomes]


@pytest.fixture
def books(db: Database) -> Books:
    """The ledger alone (this shadows the wallet-level `books` of tests/integration/conftest.py)."""
    return Books(db)


# --- plain transfers ------------------------------------------------------------------------


def test_a_transfer_moves_money_and_writes_two_balancing_entries(books: Books) -> None:
    alice, bob = books.open("alice"), books.open("bob")
    books.fund(alice, 10_000)

    (outcome,) = books.post(move("t-1", alice, bob, 3_000))

    assert outcome.result is Result.OK and outcome.transfer_id is not None
    assert books.state(books.clearing) == State(-10_000)
    assert books.state(alice) == State(7_000)
    assert books.state(bob) == State(3_000)
    assert books.entries(outcome.transfer_id) == [(alice, -3_000, 7_000), (bob, 3_000, 3_000)]
    transfer = books.transfer("t-1")
    assert transfer is not None and transfer.id == outcome.transfer_id
    assert (transfer.amount, transfer.currency, transfer.phase) == (3_000, "CNY", Phase.SINGLE)
    assert books.problems() == []


def test_a_wallet_cannot_spend_more_than_it_holds(books: Books) -> None:
    alice, bob = books.open("alice"), books.open("bob")
    books.fund(alice, 5_000)
    before = books.counts()

    assert results(books.post(move("t-1", alice, bob, 5_001))) == [Result.INSUFFICIENT_FUNDS]

    assert books.state(alice) == State(5_000)
    assert books.state(bob) == State(0)
    assert books.transfer("t-1") is None
    assert books.counts() == before
    # Down to exactly zero is fine.
    (outcome,) = books.post(move("t-2", alice, bob, 5_000))
    assert outcome.result is Result.OK
    assert books.entries(outcome.transfer_id) == [(alice, -5_000, 0), (bob, 5_000, 5_000)]
    assert books.problems() == []


def test_each_malformed_request_in_a_batch_fails_on_its_own(books: Books) -> None:
    alice, bob = books.open("alice"), books.open("bob")
    books.fund(alice, 1_000)
    nobody = 10**9
    before = books.counts()

    outcomes = books.post(
        move("zero", alice, bob, 0),
        move("negative", alice, bob, -100),
        move("huge", books.clearing, bob, MAX_MINOR_UNITS + 1),
        move("to-self", alice, alice, 100),
        move("to-nobody", alice, nobody, 100),
        move("from-nobody", nobody, bob, 100),
        move("fine", alice, bob, 100),
    )

    assert results(outcomes) == [
        Result.AMOUNT_NOT_POSITIVE,
        Result.AMOUNT_NOT_POSITIVE,
        Result.AMOUNT_TOO_LARGE,
        Result.SAME_ACCOUNT,
        Result.ACCOUNT_NOT_FOUND,
        Result.ACCOUNT_NOT_FOUND,
        Result.OK,
    ]
    assert (books.state(alice), books.state(bob)) == (State(900), State(100))
    assert books.counts() == (before[0] + 1, before[1] + 2)
    assert books.problems() == []


def test_money_never_crosses_currencies(books: Books) -> None:
    alice_cny, alice_usd = books.open("alice-cny"), books.open("alice-usd", "USD")
    books.fund(alice_cny, 1_000)
    before = books.counts()

    outcomes = books.post(
        move("t-1", alice_cny, alice_usd, 100, "CNY"),
        move("t-2", alice_cny, alice_usd, 100, "USD"),
        move("t-3", alice_cny, books.open("bob"), 100, "USD"),
    )

    assert results(outcomes) == [Result.CURRENCY_MISMATCH] * 3
    assert (books.state(alice_cny), books.state(alice_usd)) == (State(1_000), State(0))
    assert books.counts() == before
    assert books.problems() == []


# --- two-phase transfers --------------------------------------------------------------------


@pytest.fixture
def held(books: Books) -> tuple[int, int, int]:
    """Alice (100.00) with 60.00 held for a shop; returns (alice, shop, hold transfer id)."""
    alice, shop = books.open("alice"), books.open("shop")
    books.fund(alice, 10_000)
    (outcome,) = books.post(move("hold-1", alice, shop, 6_000, phase=Phase.PENDING))
    assert outcome.result is Result.OK and outcome.transfer_id is not None
    return alice, shop, outcome.transfer_id


def test_a_pending_transfer_reserves_funds_without_moving_them(
    books: Books, held: tuple[int, int, int]
) -> None:
    alice, shop, hold_id = held

    assert books.state(alice) == State(10_000, pending_debits=6_000)
    assert books.state(alice).available == 4_000
    assert books.state(shop) == State(0, pending_credits=6_000)
    assert books.entries(hold_id) == []
    assert books.holds(alice) == books.holds(shop) == ["hold-1"]
    # The reserved part cannot be spent again; the rest can.
    assert results(books.post(move("t-1", alice, shop, 4_001))) == [Result.INSUFFICIENT_FUNDS]
    assert results(books.post(move("t-2", alice, shop, 4_000))) == [Result.OK]
    assert books.state(alice) == State(6_000, pending_debits=6_000)
    assert books.problems() == []


def test_posting_a_pending_transfer_in_full(books: Books, held: tuple[int, int, int]) -> None:
    alice, shop, hold_id = held

    (outcome,) = books.post(resolve_pending("capture-1", "hold-1"))

    assert outcome.result is Result.OK
    assert books.state(alice) == State(4_000)
    assert books.state(shop) == State(6_000)
    assert books.entries(outcome.transfer_id) == [(alice, -6_000, 4_000), (shop, 6_000, 6_000)]
    assert books.holds(alice) == books.holds(shop) == []
    capture = books.transfer("capture-1")
    assert capture is not None
    assert (capture.phase, capture.amount, capture.pending_id) == (Phase.POST, 6_000, hold_id)
    assert books.problems() == []


def test_posting_part_of_a_pending_transfer_releases_the_rest(
    books: Books, held: tuple[int, int, int]
) -> None:
    alice, shop, _ = held

    (outcome,) = books.post(resolve_pending("capture-1", "hold-1", amount=2_500))

    assert outcome.result is Result.OK
    assert books.state(alice) == State(7_500)
    assert books.state(alice).available == 7_500
    assert books.state(shop) == State(2_500)
    assert books.entries(outcome.transfer_id) == [(alice, -2_500, 7_500), (shop, 2_500, 2_500)]
    assert books.problems() == []


def test_voiding_a_pending_transfer_releases_it_all(
    books: Books, held: tuple[int, int, int]
) -> None:
    alice, shop, hold_id = held

    (outcome,) = books.post(resolve_pending("void-1", "hold-1", void=True))

    assert outcome.result is Result.OK
    assert books.state(alice) == State(10_000)
    assert books.state(shop) == State(0)
    assert books.entries(outcome.transfer_id) == []
    assert books.holds(alice) == books.holds(shop) == []
    void = books.transfer("void-1")
    assert void is not None and (void.phase, void.pending_id) == (Phase.VOID, hold_id)
    assert books.problems() == []


def test_a_pending_transfer_resolves_at_most_once(books: Books) -> None:
    alice, shop = books.open("alice"), books.open("shop")
    books.fund(alice, 10_000)
    cases = [
        (False, False, Result.PENDING_ALREADY_POSTED),
        (False, True, Result.PENDING_ALREADY_POSTED),
        (True, False, Result.PENDING_ALREADY_VOIDED),
        (True, True, Result.PENDING_ALREADY_VOIDED),
    ]
    for n, (first_void, second_void, refusal) in enumerate(cases):
        hold = f"hold-{n}"
        assert results(books.post(move(hold, alice, shop, 1_000, phase=Phase.PENDING))) == [
            Result.OK
        ]
        first = books.post(resolve_pending(f"first-{n}", hold, void=first_void))
        assert results(first) == [Result.OK]
        after_first = books.state(alice), books.state(shop), books.counts()

        second = books.post(resolve_pending(f"second-{n}", hold, void=second_void))

        assert results(second) == [refusal], (first_void, second_void)
        assert (books.state(alice), books.state(shop), books.counts()) == after_first
        assert books.transfer(f"second-{n}") is None
    # Two holds were posted, two voided; nothing is still held.
    assert books.state(alice) == State(8_000)
    assert books.state(shop) == State(2_000)
    assert books.problems() == []


def test_posting_more_than_was_held_is_refused(books: Books, held: tuple[int, int, int]) -> None:
    alice, shop, _ = held

    refused = books.post(resolve_pending("capture-1", "hold-1", amount=6_001))

    assert results(refused) == [Result.EXCEEDS_PENDING_AMOUNT]
    assert books.state(alice) == State(10_000, pending_debits=6_000)
    assert books.state(shop) == State(0, pending_credits=6_000)
    # The hold is still there to be posted properly.
    assert results(books.post(resolve_pending("capture-2", "hold-1", amount=6_000))) == [Result.OK]
    assert books.state(alice) == State(4_000)
    assert books.problems() == []


@pytest.mark.parametrize("void", [False, True])
def test_a_hold_and_its_resolution_in_one_batch(books: Books, void: bool) -> None:
    alice, shop = books.open("alice"), books.open("shop")
    books.fund(alice, 10_000)
    moved = 0 if void else 2_000
    for n, linked in enumerate((False, True)):
        batch = (
            move(f"hold-{n}", alice, shop, 6_000, phase=Phase.PENDING, linked=linked),
            resolve_pending(f"end-{n}", f"hold-{n}", void=void, amount=moved),
        )
        before = books.state(alice).balance

        hold, end = books.post(*batch)

        assert (hold.result, end.result) == (Result.OK, Result.OK), linked
        resolution = books.transfer(f"end-{n}")
        assert resolution is not None and resolution.pending_id == hold.transfer_id
        assert books.state(alice) == State(before - moved)
        after = before - moved
        expected = [] if void else [(alice, -moved, after), (shop, moved, moved * (n + 1))]
        assert books.entries(end.transfer_id) == expected
        # Sending the same batch again changes nothing and names the same transfers.
        again = books.post(*batch)
        assert [(o.result, o.transfer_id) for o in again] == [
            (Result.EXISTS, hold.transfer_id),
            (Result.EXISTS, end.transfer_id),
        ]
    assert books.state(alice) == State(10_000 - 2 * moved)
    assert books.state(shop) == State(2 * moved)
    assert books.problems() == []


def test_resolving_an_unknown_pending_transfer_is_refused(books: Books) -> None:
    assert results(books.post(resolve_pending("capture-1", "no-such-hold"))) == [
        Result.PENDING_NOT_FOUND
    ]
    assert books.counts() == (0, 0)


# --- linked chains --------------------------------------------------------------------------


def test_a_linked_chain_fails_as_a_whole(books: Books) -> None:
    alice, bob, carol = books.open("alice"), books.open("bob"), books.open("carol")
    books.fund(alice, 10_000)
    before = books.counts()

    outcomes = books.post(
        move("a-to-b", alice, bob, 3_000, linked=True),
        move("b-to-c", bob, carol, 5_000),  # bob would hold only 30.00
        move("alone", alice, carol, 1_000),  # not part of the chain
    )

    assert results(outcomes) == [Result.LINKED_EVENT_FAILED, Result.INSUFFICIENT_FUNDS, Result.OK]
    assert books.state(alice) == State(9_000)
    assert books.state(bob) == State(0)
    assert books.state(carol) == State(1_000)
    assert books.transfer("a-to-b") is None and books.transfer("b-to-c") is None
    assert books.counts() == (before[0] + 1, before[1] + 2)
    assert books.problems() == []


def test_a_linked_chain_sees_its_own_earlier_steps(books: Books) -> None:
    alice, bob, carol = books.open("alice"), books.open("bob"), books.open("carol")
    books.fund(alice, 10_000)

    first, second = books.post(
        move("a-to-b", alice, bob, 3_000, linked=True), move("b-to-c", bob, carol, 3_000)
    )

    assert (first.result, second.result) == (Result.OK, Result.OK)
    assert books.entries(first.transfer_id) == [(alice, -3_000, 7_000), (bob, 3_000, 3_000)]
    assert books.entries(second.transfer_id) == [(bob, -3_000, 0), (carol, 3_000, 3_000)]
    assert (books.state(alice), books.state(bob), books.state(carol)) == (
        State(7_000),
        State(0),
        State(3_000),
    )
    assert books.problems() == []


def test_a_chain_left_open_at_the_end_of_the_batch_is_not_applied(books: Books) -> None:
    alice, bob = books.open("alice"), books.open("bob")
    books.fund(alice, 10_000)
    before = books.counts()

    outcomes = books.post(
        move("single", alice, bob, 100),
        move("open-1", alice, bob, 200, linked=True),
        move("open-2", alice, bob, 300, linked=True),
    )

    assert results(outcomes) == [Result.OK, Result.LINKED_EVENT_FAILED, Result.LINKED_CHAIN_OPEN]
    assert (books.state(alice), books.state(bob)) == (State(9_900), State(100))
    assert books.counts() == (before[0] + 1, before[1] + 2)
    assert books.problems() == []


def test_a_failed_chain_releases_nothing_it_resolved(
    books: Books, held: tuple[int, int, int]
) -> None:
    alice, shop, _ = held

    outcomes = books.post(
        replace(resolve_pending("capture-1", "hold-1"), linked=True),
        move("too-much", alice, shop, 4_001),
    )

    assert results(outcomes) == [Result.LINKED_EVENT_FAILED, Result.INSUFFICIENT_FUNDS]
    assert books.state(alice) == State(10_000, pending_debits=6_000)
    assert books.state(shop) == State(0, pending_credits=6_000)
    assert results(books.post(resolve_pending("capture-2", "hold-1"))) == [Result.OK]
    assert books.problems() == []


# --- idempotency ----------------------------------------------------------------------------


def test_a_replayed_transfer_is_reported_not_applied_again(books: Books) -> None:
    alice, bob = books.open("alice"), books.open("bob")
    books.fund(alice, 10_000)
    (first,) = books.post(move("t-1", alice, bob, 3_000))
    after_first = books.counts()

    (again,) = books.post(move("t-1", alice, bob, 3_000))

    assert again.result is Result.EXISTS and again.ok
    assert again.transfer_id == first.transfer_id
    assert books.counts() == after_first
    assert (books.state(alice), books.state(bob)) == (State(7_000), State(3_000))
    assert books.problems() == []


def test_a_replayed_capture_is_reported_not_refused(
    books: Books, held: tuple[int, int, int]
) -> None:
    alice, shop, _ = held
    (first,) = books.post(resolve_pending("capture-1", "hold-1", amount=2_000))

    (again,) = books.post(resolve_pending("capture-1", "hold-1", amount=2_000))

    assert (again.result, again.transfer_id) == (Result.EXISTS, first.transfer_id)
    assert (books.state(alice), books.state(shop)) == (State(8_000), State(2_000))
    assert books.problems() == []


def test_the_same_id_for_a_different_transfer_is_refused(books: Books) -> None:
    alice, bob, carol = books.open("alice"), books.open("bob"), books.open("carol")
    books.fund(alice, 10_000)
    books.fund(carol, 10_000)
    books.post(move("t-1", alice, bob, 3_000))
    before = books.counts(), [books.state(a) for a in (alice, bob, carol)]
    variants = {
        "amount": move("t-1", alice, bob, 3_001),
        "credit account": move("t-1", alice, carol, 3_000),
        "debit account": move("t-1", carol, bob, 3_000),
        "phase": move("t-1", alice, bob, 3_000, phase=Phase.PENDING),
    }

    for changed, request in variants.items():
        (outcome,) = books.post(request)

        assert outcome.result is Result.EXISTS_WITH_DIFFERENT_FIELDS, changed
        assert not outcome.ok
        assert (books.counts(), [books.state(a) for a in (alice, bob, carol)]) == before
    assert books.problems() == []


# --- what the database itself refuses -------------------------------------------------------


@pytest.fixture
def one_transfer(books: Books) -> int:
    alice, bob = books.open("alice"), books.open("bob")
    books.fund(alice, 10_000)
    (outcome,) = books.post(move("t-1", alice, bob, 3_000))
    assert outcome.transfer_id is not None
    return outcome.transfer_id


def refused_by_database(db: Database, sql: str, **params: object) -> str:
    """Run `sql` in its own unit of work, expecting the database to refuse; its message."""
    with pytest.raises(DBAPIError) as refused, db.unit_of_work() as session:
        session.execute(text(sql), params)
    return str(refused.value.orig)


def test_the_database_refuses_to_change_the_books(books: Books, one_transfer: int) -> None:
    before = books.counts(), books.entries(one_transfer)
    statements = [
        "UPDATE ledger_entries SET amount = amount * 2",
        "UPDATE ledger_entries SET balance_after = 0",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transfers SET amount = 1",
        "DELETE FROM ledger_transfers WHERE id = :id",
    ]

    for sql in statements:
        message = refused_by_database(books.db, sql, id=one_transfer)

        assert "immutable" in message, sql
        assert (books.counts(), books.entries(one_transfer)) == before, sql
    assert books.problems() == []


def _insert_transfer(db: Database, external_id: str, debit: int, credit: int) -> int:
    with db.unit_of_work() as session:
        return session.execute(
            text(
                "INSERT INTO ledger_transfers (external_id, debit_account_id, credit_account_id,"
                " amount, currency, kind, phase, created_at)"
                " VALUES (:e, :d, :c, 100, 'CNY', 'test', 'single', CURRENT_TIMESTAMP)"
                " RETURNING id"
            ),
            {"e": external_id, "d": debit, "c": credit},
        ).scalar_one()


ENTRY_PAIR = (
    "INSERT INTO ledger_entries (transfer_id, account_id, leg, amount, balance_after)"
    " VALUES (:t, :d, 1, :debit, 0), (:t, :c, 2, :credit, 0)"
)


def test_the_database_refuses_an_unbalanced_entry_pair(books: Books) -> None:
    alice, bob = books.open("alice"), books.open("bob")
    transfer_id = _insert_transfer(books.db, "hand-made", alice, bob)
    cases = [(-100, 90, "sum to zero"), (-100, 110, "sum to zero"), (100, 100, "leg_sign")]

    for debit, credit, reason in cases:
        message = refused_by_database(
            books.db, ENTRY_PAIR, t=transfer_id, d=alice, c=bob, debit=debit, credit=credit
        )

        assert reason in message, (debit, credit)
        assert books.entries(transfer_id) == []


LONE_DEBIT = (
    "INSERT INTO ledger_entries (transfer_id, account_id, leg, amount, balance_after)"
    " VALUES (:t, :a, 1, -100, -100)"
)


def test_a_lone_entry_is_refused_at_commit_or_reported_by_verify(books: Books) -> None:
    alice, bob = books.open("alice"), books.open("bob")
    transfer_id = _insert_transfer(books.db, "hand-made", alice, bob)
    if books.db.url.startswith("sqlite"):
        # SQLite has no deferred constraints: the books check finds it instead.
        with books.db.unit_of_work() as session:
            session.execute(text(LONE_DEBIT), {"t": transfer_id, "a": alice})
        with books.db.unit_of_work() as session:
            found = {p.what for p in ledger.verify(session)}
        assert "transfer_not_balanced" in found
        return
    refused_by_database(books.db, LONE_DEBIT, t=transfer_id, a=alice)


def test_the_database_refuses_to_overdraw_a_wallet(books: Books) -> None:
    alice = books.open("alice")
    books.fund(alice, 100)
    statements = [
        "UPDATE ledger_accounts SET balance = -1 WHERE id = :id",
        "UPDATE ledger_accounts SET pending_debits = balance + 1 WHERE id = :id",
    ]

    for sql in statements:
        message = refused_by_database(books.db, sql, id=alice)

        assert "no_overdraft" in message, sql
        assert books.state(alice) == State(100)


def test_a_balance_edited_by_hand_is_reported_by_verify(books: Books) -> None:
    alice = books.open("alice")
    books.fund(alice, 100)
    with books.db.unit_of_work() as session:
        session.execute(
            text("UPDATE ledger_accounts SET balance = 1000000 WHERE id = :id"), {"id": alice}
        )

    problems = {problem.what for problem in books.problems()}

    assert problems == {"balance_not_sum_of_entries", "currency_not_conserved"}
