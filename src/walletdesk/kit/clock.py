"""Time comes from a clock that tests can move."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


_current: Clock = SystemClock()


def now() -> datetime:
    return _current.now()


def current() -> Clock:
    return _current


def use_clock(clock: Clock) -> Clock:
    """Install `clock` for the whole process; returns the previous one so tests can restore it."""
    global _current
    previous, _current = _current, clock
    return previous


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def start_of_local_day(moment: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `moment`'s calendar day began in `zone`."""
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
