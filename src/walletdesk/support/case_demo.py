"""Demo cases with fixed numbers the README can quote; loading twice changes nothing.

张伟 waits on a payment that failed (the desk asked him for details); Alice's refund question
is resolved and waits for her rating; 李娜's locked account is a high-priority case linked to
the risk engine's alert; 王芳's email about her lost phone went unanswered for days, so the
SLA breach list has something to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.risk.service import open_alerts
from walletdesk.staff.service import get_by_username
from walletdesk.support import cases
from walletdesk.support.models import Case, CasePriority, CaseStatus
from walletdesk.wallet.models import TxnStatus, WalletTransaction

DEMO_NUMBERS = {
    "zhangwei": "2601150016",
    "alice": "2601150027",
    "lina": "2601150034",
    "wangfang": "2601150042",
}
DEMO_AGENT = "agent.li"


def seed_demo(session: Session, customers: dict[str, int]) -> None:
    """Create the demo cases that are missing, then mark the SLA breaches that are due."""
    agent = get_by_username(session, DEMO_AGENT)
    staff = agent.actor if agent else "system"
    owner_id = agent.id if agent else None
    for key, make in (
        ("zhangwei", _zhangwei),
        ("alice", _alice),
        ("lina", _lina),
        ("wangfang", _wangfang),
    ):
        number = DEMO_NUMBERS[key]
        if session.execute(select(Case.id).where(Case.number == number)).first() is None:
            case = make(session, customers[key], number, staff)
            if owner_id is not None and key != "wangfang":
                cases.assign(session, case, owner_id, staff)
    cases.sweep_sla(session)


def _zhangwei(session: Session, customer_id: int, number: str, staff: str) -> Case:
    failed = session.execute(
        select(WalletTransaction.number)
        .where(
            WalletTransaction.customer_id == customer_id,
            WalletTransaction.kind == "payment",
            WalletTransaction.status == TxnStatus.FAILED,
        )
        .order_by(WalletTransaction.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    case = _customer_case(
        session,
        customer_id,
        number,
        type="payment_failed",
        subject="在城市百货付款失败",
        message="我在城市百货买手机，付款一直显示失败，钱有没有被扣？",
        links=[("transaction", failed)] if failed else [],
    )
    cases.reply(
        session,
        case,
        "张先生您好，这笔付款没有扣款成功，您的资金未受影响。请问您是想分几次付款，"
        "还是需要我们说明单笔限额？",
        staff,
    )
    cases.change_status(session, case, CaseStatus.WAITING_ON_CUSTOMER, staff)
    return case


def _alice(session: Session, customer_id: int, number: str, staff: str) -> Case:
    case = _customer_case(
        session,
        customer_id,
        number,
        type="refund",
        subject="Refund for the GameZone season pass",
        message="I bought the season pass by mistake. Can I get my money back?",
    )
    cases.reply(
        session,
        case,
        "Hello Alice, GameZone has agreed to refund the season pass; it reaches your USD "
        "wallet within 1 to 3 working days.",
        staff,
    )
    cases.change_status(session, case, CaseStatus.RESOLVED, staff, "Refund agreed with GameZone")
    return case


def _lina(session: Session, customer_id: int, number: str, staff: str) -> Case:
    alerts = [a.id for a in open_alerts(session, limit=500) if a.customer_id == customer_id]
    return _customer_case(
        session,
        customer_id,
        number,
        type="account_locked",
        subject="账户被锁定，无法付款",
        message="我的账户突然被锁定了，买衣服付不了款，怎么办？",
        links=[("risk_alert", str(alert_id)) for alert_id in alerts],
        priority=CasePriority.HIGH,
    )


def _wangfang(session: Session, customer_id: int, number: str, staff: str) -> Case:
    with _clock_back(timedelta(days=3)):  # nobody answered her for three days
        return cases.open_case(
            session,
            customer_id=customer_id,
            type="card",
            subject="手机丢了，账户已冻结，想换绑新手机",
            channel="email",
            actor=f"customer:{customer_id}",
            number=number,
        )


def _customer_case(
    session: Session,
    customer_id: int,
    number: str,
    *,
    type: str,
    subject: str,
    message: str,
    links: list[tuple[str, str]] | None = None,
    priority: str = CasePriority.NORMAL,
) -> Case:
    case = cases.open_case(
        session,
        customer_id=customer_id,
        type=type,
        subject=subject,
        channel="in_app",
        actor=f"customer:{customer_id}",
        links=links or (),
        priority=priority,
        number=number,
    )
    cases.customer_message(session, case, customer_id, message)
    return case


@contextmanager
def _clock_back(delta: timedelta) -> Iterator[None]:
    previous = clock.use_clock(clock.FrozenClock(clock.now() - delta))
    try:
        yield
    finally:
        clock.use_clock(previous)
