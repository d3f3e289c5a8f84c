"""The case status machine and the other rules about a case that need no database.

new → open → waiting on the customer or a merchant ⇄ open → resolved → closed (after a quiet
spell) or reopened (the customer says it is not fixed), and reopened works like open. Closed
is final: a customer who comes back about a closed case gets a new case linked to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from walletdesk.kit.errors import DomainError
from walletdesk.support import case_desk_errors as _errors  # noqa: F401  (registers the codes)
from walletdesk.support.models import CaseStatus

_WORKING = frozenset(
    {CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.WAITING_ON_MERCHANT, CaseStatus.RESOLVED}
)
TRANSITIONS: dict[str, frozenset[str]] = {
    CaseStatus.NEW: frozenset({CaseStatus.OPEN}),
    CaseStatus.OPEN: _WORKING,
    CaseStatus.REOPENED: _WORKING,
    CaseStatus.WAITING_ON_CUSTOMER: frozenset({CaseStatus.OPEN, CaseStatus.RESOLVED}),
    CaseStatus.WAITING_ON_MERCHANT: frozenset({CaseStatus.OPEN, CaseStatus.RESOLVED}),
    CaseStatus.RESOLVED: frozenset({CaseStatus.CLOSED, CaseStatus.REOPENED}),
    CaseStatus.CLOSED: frozenset(),
}
# Statuses in which nobody is working on the case any more.
FINISHED = frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED})
# A complaint may follow a case the customer was told is solved (or that was solved and came
# back), or one that has dragged on.
ESCALATABLE = frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED, CaseStatus.REOPENED})
RATABLE = FINISHED
SATISFIED_FROM = 4  # ratings of 4 and 5 count as satisfied


def can_transition(current: str, to: str) -> bool:
    return to in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, to: str) -> None:
    if not can_transition(current, to):
        raise DomainError("case_transition_invalid", from_status=current, to_status=to)


def may_escalate(status: str, opened_at: datetime, now: datetime, after: timedelta) -> bool:
    return status in ESCALATABLE or now - opened_at >= after


def is_satisfied(score: int) -> bool:
    return score >= SATISFIED_FROM
