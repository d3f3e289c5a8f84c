"""The ledger against an in-memory model, driven by Hypothesis (TigerBeetle-style simulation).

Random transfers, holds, posts (full and partial), voids, linked pairs, double taps and replays
run against a real database; after every step the books must agree with the model: the same
outcome for every request, the same balances and holds on every account, money conserved per
currency, no wallet overdrawn, every balance the sum of its entries, nothing applied twice.

Each example opens its own accounts (codes and external ids carry a per-example prefix), so
examples share one database instead of recreating it — which keeps PostgreSQL affordable.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from walletdesk.db import Database
from walletdesk.kit.money import MAX_MINOR_UNITS
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind, LedgerAccount, Phase, Transfer
from walletdesk.ledger.service import Result, TransferRequest, resolve_pending

# name: (currency, no_overdraft, opening balance funded from that currency's clearing account)
ACCOUNTS: dict[str, tuple[str, bool, int]] = {
    "cny-clearing": ("CNY", False, 0),
    "cny-alice": ("CNY", True, 10_000),
    "cny-bob": ("CNY", True, 5_000),
    "cny-carol": ("CNY", True, 0),
    "cny-shop": ("CNY", False, 0),
    "usd-clearing": ("USD", False, 0),
    "usd-alice": ("USD", True, 2_000),
    "usd-bob": ("USD", True, 0),
}
NAMES = sorted(ACCOUNTS)
names = st.sampled_from(NAMES)
amounts = st.one_of(st.integers(1, 6_000), st.integers(0, 15_000))


# --- the model ------------------------------------------------------------------------------


@dataclass
class ModelAccount:
    currency: str
    no_overdraft: bool
    balance: int = 0
    pending_debits: int = 0
    pending_credits: int = 0


@dataclass
class Applied:
    """A transfer the ledger holds, as the model expects it to be recorded."""

    phase: Phase
    debit: int
    credit: int
    amount: int
    currency: str
    pending_external_id: str | None = None
    resolved_by: Phase | None = None  # for a pending transfer: posted or voided


class Model:
    """What the ledger promises, written plainly: TigerBeetle's create_transfers semantics."""

    def __init__(self) -> None:
        self.accounts: dict[int, ModelAccount] = {}
        self.applied: dict[str, Applied] = {}

    def post(self, batch: Sequence[TransferRequest]) -> list[Result]:
        results: list[Result] = []
        for chain in _chains(batch):
            results.extend(self._chain(chain))
        return results

    def _chain(self, chain: list[TransferRequest]) -> list[Result]:
        saved = copy.deepcopy((self.accounts, self.applied))
        done: list[Result] = []
        failure: tuple[int, Result] | None = None
        for position, request in enumerate(chain):
            if position == len(chain) - 1 and request.linked:
                failure = (position, Result.LINKED_CHAIN_OPEN)
                break
            result = self._one(request)
            if result not in (Result.OK, Result.EXISTS):
                failure = (position, result)
                break
            done.append(result)
        if failure is None and Result.EXISTS in done and Result.OK in done:
            failure = (done.index(Result.EXISTS), Result.EXISTS_WITH_DIFFERENT_FIELDS)
        if failure is None:
            return done
        self.accounts, self.applied = saved
        return [
            failure[1] if p == failure[0] else Result.LINKED_EVENT_FAILED for p in range(len(chain))
        ]

    def _one(self, request: TransferRequest) -> Result:
        earlier = self.applied.get(request.external_id)
        if earlier is not None:
            same = _same(earlier, request)
            return Result.EXISTS if same else Result.EXISTS_WITH_DIFFERENT_FIELDS
        if request.phase in (Phase.POST, Phase.VOID):
            return self._resolve(request)
        return self._transfer(request)

    def _transfer(self, request: TransferRequest) -> Result:
        if request.amount <= 0:
            return Result.AMOUNT_NOT_POSITIVE
        if request.amount > MAX_MINOR_UNITS:
            return Result.AMOUNT_TOO_LARGE
        if request.debit_account_id == request.credit_account_id:
            return Result.SAME_ACCOUNT
        debit = self.accounts[request.debit_account_id]
        credit = self.accounts[request.credit_account_id]
        if not debit.currency == credit.currency == request.currency:
            return Result.CURRENCY_MISMATCH
        if debit.no_overdraft and debit.balance - debit.pending_debits < request.amount:
            return Result.INSUFFICIENT_FUNDS
        if request.phase is Phase.PENDING:
            debit.pending_debits += request.amount
            credit.pending_credits += request.amount
        else:
            debit.balance -= request.amount
            credit.balance += request.amount
        self.applied[request.external_id] = Applied(
            request.phase,
            request.debit_account_id,
            request.credit_account_id,
            request.amount,
            request.currency,
        )
        return Result.OK

    def _resolve(self, request: TransferRequest) -> Result:
        pending = self.applied.get(request.pending_external_id or "")
        if pending is None or pending.phase is not Phase.PENDING:
            return Result.PENDING_NOT_FOUND
        if pending.resolved_by is Phase.POST:
            return Result.PENDING_ALREADY_POSTED
        if pending.resolved_by is Phase.VOID:
            return Result.PENDING_ALREADY_VOIDED
        amount = pending.amount if request.phase is Phase.VOID else request.amount or pending.amount
        if amount < 0:
            return Result.AMOUNT_NOT_POSITIVE
        if amount > pending.amount:
            return Result.EXCEEDS_PENDING_AMOUNT
        debit, credit = self.accounts[pending.debit], self.accounts[pending.credit]
        debit.pending_debits -= pending.amount
        credit.pending_credits -= pending.amount
        pending.resolved_by = request.phase
        if request.phase is Phase.POST:
            debit.balance -= amount
            credit.balance += amount
        self.applied[request.external_id] = Applied(
            request.phase,
            pending.debit,
            pending.credit,
            amount,
            pending.currency,
            request.pending_external_id,
        )
        return Result.OK

    def open_pendings(self) -> list[str]:
        return [
            external_id
            for external_id, applied in self.applied.items()
            if applied.phase is Phase.PENDING and applied.resolved_by is None
        ]


def _same(earlier: Applied, request: TransferRequest) -> bool:
    if request.phase in (Phase.POST, Phase.VOID):
        return (
            earlier.phase is request.phase
            and earlier.pending_external_id == request.pending_external_id
            and (request.phase is Phase.VOID or request.amount in (0, earlier.amount))
        )
    return (earlier.phase, earlier.debit, earlier.credit, earlier.amount, earlier.currency) == (
        request.phase,
        request.debit_account_id,
        request.credit_account_id,
        request.amount,
        request.currency,
    )


def _chains(batch: Sequence[TransferRequest]) -> Iterator[list[TransferRequest]]:
    chain: list[TransferRequest] = []
    for request in batch:
        chain.append(request)
        if not request.linked:
            yield chain
            chain = []
    if chain:
        yield chain


# --- the machine ----------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    db: Database  # set by the test that runs the machine

    def __init__(self) -> None:
        super().__init__()
        self.run = uuid.uuid4().hex[:10]
        self.model = Model()
        self.ids: dict[str, int] = {}
        self.transfer_ids: dict[str, int] = {}
        self.history: list[tuple[TransferRequest, ...]] = []
        self.pending_ids: list[str] = []
        self.counter = 0

    # helpers

    def new_id(self, what: str) -> str:
        self.counter += 1
        return f"{self.run}-{what}-{self.counter}"

    def request(
        self,
        debit: str,
        credit: str,
        amount: int,
        *,
        phase: Phase = Phase.SINGLE,
        linked: bool = False,
    ) -> TransferRequest:
        return TransferRequest(
            self.new_id(str(phase)),
            self.ids[debit],
            self.ids[credit],
            amount,
            ACCOUNTS[debit][0],
            "test",
            phase=phase,
            linked=linked,
        )

    def post(self, *batch: TransferRequest) -> None:
        """Post `batch` to the ledger and check each outcome against the model's prediction."""
        expected = self.model.post(batch)
        with self.db.unit_of_work() as session:
            outcomes = ledger.post(session, batch)
        assert [o.result for o in outcomes] == expected, batch
        for request, outcome in zip(batch, outcomes, strict=True):
            if outcome.result is Result.OK:
                assert outcome.transfer_id is not None
                self.transfer_ids[request.external_id] = outcome.transfer_id
            elif outcome.result is Result.EXISTS:
                assert outcome.transfer_id == self.transfer_ids[request.external_id]
        self.history.append(tuple(batch))

    # set-up

    @initialize()
    def open_and_fund_accounts(self) -> None:
        with self.db.unit_of_work() as session:
            for name, (currency, no_overdraft, _) in ACCOUNTS.items():
                kind = AccountKind.CUSTOMER_WALLET if no_overdraft else AccountKind.BANK_CLEARING
                account = ledger.open_account(
                    session, f"{self.run}:{name}", kind, currency, no_overdraft=no_overdraft
                )
                self.ids[name] = account.id
                self.model.accounts[account.id] = ModelAccount(currency, no_overdraft)
        for name, (currency, _, opening) in ACCOUNTS.items():
            if opening:
                clearing = f"{currency.lower()}-clearing"
                self.post(self.request(clearing, name, opening))

    # rules

    @rule(debit=names, credit=names, amount=amounts)
    def transfer(self, debit: str, credit: str, amount: int) -> None:
        self.post(self.request(debit, credit, amount))

    @rule(debit=names, credit=names, amount=amounts)
    def hold(self, debit: str, credit: str, amount: int) -> None:
        request = self.request(debit, credit, amount, phase=Phase.PENDING)
        self.post(request)
        self.pending_ids.append(request.external_id)

    @precondition(lambda self: self.pending_ids)
    @rule(data=st.data(), partial=st.booleans(), extra=st.integers(-50, 3_000))
    def capture(self, data: st.DataObject, partial: bool, extra: int) -> None:
        pending = data.draw(st.sampled_from(self.pending_ids), label="pending")
        held = self.model.applied.get(pending)
        amount = max(0, (held.amount if held else 0) - extra) if partial else 0
        self.post(resolve_pending(self.new_id("post"), pending, amount=amount))

    @precondition(lambda self: self.pending_ids)
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        pending = data.draw(st.sampled_from(self.pending_ids), label="pending")
        self.post(resolve_pending(self.new_id("void"), pending, void=True))

    @rule(
        debit=names,
        credit=names,
        amount=amounts,
        capture=st.integers(0, 8_000),
        void=st.booleans(),
        linked=st.booleans(),
    )
    def hold_and_resolve_in_one_batch(
        self, debit: str, credit: str, amount: int, capture: int, void: bool, linked: bool
    ) -> None:
        hold = self.request(debit, credit, amount, phase=Phase.PENDING, linked=linked)
        self.post(
            hold, resolve_pending(self.new_id("end"), hold.external_id, void=void, amount=capture)
        )
        self.pending_ids.append(hold.external_id)

    @rule(first=names, second=names, third=names, amount=amounts, onward=amounts)
    def linked_pair(self, first: str, second: str, third: str, amount: int, onward: int) -> None:
        self.post(
            self.request(first, second, amount, linked=True),
            self.request(second, third, onward),
        )

    @rule(debit=names, credit=names, amount=amounts)
    def double_tap(self, debit: str, credit: str, amount: int) -> None:
        request = self.request(debit, credit, amount)
        self.post(request, request)

    @precondition(lambda self: self.history)
    @rule(data=st.data(), altered=st.booleans())
    def replay(self, data: st.DataObject, altered: bool) -> None:
        batch = list(data.draw(st.sampled_from(self.history), label="batch"))
        if altered:
            batch[0] = replace(batch[0], amount=batch[0].amount + 1)
        self.post(*batch)

    # invariants

    @invariant()
    def books_balance_and_agree_with_the_model(self) -> None:
        if not self.ids:
            return
        with self.db.unit_of_work() as session:
            rows = session.execute(
                select(
                    LedgerAccount.id,
                    LedgerAccount.balance,
                    LedgerAccount.pending_debits,
                    LedgerAccount.pending_credits,
                ).where(LedgerAccount.id.in_(self.ids.values()))
            )
            actual = {
                row.id: (row.balance, row.pending_debits, row.pending_credits) for row in rows
            }
            written = session.scalar(
                select(func.count())
                .select_from(Transfer)
                .where(Transfer.external_id.like(f"{self.run}-%"))
            )
            problems = ledger.verify(session)
        totals = {currency: 0 for currency, _, _ in ACCOUNTS.values()}
        for name, (currency, no_overdraft, _) in ACCOUNTS.items():
            balance, pending_debits, _ = actual[self.ids[name]]
            totals[currency] += balance
            assert not no_overdraft or balance - pending_debits >= 0, f"{name} overdrawn"
        assert totals == {"CNY": 0, "USD": 0}, "money was created or destroyed"
        assert problems == []
        expected = {
            account_id: (a.balance, a.pending_debits, a.pending_credits)
            for account_id, a in self.model.accounts.items()
        }
        assert actual == expected
        assert written == len(self.model.applied), "a transfer was applied twice or lost"


def run_machine(database_url: str, *, examples: int, steps: int) -> None:
    db = Database(database_url, pool_size=2)
    try:
        machine = type("LedgerMachineOnDatabase", (LedgerMachine,), {"db": db})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        db.dispose()


def test_ledger_agrees_with_its_model(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        run_machine(database_url, examples=30, steps=25)
    else:
        run_machine(database_url, examples=15, steps=20)
