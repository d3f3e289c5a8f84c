"""SLA arithmetic: policies, deadlines counted in business time, and the pause while waiting.

Pure: no database, no clock. A policy names the service hours its targets are counted in
(`business_hours: phone`) or counts around the clock (`24/7`); the case service looks the
schedule up and hands it in. Durations are elapsed time inside open hours, so "4h" from a
Friday evening may end on Monday morning, and a 09:00-17:00 day is 8 hours even on the night
the clocks change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from walletdesk.support.hours import WeeklySchedule, open_windows
from walletdesk.support.models import CasePriority, CaseType

POLICIES_FILE = "sla_policies.yaml"
AROUND_THE_CLOCK_NAME = "24/7"
# 24/7 targets need no time zone: elapsed time is the same everywhere.
AROUND_THE_CLOCK = WeeklySchedule("UTC", always_open=True)

_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


class PolicyError(ValueError):
    """A policy file that cannot be used; the message says which policy and why."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Targets for the cases it matches; `types`/`priorities` None match any."""

    name: str
    business_hours: str | None  # a service-hours name; None counts around the clock
    first_response: timedelta
    resolution: timedelta
    complaint: bool = False
    types: frozenset[str] | None = None
    priorities: frozenset[str] | None = None

    def matches(self, case_type: str, priority: str, is_complaint: bool) -> bool:
        return (
            self.complaint == is_complaint
            and (self.types is None or case_type in self.types)
            and (self.priorities is None or priority in self.priorities)
        )


@dataclass(frozen=True, slots=True)
class Deadlines:
    first_response: datetime | None
    resolution: datetime | None


def add_business_time(
    schedule: WeeklySchedule, start: datetime, duration: timedelta
) -> datetime | None:
    """The instant by which `duration` of open time has passed since `start`.

    None when the schedule is not open that long within the hours' look-ahead horizon.
    """
    if duration <= timedelta(0):
        return start
    remaining = duration
    for window_start, window_end in open_windows(schedule, start):
        length = window_end - window_start
        if length >= remaining:
            return window_start + remaining
        remaining -= length
    return None


def business_time_between(schedule: WeeklySchedule, a: datetime, b: datetime) -> timedelta:
    """How much open time lies between `a` and `b` (zero when `b` is not after `a`)."""
    if b <= a:
        return timedelta(0)
    return sum((end - start for start, end in open_windows(schedule, a, b)), timedelta(0))


def deadlines(schedule: WeeklySchedule, policy: Policy, opened_at: datetime) -> Deadlines:
    return Deadlines(
        add_business_time(schedule, opened_at, policy.first_response),
        add_business_time(schedule, opened_at, policy.resolution),
    )


def resumed_due(
    schedule: WeeklySchedule, due: datetime | None, paused_at: datetime, resumed_at: datetime
) -> datetime | None:
    """`due` pushed later by the open time that passed while the clock was stopped."""
    if due is None:
        return None
    return add_business_time(schedule, due, business_time_between(schedule, paused_at, resumed_at))


def paused_so_far(
    schedule: WeeklySchedule, opened_at: datetime, due: datetime | None, target: timedelta
) -> timedelta:
    """The pauses already added to a resolution deadline: its open time beyond the target."""
    if due is None:
        return timedelta(0)
    return max(business_time_between(schedule, opened_at, due) - target, timedelta(0))


def target_state(
    due: datetime | None,
    done_at: datetime | None,
    breached_at: datetime | None,
    now: datetime,
    *,
    paused: bool = False,
) -> str:
    """How a target stands: none, met, missed, breached, paused or running."""
    if done_at is not None:
        return "missed" if breached_at or (due and done_at > due) else "met"
    if due is None:
        return "none"
    if breached_at is not None or (now > due and not paused):
        return "breached"
    return "paused" if paused else "running"


# --- policies --------------------------------------------------------------------------------


def policy_for(
    policies: Sequence[Policy], *, case_type: str, priority: str, is_complaint: bool
) -> Policy:
    """The first policy that matches; the file is checked to have one for every case."""
    for policy in policies:
        if policy.matches(case_type, priority, is_complaint):
            return policy
    raise PolicyError(f"no SLA policy for {case_type}/{priority} (complaint={is_complaint})")


@lru_cache(maxsize=1)
def shipped_policies() -> tuple[Policy, ...]:
    raw = resources.files("walletdesk.support").joinpath(POLICIES_FILE).read_text("utf-8")
    return parse_policies(yaml.safe_load(raw))


def parse_policies(entries: Iterable[Mapping[str, Any]]) -> tuple[Policy, ...]:
    """Read the YAML list; every case type, priority and complaint flag must find a policy."""
    policies = tuple(_policy(entry) for entry in entries)
    for is_complaint in (False, True):
        for case_type in CaseType:
            for priority in CasePriority:
                policy_for(
                    policies, case_type=case_type, priority=priority, is_complaint=is_complaint
                )
    return policies


def parse_duration(text: str) -> timedelta:
    """ "30m", "4h" or "2d" (a day is 24 hours of counted time)."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise PolicyError(f"{text!r} is not a duration like 30m, 4h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _policy(entry: Mapping[str, Any]) -> Policy:
    name = str(entry.get("name", "?"))
    unknown = set(entry) - {
        "name",
        "business_hours",
        "first_response",
        "resolution",
        "complaint",
        "types",
        "priorities",
    }
    if unknown:
        raise PolicyError(f"policy {name!r}: unknown key {sorted(unknown)[0]!r}")
    hours = str(entry.get("business_hours", AROUND_THE_CLOCK_NAME))
    return Policy(
        name=name,
        business_hours=None if hours == AROUND_THE_CLOCK_NAME else hours,
        first_response=parse_duration(entry["first_response"]),
        resolution=parse_duration(entry["resolution"]),
        complaint=bool(entry.get("complaint", False)),
        types=_choices(name, entry.get("types"), CaseType),
        priorities=_choices(name, entry.get("priorities"), CasePriority),
    )


def _choices(name: str, values: Sequence[str] | None, allowed: Any) -> frozenset[str] | None:
    if values is None:
        return None
    wrong = [value for value in values if value not in set(allowed)]
    if wrong:
        raise PolicyError(f"policy {name!r}: unknown {allowed.__name__} {wrong[0]!r}")
    return frozenset(values)
