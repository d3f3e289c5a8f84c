"""Hotline webhooks under load: 1,000 calls at once through the IVR and the queue.

Each simulated call is what a carrier sends for a caller who checks their balance and then asks
for a person: signed webhooks (X-Twilio-Signature, computed as the softphone does) over HTTP to a
real `walletdesk serve` process on a migrated database of customers with phones and a PIN:

  incoming   caller ID identifies the customer; the main menu
  menu       "1" for the balance: the PIN is asked for
  pin        the PIN (its keyed check, a rate-limit counter); the balance is read out
  to queue   "0" for a person: the general queue (the phone line is set to always open)
  wait       the queue's wait URL, polled three times: position and estimate, the hold menu
  hang-up    the status callback: the call is abandoned, its contact ends on a case

1,000 calls are in progress all the time (a line whose call ends dials the next), each pausing
before every webhook for THINK × U(0.5, 1.5) seconds, THINK = 15 s: about what a real call
takes between webhooks (a main menu heard before a key is pressed, a PIN keyed, a hold
announcement with its 30-second menu), so 1,000 calls send about 67 webhooks/s. `--think`
compresses time (4 sends 250/s). The lines start spread over one call's length, so when the
measurement begins the calls are at every step and the queue at its steady length (about 400
callers: no agent is signed in). Every answer is checked (the balance read out, the queue
entered), so a fast wrong answer cannot pass. As Twilio does, each webhook carries an
I-Twilio-Idempotency-Token, and one whose connection drops before any answer is sent once more
with the same token (the server answers a repeat without acting twice: hotline.replay); the
table counts those resends, and its latency runs from the first attempt.

The baseline is the trivial endpoint of the same server, GET /health (one `SELECT 1`), driven in
the same run by as many clients pausing the same way, before and after the calls so that both
see the same machine. Two comparisons per database:

- paced: each webhook's latency (p50, p95, p99) next to /health's; the target is a webhook p99
  of at most 50 ms, in every configuration measured. The server's CPU per request (webhooks
  vs /health, from /proc) is shown too: latency on a shared machine swings between runs, the
  work a webhook costs much less;
- flat out: every line makes one call with no pauses (all 1,000 at once), and the /health
  lines as many requests: requests/s of each and their ratio, the server's capacity.

The client runs on the same machine as the server; its CPU share is shown, since on a small
machine it takes cores from the server. It uses aiohttp (installed with twilio): httpx's
AsyncClient costs about four times the CPU per request, and in one pool of 1,000 connections
it, not the server, was the bottleneck.

SQLite always, one server process (its single writer gains nothing from a second); PostgreSQL
with one server process and with two (`walletdesk serve --workers 2`, one per core, as it is
deployed) when a server answers at WALLETDESK_BENCH_POSTGRES_URL (as for bench/ledger.py: a
scratch database is created there and dropped), else skipped, saying why.

    python bench/hotline.py            # about 17 minutes (2 minutes of ramp per section)
    python bench/hotline.py --quick    # about a minute: SQLite, 150 calls pausing 2.25 s
                                       # (the same webhooks/s, a shorter queue)

Ends with one JSON line: {"bench": "hotline", "figures": {...}, "targets": {...}, "met": ...};
a target named NAME_max is a ceiling for the figure NAME.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
from twilio.request_validator import RequestValidator

from benchkit import Section, ceiling_verdict, progress, run
from http_section import Running, server
from ledger import scratch_database
from risk import percentile
from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.hotline.replay import TOKEN_HEADER
from walletdesk.hotline.voice_paths import INCOMING, STATUS
from walletdesk.identity.service import set_pin
from walletdesk.migrate import upgrade
from walletdesk.support import service as hours
from walletdesk.wallet.service import customers

POLLS = 3  # wait-URL polls before the caller hangs up
STEPS = ("incoming", "menu", "pin", "to queue", "wait", "hang-up")
WEBHOOKS_PER_CALL = len(STEPS) - 1 + POLLS
PIN = "258036"
TOKEN = "bench-hotline-auth-token"
TARGET_P99_MS = 50.0
THINK = 15.0
WARM_UP = 1.0  # seconds before /health is measured: the lines open their connections
SERVER_SETTINGS = {
    "WALLETDESK_TWILIO_AUTH_TOKEN": TOKEN,
    # Each line calls from one customer many times a run: far over the real 3 PINs per 30
    # minutes. The limit stays on (its counter is written on every PIN), only higher.
    "WALLETDESK_RATE_LIMITS": '{"hotline.pin": "1000000/30m"}',
    # The key the PINs were kept under here (`prepare`), whatever this shell sets.
    "WALLETDESK_DATA_KEYS": get_settings().data_keys,
}


@dataclass(frozen=True)
class Options:
    lines: int  # calls in progress at once
    think: float  # mean pause before each webhook, seconds
    seconds: float  # calls measured, after the ramp
    health_seconds: float  # /health measured before the calls, and again after them
    postgres: bool

    @property
    def call_length(self) -> float:
        return self.think * WEBHOOKS_PER_CALL


def phone_of(line: int) -> str:
    return f"+86136{line:08d}"


# --- the database ----------------------------------------------------------------------------


def prepare(url: str, lines: int) -> None:
    """Migrate; one customer per line, each with a phone and the PIN; the phone line open."""
    upgrade(url)
    db = Database(url)
    try:
        with db.unit_of_work() as session:
            hours.set_schedule(
                session,
                "phone",
                time_zone=hours.DEFAULT_ZONE,
                weekly=hours.DEFAULT_WEEKLY,
                always_open=True,
                actor="bench",
            )
            for line in range(lines):
                language = "zh-CN" if line % 2 == 0 else "en"
                customer, _ = customers.create_customer(
                    session, f"caller {line}", phone=phone_of(line), language=language
                )
                set_pin(session, customer.id, PIN)
    finally:
        db.dispose()


# --- the carrier -------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw; requests count when they started inside the measured window."""

    window: tuple[float, float]  # perf_counter seconds
    latencies: dict[str, list[int]] = field(default_factory=dict)  # kind -> nanoseconds
    calls: int = 0  # calls that went the whole way and ended in the window
    off_path: int = 0  # answers that were not what the flow should say
    errors: int = 0  # refused requests, server errors, timeouts
    resent: int = 0  # webhooks sent again after their connection dropped
    problem: str = ""  # the first one, for the table
    cpu: float = 0.0  # the client's own CPU seconds in the phase
    wall: float = 0.0  # the phase's seconds, ramp included
    sent: int = 0  # requests answered in the whole phase, ramp included
    server_cpu: float = 0.0  # the server's CPU seconds in the whole phase

    def counted(self, began: float) -> bool:
        return self.window[0] <= began < self.window[1]

    def note(self, kind: str, began: float, elapsed_ns: int) -> None:
        if self.counted(began):
            self.latencies.setdefault(kind, []).append(elapsed_ns)

    def wrong(self, what: str, *, error: bool = False) -> None:
        if error:
            self.errors += 1
        else:
            self.off_path += 1
        self.problem = self.problem or what[:160]

    def all_of(self, kinds: tuple[str, ...]) -> list[int]:
        return [ns for kind in kinds for ns in self.latencies.get(kind, [])]


class OffPath(Exception):
    """The call cannot go on: a wrong answer, no answer, or the end of the phase."""


class Carrier:
    """Posts signed webhooks (and GETs /health) and times each one."""

    def __init__(self, client: aiohttp.ClientSession, base: str, tally: Tally) -> None:
        self.client, self.base, self.tally = client, base, tally
        self.validator = RequestValidator(TOKEN)

    def over(self) -> bool:
        return time.perf_counter() >= self.tally.window[1]

    async def post(self, kind: str, url: str, form: dict[str, str]) -> bytes:
        """The answer's body, once it is a success; OffPath otherwise."""
        full = urljoin(self.base + "/", url)
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(full, form),
            TOKEN_HEADER: uuid.uuid4().hex,  # the same on a resend
        }
        return await self._timed(
            kind, lambda: self.client.post(full, data=form, headers=headers), resends=1
        )

    async def health(self) -> None:
        await self._timed("health", lambda: self.client.get(self.base + "/health"))

    async def _timed(self, kind: str, send: Callable[[], Any], *, resends: int = 0) -> bytes:
        began, began_ns = time.perf_counter(), time.perf_counter_ns()
        for attempt in range(resends + 1):
            try:
                async with send() as answer:
                    body = await answer.read()
                break
            except aiohttp.ClientConnectionError as error:  # dropped before any answer
                if attempt < resends:
                    self.tally.resent += 1
                    continue
                self.tally.wrong(f"{kind}: {error!r}", error=True)
                raise OffPath from error
            except (aiohttp.ClientError, TimeoutError) as error:
                self.tally.wrong(f"{kind}: {error!r}", error=True)
                raise OffPath from error
        self.tally.note(kind, began, time.perf_counter_ns() - began_ns)
        self.tally.sent += 1
        if answer.status >= 300:
            self.tally.wrong(f"{kind}: HTTP {answer.status} {body[:200]!r}", error=True)
            raise OffPath
        return body


class Line:
    """One of the clients: a request, a pause, again, until the phase ends (or `rounds` are
    done). It starts after a pause spread over one whole round, so that the lines are at every
    point of their rounds from then on."""

    requests_per_round = 1

    def __init__(self, carrier: Carrier, line: int, think: float) -> None:
        self.carrier, self.think = carrier, think
        self.rng = random.Random(line)
        self.phone = phone_of(line)

    async def pause(self, share: float | None = None) -> None:
        """THINK × U(0.5, 1.5) (or `share` of THINK), cut short when the phase ends."""
        share = self.rng.uniform(0.5, 1.5) if share is None else share
        left = self.carrier.tally.window[1] - time.perf_counter()
        if self.think and left > 0:
            await asyncio.sleep(min(self.think * share, left))

    async def run(self, rounds: int | None) -> None:
        await self.pause(self.requests_per_round * self.rng.random())
        done = 0
        while not self.carrier.over() and (rounds is None or done < rounds):
            await self.once()
            await self.pause()
            done += 1

    async def once(self) -> None:
        raise NotImplementedError


class Prober(Line):
    """The baseline: GET /health."""

    async def once(self) -> None:
        with suppress(OffPath):
            await self.carrier.health()


class Caller(Line):
    """A call through the flow and the queue, a pause before each of its webhooks."""

    requests_per_round = WEBHOOKS_PER_CALL

    async def once(self) -> None:
        form = {
            "CallSid": f"CA{uuid.uuid4().hex}",
            "From": self.phone,
            "To": "+864000000000",
            "Direction": "inbound",
            "CallStatus": "in-progress",
        }
        try:
            await self.through_the_flow(form)
            went = True
            await self.pause()  # the hold announcement; then the caller hangs up
        except OffPath:  # counted where it happened (or the phase ended)
            went = False
        with suppress(OffPath):
            await self.carrier.post("hang-up", STATUS, {**form, "CallStatus": "completed"})
            if went and self.carrier.tally.counted(time.perf_counter()):
                self.carrier.tally.calls += 1

    async def through_the_flow(self, form: dict[str, str]) -> None:
        url = await self.gather("incoming", INCOMING, form)
        await self.pause()
        url = await self.gather("menu", url, {**form, "Digits": "1"})
        await self.pause()
        url = await self.gather("pin", url, {**form, "Digits": PIN}, must_say="CNY")
        await self.pause()
        document = await self.twiml("to queue", url, {**form, "Digits": "0"})
        wait_url = self.named(document, "Enqueue", "waitUrl", "to queue")
        for _ in range(POLLS):
            await self.pause()
            await self.gather("wait", wait_url, form)

    async def gather(self, kind: str, url: str, form: dict[str, str], must_say: str = "") -> str:
        """Post; the answer must offer keys (and say `must_say`): the URL they go to."""
        document = await self.twiml(kind, url, form)
        said = "".join(document.itertext())
        if must_say not in said:
            self.carrier.tally.wrong(f"{kind}: {must_say!r} not said: {said}")
            raise OffPath
        return self.named(document, "Gather", "action", kind)

    async def twiml(self, kind: str, url: str, form: dict[str, str]) -> ET.Element:
        if self.carrier.over():
            raise OffPath
        body = await self.carrier.post(kind, url, form)
        try:
            return ET.fromstring(body)
        except ET.ParseError:
            self.carrier.tally.wrong(f"{kind}: not TwiML: {body[:200]!r}")
            raise OffPath from None

    def named(self, document: ET.Element, verb: str, attribute: str, kind: str) -> str:
        """The URL a verb of the answer names (Gather's action, Enqueue's waitUrl)."""
        found = document.find(verb)
        if found is None or not found.get(attribute):
            self.carrier.tally.wrong(f"{kind}: no {verb}: {ET.tostring(document, 'unicode')}")
            raise OffPath
        return found.get(attribute, "")


# --- phases ------------------------------------------------------------------------------------


def drive(
    running: Running,
    line: type[Line],
    options: Options,
    *,
    think: float,
    warm_up: float,
    seconds: float = math.inf,
    rounds: int | None = None,
) -> Tally:
    """`options.lines` lines against the server; what they saw in `seconds` after `warm_up`,
    and the CPU the server spent meanwhile."""
    cpu = running.cpu_seconds()
    tally = asyncio.run(_drive(running.base, line, options.lines, think, warm_up, seconds, rounds))
    tally.server_cpu = running.cpu_seconds() - cpu
    return tally


async def _drive(
    base: str,
    line: type[Line],
    lines: int,
    think: float,
    warm_up: float,
    seconds: float,
    rounds: int | None,
) -> Tally:
    began, cpu = time.perf_counter(), time.process_time()
    tally = Tally(window=(began + warm_up, began + warm_up + seconds))
    connections = aiohttp.TCPConnector(limit=lines)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connections, timeout=timeout) as client:
        carrier = Carrier(client, base, tally)
        await asyncio.gather(*(line(carrier, n, think).run(rounds) for n in range(lines)))
    tally.cpu, tally.wall = time.process_time() - cpu, time.perf_counter() - began
    return tally


@dataclass
class Measured:
    """Latencies of one side of a comparison, and the seconds they were taken in."""

    samples: list[int]
    seconds: float
    cpu: float  # the client's CPU seconds per second

    @classmethod
    def of(cls, tally: Tally, kinds: tuple[str, ...], seconds: float | None = None) -> Measured:
        return cls(tally.all_of(kinds), seconds or tally.wall, tally.cpu / tally.wall)

    def __add__(self, other: Measured) -> Measured:
        seconds = self.seconds + other.seconds
        cpu = (self.cpu * self.seconds + other.cpu * other.seconds) / seconds
        return Measured(self.samples + other.samples, seconds, cpu)

    @property
    def rate(self) -> float:
        return len(self.samples) / self.seconds

    def ms(self, fraction: float) -> float:
        return percentile(self.samples, fraction) if self.samples else math.nan

    def spread(self) -> str:
        return f"p50 {self.ms(0.5):.1f} · p95 {self.ms(0.95):.1f} · p99 {self.ms(0.99):.1f} ms"


# --- a section per database ------------------------------------------------------------------


def measure(section: Section, name: str, prefix: str, running: Running, options: Options) -> None:
    lines, think, health_seconds = options.lines, options.think, options.health_seconds
    paced = {"think": think, "warm_up": WARM_UP, "seconds": health_seconds}
    progress.log(f"{name}: /health, {lines} lines pausing ~{think:g} s")
    before = drive(running, Prober, options, **paced)
    ramp = options.call_length
    progress.log(f"{name}: {lines} calls at once, {ramp:.0f} s ramp + {options.seconds:g} s")
    tally = drive(running, Caller, options, think=think, warm_up=ramp, seconds=options.seconds)
    progress.log(f"{name}: /health again")
    after = drive(running, Prober, options, **paced)
    health = Measured.of(before, ("health",), health_seconds)
    health += Measured.of(after, ("health",), health_seconds)
    report_paced(section, prefix, options, tally, health)
    report_cpu(section, prefix, tally, [before, after])

    progress.log(f"{name}: flat out, a call on each of {lines} lines at once")
    flat_calls = drive(running, Caller, options, think=0, warm_up=0, rounds=1)
    progress.log(f"{name}: flat out, as many /health requests")
    flat_health = drive(running, Prober, options, think=0, warm_up=0, rounds=WEBHOOKS_PER_CALL)
    report_flat(section, prefix, flat_calls, Measured.of(flat_health, ("health",)))
    for problem in dict.fromkeys([tally.problem, flat_calls.problem]):
        if problem:
            section.row("first problem", "", problem)


def report_paced(
    section: Section, prefix: str, options: Options, tally: Tally, health: Measured
) -> None:
    webhooks = Measured.of(tally, STEPS, options.seconds)
    p99, ratio = webhooks.ms(0.99), webhooks.ms(0.99) / health.ms(0.99)
    lines = f"{options.lines:,}"
    section.row(f"paced: webhooks, {lines} calls", f"{webhooks.rate:,.0f} req/s", webhooks.spread())
    section.row(f"paced: GET /health, {lines} lines", f"{health.rate:,.0f} req/s", health.spread())
    section.row("webhook p99", f"{p99:.1f} ms", ceiling_verdict(p99, TARGET_P99_MS))
    section.row("p99 ratio, webhooks / health", f"{ratio:.1f}", "same pauses, same server")
    for kind in STEPS:
        taken = tally.latencies.get(kind, [])
        if taken:
            note = f"p50 {percentile(taken, 0.5):.1f} ms, {len(taken):,} requests"
            section.row(f"  {kind}", f"{percentile(taken, 0.99):.1f} ms p99", note)
            section.figures[f"{prefix}_{figure_name(kind)}_p99_ms"] = percentile(taken, 0.99)
    section.row(
        "calls through the whole flow",
        f"{tally.calls:,}",
        f"in {options.seconds:g} s; off the path: {tally.off_path}, errors: {tally.errors}, "
        f"resent: {tally.resent}",
    )
    section.row(
        "client CPU (same machine)",
        f"{webhooks.cpu:.0%} / {health.cpu:.0%}",
        "of one core, calls / health",
    )
    section.figures.update(
        {
            f"{prefix}_webhook_rps": webhooks.rate,
            f"{prefix}_webhook_p50_ms": webhooks.ms(0.5),
            f"{prefix}_webhook_p95_ms": webhooks.ms(0.95),
            f"{prefix}_webhook_p99_ms": p99,
            f"{prefix}_health_rps": health.rate,
            f"{prefix}_health_p50_ms": health.ms(0.5),
            f"{prefix}_health_p95_ms": health.ms(0.95),
            f"{prefix}_health_p99_ms": health.ms(0.99),
            f"{prefix}_p99_ratio": ratio,
            f"{prefix}_calls": tally.calls,
            f"{prefix}_off_path": tally.off_path,
            f"{prefix}_errors": tally.errors,
            f"{prefix}_resent": tally.resent,
        }
    )
    section.targets[f"{prefix}_webhook_p99_ms_max"] = TARGET_P99_MS
    # A wrong answer fails the run whatever the latency.
    section.targets[f"{prefix}_off_path_max"] = 0
    section.targets[f"{prefix}_errors_max"] = 0


def report_cpu(section: Section, prefix: str, calls: Tally, probes: list[Tally]) -> None:
    """The server's CPU per request over the paced phases, ramps included: a steadier measure
    of the work a webhook costs than latency on a shared machine."""
    webhook_ms = 1000 * calls.server_cpu / calls.sent
    health_ms = 1000 * sum(t.server_cpu for t in probes) / sum(t.sent for t in probes)
    section.row(
        "server CPU per request",
        f"{webhook_ms:.1f} ms",
        f"GET /health {health_ms:.2f} ms: {webhook_ms / health_ms:.1f}×, PIN checks included",
    )
    section.figures.update(
        {
            f"{prefix}_webhook_cpu_ms": webhook_ms,
            f"{prefix}_health_cpu_ms": health_ms,
            f"{prefix}_cpu_ratio": webhook_ms / health_ms,
        }
    )


def figure_name(kind: str) -> str:
    return kind.replace(" ", "_").replace("-", "_")


def report_flat(section: Section, prefix: str, tally: Tally, health: Measured) -> None:
    webhooks = Measured.of(tally, STEPS)
    ratio = webhooks.rate / health.rate
    queued = "p50 {:,.0f} ms, waiting in the server"
    section.row(
        "flat out: webhooks", f"{webhooks.rate:,.0f} req/s", queued.format(webhooks.ms(0.5))
    )
    section.row("flat out: GET /health", f"{health.rate:,.0f} req/s", queued.format(health.ms(0.5)))
    section.row("requests/s ratio, webhooks / health", f"{ratio:.2f}", "capacity")
    section.row(
        "flat out: calls through the whole flow",
        f"{tally.calls:,}",
        f"off the path: {tally.off_path}, errors: {tally.errors}, resent: {tally.resent}",
    )
    section.figures.update(
        {
            f"{prefix}_flat_webhook_rps": webhooks.rate,
            f"{prefix}_flat_health_rps": health.rate,
            f"{prefix}_flat_rps_ratio": ratio,
            f"{prefix}_flat_off_path": tally.off_path,
            f"{prefix}_flat_errors": tally.errors,
            f"{prefix}_flat_resent": tally.resent,
        }
    )
    section.targets[f"{prefix}_flat_off_path_max"] = 0
    section.targets[f"{prefix}_flat_errors_max"] = 0


def sqlite_section(options: Options) -> Section:
    section = Section("SQLite (WAL, synchronous=FULL), one server process")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'hotline.db'}"
        progress.log(f"SQLite: migrating, {options.lines} customers")
        prepare(url, options.lines)
        with server(url, Path(folder), settings=SERVER_SETTINGS) as running:
            measure(section, "SQLite", "sqlite", running, options)
    return section


def postgres_section(options: Options, workers: int) -> Section:
    """`workers` server processes (`walletdesk serve --workers`), as a deployment on
    PostgreSQL runs one per core; SQLite's single writer gains nothing from a second."""
    name = "PostgreSQL" + (f", {workers} server processes" if workers > 1 else "")
    section = Section(name if workers > 1 else f"{name}, one server process")
    if not options.postgres:
        section.skipped = "--quick: SQLite only"
        return section
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database("hotline"))
        except Exception as error:  # any failure to reach the server means: skip, and say why
            section.skipped = f"no PostgreSQL at WALLETDESK_BENCH_POSTGRES_URL: {error!r:.80}"
            progress.log(f"PostgreSQL part skipped: {section.skipped}")
            return section
        plain = url.render_as_string(hide_password=False)
        progress.log(f"{name}: migrating, {options.lines} customers")
        prepare(plain, options.lines)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        running = stack.enter_context(
            server(plain, folder, settings=SERVER_SETTINGS, workers=workers)
        )
        measure(section, name, "pg" if workers == 1 else f"pg{workers}", running, options)
    return section


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute, SQLite only")
    parser.add_argument(
        "--think", type=float, default=THINK, help=f"mean pause before a webhook (s, {THINK:g})"
    )
    args = parser.parse_args()
    if args.quick:  # the full run's webhooks/s from fewer lines, so the ramp is short
        options = Options(150, args.think * 0.15, 10, health_seconds=3, postgres=False)
    else:
        options = Options(1000, args.think, 45, health_seconds=10, postgres=True)
    sections = [
        lambda: sqlite_section(options),
        lambda: postgres_section(options, workers=1),
        lambda: postgres_section(options, workers=2),
    ]
    run("hotline", sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
