"""Which agent is offered a call, under each strategy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from walletdesk.hotline.routing import Candidate, choose, qualified

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def agent(staff_id: int, idle_minutes: int, calls: int = 0, skills: str = "zh-CN") -> Candidate:
    """An agent idle for `idle_minutes` before T0."""
    return Candidate(
        staff_id, frozenset(skills.split(",")), T0 - timedelta(minutes=idle_minutes), calls
    )


AGENTS = [agent(1, 5, calls=9), agent(2, 30, calls=4), agent(3, 10, calls=1)]


def test_leastrecent_picks_the_longest_idle() -> None:
    assert choose("leastrecent", AGENTS).staff_id == 2


def test_fewestcalls_picks_who_took_fewest() -> None:
    assert choose("fewestcalls", AGENTS).staff_id == 3


def test_fewestcalls_ties_go_to_the_longest_idle() -> None:
    tied = [agent(1, 5, calls=2), agent(2, 9, calls=2)]
    assert choose("fewestcalls", tied).staff_id == 2


@pytest.mark.parametrize(("last", "expected"), [(None, 1), (1, 2), (2, 3), (3, 1), (7, 1)])
def test_rrmemory_continues_after_the_last_offered(last: int | None, expected: int) -> None:
    assert choose("rrmemory", AGENTS, last_offered=last).staff_id == expected


def test_no_candidate_no_offer() -> None:
    assert choose("leastrecent", []) is None


def test_skills_must_all_be_held_and_skipped_agents_are_passed_over() -> None:
    pool = [agent(1, 1, skills="zh-CN,payments"), agent(2, 2, skills="en,payments"), agent(3, 3)]
    assert [c.staff_id for c in qualified(pool, ["zh-CN", "payments"])] == [1]
    assert [c.staff_id for c in qualified(pool, ["payments"], skipped=[2])] == [1]
    assert qualified(pool, ["fraud"]) == []


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError):
        choose("random", AGENTS)
