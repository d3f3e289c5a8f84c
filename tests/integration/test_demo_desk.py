"""The demo a newcomer walks through after `make run`: the desk's part is there, twice over.

Loading the demo again (every `make run` does) must neither fail nor duplicate anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from walletdesk import demo
from walletdesk.db import Database
from walletdesk.disputes.models import Dispute
from walletdesk.staff import service as staff_service
from walletdesk.support.case_demo import DEMO_NUMBERS
from walletdesk.support.models import Approval, ApprovalStatus, Case


def test_the_desk_demo_loads_twice_with_staff_cases_a_dispute_and_an_approval(
    db: Database, gateway: Any
) -> None:
    ids = demo.load(db, gateway)
    demo.load_desk(db, ids)
    demo.load_desk(db, ids)

    with db.unit_of_work() as session:
        tokens = {
            m.username: staff_service.staff_for_token(session, m.token)
            for m in staff_service.DEMO_STAFF
        }
        numbers = set(session.execute(select(Case.number)).scalars())
        disputes = session.execute(select(Dispute.status)).scalars().all()
        pending = session.execute(
            select(func.count()).where(Approval.status == ApprovalStatus.PENDING)
        ).scalar_one()
    assert all(staff is not None and staff.username == name for name, staff in tokens.items())
    assert set(DEMO_NUMBERS.values()) <= numbers
    assert disputes == ["awaiting_merchant"]
    assert pending == 1
