"""The sliding-window arithmetic of rate limits, without a database.

What a user would notice: being refused below the limit, let through above it, or told to wait
a Retry-After that turns out to be wrong (refused again when it ends, or told to wait too long).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from walletdesk.kit.ratelimit import Limit, Window, parse_limit, retry_after


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("10/15m", Limit(10, 900)),
        ("5/h", Limit(5, 3600)),
        ("100 / 1d", Limit(100, 86400)),
        ("3/30s", Limit(3, 30)),
        ("off", None),
    ],
)
def test_limits_are_read_from_their_text(text: str, limit: Limit | None) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["ten/15m", "0/15m", "5/0m", "5/15w", "5", ""])
def test_nonsense_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_limit(text)


SECOND = 1_000_000  # moments are epoch microseconds
START = 1_800_000 * SECOND  # the start of a 30 s, 1 min, 15 min and 1 h window alike


def try_hit(counts: dict[int, int], limit: Limit, moment: int) -> int | None:
    """One hit against in-memory counters, exactly as the database backend counts it."""
    window = Window.at(moment, limit.window)
    counts[window.start] = counts.get(window.start, 0) + 1
    wait = retry_after(
        limit, window, counts.get(window.start - limit.window, 0), counts[window.start]
    )
    if wait is not None:
        counts[window.start] -= 1  # a refused hit is not counted
    return wait


def test_the_limit_is_reached_exactly_within_one_window() -> None:
    counts: dict[int, int] = {}
    limit = Limit(10, 900)
    results = [try_hit(counts, limit, START + n * SECOND) for n in range(11)]
    assert results[:10] == [None] * 10
    assert results[10] is not None


def test_the_previous_window_still_counts_as_it_slides_away() -> None:
    counts: dict[int, int] = {}
    limit = Limit(10, 900)
    for n in range(10):  # 10 hits in the window's last seconds
        assert try_hit(counts, limit, START + 890 * SECOND + n * SECOND // 2) is None
    # A fixed window would allow 10 more at once; here the old hits still weigh almost fully.
    assert try_hit(counts, limit, START + 900 * SECOND) is not None


@given(
    count=st.integers(1, 20),
    window=st.sampled_from([30, 60, 900, 3600]),
    offsets=st.lists(st.integers(0, 5000 * SECOND), min_size=1, max_size=60),
)
def test_retry_after_names_the_first_second_a_hit_is_allowed(
    count: int, window: int, offsets: list[int]
) -> None:
    limit = Limit(count, window)
    counts: dict[int, int] = {}
    for offset in sorted(offsets):
        moment = START + offset
        wait = try_hit(counts, limit, moment)
        if wait is None:
            continue
        assert try_hit(dict(counts), limit, moment + wait * SECOND) is None
        if wait > 1:
            assert try_hit(dict(counts), limit, moment + (wait - 1) * SECOND) is not None
