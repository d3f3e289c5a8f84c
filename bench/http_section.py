"""The ledger bench's HTTP section: P2P transfers through a real server process vs the same
transfers through the service layer, same database kind, same number of client threads.

The risk engine's rules are switched off for both (a rules file with every rule disabled):
a benchmark sending thousands of transfers a minute would rightly trip its velocity rules.
"""

from __future__ import annotations

import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from benchkit import Section, progress
from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind
from walletdesk.migrate import upgrade
from walletdesk.wallet.service import customers, transfers

CLIENTS = 8
PEOPLE = 40
FUNDS = 10**9


def http_section(seconds: float) -> Section:
    section = Section("HTTP API (real server process) vs service layer, P2P transfers")
    with tempfile.TemporaryDirectory() as folder, quiet_risk_rules(Path(folder)) as rules:
        url = f"sqlite:///{Path(folder) / 'http.db'}"
        upgrade(url)
        db = Database(url)
        people = make_people(db)
        progress.log(f"HTTP: {CLIENTS} client threads against a real server")
        with server(url, Path(folder), rules) as running:
            http_tps = drive(seconds, lambda rng, n: http_send(running.base, people, rng, n))
        progress.log(f"HTTP baseline: {CLIENTS} threads calling transfers.send directly")
        service_tps = drive(seconds, lambda rng, n: service_send(db, people, rng, n))
        right = books_right(db)
        db.dispose()
    ratio = http_tps / service_tps
    section.row("HTTP API", f"{http_tps:,.0f} transfers/s", f"{CLIENTS} clients, keep-alive")
    section.row(
        "service layer", f"{service_tps:,.0f} transfers/s", "transfers.send per unit of work"
    )
    section.row("ratio", f"{ratio:.2f}", "HTTP, auth, guard and idempotency on top")
    section.row("books verified", "yes" if right else "NO", "ledger.verify() after the run")
    section.figures.update(http_tps=http_tps, http_service_tps=service_tps, http_ratio=ratio)
    return section


@contextmanager
def quiet_risk_rules(folder: Path) -> Iterator[Path]:
    from walletdesk.risk import config as risk_config

    shipped = Path(risk_config.__file__).with_name("rules.yaml")
    rules = yaml.safe_load(shipped.read_text())
    for settings in rules["rules"].values():
        settings["enabled"] = False
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    previous = os.environ.get("WALLETDESK_RISK_RULES_PATH")
    os.environ["WALLETDESK_RISK_RULES_PATH"] = str(path)
    get_settings.cache_clear()
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("WALLETDESK_RISK_RULES_PATH", None)
        else:
            os.environ["WALLETDESK_RISK_RULES_PATH"] = previous
        get_settings.cache_clear()


def make_people(db: Database) -> list[tuple[str, str]]:
    """(token, phone) of funded operator-made customers."""
    people = []
    with db.unit_of_work() as session:
        source = ledger.system_account(session, AccountKind.BANK_CLEARING, "CNY").id
        for index in range(PEOPLE):
            phone = f"+86139{index:08d}"
            customer, token = customers.create_customer(session, f"bench {index}", phone=phone)
            wallet = customers.open_wallet(session, customer.id, "CNY")
            request = ledger.TransferRequest(
                f"bench-fund:{index}", source, wallet.ledger_account_id, FUNDS, "CNY", "bench"
            )
            assert ledger.post(session, [request])[0].ok
            people.append((token, phone))
    return people


def http_send(base: str, people: list[tuple[str, str]], rng: random.Random, n: str) -> None:
    client = _client(base)
    (token, _), (_, to) = rng.sample(people, 2)
    answer = client.post(
        "/v1/transfers",
        json={"to": to, "amount": "1.00", "currency": "CNY"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": n},
    )
    assert answer.status_code == 201, answer.text


_local = threading.local()


def _client(base: str) -> httpx.Client:
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(base_url=base, timeout=30)
    return client


def service_send(db: Database, people: list[tuple[str, str]], rng: random.Random, n: str) -> None:
    (_, sender), (_, to) = rng.sample(people, 2)
    with db.unit_of_work() as session:
        found = customers.find_by_contact(session, sender)
        assert found is not None
        txn = transfers.send(session, found.id, to, 100, "CNY", request_key=f"svc:{n}")
        assert txn.status == "succeeded", txn.failure_code


def drive(seconds: float, step: Callable[[random.Random, str], None]) -> float:
    stop, counts = threading.Event(), [0] * CLIENTS
    tag = os.urandom(4).hex()

    def work(index: int) -> None:
        rng = random.Random(index)
        while not stop.is_set():
            step(rng, f"{tag}-{index}-{counts[index]}")
            counts[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def books_right(db: Database) -> bool:
    with db.unit_of_work() as session:
        return ledger.verify(session) == []


@dataclass(frozen=True)
class Running:
    """A server process: its base URL, and the CPU it has used."""

    base: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process and its worker processes so far (Linux's
        /proc; NaN elsewhere)."""
        if not Path(f"/proc/{self.pid}/stat").exists():
            return math.nan
        ticks = sum(used for pid, parent, used in _processes() if self.pid in (pid, parent))
        return ticks / os.sysconf("SC_CLK_TCK")


def _processes() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, CPU ticks used) of every process still there."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):  # a process that ended meanwhile
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command's name
            yield int(stat.parent.name), int(fields[1]), int(fields[11]) + int(fields[12])


@contextmanager
def server(
    url: str,
    folder: Path,
    rules: Path | None = None,
    *,
    settings: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Iterator[Running]:
    """A `walletdesk serve` process on `url`, files in `folder`; `settings` are more
    WALLETDESK_* variables. Yields it running; stopped afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETDESK_")}
    env.update(
        WALLETDESK_DATABASE_URL=url,
        WALLETDESK_GATEWAY_SANDBOX_PATH=str(folder / "gateway.db"),
        WALLETDESK_SMS_OUTBOX_PATH=str(folder / "sms.log"),
    )
    if rules is not None:
        env["WALLETDESK_RISK_RULES_PATH"] = str(rules)
    env.update(settings or {})
    command = [sys.executable, "-m", "walletdesk.cli", "serve", "--port", str(port)]
    if workers != 1:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield Running(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited before answering")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            process_wait(process)
    raise RuntimeError("the server did not answer /health in time")


def process_wait(process: subprocess.Popen[bytes]) -> None:
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=0.2)  # doubles as a short pause that notices an early exit


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
