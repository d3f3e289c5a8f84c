"""Ledger throughput, each figure against a baseline measured in the same run.

1. SQLite (WAL, synchronous=FULL): one transfer per transaction through the service layer vs a
   bare sqlite3 loop doing the same writes with the same durability on the same schema.
2. PostgreSQL: 1, 4 and 16 worker threads submitting single transfers through the group
   committer vs pgbench's built-in TPC-B-like transaction on the same server.
3. HTTP: P2P transfers through a real server process vs the same through the service layer.

    python bench/ledger.py            # a few minutes
    python bench/ledger.py --quick    # under a minute

A new section is a function returning a `benchkit.Section`, added to `sections()`.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from benchkit import Section, progress, run, verdict
from http_section import http_section
from walletdesk.db import Database
from walletdesk.kit import clock
from walletdesk.ledger import service as ledger
from walletdesk.ledger.group_commit import GroupCommitter
from walletdesk.ledger.models import AccountKind
from walletdesk.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "WALLETDESK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SQLITE_TARGET = 0.5
POSTGRES_TARGET = 0.6  # at 16 workers
WORKER_COUNTS = (1, 4, 16)
FUNDS = 10**12  # no transfer in a run can run a wallet dry, so every one is a full write


@dataclass(frozen=True)
class Options:
    seconds: float  # per measurement, per side
    accounts: int


# --- shared -----------------------------------------------------------------------------------


def open_wallets(db: Database, count: int) -> list[int]:
    """`count` funded no-overdraft wallets, set up through the ledger itself."""
    with db.unit_of_work() as session:
        source = ledger.system_account(session, AccountKind.BANK_CLEARING, "CNY").id
        ids = [
            ledger.open_account(
                session, f"bench:{i}", AccountKind.CUSTOMER_WALLET, "CNY", no_overdraft=True
            ).id
            for i in range(count)
        ]
        funding = [transfer(f"fund:{a}", source, a, FUNDS) for a in ids]
        for start in range(0, len(funding), 256):
            assert all(o.ok for o in ledger.post(session, funding[start : start + 256]))
    return ids


def transfer(external_id: str, debit: int, credit: int, amount: int) -> ledger.TransferRequest:
    return ledger.TransferRequest(external_id, debit, credit, amount, "CNY", "bench")


def random_transfer(rng: random.Random, ids: list[int], external_id: str) -> ledger.TransferRequest:
    debit, credit = rng.sample(ids, 2)
    return transfer(external_id, debit, credit, rng.randint(1, 100_00))


def books_right(db: Database) -> bool:
    with db.unit_of_work() as session:
        return ledger.verify(session) == []


def service_post(db: Database, request: ledger.TransferRequest) -> None:
    """One transfer, one transaction: the way a request handler posts without group commit."""
    with db.unit_of_work() as session:
        outcome = ledger.post(session, [request])[0]
    assert outcome.ok, outcome


# --- SQLite -----------------------------------------------------------------------------------


class BareLedger:
    """The same writes as a transfer through the service, by hand: two balance updates (the
    schema's CHECK still refuses an overdraft), the transfer row, its two entries, one commit."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            self.connection.execute(f"PRAGMA {pragma}")

    def post(self, request: ledger.TransferRequest) -> None:
        execute = self.connection.execute
        now = clock.now().strftime("%Y-%m-%d %H:%M:%S.%f")
        execute("BEGIN IMMEDIATE")
        (debit_after,) = execute(
            "UPDATE ledger_accounts SET balance = balance - ? WHERE id = ? RETURNING balance",
            (request.amount, request.debit_account_id),
        ).fetchone()
        (credit_after,) = execute(
            "UPDATE ledger_accounts SET balance = balance + ? WHERE id = ? RETURNING balance",
            (request.amount, request.credit_account_id),
        ).fetchone()
        transfer_id = execute(
            "INSERT INTO ledger_transfers (external_id, debit_account_id, credit_account_id,"
            " amount, currency, kind, phase, created_at) VALUES (?, ?, ?, ?, ?, ?, 'single', ?)",
            (
                request.external_id,
                request.debit_account_id,
                request.credit_account_id,
                request.amount,
                request.currency,
                request.kind,
                now,
            ),
        ).lastrowid
        self.connection.executemany(
            "INSERT INTO ledger_entries (transfer_id, account_id, leg, amount, balance_after)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (transfer_id, request.debit_account_id, 1, -request.amount, debit_after),
                (transfer_id, request.credit_account_id, 2, request.amount, credit_after),
            ],
        )
        execute("COMMIT")

    def close(self) -> None:
        self.connection.close()


def sqlite_ledger(path: Path, accounts: int) -> tuple[Database, list[int]]:
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    return db, open_wallets(db, accounts)


def alternate(
    first: Callable[[int], None], second: Callable[[int], None], seconds: float, chunk: int = 20
) -> tuple[float, float]:
    """Transfers/s of each, run in alternating chunks so both meet the same disk weather."""
    spent, done = [0.0, 0.0], [0, 0]
    while min(spent) < seconds:
        for side, step in enumerate((first, second)):
            started = time.perf_counter()
            for _ in range(chunk):
                step(done[side])
                done[side] += 1
            spent[side] += time.perf_counter() - started
    return done[0] / spent[0], done[1] / spent[1]


def sqlite_section(options: Options) -> Section:
    section = Section("SQLite, WAL, synchronous=FULL, one transfer per transaction")
    with tempfile.TemporaryDirectory() as folder:
        db, ids = sqlite_ledger(Path(folder) / "service.db", options.accounts)
        bare_db, bare_ids = sqlite_ledger(Path(folder) / "bare.db", options.accounts)
        bare_db.dispose()
        assert ids == bare_ids
        bare = BareLedger(Path(folder) / "bare.db")
        service_rng, bare_rng = random.Random(1), random.Random(1)  # the same pairs, in order
        progress.log("SQLite: service layer vs bare sqlite3, alternating")
        service_tps, bare_tps = alternate(
            lambda n: service_post(db, random_transfer(service_rng, ids, f"s{n}")),
            lambda n: bare.post(random_transfer(bare_rng, ids, f"b{n}")),
            options.seconds,
        )
        bare.close()
        right = books_right(db)
        db.dispose()
    ratio = service_tps / bare_tps
    section.row("service layer", f"{service_tps:,.0f} transfers/s", "unit_of_work + post([one])")
    section.row("bare sqlite3 loop", f"{bare_tps:,.0f} transfers/s", "same writes, same schema")
    section.row("ratio", f"{ratio:.2f}", verdict(ratio, SQLITE_TARGET))
    section.row("books verified", "yes" if right else "NO", "ledger.verify() after the run")
    section.figures.update(
        sqlite_service_tps=service_tps, sqlite_bare_tps=bare_tps, sqlite_ratio=ratio
    )
    section.targets["sqlite_ratio"] = SQLITE_TARGET
    return section


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_unavailable() -> str | None:
    if shutil.which("pgbench") is None:
        return "pgbench is not installed"
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # any failure to reach the server means: skip, and say why
        return f"cannot reach {make_url(POSTGRES_URL).host}: {error.__class__.__name__}"
    return None


@contextmanager
def scratch_database(suffix: str) -> Iterator[URL]:
    """A new, empty database on the bench server, dropped afterwards whatever happens."""
    name = f"walletdesk_bench_{uuid.uuid4().hex[:8]}_{suffix}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def checkpoint() -> None:
    """Start both sides from a clean state: the setup's writes flushed, not a pending spike."""
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("CHECKPOINT"))
    except Exception as error:  # needs a superuser or pg_checkpoint; the bench runs without
        progress.log(f"PostgreSQL: no CHECKPOINT before measuring ({error.__class__.__name__})")
    finally:
        engine.dispose()


def pgbench(url: URL, *args: str) -> str:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    where = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    if url.username:
        where += ["-U", url.username]
    command = ["pgbench", *where, *args, str(url.database)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def pgbench_tps(url: URL, clients: int, seconds: float) -> float:
    threads = str(min(2, clients))
    output = pgbench(url, "-c", str(clients), "-j", threads, "-T", str(round(seconds)), "-n")
    found = re.search(r"^tps = ([0-9.]+)", output, re.MULTILINE)
    assert found, output
    return float(found.group(1))


def abba(
    first: Callable[[float], float], second: Callable[[float], float], seconds: float
) -> tuple[float, float]:
    """Each side's rate from two runs of half the time in the order A B B A, so that drift in
    the server (a checkpoint, autovacuum) weighs on both sides alike."""
    half = max(1, round(seconds / 2))
    a1, b1, b2, a2 = first(half), second(half), second(half), first(half)
    return (a1 + a2) / 2, (b1 + b2) / 2


def drive(workers: int, seconds: float, step: Callable[[random.Random, str], None]) -> float:
    """Transfers/s of `workers` threads each calling `step` in a loop for `seconds`."""
    stop = threading.Event()
    counts = [0] * workers
    start = threading.Barrier(workers + 1)
    tag = uuid.uuid4().hex[:6]

    def work(index: int) -> None:
        rng = random.Random(index)
        start.wait()
        while not stop.is_set():
            step(rng, f"{tag}-{index}-{counts[index]}")
            counts[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def postgres_section(options: Options) -> Section:
    section = Section("PostgreSQL, worker threads submitting single transfers")
    reason = postgres_unavailable()
    if reason:
        section.skipped = reason
        progress.log(f"PostgreSQL part skipped: {reason}")
        return section
    with scratch_database("ledger") as ledger_url, scratch_database("pgbench") as bench_url:
        progress.log("PostgreSQL: pgbench -i -s 16, migrating the ledger")
        pgbench(bench_url, "-i", "-s", "16", "-q")
        db = Database(ledger_url.render_as_string(hide_password=False), pool_size=20)
        try:
            upgrade(db.url)
            ids = open_wallets(db, options.accounts)
            checkpoint()
            measure_postgres(section, db, ids, bench_url, options.seconds)
            section.row("books verified", "yes" if books_right(db) else "NO", "ledger.verify()")
        finally:
            db.dispose()
    section.targets["pg_ratio_16"] = POSTGRES_TARGET
    return section


def measure_postgres(
    section: Section, db: Database, ids: list[int], bench_url: URL, seconds: float
) -> None:
    committer = GroupCommitter(db)

    def grouped(rng: random.Random, external_id: str) -> None:
        outcome = committer.submit(random_transfer(rng, ids, external_id))[0]
        assert outcome.ok, outcome

    for workers in WORKER_COUNTS:
        progress.log(f"PostgreSQL: {workers} workers, pgbench and group commit (A B B A)")
        groups, requests = committer.groups, committer.requests
        theirs, ours = abba(
            lambda secs, n=workers: pgbench_tps(bench_url, n, secs),
            lambda secs, n=workers: drive(n, secs, grouped),
            seconds,
        )
        per_group = (committer.requests - requests) / max(1, committer.groups - groups)
        ratio = ours / theirs
        target = verdict(ratio, POSTGRES_TARGET) if workers == 16 else ""
        section.row(
            f"{workers} workers, group commit",
            f"{ours:,.0f} transfers/s",
            f"{per_group:.1f} transfers per transaction",
        )
        section.row(f"{workers} clients, pgbench TPC-B-like", f"{theirs:,.0f} tps")
        section.row(f"{workers} workers, ratio", f"{ratio:.2f}", target)
        section.figures.update(
            {
                f"pg_tps_{workers}": ours,
                f"pgbench_tps_{workers}": theirs,
                f"pg_ratio_{workers}": ratio,
            }
        )
    progress.log("PostgreSQL: 16 workers, one transaction per transfer")
    plain = drive(16, seconds, lambda rng, x: service_post(db, random_transfer(rng, ids, x)))
    section.row("16 workers, no group commit", f"{plain:,.0f} transfers/s", "for context")
    section.figures["pg_plain_tps_16"] = plain


# --- main -------------------------------------------------------------------------------------


def sections(options: Options) -> list[Callable[[], Section]]:
    return [
        lambda: sqlite_section(options),
        lambda: postgres_section(options),
        lambda: http_section(options.seconds),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (under a minute)")
    args = parser.parse_args()
    options = Options(seconds=2 if args.quick else 15, accounts=1000 if args.quick else 10_000)
    run("ledger", sections(options))  # whether targets were met is in the JSON line, for scripts
    return 0


if __name__ == "__main__":
    sys.exit(main())
