"""Demo data: customers, merchants and a history with something to ask the hotline about.

Loading twice changes nothing: people are found by phone, merchants by code, and every money
movement carries a fixed request key, so a second run finds the first run's transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.db import Database
from walletdesk.identity.passwords import hash_pin, hash_secret
from walletdesk.identity.service import credential_of, issue_api_session
from walletdesk.kit import clock
from walletdesk.kit.money import parse_amount
from walletdesk.risk import service as risk
from walletdesk.risk.rules import RiskEvent
from walletdesk.wallet.gateway import CardGateway
from walletdesk.wallet.models import Customer, CustomerStatus, Merchant, WalletTransaction
from walletdesk.wallet.service import (
    cards,
    customers,
    exchange,
    payments,
    topups,
    transfers,
    withdrawals,
)
from walletdesk.wallet.service.common import find_attempt

DEMO_PIN = "258036"


@dataclass(frozen=True)
class DemoPerson:
    key: str
    name: str
    phone: str
    email: str
    language: str
    token: str
    currencies: tuple[str, ...]
    note: str

    @property
    def password(self) -> str:
        return f"{self.key}-demo-passphrase"


PEOPLE = [
    DemoPerson(
        "zhangwei",
        "张伟",
        "+8613800138000",
        "zhangwei@example.com",
        "zh-CN",
        "demo-zhangwei",
        ("CNY", "USD"),
        "busy history: a failed payment, a game charge to dispute, a pending withdrawal",
    ),
    DemoPerson(
        "alice",
        "Alice Chen",
        "+14155550123",
        "alice@example.com",
        "en",
        "demo-alice",
        ("USD", "CNY"),
        "English-speaking; exchanged USD to CNY",
    ),
    DemoPerson(
        "lina",
        "李娜",
        "+8613900139000",
        "lina@example.com",
        "zh-CN",
        "demo-lina",
        ("CNY",),
        "locked by the risk engine (4 cards in a day); a payment was refused",
    ),
    DemoPerson(
        "wangfang",
        "王芳",
        "+8613700137000",
        "wangfang@example.com",
        "zh-CN",
        "demo-wangfang",
        ("CNY",),
        "froze her own account after losing her phone",
    ),
]

MERCHANTS = [
    ("LUCKYCOFFEE", "幸运咖啡 Lucky Coffee", ("CNY",), 60, "demo-merchant-luckycoffee"),
    ("GAMEZONE", "游戏星球 GameZone", ("CNY", "USD"), 100, "demo-merchant-gamezone"),
    ("CITYMALL", "城市百货 City Mall", ("CNY", "USD"), 30, "demo-merchant-citymall"),
]


def load(db: Database, gateway: CardGateway) -> dict[str, int]:
    """Create what is missing; returns customer ids by demo key.

    The history is written as if it happened over the last two days, an operation every 40
    minutes, as real use would spread it (all at one instant, it would look like a burst to
    the risk engine's velocity rules).
    """
    started = clock.now()
    demo_clock = clock.FrozenClock(started - timedelta(days=2))
    previous = clock.use_clock(_Ticking(demo_clock))
    try:
        return _load(db, gateway)
    finally:
        clock.use_clock(previous)


class _Ticking:
    """A clock that moves 40 minutes every time the demo asks for the time of a new record."""

    def __init__(self, inner: clock.FrozenClock) -> None:
        self._inner = inner

    def now(self) -> datetime:
        return self._inner.now()

    def tick(self) -> None:
        self._inner.advance(timedelta(minutes=40))


def _tick() -> None:
    current = clock.current()
    if isinstance(current, _Ticking):
        current.tick()


def _load(db: Database, gateway: CardGateway) -> dict[str, int]:
    with db.unit_of_work() as session:
        for code, name, currencies, fee_bps, key in MERCHANTS:
            if not session.execute(select(Merchant.id).where(Merchant.code == code)).first():
                customers.create_merchant(
                    session, code, name, currencies=currencies, fee_bps=fee_bps, api_key=key
                )
        ids = {person.key: _ensure_person(session, person) for person in PEOPLE}
    _history(db, gateway, ids)
    return ids


def _ensure_person(session: Session, person: DemoPerson) -> int:
    """A person with a password, a payment PIN, a verified phone and a fixed demo token."""
    existing = session.execute(
        select(Customer).where(Customer.phone == person.phone)
    ).scalar_one_or_none()
    if existing is not None:
        issue_api_session(session, existing.id, label="demo", token=person.token)
        return existing.id
    customer, _ = customers.create_customer(
        session,
        person.name,
        phone=person.phone,
        email=person.email,
        language=person.language,
        currencies=person.currencies,
        token=person.token,
    )
    credential = credential_of(session, customer.id)
    credential.password_hash = hash_secret(person.password)
    credential.pin_hash = hash_pin(customer.id, DEMO_PIN)
    credential.phone_verified_at = credential.email_verified_at = customer.created_at
    return customer.id


def _history(db: Database, gateway: CardGateway, ids: dict[str, int]) -> None:
    zhang, alice, lina, wang = ids["zhangwei"], ids["alice"], ids["lina"], ids["wangfang"]
    visa = _card(db, gateway, zhang, "4242424242424242")
    declined = _card(db, gateway, zhang, "4000000000000002")
    slow = _card(db, gateway, zhang, "4000000000000259")
    alice_card = _card(db, gateway, alice, "5555555555554444")
    lina_card = _card(db, gateway, lina, "6200000000000005")
    wang_card = _card(db, gateway, wang, "4242424242424242")

    def top(customer: int, card: int, amount: str, currency: str, key: str) -> None:
        with db.unit_of_work() as session:
            if find_attempt(session, f"demo:{key}"):
                return  # keep the story as first told: a retry would settle a timed-out top-up
        _tick()
        with db.unit_of_work() as session:
            topups.top_up(
                db,
                session,
                gateway,
                customer,
                card,
                parse_amount(amount, currency),
                currency,
                request_key=f"demo:{key}",
            )

    top(zhang, visa, "2000.00", "CNY", "zhang-topup")
    top(zhang, declined, "500.00", "CNY", "zhang-declined")
    top(alice, alice_card, "800.00", "USD", "alice-topup")
    top(lina, lina_card, "300.00", "CNY", "lina-topup")
    top(wang, wang_card, "150.00", "CNY", "wang-topup")

    coffee = _once(
        db,
        "zhang-coffee",
        lambda s, k: payments.pay(
            s, zhang, "LUCKYCOFFEE", 3800, "CNY", description="拿铁 x2", request_key=k
        ),
    )
    _once(
        db,
        "zhang-game",
        lambda s, k: payments.pay(
            s, zhang, "GAMEZONE", 64800, "CNY", description="648 钻石礼包", request_key=k
        ),
    )
    _once(
        db,
        "zhang-mall",
        lambda s, k: payments.pay(
            s, zhang, "CITYMALL", 500000, "CNY", description="手机", request_key=k
        ),
    )
    _once(
        db,
        "zhang-to-alice",
        lambda s, k: transfers.send(
            s, zhang, "alice@example.com", 10000, "CNY", note="晚饭 AA", request_key=k
        ),
    )
    _once(
        db,
        "zhang-withdraw",
        lambda s, k: withdrawals.withdraw(
            s, zhang, 20000, "CNY", "6222020200112233445", request_key=k
        ),
    )
    _once(
        db,
        "coffee-refund",
        lambda s, k: payments.refund(
            s, coffee.merchant_id or 0, coffee.number, 1000, reason="少做一杯", request_key=k
        ),
    )
    _once(
        db,
        "alice-exchange",
        lambda s, k: exchange.exchange(s, alice, 10000, "USD", "CNY", request_key=k),
    )
    _once(
        db,
        "alice-season-pass",
        lambda s, k: payments.pay(
            s, alice, "GAMEZONE", 1999, "USD", description="Season pass", request_key=k
        ),
    )

    _lock_by_risk_engine(db, gateway, lina)
    with db.unit_of_work() as session:
        customers.set_status(
            session, wang, CustomerStatus.FROZEN, "frozen by the customer: phone lost"
        )
    _once(
        db,
        "lina-blocked",
        lambda s, k: payments.pay(
            s, lina, "CITYMALL", 12000, "CNY", description="外套", request_key=k
        ),
    )
    top(zhang, slow, "100.00", "CNY", "zhang-timeout")


def _lock_by_risk_engine(db: Database, gateway: CardGateway, customer_id: int) -> None:
    """Four different cards in a day: the risk engine locks the account and opens an alert."""
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.status == CustomerStatus.LOCKED:
            return
    for number in ("5555555555554444", "4242424242424242", "4000000000009995"):
        _card(db, gateway, customer_id, number)
    with db.unit_of_work() as session:
        risk.evaluate(
            session, RiskEvent(kind="card_added", customer_id=customer_id, at=clock.now())
        )


def _once(
    db: Database, key: str, operation: Callable[[Session, str], WalletTransaction]
) -> WalletTransaction:
    _tick()
    with db.unit_of_work() as session:
        return operation(session, f"demo:{key}")


def _card(db: Database, gateway: CardGateway, customer_id: int, number: str) -> int:
    with db.unit_of_work() as session:
        return cards.add_card(session, gateway, customer_id, number, 12, 2030, "123").id


def load_desk(db: Database, ids: dict[str, int]) -> None:
    """The support desk's demo: staff with their fixed tokens, cases in each state, a dispute
    awaiting the merchant, an unlock waiting for a supervisor, two agents available for calls.
    Safe to run again.

    Runs at the real time, after `load`: sessions and SLA clocks start now, not two days ago.
    """
    from walletdesk.disputes import demo as dispute_demo
    from walletdesk.hotline import queue
    from walletdesk.staff import service as staff_service
    from walletdesk.support import actions, case_demo

    with db.unit_of_work() as session:
        staff_service.seed_demo(session)
    with db.unit_of_work() as session:
        case_demo.seed_demo(session, ids)
    with db.unit_of_work() as session:
        dispute_demo.seed_demo(session, ids)
    with db.unit_of_work() as session:
        staff_ids = {staff.username: staff.id for staff in staff_service.list_staff(session)}
        actions.seed_demo(session, staff_ids, ids)
        queue.seed_demo(session, staff_ids)
