"""Customer satisfaction: one 1-5 rating per resolved case, and results per agent, queue and type.

The rating keeps who owned the case, its queue and type as they were when it was rated, so a
case reassigned later still counts for the agent who solved it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case as when
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.staff.models import StaffUser
from walletdesk.support.case_rules import RATABLE, SATISFIED_FROM
from walletdesk.support.cases import add_event, find_customer_case, rating_of
from walletdesk.support.models import CsatRating

GROUPS: dict[str, Any] = {
    "agent": CsatRating.agent_id,
    "queue": CsatRating.queue,
    "case_type": CsatRating.case_type,
}
COMMENT_MAX_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class CsatFigures:
    group: str | None  # the agent id (as text), queue or case type; None for the overall line
    label: str | None  # the agent's display name; the group itself otherwise
    count: int
    average: float | None
    satisfied_percent: float | None  # ratings of 4 or 5


@dataclass(frozen=True, slots=True)
class CsatReport:
    group_by: str
    since: datetime
    until: datetime
    overall: CsatFigures
    groups: list[CsatFigures]


def rate_case(
    session: Session, customer_id: int, number: str, score: int, comment: str | None = None
) -> CsatRating:
    """The customer's rating of their resolved (or closed) case; once per case."""
    case = find_customer_case(session, customer_id, number, for_update=True)
    if not 1 <= score <= 5:
        raise DomainError("csat_score_invalid")
    if case.status not in RATABLE:
        raise DomainError("csat_not_ready", number=case.number)
    if rating_of(session, case) is not None:
        raise DomainError("csat_already_rated", number=case.number)
    comment = (comment or "").strip()[:COMMENT_MAX_LENGTH] or None
    rating = CsatRating(
        case_id=case.id,
        customer_id=customer_id,
        agent_id=case.owner_id,
        queue=case.queue,
        case_type=case.type,
        score=score,
        comment=comment,
        created_at=clock.now(),
    )
    session.add(rating)
    add_event(
        session, case, "csat", actor=f"customer:{customer_id}", body=comment, data={"score": score}
    )
    return rating


def csat_report(session: Session, since: datetime, until: datetime, group_by: str) -> CsatReport:
    """Ratings given in [since, until): count, average and share satisfied, overall and per
    agent, queue or case type (largest groups first)."""
    if group_by not in GROUPS:
        raise DomainError("csat_group_invalid")
    column = GROUPS[group_by]
    in_range = (CsatRating.created_at >= since, CsatRating.created_at < until)
    figures = (
        func.count(CsatRating.id),
        func.avg(CsatRating.score),
        func.sum(when((CsatRating.score >= SATISFIED_FROM, 1), else_=0)),
    )
    overall = session.execute(select(*figures).where(*in_range)).one()
    rows = session.execute(
        select(column, *figures)
        .where(*in_range)
        .group_by(column)
        .order_by(func.count(CsatRating.id).desc(), column)
    ).all()
    names = _agent_names(session, [row[0] for row in rows]) if group_by == "agent" else {}
    groups = [
        _figures(None if row[0] is None else str(row[0]), names.get(row[0], row[0]), *row[1:])
        for row in rows
    ]
    return CsatReport(group_by, since, until, _figures(None, None, *overall), groups)


def _figures(
    group: str | None, label: Any, count: int, average: Any, satisfied: Any
) -> CsatFigures:
    if not count:
        return CsatFigures(group, label, 0, None, None)
    return CsatFigures(
        group,
        None if label is None else str(label),
        count,
        round(float(average), 2),
        round(100 * int(satisfied) / count, 1),
    )


def _agent_names(session: Session, agent_ids: list[Any]) -> dict[Any, str]:
    ids = [agent_id for agent_id in agent_ids if agent_id is not None]
    query = select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))
    return {agent_id: name for agent_id, name in session.execute(query)}
