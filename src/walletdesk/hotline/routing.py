"""Which agent is offered a call: pure rules, no database.

Strategies, after Asterisk's app_queue:
- leastrecent: the agent idle the longest (available since the earliest moment);
- fewestcalls: the agent who has taken the fewest calls, then the longest idle;
- rrmemory: round robin that remembers where it stopped: the next agent (by id) after the one
  offered a call of this queue last.

An agent qualifies for a call when they hold every skill it needs and have not already let an
offer of it lapse. Supervisors also hold the pseudo-skill "supervisor", which is how a call is
transferred to one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

STRATEGIES = ("leastrecent", "fewestcalls", "rrmemory")
SUPERVISOR_SKILL = "supervisor"


@dataclass(frozen=True, slots=True)
class Candidate:
    staff_id: int
    skills: frozenset[str]
    idle_since: datetime
    calls_taken: int = 0


def qualified(
    candidates: Iterable[Candidate], skills: Iterable[str], skipped: Iterable[int] = ()
) -> list[Candidate]:
    needed, passed_over = frozenset(skills), frozenset(skipped)
    return [c for c in candidates if needed <= c.skills and c.staff_id not in passed_over]


def choose(
    strategy: str, candidates: Sequence[Candidate], *, last_offered: int | None = None
) -> Candidate | None:
    """The agent to offer the call to, among qualified candidates, or None if there is none."""
    if not candidates:
        return None
    if strategy == "leastrecent":
        return min(candidates, key=lambda c: (c.idle_since, c.staff_id))
    if strategy == "fewestcalls":
        return min(candidates, key=lambda c: (c.calls_taken, c.idle_since, c.staff_id))
    if strategy == "rrmemory":
        ordered = sorted(candidates, key=lambda c: c.staff_id)
        if last_offered is None:
            return ordered[0]
        return next((c for c in ordered if c.staff_id > last_offered), ordered[0])
    raise ValueError(f"unknown strategy {strategy!r}")
