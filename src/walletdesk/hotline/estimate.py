"""How long a caller waiting in the queue will wait: the figure the IVR announces.

A caller at position k (1 = next) is answered when an agent comes free for them. If agents are
free beyond the callers ahead, that is now. Otherwise k − free departures are needed from the
busy agents, and the queue moves for two reasons: an agent finishes (N staffed agents, each
taking the mean handle time AHT, finish at a rate N / AHT) or a caller ahead hangs up (each at
the observed abandonment rate θ). With m − 1 callers still ahead, the next move comes after
1 / (N / AHT + (m − 1)·θ) on average, so the expected wait is the sum of those steps for m from
the caller's place down to the front (exact for exponential handle times and patience, and a
close approximation otherwise, since many agents' calls ending together behave like a Poisson
stream). Unlike a running average of past waits, this answers for this caller's place in the
queue, now.

The inputs are what the queue has observed: `HandleTimes` (an exponentially weighted mean and
spread of recent handle times, with how many there were) and `Abandonment` (hang-ups per second
spent waiting). Both are immutable and fold over observations one at a time, so a caller can
build them from rows read in order or keep them up to date as calls end.

When the handle-time mean rests on few calls or a wide spread, the estimate is flagged
uncertain, and rather than a precise-sounding number the announcement becomes "more than N
minutes", N being the expected wait had calls been shorter than observed by two standard errors
of the mean (AHT / (1 + 2·relative error), never below zero) — a floor that holds even if the
mean overstates them. Announcements are whole minutes, never
less than one; past `MAX_ANNOUNCED_MINUTES` they say "more than" that.

The time calls in progress have already lasted is deliberately not used. Knowing it only helps
through a model of the handle-time distribution, and even with the true one (log-normal in
bench/wait_estimate.py) the expected time to the first call ending is dominated by the few
very long calls, which made the announced waits less accurate, not more.

For the forecast of a caller not yet in the queue (staffing, the wallboard), see `erlang`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

WINDOW = 50  # calls: the handle-time mean follows about the last this many
ABANDON_WINDOW = 200  # callers: the abandonment rate follows about the last this many
MIN_OBSERVED = 10  # fewer handle times than this and the mean is a guess
MAX_RELATIVE_ERROR = 0.25  # standard error of the mean handle time, as a share of it
CONFIDENCE = 2.0  # standard errors of the mean handle time for the "more than" floor
MAX_ANNOUNCED_MINUTES = 60


@dataclass(frozen=True)
class HandleTimes:
    """Recent handle times in seconds (answered to available again, wrap-up included).

    The first `window` calls weigh equally; after that each new one weighs 1/window, so the
    mean follows a change of pace within about that many calls. Before any call is observed,
    `mean` is the configured guess and `count` is 0.
    """

    mean: float
    variance: float = 0.0
    count: int = 0
    window: int = WINDOW

    def __post_init__(self) -> None:
        if self.mean <= 0 or self.variance < 0 or self.count < 0 or self.window < 1:
            raise ValueError("handle times need a positive mean and window")

    def observe(self, seconds: float) -> HandleTimes:
        """These statistics with one more call; a call ended at once still took a second."""
        weight = 1 / min(self.count + 1, self.window)
        delta = max(seconds, 1.0) - self.mean
        return replace(
            self,
            mean=self.mean + weight * delta,
            variance=(1 - weight) * (self.variance + weight * delta * delta),
            count=self.count + 1,
        )

    @property
    def relative_error(self) -> float:
        """Standard error of `mean` over `mean`; with few calls, at least that of a spread as
        wide as the mean (a handful of calls cannot vouch for a narrow spread)."""
        if self.count == 0:
            return 1.0
        effective = min(self.count, self.window)
        spread = math.sqrt(self.variance) / self.mean
        if self.count < MIN_OBSERVED:
            spread = max(spread, 1.0)
        return spread / math.sqrt(effective)

    @property
    def uncertain(self) -> bool:
        return self.count < MIN_OBSERVED or self.relative_error > MAX_RELATIVE_ERROR


@dataclass(frozen=True)
class Abandonment:
    """Callers hanging up while waiting: decayed sums of hang-ups and of seconds waited by
    every caller who left the queue (answered or not), so `rate` is hang-ups per second of
    waiting — the maximum-likelihood rate for exponential patience, censored by answering."""

    abandoned: float = 0.0
    waited: float = 0.0
    window: int = ABANDON_WINDOW

    def observe(self, waited_seconds: float, abandoned: bool) -> Abandonment:
        keep = 1 - 1 / self.window
        return replace(
            self,
            abandoned=self.abandoned * keep + (1.0 if abandoned else 0.0),
            waited=self.waited * keep + waited_seconds,
        )

    @property
    def rate(self) -> float:
        return self.abandoned / self.waited if self.waited > 0 else 0.0


@dataclass(frozen=True)
class EstimatedWait:
    seconds: float  # the expected wait; 0 when an agent is free for this caller
    floor_seconds: float  # the same with a pessimistically short handle time
    uncertain: bool

    @property
    def announce_minutes(self) -> int:
        return announcement_minutes(self)[0]


def estimate_wait(
    position: int,
    staffed: int,
    busy: int,
    handle_times: HandleTimes,
    abandon_rate: float = 0.0,
) -> EstimatedWait:
    """The wait ahead of the caller at `position` (1 = next), with `staffed` agents able to
    take this queue's calls (available, on a call or in wrap-up; not away), `busy` of them on a
    call or in wrap-up, and `abandon_rate` hang-ups per second per waiting caller."""
    if position < 1 or not 0 <= busy <= staffed or abandon_rate < 0:
        raise ValueError("position ≥ 1, 0 ≤ busy ≤ staffed and abandon rate ≥ 0 required")
    departures = position - (staffed - busy)
    if departures <= 0:
        return EstimatedWait(0.0, 0.0, uncertain=False)
    if staffed == 0:
        return EstimatedWait(math.inf, math.inf, uncertain=True)
    expected = _time_to_departures(departures, staffed / handle_times.mean, abandon_rate)
    short_handle = handle_times.mean / (1 + CONFIDENCE * handle_times.relative_error)
    floor = _time_to_departures(departures, staffed / short_handle, abandon_rate)
    return EstimatedWait(expected, floor, handle_times.uncertain)


def announcement_minutes(estimate: EstimatedWait) -> tuple[int, bool]:
    """Whole minutes to announce and whether to say "more than": an uncertain estimate is
    announced as its floor when that is at least a minute, a long one as the cap."""
    cap = MAX_ANNOUNCED_MINUTES
    if estimate.uncertain:
        floor = math.floor(min(estimate.floor_seconds / 60, cap))
        if floor >= 1:
            return floor, True
    if estimate.seconds >= cap * 60:
        return cap, True
    return max(1, math.floor(estimate.seconds / 60 + 0.5)), False  # halves round up


def _time_to_departures(departures: int, service_rate: float, abandon_rate: float) -> float:
    """Expected time for the queue to move `departures` places, callers ahead hanging up."""
    if abandon_rate == 0:
        return departures / service_rate
    return sum(1 / (service_rate + ahead * abandon_rate) for ahead in range(departures))
