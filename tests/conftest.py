"""Shared fixtures: a migrated database on SQLite (always) and PostgreSQL (when reachable).

PostgreSQL tests run against WALLETDESK_TEST_POSTGRES_URL; each pytest worker creates its own
database there once, migrates it, and empties it between tests. Without that variable, or with
no server answering, those tests are skipped with the reason shown in the summary.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from walletdesk.audit.models import GENESIS_HASH, HEAD_ID
from walletdesk.db import Base, Database
from walletdesk.kit import clock
from walletdesk.migrate import upgrade
from walletdesk.models import import_all_models

POSTGRES_URL = os.environ.get("WALLETDESK_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgres"]


def _postgres_unavailable_reason() -> str | None:
    if not POSTGRES_URL:
        return "PostgreSQL tests skipped: WALLETDESK_TEST_POSTGRES_URL is not set"
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # any failure to reach the server means: skip, and say why
        return f"PostgreSQL tests skipped: cannot reach {POSTGRES_URL}: {error.__class__.__name__}"
    return None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    reason = _postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    name = f"walletdesk_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """The xdist worker name ("gw0"...), or "main" when tests run in one process."""
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "main"


def _empty_postgres(url: str) -> None:
    import_all_models()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # Put back the audit chain's genesis head, as migration 0004 does on a new database.
        connection.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (:id, 0, :hash)"),
            {"id": HEAD_ID, "hash": GENESIS_HASH},
        )
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "walletdesk.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, pool_size=40)
    yield database
    database.dispose()


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    fixed = clock.FrozenClock()
    previous = clock.use_clock(fixed)
    yield fixed
    clock.use_clock(previous)
