"""The wait a queued caller hears: from their place in the queue, the agents at work and the
handle times observed; shorter as the queue moves or callers ahead hang up; "more than N
minutes" when the observations cannot vouch for a precise figure; never under a minute."""

from __future__ import annotations

import math
import random
from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st

from walletdesk.hotline.estimate import (
    MAX_ANNOUNCED_MINUTES,
    Abandonment,
    EstimatedWait,
    HandleTimes,
    announcement_minutes,
    estimate_wait,
)


def observed(*seconds: float, guess: float = 300.0) -> HandleTimes:
    return reduce(HandleTimes.observe, seconds, HandleTimes(mean=guess))


# Two hundred calls averaging four minutes, spread as real calls are: a mean that can be trusted.
STEADY = observed(*(240 * (0.5 + (i % 11) / 10) for i in range(200)))


def test_steady_statistics_are_trusted() -> None:
    assert STEADY.mean == pytest.approx(240, rel=0.02)
    assert not STEADY.uncertain


def test_a_free_agent_means_no_wait() -> None:
    estimate = estimate_wait(2, staffed=5, busy=3, handle_times=STEADY)
    assert estimate == EstimatedWait(0.0, 0.0, uncertain=False)
    assert announcement_minutes(estimate) == (1, False)  # never less than a minute


def test_the_wait_is_the_departures_ahead_shared_by_the_agents() -> None:
    # Third in line, four agents all on calls of four minutes: three calls must end, one
    # every minute on average.
    estimate = estimate_wait(3, staffed=4, busy=4, handle_times=STEADY)
    assert estimate.seconds == pytest.approx(3 * STEADY.mean / 4)
    assert announcement_minutes(estimate) == (3, False)
    assert estimate.announce_minutes == 3
    # Two of the four agents free: the first two callers go straight to them.
    assert estimate_wait(3, staffed=4, busy=2, handle_times=STEADY).seconds == pytest.approx(
        STEADY.mean / 4
    )


def test_the_estimate_shrinks_as_the_queue_moves() -> None:
    waits = [estimate_wait(k, 3, 3, STEADY).seconds for k in range(8, 0, -1)]
    assert waits == sorted(waits, reverse=True)
    assert waits[-1] == pytest.approx(STEADY.mean / 3)


def test_callers_ahead_hanging_up_move_the_queue_faster() -> None:
    patient = estimate_wait(10, 2, 2, STEADY)
    hang_ups = estimate_wait(10, 2, 2, STEADY, abandon_rate=1 / 300)
    assert hang_ups.seconds < patient.seconds
    # The caller next in line waits only for an agent, whoever hangs up behind them.
    assert estimate_wait(1, 2, 2, STEADY, abandon_rate=1 / 300).seconds == pytest.approx(
        STEADY.mean / 2
    )


def test_minutes_are_rounded_halves_up() -> None:
    assert announcement_minutes(EstimatedWait(89, 89, False)) == (1, False)
    assert announcement_minutes(EstimatedWait(90, 90, False)) == (2, False)
    assert announcement_minutes(EstimatedWait(150, 150, False)) == (3, False)


def test_with_few_calls_observed_it_says_more_than_a_floor() -> None:
    few = observed(250, 230, 260)
    assert few.uncertain
    estimate = estimate_wait(10, 2, 2, few)
    minutes, more_than = announcement_minutes(estimate)
    assert more_than
    assert 1 <= minutes < estimate.seconds / 60
    assert minutes == math.floor(estimate.floor_seconds / 60)


def test_before_any_call_ends_the_guess_is_only_a_floor() -> None:
    nothing = HandleTimes(mean=300.0)
    assert nothing.uncertain
    estimate = estimate_wait(6, 1, 1, nothing)  # 30 minutes if the guess were right
    assert estimate.seconds == pytest.approx(1800)
    assert announcement_minutes(estimate) == (10, True)


def test_a_wide_spread_of_handle_times_is_uncertain_however_many() -> None:
    # Mostly quick calls with a very long one every tenth: the mean swings call by call.
    wide = observed(*([20.0] * 9 + [2000.0]) * 30)
    assert wide.count == 300
    assert wide.uncertain
    assert announcement_minutes(estimate_wait(20, 2, 2, wide))[1]


def test_an_uncertain_short_wait_is_not_called_more_than_a_minute() -> None:
    estimate = estimate_wait(1, 4, 4, observed(200, 220))  # about 50 s, floor far below
    assert estimate.uncertain
    assert announcement_minutes(estimate) == (1, False)


def test_long_waits_are_capped() -> None:
    estimate = estimate_wait(200, 2, 2, STEADY)
    assert announcement_minutes(estimate) == (MAX_ANNOUNCED_MINUTES, True)


def test_nobody_staffed_means_no_promise() -> None:
    estimate = estimate_wait(1, staffed=0, busy=0, handle_times=STEADY)
    assert estimate.seconds == math.inf
    assert announcement_minutes(estimate) == (MAX_ANNOUNCED_MINUTES, True)


@pytest.mark.parametrize(
    ("position", "staffed", "busy", "abandon_rate"),
    [(0, 2, 2, 0.0), (1, 2, 3, 0.0), (1, 2, -1, 0.0), (1, 2, 2, -0.1)],
)
def test_impossible_queue_states_are_refused(
    position: int, staffed: int, busy: int, abandon_rate: float
) -> None:
    with pytest.raises(ValueError):
        estimate_wait(position, staffed, busy, STEADY, abandon_rate)


def test_handle_times_start_as_a_plain_mean_and_variance() -> None:
    stats = observed(100, 200, 300, guess=999)
    assert stats.count == 3
    assert stats.mean == pytest.approx(200)  # the guess is gone with the first call
    assert stats.variance == pytest.approx(20_000 / 3)


def test_handle_times_follow_a_change_of_pace() -> None:
    stats = observed(*[120.0] * 200)
    after_50 = reduce(HandleTimes.observe, [300.0] * 50, stats)
    assert after_50.mean > 210  # more than halfway there within a window's worth of calls
    after_200 = reduce(HandleTimes.observe, [300.0] * 150, after_50)
    assert after_200.mean == pytest.approx(300, rel=0.02)


def test_handle_times_need_a_positive_mean() -> None:
    with pytest.raises(ValueError):
        HandleTimes(mean=0)
    assert observed(0, 0, 0).mean == 1  # calls dropped at once still took the agent a second


def test_abandonment_rate_recovers_the_callers_patience() -> None:
    # Callers hold on for an exponential time with a mean of five minutes unless answered
    # first, after an exponential wait with a mean of three.
    rng = random.Random(7)
    stats = Abandonment()
    for _ in range(3000):
        patience, answered_after = rng.expovariate(1 / 300), rng.expovariate(1 / 180)
        stats = stats.observe(min(patience, answered_after), abandoned=patience < answered_after)
    assert stats.rate == pytest.approx(1 / 300, rel=0.2)
    assert Abandonment().rate == 0


@given(
    position=st.integers(min_value=1, max_value=300),
    staffed=st.integers(min_value=1, max_value=200),
    busy_share=st.floats(min_value=0, max_value=1),
    mean=st.floats(min_value=5, max_value=3600),
    calls=st.integers(min_value=0, max_value=100),
    abandon_rate=st.floats(min_value=0, max_value=0.05),
)
def test_every_estimate_is_orderly(
    position: int, staffed: int, busy_share: float, mean: float, calls: int, abandon_rate: float
) -> None:
    busy = round(staffed * busy_share)
    stats = observed(*[mean] * calls, guess=mean)
    estimate = estimate_wait(position, staffed, busy, stats, abandon_rate)
    behind = estimate_wait(position + 1, staffed, busy, stats, abandon_rate)
    assert 0 <= estimate.floor_seconds <= estimate.seconds <= behind.seconds
    minutes, more_than = announcement_minutes(estimate)
    assert 1 <= minutes <= MAX_ANNOUNCED_MINUTES
    if more_than:
        assert minutes * 60 <= estimate.seconds
