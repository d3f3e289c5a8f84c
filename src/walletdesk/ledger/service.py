"""The one writer of balances.

`post(session, requests)` takes a batch of transfer requests and returns one outcome per request,
each succeeding or failing on its own (TigerBeetle's create_transfers). Requests flagged `linked`
form a chain with the request after them: the chain succeeds or fails as a whole.

How a batch is applied: the accounts it touches are locked in id order (PostgreSQL row locks;
SQLite's writer lock is already held since every transaction begins IMMEDIATE), read once, the
requests are applied in memory in order, and the result is written at once: on PostgreSQL one
statement inserts the transfers and entries and sets the balances; on SQLite, in-process, the
same writes go to the driver without SQLAlchemy's per-statement cost. A batch of a hundred costs
about what a batch of one does, which is what lets callers group-commit (ledger/group_commit.py).
Existing ids are not read up front: a batch first assumes they are new and is evaluated again,
ids read, if a request fails or the insert meets a duplicate. docs/performance.md has figures.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from walletdesk.db import get_or_create, is_sqlite
from walletdesk.kit import clock
from walletdesk.kit.money import MAX_MINOR_UNITS, check_currency
from walletdesk.ledger.models import AccountKind, Entry, LedgerAccount, Phase, Transfer


class Result(StrEnum):
    OK = "ok"
    EXISTS = "exists"  # the same request was already applied: nothing happens again
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    ACCOUNT_NOT_FOUND = "account_not_found"
    SAME_ACCOUNT = "same_account"
    AMOUNT_NOT_POSITIVE = "amount_not_positive"
    AMOUNT_TOO_LARGE = "amount_too_large"
    CURRENCY_MISMATCH = "currency_mismatch"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PENDING_NOT_FOUND = "pending_not_found"
    PENDING_ALREADY_POSTED = "pending_already_posted"
    PENDING_ALREADY_VOIDED = "pending_already_voided"
    EXCEEDS_PENDING_AMOUNT = "exceeds_pending_amount"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_CHAIN_OPEN = "linked_chain_open"


@dataclass(frozen=True, slots=True)
class TransferRequest:
    external_id: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    currency: str
    kind: str
    phase: Phase = Phase.SINGLE
    pending_external_id: str | None = None
    linked: bool = False
    exchange_rate: str | None = None
    description: str | None = None


def resolve_pending(
    external_id: str, pending_external_id: str, *, void: bool = False, amount: int = 0
) -> TransferRequest:
    """Post (all, or `amount` of) or void a pending transfer; accounts come from the pending one."""
    return TransferRequest(
        external_id=external_id,
        debit_account_id=0,
        credit_account_id=0,
        amount=amount,
        currency="",
        kind="",
        phase=Phase.VOID if void else Phase.POST,
        pending_external_id=pending_external_id,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    transfer_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.result in (Result.OK, Result.EXISTS)


@dataclass(slots=True)
class _AccountState:
    id: int
    currency: str
    no_overdraft: bool
    balance: int
    pending_debits: int
    pending_credits: int


@dataclass(slots=True)
class _PendingState:
    transfer_id: int | None  # None until written, when the pending is in this same batch
    external_id: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    currency: str
    kind: str
    resolved_by: str | None = None  # "post" or "void"


@dataclass(slots=True)
class _Planned:
    index: int
    request: TransferRequest
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # account, amount, after


class _RetryBatch(Exception):
    """A concurrent writer inserted one of our external ids first: evaluate the batch again."""


def post(session: Session, requests: Sequence[TransferRequest]) -> list[Outcome]:
    """Apply `requests` in order; each gets its own outcome. Never commits."""
    if not requests:
        return []
    # A retry must undo only our own writes. After other work in the transaction that takes a
    # savepoint (two more statements); as its first work, rolling back the whole is the same.
    session.flush()
    alone = not session.in_transaction()
    check_existing = False  # first guess that every id is new (see _post_once)
    for attempt in range(3):
        try:
            if alone:
                return _post_once(session, requests, check_existing)
            with session.begin_nested():
                return _post_once(session, requests, check_existing)
        except (_RetryBatch, IntegrityError):
            # Only a duplicate external_id or pending resolution can get here; retrying sees it.
            if alone:
                session.rollback()
            if attempt == 2:
                raise
            check_existing = True
    raise AssertionError("unreachable")


def _post_once(
    session: Session, requests: Sequence[TransferRequest], check_existing: bool
) -> list[Outcome]:
    """Evaluate and write the batch. Without `check_existing` it saves a query by assuming no
    id was used before; a wrong guess shows as a request that did not apply (evaluated again
    here, with the ids read, before anything is written) or as a duplicate key when writing
    (post() then retries)."""
    pending_refs = {r.pending_external_id for r in requests if r.pending_external_id}
    pendings = _load_pendings(session, pending_refs)
    account_ids = {a for r in requests for a in (r.debit_account_id, r.credit_account_id) if a}
    account_ids |= {a for p in pendings.values() for a in (p.debit_account_id, p.credit_account_id)}
    accounts = _lock_accounts(session, account_ids)
    existing = _load_existing(session, {r.external_id for r in requests}) if check_existing else {}
    _mark_resolved(session, pendings)

    outcomes: list[Outcome | None] = [None] * len(requests)
    planned: list[_Planned] = []
    # Ids applied earlier in this batch, with what they did: a later copy of one is a replay.
    seen: dict[str, TransferRequest] = {}
    replays: list[int] = []  # EXISTS outcomes whose transfer id is known only after _write

    for chain in _chains(requests):
        # A lone request changes nothing unless it succeeds; only chains need an undo copy.
        linked = len(chain) > 1
        snapshot = {a: replace(s) for a, s in accounts.items()} if linked else accounts
        pending_snapshot = {k: replace(p) for k, p in pendings.items()} if linked else pendings
        chain_plans: list[_Planned] = []
        already: list[int] = []
        failure: tuple[int, Result] | None = None
        for index in chain:
            request = requests[index]
            if index == chain[-1] and request.linked:
                failure = (index, Result.LINKED_CHAIN_OPEN)
                break
            result, plan = _apply(request, index, accounts, pendings, existing, seen)
            if result is Result.OK:
                assert plan is not None
                chain_plans.append(plan)
                seen[request.external_id] = plan.request
            elif result is Result.EXISTS:
                already.append(index)
            else:
                failure = (index, result)
                break
        if failure is None and already and len(already) < len(chain):
            # Part of a chain exists: its ids were reused for something else.
            failure = (already[0], Result.EXISTS_WITH_DIFFERENT_FIELDS)
        if failure is None:
            planned.extend(chain_plans)
            for index in already:
                earlier = existing.get(requests[index].external_id)
                if earlier is None:  # a replay of a request applied earlier in this batch
                    replays.append(index)
                else:
                    outcomes[index] = Outcome(Result.EXISTS, earlier.id)
            continue
        if linked:
            accounts.clear()
            accounts.update(snapshot)
            pendings.clear()
            pendings.update(pending_snapshot)
        for plan in chain_plans:
            seen.pop(plan.request.external_id, None)
        for index in chain:
            outcomes[index] = Outcome(
                failure[1] if index == failure[0] else Result.LINKED_EVENT_FAILED
            )

    if not check_existing and any(o is not None for o in outcomes):
        return _post_once(session, requests, check_existing=True)
    ids = _write(session, planned, accounts, pendings)
    written: dict[str, int] = {}
    for plan, transfer_id in zip(planned, ids, strict=True):
        outcomes[plan.index] = Outcome(Result.OK, transfer_id)
        written[plan.request.external_id] = transfer_id
    for index in replays:
        outcomes[index] = Outcome(Result.EXISTS, written[requests[index].external_id])
    return [o if o is not None else Outcome(Result.LINKED_EVENT_FAILED) for o in outcomes]


def _chains(requests: Sequence[TransferRequest]) -> Iterable[list[int]]:
    chain: list[int] = []
    for index, request in enumerate(requests):
        chain.append(index)
        if not request.linked:
            yield chain
            chain = []
    if chain:
        yield chain


def _apply(
    request: TransferRequest,
    index: int,
    accounts: dict[int, _AccountState],
    pendings: dict[str, _PendingState],
    existing: dict[str, Row[Any]],
    seen: dict[str, TransferRequest],
) -> tuple[Result, _Planned | None]:
    if request.external_id in existing:
        same = _same_fields(existing[request.external_id], request, pendings)
        return (Result.EXISTS if same else Result.EXISTS_WITH_DIFFERENT_FIELDS), None
    if request.external_id in seen:
        # The same id twice in one batch: never a second transfer. An identical copy (a client's
        # retry group-committed next to its first attempt) gets the answer a later batch would.
        same = _same_request(seen[request.external_id], request)
        return (Result.EXISTS if same else Result.EXISTS_WITH_DIFFERENT_FIELDS), None
    if request.phase in (Phase.POST, Phase.VOID):
        return _apply_resolution(request, index, accounts, pendings)
    return _apply_transfer(request, index, accounts, pendings)


def _apply_transfer(
    request: TransferRequest,
    index: int,
    accounts: dict[int, _AccountState],
    pendings: dict[str, _PendingState],
) -> tuple[Result, _Planned | None]:
    if request.amount <= 0:
        return Result.AMOUNT_NOT_POSITIVE, None
    if request.amount > MAX_MINOR_UNITS:
        return Result.AMOUNT_TOO_LARGE, None
    if request.debit_account_id == request.credit_account_id:
        return Result.SAME_ACCOUNT, None
    debit = accounts.get(request.debit_account_id)
    credit = accounts.get(request.credit_account_id)
    if debit is None or credit is None:
        return Result.ACCOUNT_NOT_FOUND, None
    if not (debit.currency == credit.currency == request.currency):
        return Result.CURRENCY_MISMATCH, None
    if debit.no_overdraft and debit.balance - debit.pending_debits < request.amount:
        return Result.INSUFFICIENT_FUNDS, None
    plan = _Planned(index, request)
    if request.phase is Phase.PENDING:
        debit.pending_debits += request.amount
        credit.pending_credits += request.amount
        pendings[request.external_id] = _PendingState(
            None,
            request.external_id,
            debit.id,
            credit.id,
            request.amount,
            request.currency,
            request.kind,
        )
    else:
        _move(plan, debit, credit, request.amount)
    return Result.OK, plan


def _apply_resolution(
    request: TransferRequest,
    index: int,
    accounts: dict[int, _AccountState],
    pendings: dict[str, _PendingState],
) -> tuple[Result, _Planned | None]:
    pending = pendings.get(request.pending_external_id or "")
    if pending is None:
        return Result.PENDING_NOT_FOUND, None
    if pending.resolved_by == Phase.POST:
        return Result.PENDING_ALREADY_POSTED, None
    if pending.resolved_by == Phase.VOID:
        return Result.PENDING_ALREADY_VOIDED, None
    amount = request.amount or pending.amount
    if request.phase is Phase.VOID:
        amount = pending.amount
    if amount < 0:
        return Result.AMOUNT_NOT_POSITIVE, None
    if amount > pending.amount:
        return Result.EXCEEDS_PENDING_AMOUNT, None
    debit = accounts[pending.debit_account_id]
    credit = accounts[pending.credit_account_id]
    debit.pending_debits -= pending.amount
    credit.pending_credits -= pending.amount
    pending.resolved_by = request.phase
    resolved = replace(
        request,
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=amount,
        currency=pending.currency,
        kind=request.kind or pending.kind,
    )
    plan = _Planned(index, resolved)
    if request.phase is Phase.POST:
        _move(plan, debit, credit, amount)
    return Result.OK, plan


def _move(plan: _Planned, debit: _AccountState, credit: _AccountState, amount: int) -> None:
    debit.balance -= amount
    credit.balance += amount
    plan.entries.append((debit.id, -amount, debit.balance))
    plan.entries.append((credit.id, amount, credit.balance))


def _same_fields(
    transfer: Row[Any], request: TransferRequest, pendings: dict[str, _PendingState]
) -> bool:
    if request.phase in (Phase.POST, Phase.VOID):
        pending = pendings.get(request.pending_external_id or "")
        return (
            transfer.phase == request.phase
            and pending is not None
            and transfer.pending_id == pending.transfer_id
            and (request.phase is Phase.VOID or request.amount in (0, transfer.amount))
        )
    return (
        transfer.phase == request.phase
        and transfer.debit_account_id == request.debit_account_id
        and transfer.credit_account_id == request.credit_account_id
        and transfer.amount == request.amount
        and transfer.currency == request.currency
    )


def _same_request(applied: TransferRequest, request: TransferRequest) -> bool:
    """`_same_fields` for a request applied earlier in the batch (resolutions come resolved)."""
    if request.phase in (Phase.POST, Phase.VOID):
        return (
            applied.phase == request.phase
            and applied.pending_external_id == request.pending_external_id
            and (request.phase is Phase.VOID or request.amount in (0, applied.amount))
        )
    return (
        applied.phase == request.phase
        and applied.debit_account_id == request.debit_account_id
        and applied.credit_account_id == request.credit_account_id
        and applied.amount == request.amount
        and applied.currency == request.currency
    )


def _load_pendings(session: Session, external_ids: set[str]) -> dict[str, _PendingState]:
    if not external_ids:
        return {}
    rows = session.execute(
        select(Transfer).where(
            Transfer.external_id.in_(external_ids), Transfer.phase == Phase.PENDING
        )
    ).scalars()
    pendings = {
        t.external_id: _PendingState(
            t.id,
            t.external_id,
            t.debit_account_id,
            t.credit_account_id,
            t.amount,
            t.currency,
            t.kind,
        )
        for t in rows
    }
    return pendings


# The hot path's statements, built once and in plain Core (table columns, no ORM entities):
# each call then skips building, cache-key hashing and ORM bookkeeping.
_accounts = LedgerAccount.__table__
_transfers = Transfer.__table__
_entries = Entry.__table__
_LOCK_ACCOUNTS = (
    select(
        _accounts.c.id,
        _accounts.c.currency,
        _accounts.c.no_overdraft,
        _accounts.c.balance,
        _accounts.c.pending_debits,
        _accounts.c.pending_credits,
    )
    .where(_accounts.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_accounts.c.id)
    .with_for_update()
)
_READ_EXISTING = select(
    _transfers.c.id,
    _transfers.c.external_id,
    _transfers.c.debit_account_id,
    _transfers.c.credit_account_id,
    _transfers.c.amount,
    _transfers.c.currency,
    _transfers.c.phase,
    _transfers.c.pending_id,
).where(_transfers.c.external_id.in_(bindparam("ids", expanding=True)))
_INSERT_TRANSFERS = insert(_transfers).returning(_transfers.c.id, sort_by_parameter_order=True)
_INSERT_ENTRIES = insert(_entries)
_UPDATE_ACCOUNTS = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account_id"))
    .values(
        balance=bindparam("new_balance"),
        pending_debits=bindparam("new_pending_debits"),
        pending_credits=bindparam("new_pending_credits"),
    )
)


def _lock_accounts(session: Session, account_ids: set[int]) -> dict[int, _AccountState]:
    if not account_ids:
        return {}
    if not is_sqlite(session):
        rows = session.execute(_LOCK_ACCOUNTS, {"ids": sorted(account_ids)}).all()
    else:  # the writer lock is already held (BEGIN IMMEDIATE)
        query = _SQLITE_READ_ACCOUNTS.format(", ".join("?" * len(account_ids)))
        with _sqlite_cursor(session) as cursor:
            rows = cursor.execute(query, sorted(account_ids)).fetchall()
    return {
        id_: _AccountState(id_, currency, bool(no_overdraft), *amounts)
        for id_, currency, no_overdraft, *amounts in rows
    }


def _load_existing(session: Session, external_ids: set[str]) -> dict[str, Row[Any]]:
    """Transfers already written under these ids, and which pendings are already resolved.

    Read after the account locks are held, so a concurrent batch touching the same accounts has
    either committed (and is seen here) or not started.
    """
    rows = session.execute(_READ_EXISTING, {"ids": list(external_ids)})
    return {row.external_id: row for row in rows}


def _mark_resolved(session: Session, pendings: dict[str, _PendingState]) -> None:
    known = {p.transfer_id: p for p in pendings.values() if p.transfer_id is not None}
    if not known:
        return
    rows = session.execute(
        select(Transfer.pending_id, Transfer.phase).where(Transfer.pending_id.in_(known))
    )
    for pending_id, phase in rows:
        known[pending_id].resolved_by = phase


def _write(
    session: Session,
    planned: list[_Planned],
    accounts: dict[int, _AccountState],
    pendings: dict[str, _PendingState],
) -> list[int]:
    if not planned:
        return []
    now = clock.now()
    rows = [_transfer_row(plan.request, pendings, now) for plan in planned]
    in_batch_refs = any(
        row["pending_id"] is None and row["phase"] in (Phase.POST, Phase.VOID) for row in rows
    )
    if in_batch_refs:
        ids = _write_in_order(session, planned, rows, accounts, pendings)
    elif is_sqlite(session):
        ids = _write_sqlite(session, planned, rows, accounts)
    else:
        ids = _write_postgres(session, planned, rows, accounts)
    for plan, new_id in zip(planned, ids, strict=True):
        _remember_pending_id(plan.request, new_id, pendings)
    return ids


def _entry_rows(planned: list[_Planned], keys: Sequence[Any]) -> list[tuple[Any, ...]]:
    """(key, account_id, leg, amount, balance_after) of every entry, in batch order; a key is
    its transfer's id or, before the transfer has one, its external id."""
    return [
        (key, account_id, 1 if amount < 0 else 2, amount, after)
        for plan, key in zip(planned, keys, strict=True)
        for account_id, amount, after in plan.entries
    ]


def _balance_rows(
    planned: list[_Planned], accounts: dict[int, _AccountState]
) -> list[tuple[int, int, int, int]]:
    """(balance, pending_debits, pending_credits, id) of every touched account, in id order."""
    touched = {
        a
        for plan in planned
        for a in (plan.request.debit_account_id, plan.request.credit_account_id)
    }
    return [
        (accounts[a].balance, accounts[a].pending_debits, accounts[a].pending_credits, a)
        for a in sorted(touched)
    ]


def _write_in_order(
    session: Session,
    planned: list[_Planned],
    rows: list[dict[str, Any]],
    accounts: dict[int, _AccountState],
    pendings: dict[str, _PendingState],
) -> list[int]:
    """A pending and its resolution in one batch: the pending's id must exist first."""
    ids: list[int] = []
    for plan, row in zip(planned, rows, strict=True):
        if row["phase"] in (Phase.POST, Phase.VOID) and row["pending_id"] is None:
            row["pending_id"] = pendings[plan.request.pending_external_id or ""].transfer_id
        new_id = session.execute(_INSERT_TRANSFERS, [row]).scalar_one()
        ids.append(new_id)
        _remember_pending_id(plan.request, new_id, pendings)
    entry_columns = ("transfer_id", "account_id", "leg", "amount", "balance_after")
    entries = [dict(zip(entry_columns, e, strict=True)) for e in _entry_rows(planned, ids)]
    if entries:
        session.execute(_INSERT_ENTRIES, entries)
    balance_columns = ("new_balance", "new_pending_debits", "new_pending_credits", "account_id")
    balances = [
        dict(zip(balance_columns, b, strict=True)) for b in _balance_rows(planned, accounts)
    ]
    session.execute(_UPDATE_ACCOUNTS, balances)
    return ids


# SQLite runs in this process, so a statement costs what its Python wrapping costs: the hot
# path's reads and writes go to the driver directly. Ids come from lastrowid (the writer lock
# is ours).
_SQLITE_READ_ACCOUNTS = (
    "SELECT id, currency, no_overdraft, balance, pending_debits, pending_credits"
    " FROM ledger_accounts WHERE id IN ({}) ORDER BY id"
)
_SQLITE_INSERT_TRANSFER = (
    "INSERT INTO ledger_transfers (external_id, debit_account_id, credit_account_id, amount,"
    " currency, kind, phase, pending_id, exchange_rate, description, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_ENTRY = (
    "INSERT INTO ledger_entries (transfer_id, account_id, leg, amount, balance_after)"
    " VALUES (?, ?, ?, ?, ?)"
)
_SQLITE_UPDATE_BALANCE = (
    "UPDATE ledger_accounts SET balance = ?, pending_debits = ?, pending_credits = ? WHERE id = ?"
)


def _write_sqlite(
    session: Session,
    planned: list[_Planned],
    rows: list[dict[str, Any]],
    accounts: dict[int, _AccountState],
) -> list[int]:
    stored_time = _sqlite_time(session.get_bind().dialect)
    ids: list[int] = []
    with _sqlite_cursor(session) as cursor:
        for row in rows:
            values = [row[c] for c in _TRANSFER_COLUMNS]
            cursor.execute(_SQLITE_INSERT_TRANSFER, (*values, stored_time(row["created_at"])))
            ids.append(cursor.lastrowid)
        entries = _entry_rows(planned, ids)
        if entries:
            cursor.executemany(_SQLITE_INSERT_ENTRY, entries)
        cursor.executemany(_SQLITE_UPDATE_BALANCE, _balance_rows(planned, accounts))
    return ids


@contextmanager
def _sqlite_cursor(session: Session) -> Iterator[sqlite3.Cursor]:
    """The driver's cursor on the session's connection; its errors raised as SQLAlchemy's."""
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        yield cursor
    except sqlite3.Error as error:
        raise DBAPIError.instance(None, None, error, sqlite3.Error) from error
    finally:
        cursor.close()


@cache
def _sqlite_time(dialect: Dialect) -> Callable[[Any], Any]:
    """created_at as SQLAlchemy itself stores it in SQLite (text), so reads give it back."""
    processor = _transfers.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or (lambda value: value)


# PostgreSQL takes a whole batch's writes as one statement, so a batch costs the same few
# round trips whatever its size. Rows go in batch order (WITH ORDINALITY), so ids and each
# account's balance_after rise together as they do on SQLite.
_WRITE_POSTGRES = text("""
WITH new_transfers AS (
    INSERT INTO ledger_transfers (external_id, debit_account_id, credit_account_id, amount,
        currency, kind, phase, pending_id, exchange_rate, description, created_at)
    SELECT t.external_id, t.debit_account_id, t.credit_account_id, t.amount, t.currency, t.kind,
        t.phase, t.pending_id, t.exchange_rate, t.description, CAST(:now AS timestamptz)
    FROM unnest(CAST(:external_id AS varchar[]), CAST(:debit_account_id AS bigint[]),
        CAST(:credit_account_id AS bigint[]), CAST(:amount AS bigint[]),
        CAST(:currency AS varchar[]), CAST(:kind AS varchar[]), CAST(:phase AS varchar[]),
        CAST(:pending_id AS bigint[]), CAST(:exchange_rate AS varchar[]),
        CAST(:description AS varchar[])) WITH ORDINALITY
        AS t(external_id, debit_account_id, credit_account_id, amount, currency, kind, phase,
             pending_id, exchange_rate, description, n)
    ORDER BY t.n
    RETURNING id, external_id
), new_entries AS (
    INSERT INTO ledger_entries (transfer_id, account_id, leg, amount, balance_after)
    SELECT new_transfers.id, e.account_id, e.leg, e.amount, e.balance_after
    FROM unnest(CAST(:entry_external_id AS varchar[]), CAST(:entry_account_id AS bigint[]),
        CAST(:entry_leg AS smallint[]), CAST(:entry_amount AS bigint[]),
        CAST(:entry_balance_after AS bigint[])) WITH ORDINALITY
        AS e(external_id, account_id, leg, amount, balance_after, n)
    JOIN new_transfers USING (external_id)
    ORDER BY e.n
), new_balances AS (
    UPDATE ledger_accounts SET balance = a.balance, pending_debits = a.pending_debits,
        pending_credits = a.pending_credits
    FROM unnest(CAST(:account_id AS bigint[]), CAST(:balance AS bigint[]),
        CAST(:pending_debits AS bigint[]), CAST(:pending_credits AS bigint[]))
        AS a(id, balance, pending_debits, pending_credits)
    WHERE ledger_accounts.id = a.id
)
SELECT external_id, id FROM new_transfers
""")
_TRANSFER_COLUMNS = (
    "external_id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "kind",
    "phase",
    "pending_id",
    "exchange_rate",
    "description",
)


def _write_postgres(
    session: Session,
    planned: list[_Planned],
    rows: list[dict[str, Any]],
    accounts: dict[int, _AccountState],
) -> list[int]:
    params: dict[str, Any] = {c: [row[c] for row in rows] for c in _TRANSFER_COLUMNS}
    params["now"] = rows[0]["created_at"]
    entries = _entry_rows(planned, [row["external_id"] for row in rows])
    entry_columns = ("external_id", "account_id", "leg", "amount", "balance_after")
    for position, name in enumerate(entry_columns):
        params[f"entry_{name}"] = [entry[position] for entry in entries]
    balances = _balance_rows(planned, accounts)
    for position, name in enumerate(("balance", "pending_debits", "pending_credits", "account_id")):
        params[name] = [row[position] for row in balances]
    new_ids = {external_id: id_ for external_id, id_ in session.execute(_WRITE_POSTGRES, params)}
    return [new_ids[row["external_id"]] for row in rows]


def _remember_pending_id(
    request: TransferRequest, new_id: int, pendings: dict[str, _PendingState]
) -> None:
    if request.phase is Phase.PENDING:
        pendings[request.external_id].transfer_id = new_id


def _transfer_row(request: TransferRequest, pendings: dict[str, _PendingState], now) -> dict:
    pending_id = None
    if request.pending_external_id:
        pending_id = pendings[request.pending_external_id].transfer_id
    return {
        "external_id": request.external_id,
        "debit_account_id": request.debit_account_id,
        "credit_account_id": request.credit_account_id,
        "amount": request.amount,
        "currency": request.currency,
        "kind": request.kind,
        "phase": str(request.phase),
        "pending_id": pending_id,
        "exchange_rate": request.exchange_rate,
        "description": request.description,
        "created_at": now,
    }


# --- accounts -------------------------------------------------------------------------------


def open_account(
    session: Session, code: str, kind: AccountKind, currency: str, *, no_overdraft: bool
) -> LedgerAccount:
    """The account named `code`, created on first use."""
    check_currency(currency)

    def find() -> LedgerAccount | None:
        return session.execute(
            select(LedgerAccount).where(LedgerAccount.code == code)
        ).scalar_one_or_none()

    def create() -> LedgerAccount:
        account = LedgerAccount(
            code=code,
            kind=str(kind),
            currency=currency,
            no_overdraft=no_overdraft,
            balance=0,
            pending_debits=0,
            pending_credits=0,
            created_at=clock.now(),
        )
        session.add(account)
        session.flush()
        return account

    return get_or_create(session, find, create)


def system_account(session: Session, kind: AccountKind, currency: str) -> LedgerAccount:
    """The platform's own account of `kind` in `currency` (clearing, fees, disputes...)."""
    return open_account(session, f"system:{kind}:{currency}", kind, currency, no_overdraft=False)


def get_account(session: Session, account_id: int) -> LedgerAccount:
    return session.execute(
        select(LedgerAccount)
        .where(LedgerAccount.id == account_id)
        .execution_options(populate_existing=True)
    ).scalar_one()


def pending_transfers(session: Session, account_id: int) -> list[Transfer]:
    """Pending transfers touching `account_id` that are neither posted nor voided yet."""
    resolution = select(Transfer.pending_id).where(Transfer.pending_id.is_not(None))
    return list(
        session.execute(
            select(Transfer)
            .where(
                Transfer.phase == Phase.PENDING,
                (Transfer.debit_account_id == account_id)
                | (Transfer.credit_account_id == account_id),
                Transfer.id.not_in(resolution),
            )
            .order_by(Transfer.id)
        ).scalars()
    )


# --- checks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discrepancy:
    what: str
    detail: str


def verify(session: Session) -> list[Discrepancy]:
    """Everything that must hold for the books to be right; an empty list means they are."""
    problems: list[Discrepancy] = []
    for currency, total in session.execute(
        select(LedgerAccount.currency, func.sum(LedgerAccount.balance)).group_by(
            LedgerAccount.currency
        )
    ):
        if total != 0:
            problems.append(Discrepancy("currency_not_conserved", f"{currency} sums to {total}"))
    for currency, debits, credits in session.execute(
        select(
            LedgerAccount.currency,
            func.sum(LedgerAccount.pending_debits),
            func.sum(LedgerAccount.pending_credits),
        ).group_by(LedgerAccount.currency)
    ):
        if debits != credits:
            problems.append(
                Discrepancy("pending_not_balanced", f"{currency}: {debits} held vs {credits} due")
            )
    entry_sums = (
        select(Entry.account_id, func.sum(Entry.amount).label("total"))
        .group_by(Entry.account_id)
        .subquery()
    )
    for account_id, balance, total in session.execute(
        select(LedgerAccount.id, LedgerAccount.balance, entry_sums.c.total).outerjoin(
            entry_sums, entry_sums.c.account_id == LedgerAccount.id
        )
    ):
        if balance != (total or 0):
            problems.append(
                Discrepancy(
                    "balance_not_sum_of_entries", f"account {account_id}: {balance} != {total}"
                )
            )
    unbalanced = session.execute(
        select(Entry.transfer_id).group_by(Entry.transfer_id).having(func.sum(Entry.amount) != 0)
    ).scalars()
    problems.extend(Discrepancy("transfer_not_balanced", f"transfer {t}") for t in unbalanced)
    negatives = session.execute(
        select(LedgerAccount.id).where(
            LedgerAccount.no_overdraft, LedgerAccount.balance - LedgerAccount.pending_debits < 0
        )
    ).scalars()
    problems.extend(Discrepancy("overdrawn", f"account {a}") for a in negatives)
    return problems
