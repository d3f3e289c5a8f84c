"""Rate limits: a password guesser is stopped at the limit, told honestly when to come back, and
cannot get around it by landing on another server process. SQLite and PostgreSQL; Redis too when
the `redis` package and a `redis-server` binary are both here.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from walletdesk.app import create_app
from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.kit import ratelimit
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import db_of, settings_of
from walletdesk.kit.ratelimit import RateLimitCounter
from walletdesk.wallet.gateway import SandboxGateway

PHONE = "+8613800138000"


@pytest.fixture
def limits() -> Settings:
    return Settings(rate_limits={"login.account": "10/15m", "otp.verify": "3/1m"})


@pytest.fixture
def login_client(
    db: Database, limits: Settings, tmp_path: Path, frozen_clock: FrozenClock
) -> Iterator[TestClient]:
    """The app with a stand-in login route that counts attempts the way login does."""
    settings = limits.model_copy(update={"database_url": db.url})
    app = create_app(settings, db, SandboxGateway(tmp_path / "gateway.db"))

    @app.post("/v1/test/login")
    def attempt(request: Request, body: dict[str, Any]) -> dict[str, bool]:
        ratelimit.hit(db_of(request), "login.account", body["phone"], settings=settings_of(request))
        return {"ok": True}

    with TestClient(app) as client:
        yield client


def refused_after(db: Database, settings: Settings, name: str, key: str) -> int | None:
    """Retry-After seconds if one more hit is refused, None if it is allowed."""
    try:
        ratelimit.hit(db, name, key, settings=settings)
    except DomainError as error:
        assert error.code == "rate_limited"
        return int(error.params["retry_after"])
    return None


def test_the_eleventh_login_attempt_is_refused_with_retry_after(
    login_client: TestClient, frozen_clock: FrozenClock
) -> None:
    for _ in range(10):
        assert login_client.post("/v1/test/login", json={"phone": PHONE}).status_code == 200
    refused = login_client.post(
        "/v1/test/login", json={"phone": PHONE}, headers={"Accept-Language": "en"}
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    wait = int(refused.headers["retry-after"])
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["retry_after"] == wait
    assert f"{wait} seconds" in refused.json()["title"]
    # Another account from the same client is not affected.
    other = login_client.post("/v1/test/login", json={"phone": "+8613800138001"})
    assert other.status_code == 200


def test_retry_after_is_honest(db: Database, limits: Settings, frozen_clock: FrozenClock) -> None:
    for _ in range(10):
        assert refused_after(db, limits, "login.account", PHONE) is None
    wait = refused_after(db, limits, "login.account", PHONE)
    assert wait is not None and 15 * 60 <= wait <= 30 * 60
    frozen_clock.advance(timedelta(seconds=wait - 1))
    assert refused_after(db, limits, "login.account", PHONE) is not None
    frozen_clock.advance(timedelta(seconds=1))
    assert refused_after(db, limits, "login.account", PHONE) is None


def test_once_the_window_has_passed_attempts_are_allowed_again(
    db: Database, limits: Settings, frozen_clock: FrozenClock
) -> None:
    for _ in range(10):
        ratelimit.hit(db, "login.account", PHONE, settings=limits)
    assert refused_after(db, limits, "login.account", PHONE) is not None
    frozen_clock.advance(timedelta(minutes=30))  # the whole 15-minute window slid past
    for _ in range(10):
        assert refused_after(db, limits, "login.account", PHONE) is None


def test_a_full_last_window_weighs_on_its_own_key_only(
    db: Database, limits: Settings, frozen_clock: FrozenClock
) -> None:
    """At the very start of a window the last one counts whole: the phone that used up its 10
    attempts there is refused at once, another phone has all of its 10."""
    for _ in range(10):
        ratelimit.hit(db, "login.account", PHONE, settings=limits)
    now = ratelimit.epoch_micros(frozen_clock.now())
    next_window = (ratelimit.Window.at(now, 15 * 60).start + 15 * 60) * 10**6
    frozen_clock.advance(timedelta(microseconds=next_window - now))
    assert refused_after(db, limits, "login.account", PHONE) is not None
    for _ in range(10):
        assert refused_after(db, limits, "login.account", "+8613800138001") is None
    assert refused_after(db, limits, "login.account", "+8613800138001") is not None


def test_two_server_processes_share_the_counter(
    database_url: str, limits: Settings, frozen_clock: FrozenClock
) -> None:
    first, second = Database(database_url), Database(database_url)
    try:
        for number in range(10):
            ratelimit.hit(first if number % 2 else second, "login.account", PHONE, settings=limits)
        assert refused_after(second, limits, "login.account", PHONE) is not None
        assert refused_after(first, limits, "login.account", PHONE) is not None
    finally:
        first.dispose()
        second.dispose()


def test_concurrent_attempts_let_exactly_the_limit_through(
    database_url: str, limits: Settings, frozen_clock: FrozenClock
) -> None:
    databases = [Database(database_url), Database(database_url)]
    outcomes: list[int | None] = []
    start = threading.Barrier(20)

    def attempt(number: int) -> None:
        start.wait()
        outcomes.append(refused_after(databases[number % 2], limits, "login.account", PHONE))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in databases:
        database.dispose()
    assert len(outcomes) == 20 and outcomes.count(None) == 10


def test_a_hit_in_a_rolled_back_session_is_not_counted(
    db: Database, limits: Settings, frozen_clock: FrozenClock
) -> None:
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        for _ in range(3):
            ratelimit.hit(session, "otp.verify", PHONE, settings=limits)
        raise RuntimeError("the request failed")
    for _ in range(3):
        assert refused_after(db, limits, "otp.verify", PHONE) is None
    assert refused_after(db, limits, "otp.verify", PHONE) is not None


def test_a_refused_hit_inside_a_session_leaves_the_callers_work_alone(
    db: Database, limits: Settings, frozen_clock: FrozenClock
) -> None:
    with db.unit_of_work() as session:
        for _ in range(3):
            ratelimit.hit(session, "otp.verify", PHONE, settings=limits)
        with pytest.raises(DomainError):
            ratelimit.hit(session, "otp.verify", PHONE, settings=limits)
    with db.unit_of_work() as session:
        assert session.scalar(select(func.sum(RateLimitCounter.hits))) == 3


def test_counters_do_not_store_the_phone_number_and_are_purged(
    db: Database, limits: Settings, frozen_clock: FrozenClock
) -> None:
    ratelimit.hit(db, "login.account", PHONE, settings=limits)
    with db.unit_of_work() as session:
        row = session.scalars(select(RateLimitCounter)).one()
        assert PHONE not in row.key_hash and row.name == "login.account"
    frozen_clock.advance(timedelta(minutes=31))
    with db.unit_of_work() as session:
        assert ratelimit.purge_expired(session) == 1


def test_a_limit_switched_off_never_refuses(db: Database, frozen_clock: FrozenClock) -> None:
    settings = Settings(rate_limits={"register.ip": "off"})
    for _ in range(50):
        ratelimit.hit(db, "register.ip", "203.0.113.9", settings=settings)


def test_an_unknown_limit_name_is_a_programming_error(db: Database) -> None:
    with pytest.raises(ValueError, match="not configured"):
        ratelimit.hit(db, "login.acount", PHONE, settings=Settings())


# --- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("redis", reason="the optional `redis` package is not installed")
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server binary here")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)  # a server starting up, not a clock under test
    raise AssertionError("redis-server did not start")


def test_redis_counters_refuse_over_the_limit_and_recover(
    redis_url: str, frozen_clock: FrozenClock
) -> None:
    settings = Settings(rate_limits={"otp.verify": "3/1m"}, redis_url=redis_url)
    nowhere = Database("sqlite://")  # must not be touched: the counters live in Redis
    for _ in range(3):
        ratelimit.hit(nowhere, "otp.verify", PHONE, settings=settings)
    with pytest.raises(DomainError) as refused:
        ratelimit.hit(nowhere, "otp.verify", PHONE, settings=settings)
    frozen_clock.advance(timedelta(seconds=refused.value.params["retry_after"]))
    ratelimit.hit(nowhere, "otp.verify", PHONE, settings=settings)
    nowhere.dispose()
