"""Named rate limits ("login.account", "login.ip", "otp.verify"...) shared by every server process.

Each name has a limit like "10/15m" (`Settings.rate_limits`; "off" turns one off). Counting is
a sliding-window counter: hits in the current fixed window plus the previous window's hits
weighted by how much of it still overlaps the last `window` seconds. That smooths the burst a
plain fixed window allows at its edge (10 at 14:59 and 10 more at 15:00) while needing only two
counters per key.

Counters live in the database (table `rate_limit_counters`, so every process sees them) or in
Redis when `WALLETDESK_REDIS_URL` is set. Keys are stored as an HMAC, never as the phone number,
email or IP itself. A refused hit is not counted, so Retry-After tells the truth: retry after
that many seconds and the attempt is allowed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Executable,
    Index,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from walletdesk.config import Settings, get_settings
from walletdesk.db import Base, Database, is_sqlite
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError, define

define(
    "rate_limited",
    429,
    en="Too many attempts. Try again in {retry_after} seconds.",
    zh="尝试次数过多，请在 {retry_after} 秒后重试。",
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LIMIT_TEXT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS = 1_000_000


class RateLimitCounter(Base):
    """Hits of one key in one fixed window; a row is useless two windows after it starts."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (Index("ix_rate_limit_counters_expires_at", "expires_at"),)

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC of name + key
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds
    name: Mapped[str] = mapped_column(String(40))  # which limit, for operators looking in
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger)  # epoch seconds; purge after this


@dataclass(frozen=True, slots=True)
class Limit:
    count: int  # hits allowed per window
    window: int  # seconds


@dataclass(frozen=True, slots=True)
class Window:
    """Where a moment falls: the current fixed window's start and how far into it we are.

    Exact (integer microseconds, fractions): float rounding must not refuse a hit at the very
    second that Retry-After named.
    """

    start: int  # epoch seconds
    elapsed: Fraction  # seconds

    @classmethod
    def at(cls, micros: int, length: int) -> Window:
        start = micros // (length * _MICROS) * length
        return cls(start, Fraction(micros - start * _MICROS, _MICROS))


def epoch_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def parse_limit(text: str) -> Limit | None:
    """Read a limit: "10/15m" is 10 per 900 s, "5/h" 5 per hour, "off" None (no limit)."""
    if text.strip().lower() == "off":
        return None
    match = _LIMIT_TEXT.match(text)
    if not match or int(match[1]) < 1 or match[2] == "0":
        raise ValueError(f"rate limit {text!r} is not like '10/15m' (or 'off')")
    return Limit(int(match[1]), int(match[2] or 1) * _UNITS[match[3]])


def limit_for(settings: Settings, name: str) -> Limit | None:
    # Names an operator's WALLETDESK_RATE_LIMITS leaves out keep their defaults.
    defaults: dict[str, str] = Settings.model_fields["rate_limits"].default
    configured = defaults | settings.rate_limits
    if name not in configured:
        raise ValueError(f"rate limit {name!r} is not configured in Settings.rate_limits")
    return parse_limit(configured[name])


def retry_after(limit: Limit, window: Window, previous: int, current: int) -> int | None:
    """Seconds to wait, or None when a hit that made the counts (previous, current) is allowed.

    `current` includes this hit. A refused hit is taken back, so the next one is allowed once
    previous * weight + current <= count again, weight falling as the previous window slides away.
    """
    weight = 1 - window.elapsed / limit.window
    if previous * weight + current <= limit.count:
        return None
    kept = current - 1  # the counts once this hit is taken back
    if kept < limit.count:
        # Room in this window: wait until enough of the previous one has slid out of view.
        weight_needed = Fraction(limit.count - kept - 1, previous)
        wait = limit.window * (1 - weight_needed) - window.elapsed
    else:
        # This window is full: wait for the next, then until enough of this one slides out.
        weight_needed = Fraction(limit.count - 1, kept)
        wait = limit.window - window.elapsed + limit.window * (1 - weight_needed)
    return max(1, math.ceil(wait))


def hit(
    db_or_session: Database | Session, name: str, key: str, *, settings: Settings | None = None
) -> None:
    """Count one attempt of `name` by `key` (an account, phone, email or IP); 429 when over.

    Raises DomainError("rate_limited", retry_after=seconds). Pass the Database when the request
    may fail afterwards (a wrong password): the count is committed at once and survives the
    request's rollback. A Session joins the caller's transaction instead. With Redis configured
    the counters live there and `db_or_session` is not used.
    """
    settings = settings or get_settings()
    limit = limit_for(settings, name)
    if limit is None:
        return
    key_hash = _key_hash(settings, name, key)
    window = Window.at(epoch_micros(clock.now()), limit.window)
    if settings.redis_url:
        wait = _redis(settings.redis_url).hit(name, key_hash, limit, window)
    elif isinstance(db_or_session, Database):
        with db_or_session.unit_of_work() as session:
            wait = _db_hit(session, name, key_hash, limit, window)
    else:
        wait = _db_hit(db_or_session, name, key_hash, limit, window)
    if wait is not None:
        raise DomainError("rate_limited", retry_after=wait)


def purge_expired(session: Session) -> int:
    """Drop database counters no window can look at any more; returns how many."""
    now = epoch_micros(clock.now()) // _MICROS
    result = session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)


def _key_hash(settings: Settings, name: str, key: str) -> str:
    # Keyed, so a copy of the table does not reveal which phone numbers tried to log in.
    message = f"{name}\x00{key.strip().lower()}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


# --- database counters ---------------------------------------------------------------------------


def _db_hit(session: Session, name: str, key_hash: str, limit: Limit, window: Window) -> int | None:
    current, previous = _increment(session, name, key_hash, limit, window)
    wait = retry_after(limit, window, previous or 0, current)
    if wait is not None:  # a refused hit is taken back; the row stays locked meanwhile
        table = RateLimitCounter.__table__
        session.execute(
            update(table)
            .where(table.c.key_hash == key_hash, table.c.window_start == window.start)
            .values(hits=table.c.hits - 1)
        )
    return wait


def _increment(
    session: Session, name: str, key_hash: str, limit: Limit, window: Window
) -> tuple[int, int | None]:
    """Add one hit atomically (an upsert), whichever process gets there first: the window's
    hits with this one, and the previous window's (None when it had none)."""
    statement = _INCREMENT_SQLITE if is_sqlite(session) else _INCREMENT_POSTGRESQL
    hits, previous = session.execute(
        statement,
        {
            "key": key_hash,
            "start": window.start,
            "limit_name": name,
            "expires": window.start + 2 * limit.window,
            "previous_start": window.start - limit.window,
        },
    ).one()
    return int(hits), previous


def _upsert_returning_previous(insert: Callable[[Table], Any]) -> Executable:
    """INSERT ... ON CONFLICT DO UPDATE hits + 1, RETURNING the new count and the previous
    window's: one statement for what took two."""
    table = RateLimitCounter.__table__
    # Compared with bound values only: SQLite's RETURNING names columns unqualified, which
    # inside the subquery then mean the alias's (a comparison with the inserted row's columns
    # would not survive that).
    previous = table.alias("previous")
    previous_hits = (
        select(previous.c.hits)
        .where(
            previous.c.key_hash == bindparam("key"),
            previous.c.window_start == bindparam("previous_start"),
        )
        .scalar_subquery()
    )
    statement = insert(table).values(
        key_hash=bindparam("key"),
        window_start=bindparam("start"),
        name=bindparam("limit_name"),
        hits=1,
        expires_at=bindparam("expires"),
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.key_hash, table.c.window_start],
        set_={"hits": table.c.hits + 1},
    ).returning(table.c.hits, previous_hits)


_INCREMENT_SQLITE = _upsert_returning_previous(sqlite.insert)
_INCREMENT_POSTGRESQL = _upsert_returning_previous(postgresql.insert)


# --- Redis counters ------------------------------------------------------------------------------


class _RedisCounters:
    """The same counters in Redis: INCR is atomic, keys expire by themselves."""

    PREFIX = "walletdesk:ratelimit:"

    def __init__(self, url: str) -> None:
        import redis  # optional: only needed when WALLETDESK_REDIS_URL is set

        self.client: Any = redis.Redis.from_url(url)

    def hit(self, name: str, key_hash: str, limit: Limit, window: Window) -> int | None:
        current_key = f"{self.PREFIX}{key_hash}:{window.start}"
        previous_key = f"{self.PREFIX}{key_hash}:{window.start - limit.window}"
        pipe = self.client.pipeline()
        pipe.incr(current_key)
        pipe.expire(current_key, 2 * limit.window)
        pipe.get(previous_key)
        current, _, previous = pipe.execute()
        wait = retry_after(limit, window, int(previous or 0), int(current))
        if wait is not None:
            self.client.decr(current_key)
        return wait


@lru_cache
def _redis(url: str) -> _RedisCounters:
    return _RedisCounters(url)
