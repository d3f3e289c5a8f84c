"""Hours of operation: one pure answer to "are we open, and if not, when do we open?".

A schedule is either open around the clock or a weekly pattern of local wall-clock intervals
in one IANA time zone, with date exceptions on top: a holiday (closed all day) or special
hours that replace the weekly ones for that date (a partial day).

Rules, stated once:
* Intervals are half-open, [start, end), in minutes of the local day; "24:00" ends a day.
* Overnight intervals are refused (start must come before end): write 22:00-24:00 on one day
  and 00:00-06:00 on the next. Touching intervals are merged, so across midnight the answer is
  still one stretch ("open until 06:00 tomorrow").
* Local times are read as RFC 5545 does: a time skipped by a DST jump is taken with the offset
  in force before the jump (02:30 on a spring-forward night is 03:30), and a time that occurs
  twice means its first occurrence. A day's real length follows the clock (23 or 25 hours).
* Emergency actions (freezing an account, reporting a lost card or fraud) never wait for hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_MINUTES = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead an opening is looked for; a schedule closed for longer answers opens_at=None.
HORIZON_DAYS = 400
EMERGENCY_ACTIONS = frozenset({"freeze_account", "report_lost_card", "report_fraud"})

_INTERVAL = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class HoursError(ValueError):
    """A schedule that cannot be used; the message says what is wrong."""


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """Open from `start` to `end` minutes after local midnight, end excluded."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < DAY_MINUTES or not 0 < self.end <= DAY_MINUTES:
            raise HoursError(f"{self} is outside 00:00-24:00")
        if self.start >= self.end:
            raise HoursError(f"{self}: overnight hours must be split at midnight")

    def __str__(self) -> str:
        return f"{_clock_text(self.start)}-{_clock_text(self.end)}"


@dataclass(frozen=True, slots=True)
class DateException:
    """Hours for one date that replace the weekly ones; no intervals means closed all day."""

    day: date
    intervals: tuple[Interval, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        _check_day(self.intervals, self.day.isoformat())

    @property
    def closed(self) -> bool:
        return not self.intervals


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """`week[0]` is Monday's intervals ... `week[6]` Sunday's; ignored when `always_open`."""

    zone: str
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7
    always_open: bool = False
    exceptions: tuple[DateException, ...] = ()
    _by_day: dict[date, DateException] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone_of(self.zone)
        if len(self.week) != 7:
            raise HoursError("a week has seven days")
        for name, intervals in zip(WEEKDAYS, self.week, strict=True):
            _check_day(intervals, name)
        by_day = {exception.day: exception for exception in self.exceptions}
        if len(by_day) != len(self.exceptions):
            raise HoursError("at most one exception per date")
        object.__setattr__(self, "_by_day", by_day)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        exception = self._by_day.get(day)
        return exception.intervals if exception else self.week[day.weekday()]

    def exception_on(self, day: date) -> DateException | None:
        return self._by_day.get(day)


@dataclass(frozen=True, slots=True)
class OpenStatus:
    open: bool
    opens_at: datetime | None  # when closed: the next opening (UTC), None if none is scheduled
    closes_at: datetime | None  # when open: the next closing (UTC), None if open indefinitely


def status(schedule: WeeklySchedule, at: datetime) -> OpenStatus:
    """Whether `schedule` is open at the instant `at`, and when that changes."""
    if at.tzinfo is None:
        raise HoursError("`at` must carry a time zone")
    if schedule.always_open:
        return OpenStatus(True, None, None)
    at = at.astimezone(UTC)
    zone = zone_of(schedule.zone)
    first = at.astimezone(zone).date() - timedelta(days=1)
    horizon = _instant(first + timedelta(days=HORIZON_DAYS), 0, zone)
    for start, end in _merged(_windows(schedule, zone, first)):
        if end <= at:
            continue
        if start <= at:
            return OpenStatus(True, None, None if end >= horizon else end)
        return OpenStatus(False, start, None)
    return OpenStatus(False, None, None)


def action_status(schedule: WeeklySchedule, at: datetime, action: str | None) -> OpenStatus:
    """As `status`, except that emergency actions are always available."""
    if action in EMERGENCY_ACTIONS:
        return OpenStatus(True, None, None)
    return status(schedule, at)


@dataclass(frozen=True, slots=True)
class DayHours:
    day: date
    intervals: tuple[Interval, ...]
    exception: DateException | None


def days_ahead(schedule: WeeklySchedule, at: datetime, count: int = 7) -> list[DayHours]:
    """The hours of the `count` local days starting with `at`'s, exceptions applied."""
    today = at.astimezone(zone_of(schedule.zone)).date()
    days = (today + timedelta(days=n) for n in range(count))
    return [DayHours(d, schedule.intervals_on(d), schedule.exception_on(d)) for d in days]


def open_windows(
    schedule: WeeklySchedule, start: datetime, end: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """The open stretches (UTC) between `start` and `end`, clipped to both, in order.

    Without `end` they run as far as HORIZON_DAYS looks ahead; around the clock is one stretch.
    For counting business time (SLA deadlines) rather than asking about one instant.
    """
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise HoursError("`start` and `end` must carry a time zone")
    start = start.astimezone(UTC)
    zone = zone_of(schedule.zone)
    first = start.astimezone(zone).date() - timedelta(days=1)
    stop = _instant(first + timedelta(days=HORIZON_DAYS), 0, zone)
    stop = stop if end is None else end.astimezone(UTC)
    if schedule.always_open:
        windows: Iterator[tuple[datetime, datetime]] = iter([(start, stop)])
    else:
        windows = _merged(_windows(schedule, zone, first))
    for window_start, window_end in windows:
        if window_start >= stop:
            return
        if window_end > start:
            yield max(window_start, start), min(window_end, stop)


def _windows(
    schedule: WeeklySchedule, zone: ZoneInfo, first: date
) -> Iterator[tuple[datetime, datetime]]:
    for offset in range(HORIZON_DAYS):
        day = first + timedelta(days=offset)
        for interval in schedule.intervals_on(day):
            start, end = _instant(day, interval.start, zone), _instant(day, interval.end, zone)
            if start < end:  # an interval wholly inside a DST gap lasts no time at all
                yield start, end


def _merged(windows: Iterator[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    current: tuple[datetime, datetime] | None = None
    for start, end in windows:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of `minute` past local midnight on `day` (fold=0: RFC 5545 reading)."""
    day, minute = (day + timedelta(days=1), 0) if minute == DAY_MINUTES else (day, minute)
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _check_day(intervals: Sequence[Interval], where: str) -> None:
    ordered = sorted(intervals)
    if list(intervals) != ordered:
        raise HoursError(f"{where}: list the hours in order")
    for before, after in pairwise(ordered):
        if after.start < before.end:
            raise HoursError(f"{where}: {before} and {after} overlap")


def _clock_text(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# --- reading and writing the text forms used by the API, the CLI and the table -----------


def zone_of(key: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone {key!r}") from None


def parse_interval(text: str) -> Interval:
    """Read "08:00-22:00" as Interval(480, 1320); "24:00" is allowed as an end."""
    match = _INTERVAL.match(text.strip())
    if not match:
        raise HoursError(f"{text!r} is not hours like 08:00-22:00")
    sh, sm, eh, em = (int(part) for part in match.groups())
    if sm > 59 or em > 59 or sh > 23 or eh * 60 + em > DAY_MINUTES:
        raise HoursError(f"{text!r} is not a time of day")
    return Interval(sh * 60 + sm, eh * 60 + em)


def parse_intervals(texts: Sequence[str]) -> tuple[Interval, ...]:
    return tuple(parse_interval(text) for text in texts)


def parse_week(week: Mapping[str, Sequence[str]]) -> tuple[tuple[Interval, ...], ...]:
    """{"mon": ["08:00-22:00"], ...}; a day left out is closed."""
    unknown = set(week) - set(WEEKDAYS)
    if unknown:
        raise HoursError(f"unknown day {sorted(unknown)[0]!r} (use {', '.join(WEEKDAYS)})")
    return tuple(parse_intervals(week.get(name, ())) for name in WEEKDAYS)


def week_texts(schedule: WeeklySchedule) -> dict[str, list[str]]:
    return {name: [str(i) for i in day] for name, day in zip(WEEKDAYS, schedule.week, strict=True)}


def every_day(*texts: str) -> tuple[tuple[Interval, ...], ...]:
    return (parse_intervals(texts),) * 7
