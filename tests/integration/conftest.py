"""Shared fixtures for the wallet's integration tests (helpers live in wallet_support.py).

Everything works on the `db` fixture (SQLite, and PostgreSQL when configured) with the real
sandbox card gateway keeping its charges in a file of the test's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.integration.wallet_support import ADMIN_TOKEN, Books, Person, Shop

from walletdesk.app import create_app
from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.service import customers

_phones = itertools.count(1)


@pytest.fixture
def gateway_path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox_gateway.db"


@pytest.fixture
def gateway(gateway_path: Path) -> SandboxGateway:
    return SandboxGateway(gateway_path)


@pytest.fixture
def books(db: Database, gateway: SandboxGateway, gateway_path: Path) -> Books:
    return Books(db, gateway, gateway_path)


@pytest.fixture
def settings(db: Database, gateway_path: Path) -> Settings:
    # The periodic jobs (SLA sweep, call routing, ...) are called by the tests that need them,
    # at the moment they choose, not by the app's background worker at any moment.
    no_jobs = dict.fromkeys(
        (
            "job_sla_sweep_seconds",
            "job_close_resolved_seconds",
            "job_dispute_sweep_seconds",
            "job_hotline_route_seconds",
        ),
        0,
    )
    return Settings(
        database_url=db.url, gateway_sandbox_path=gateway_path, admin_token=ADMIN_TOKEN, **no_jobs
    )


@pytest.fixture
def client(
    settings: Settings, db: Database, gateway: SandboxGateway, frozen_clock: FrozenClock
) -> Iterator[TestClient]:
    app = create_app(settings, db, gateway)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def customer(db: Database) -> Callable[..., Person]:
    """Make a customer: `customer("张伟", phone=..., email=..., currencies=("CNY", "USD"))`.

    Without a phone or email, a fresh Chinese mobile number is made up.
    """

    def make(
        name: str = "顾客",
        *,
        phone: str | None = None,
        email: str | None = None,
        currencies: tuple[str, ...] = ("CNY",),
        language: str = "zh-CN",
    ) -> Person:
        if phone is None and email is None:
            phone = f"+86138{next(_phones):08d}"
        with db.unit_of_work() as session:
            created, token = customers.create_customer(
                session,
                name,
                phone=phone,
                email=email,
                currencies=currencies,
                language=language,
            )
            return Person(created.id, token, created.phone, created.email)

    return make


@pytest.fixture
def merchant(db: Database) -> Callable[..., Shop]:
    """Make a merchant: `merchant("COFFEE", currencies=("CNY",), fee_bps=60)`."""

    def make(
        code: str = "SHOP", *, currencies: tuple[str, ...] = ("CNY",), fee_bps: int = 0
    ) -> Shop:
        with db.unit_of_work() as session:
            created, api_key = customers.create_merchant(
                session, code, f"{code} Ltd", currencies=currencies, fee_bps=fee_bps
            )
            return Shop(created.id, created.code, api_key)

    return make
