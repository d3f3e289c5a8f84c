"""Engine, declarative Base and the unit of work.

SQLite runs in WAL mode with synchronous=FULL and foreign keys on; every unit of work begins
IMMEDIATE so that two writers never deadlock upgrading a read lock (SQLite's documented
advice for concurrent writers). Within one process, those transactions also take turns on a
lock of their own, taken at the first statement: SQLite makes a waiting writer poll, sleeping
up to 100 ms between tries, so under load a few requests waited seconds while the lock stood
free; a thread lock hands it over at once. PostgreSQL runs at READ COMMITTED; the ledger takes
row locks in account-id order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Engine, MetaData, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError, InvalidatePoolError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (the only type SQLite lets autoincrement).
BigId = (
    BigInteger()
    .with_variant(sqlite.INTEGER(), "sqlite")
    .with_variant(postgresql.BIGINT(), "postgresql")
)


SQLITE_LOCK_WAIT_SECONDS = 60  # a writer waits this long for the lock (ours, then SQLite's)
# A pooled PostgreSQL connection idle this long is pinged before it is used again (below).
PING_AFTER_IDLE_SECONDS = 5.0
_IDLE_SINCE = "walletdesk_idle_since"  # ConnectionRecord.info: when it went back to the pool
_TURNS = "walletdesk_writer_turns"  # Session.info: this process's SQLite writer lock, held


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling is lazy).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_LOCK_WAIT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_LOCK_WAIT_SECONDS},
            hide_parameters=True,  # error messages must not carry values (codes, names)
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True)
    _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before reuse only when it sat idle `idle_seconds` or more.

    SQLAlchemy's pool_pre_ping pings on every checkout: under load one more round trip per
    request, each also a wait for the interpreter lock to come back. A connection is most likely
    to have been closed unseen (an idle timeout, a restart overnight) after it sat idle. One
    found dead empties the whole pool, as pool_pre_ping does, since its siblings went with it;
    a connection used moments before a restart fails its next statement instead."""

    @event.listens_for(engine, "checkin")
    def _went_idle(_dbapi_connection: DBAPIConnection | None, entry: ConnectionPoolEntry) -> None:
        entry.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(
        dbapi_connection: DBAPIConnection, entry: ConnectionPoolEntry, _proxy: object
    ) -> None:
        idle_since = entry.info.get(_IDLE_SINCE)  # none yet: just connected
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise InvalidatePoolError("the pooled connection is gone") from error  # new ones


def is_sqlite(engine_or_session: Engine | Session) -> bool:
    bind = (
        engine_or_session.get_bind()
        if isinstance(engine_or_session, Session)
        else engine_or_session
    )
    return bind.dialect.name == "sqlite"


T = TypeVar("T")


def get_or_create(session: Session, find: Callable[[], T | None], create: Callable[[], T]) -> T:
    """Find a row or create it; if a concurrent transaction creates it first, use theirs."""
    found = find()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            return create()
    except IntegrityError:
        found = find()
        if found is None:
            raise
        return found


class Database:
    """One engine and its session factory; the app, CLI and tests each hold one."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if is_sqlite(self.engine):
            # Re-entrant: a transaction begun inside another on one thread waits on SQLite's
            # own lock, as it always did, rather than on this one.
            self._writer = threading.RLock()
            event.listen(self.sessions, "after_transaction_create", self._take_turn)
            event.listen(self.sessions, "after_transaction_end", self._end_turn)

    def _take_turn(self, session: Session, transaction: SessionTransaction) -> None:
        """SQLite: a transaction waits for this process's writer lock when it begins, that is
        at its first statement, so a unit of work that first calls out (a card gateway) holds
        no one up meanwhile."""
        if transaction.parent is not None:
            return
        if not self._writer.acquire(timeout=SQLITE_LOCK_WAIT_SECONDS):
            raise TimeoutError(f"the database stayed locked for {SQLITE_LOCK_WAIT_SECONDS} s")
        session.info[_TURNS] = session.info.get(_TURNS, 0) + 1

    def _end_turn(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None and session.info.get(_TURNS):
            session.info[_TURNS] -= 1
            self._writer.release()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Commit when the block ends normally, roll back on any exception."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    def dispose(self) -> None:
        self.engine.dispose()
