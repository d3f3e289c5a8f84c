"""Erlang C: the M/M/N queue behind staffing forecasts and the wait a new caller can expect.

Arrival rate and handle time may be in any units as long as they agree (calls per second and
seconds, say); the offered load A = arrival rate × handle time is in erlangs. With N agents the
queue is stable only when N > A: otherwise it grows without bound, the probability of waiting is
1, the average wait infinite and the service level 0.

Erlang B is computed by its recurrence B(n) = A·B(n-1) / (n + A·B(n-1)), which stays within
[0, 1] at every step, so N in the hundreds or thousands neither overflows nor loses precision
(the textbook form with A^N / N! does both); Erlang C follows from B.
"""

from __future__ import annotations

import math


def offered_load(arrival_rate: float, handle_time: float) -> float:
    """Traffic in erlangs: how many agents the calls would keep busy if none ever waited."""
    if arrival_rate < 0 or handle_time <= 0:
        raise ValueError("arrival rate must be ≥ 0 and handle time > 0")
    return arrival_rate * handle_time


def erlang_b(agents: int, load: float) -> float:
    """Probability that a call finds all `agents` busy when there is no queue (blocked calls lost)."""
    _check(agents, load)
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def erlang_c(agents: int, load: float) -> float:
    """Probability that a caller has to wait, P(W > 0), with `agents` agents and `load` erlangs."""
    _check(agents, load)
    if agents <= load:
        return 1.0
    return _c_from_b(agents, load, erlang_b(agents, load))


def average_speed_of_answer(arrival_rate: float, handle_time: float, agents: int) -> float:
    """Mean wait of all callers (those answered at once count as 0), in the handle time's unit."""
    load = offered_load(arrival_rate, handle_time)
    if agents <= load:
        return math.inf
    return erlang_c(agents, load) * handle_time / (agents - load)


def service_level(
    arrival_rate: float, handle_time: float, agents: int, target_seconds: float
) -> float:
    """Share of callers answered within `target_seconds`: 1 − C·e^(−(N−A)·t/AHT)."""
    if target_seconds < 0:
        raise ValueError("target time must be ≥ 0")
    load = offered_load(arrival_rate, handle_time)
    if agents <= load:
        return 0.0
    waiting = erlang_c(agents, load)
    return _service_level(waiting, agents, load, handle_time, target_seconds)


def agents_needed(
    arrival_rate: float,
    handle_time: float,
    target_service_level: float,
    target_seconds: float,
    max_occupancy: float | None = None,
) -> int:
    """The fewest agents answering `target_service_level` of calls within `target_seconds`,
    and, when `max_occupancy` is given, keeping each agent busy no more than that share of time.

    The classic example: 100 calls per half hour, 180 s handle time, 80% within 20 s → 14.
    """
    if not 0 < target_service_level < 1:
        raise ValueError("target service level must be between 0 and 1, exclusive")
    if target_seconds < 0:
        raise ValueError("target time must be ≥ 0")
    if max_occupancy is not None and not 0 < max_occupancy <= 1:
        raise ValueError("maximum occupancy must be in (0, 1]")
    load = offered_load(arrival_rate, handle_time)
    if load == 0:
        return 0
    fewest = math.floor(load) + 1  # the smallest stable N
    if max_occupancy is not None:
        fewest = max(fewest, math.ceil(load / max_occupancy))
    # Walk the Erlang B recurrence upwards once, testing each N from the first one that counts.
    blocking, agents = 1.0, 0
    while True:
        agents += 1
        blocking = load * blocking / (agents + load * blocking)
        if agents < fewest:
            continue
        waiting = _c_from_b(agents, load, blocking)
        reached = _service_level(waiting, agents, load, handle_time, target_seconds)
        if reached >= target_service_level:
            return agents


def _c_from_b(agents: int, load: float, blocking: float) -> float:
    return agents * blocking / (agents - load * (1 - blocking))


def _service_level(
    waiting: float, agents: int, load: float, handle_time: float, target_seconds: float
) -> float:
    return max(0.0, 1.0 - waiting * math.exp(-(agents - load) * target_seconds / handle_time))


def _check(agents: int, load: float) -> None:
    if agents < 0 or load < 0:
        raise ValueError("agents and load must be ≥ 0")
