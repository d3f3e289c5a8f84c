"""Erlang C staffing maths: the textbook values, the closed forms it must agree with, hundreds of
agents without overflow, and the properties a supervisor relies on (more agents never make the
service worse; the staffing answer is the smallest that meets the target)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from walletdesk.hotline.erlang import (
    agents_needed,
    average_speed_of_answer,
    erlang_b,
    erlang_c,
    offered_load,
    service_level,
)

# The classic worked example: 100 calls in half an hour, 180 s average handle time = 10 erlangs.
CALLS_PER_SECOND = 100 / 1800
HANDLE = 180.0


@pytest.mark.parametrize(
    ("agents", "waiting", "within_20_s", "answer_seconds"),
    [
        (11, 0.6821, 0.3896, 122.8),
        (12, 0.4494, 0.6402, 40.4),
        (13, 0.2853, 0.7956, 17.1),
        (14, 0.1741, 0.8884, 7.8),
        (15, 0.1020, 0.9415, 3.7),
    ],
)
def test_classic_example_matches_published_tables(
    agents: int, waiting: float, within_20_s: float, answer_seconds: float
) -> None:
    assert offered_load(CALLS_PER_SECOND, HANDLE) == pytest.approx(10)
    assert erlang_c(agents, 10) == pytest.approx(waiting, abs=5e-5)
    assert service_level(CALLS_PER_SECOND, HANDLE, agents, 20) == pytest.approx(
        within_20_s, abs=5e-5
    )
    assert average_speed_of_answer(CALLS_PER_SECOND, HANDLE, agents) == pytest.approx(
        answer_seconds, abs=0.05
    )


def test_classic_example_needs_fourteen_agents_for_80_percent_in_20_seconds() -> None:
    assert agents_needed(CALLS_PER_SECOND, HANDLE, 0.8, 20) == 14
    assert agents_needed(CALLS_PER_SECOND, HANDLE, 0.9, 20) == 15
    # Agents busy at most 70% of the time: 10 erlangs need at least 15 of them.
    assert agents_needed(CALLS_PER_SECOND, HANDLE, 0.8, 20, max_occupancy=0.7) == 15


def test_units_only_need_to_agree() -> None:
    per_minute = agents_needed(100 / 30, 3.0, 0.8, 20 / 60)
    assert per_minute == agents_needed(CALLS_PER_SECOND, HANDLE, 0.8, 20) == 14


def test_erlang_b_table_value() -> None:
    assert erlang_b(10, 5) == pytest.approx(0.018385, abs=5e-6)
    assert erlang_b(1, 2) == pytest.approx(2 / 3)
    assert erlang_b(0, 3) == 1


def test_closed_forms_for_one_and_two_agents() -> None:
    for utilisation in (0.1, 0.5, 0.9):
        assert erlang_c(1, utilisation) == pytest.approx(utilisation)
        two = erlang_c(2, 2 * utilisation)
        assert two == pytest.approx(2 * utilisation**2 / (1 + utilisation))


def test_hundreds_of_agents_neither_overflow_nor_lose_the_answer() -> None:
    # A / N = 0.95 with 1000 agents: the factorial form would need 1000! and 950^1000.
    waiting = erlang_c(1000, 950)
    assert 0 < waiting < 0.1
    assert erlang_c(1000, 999.9) > 0.9
    needed = agents_needed(50.0, 200.0, 0.9, 15)  # 10,000 erlangs
    assert 10_000 < needed < 10_200
    assert (
        service_level(50.0, 200.0, needed, 15) >= 0.9 > service_level(50.0, 200.0, needed - 1, 15)
    )


def test_too_few_agents_means_an_endless_queue() -> None:
    assert erlang_c(10, 10) == 1
    assert erlang_c(5, 10) == 1
    assert average_speed_of_answer(CALLS_PER_SECOND, HANDLE, 10) == math.inf
    assert service_level(CALLS_PER_SECOND, HANDLE, 9, 20) == 0


def test_no_calls_need_no_agents() -> None:
    assert agents_needed(0.0, HANDLE, 0.8, 20) == 0
    assert service_level(0.0, HANDLE, 1, 20) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda: erlang_c(-1, 2),
        lambda: erlang_b(3, -0.5),
        lambda: offered_load(1.0, 0.0),
        lambda: agents_needed(1.0, 10.0, 1.0, 20),
        lambda: agents_needed(1.0, 10.0, 0.8, -1),
        lambda: agents_needed(1.0, 10.0, 0.8, 20, max_occupancy=0),
        lambda: service_level(1.0, 10.0, 20, -5),
    ],
)
def test_nonsense_is_refused(call) -> None:
    with pytest.raises(ValueError):
        call()


def exact_erlang_c(agents: int, load: Fraction) -> Fraction:
    """The textbook formula in exact rational arithmetic."""
    top = load**agents / math.factorial(agents) * agents / (agents - load)
    bottom = sum(load**k / math.factorial(k) for k in range(agents)) + top
    return top / bottom


loads = st.fractions(min_value=Fraction(1, 10), max_value=40, max_denominator=20)


@given(load=loads, extra=st.integers(min_value=1, max_value=20))
def test_agrees_with_the_factorial_formula(load: Fraction, extra: int) -> None:
    agents = math.floor(load) + extra
    assert erlang_c(agents, float(load)) == pytest.approx(float(exact_erlang_c(agents, load)))


@given(load=st.floats(min_value=0.01, max_value=300), extra=st.integers(min_value=0, max_value=50))
def test_more_agents_never_make_callers_wait_more(load: float, extra: int) -> None:
    agents = math.floor(load) + 1 + extra
    assert 0 <= erlang_c(agents + 1, load) <= erlang_c(agents, load) <= 1


@given(
    rate=st.floats(min_value=0.001, max_value=5),
    handle=st.floats(min_value=10, max_value=1200),
    agents=st.integers(min_value=0, max_value=400),
    target=st.floats(min_value=0, max_value=300),
)
def test_service_level_is_a_share_that_grows_with_agents_and_time(
    rate: float, handle: float, agents: int, target: float
) -> None:
    level = service_level(rate, handle, agents, target)
    assert 0 <= level <= 1
    assert service_level(rate, handle, agents + 1, target) >= level
    assert service_level(rate, handle, agents, target + 10) >= level


@given(
    rate=st.floats(min_value=0.001, max_value=2),
    handle=st.floats(min_value=10, max_value=900),
    target_level=st.floats(min_value=0.05, max_value=0.99),
    target_seconds=st.floats(min_value=0, max_value=120),
)
def test_agents_needed_is_the_fewest_that_meet_the_target(
    rate: float, handle: float, target_level: float, target_seconds: float
) -> None:
    agents = agents_needed(rate, handle, target_level, target_seconds)
    assert service_level(rate, handle, agents, target_seconds) >= target_level
    assert service_level(rate, handle, agents - 1, target_seconds) < target_level
