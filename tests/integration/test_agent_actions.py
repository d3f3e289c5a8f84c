"""The agent's guarded actions on a real database: each refused below its verification level,
dual control for unlocks and contact changes, a reset and a contact change never in one
contact, goodwill through the ledger within limits, the 48-hour hold after a contact change,
and every action audited with its level and told to the customer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.desk_support import (
    Member,
    attach,
    audit_events,
    latest_code,
    lock_by_risk_engine,
    make_staff,
    messages,
    open_call,
    overlapping,
    send_money,
    staff_in,
    status_of,
    verify_strong,
)
from tests.integration.wallet_support import Books, Person, Shop

from walletdesk.db import Database
from walletdesk.identity import service as identity
from walletdesk.identity.models import Credential
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.risk.models import RiskAlert
from walletdesk.staff.models import StaffRole
from walletdesk.support import actions, approvals
from walletdesk.support.cases import open_case, timeline
from walletdesk.support.models import AgentAction, Approval, Contact, VerificationLevel
from walletdesk.support.verification import check_knowledge, step
from walletdesk.wallet.models import WalletTransaction
from walletdesk.wallet.service import history, payments

LINA_PHONE = "+8613900139000"
LINA_EMAIL = "lina@example.com"
NEW_PHONE = "+8613911112222"
WANG_PHONE = "+8613700137000"


@pytest.fixture
def agent(db: Database) -> Member:
    return make_staff(db, "agent.li", per_action=50_00, per_day=100_00)


@pytest.fixture
def supervisor(db: Database) -> Member:
    return make_staff(db, "sup.chen", StaffRole.SUPERVISOR)


@pytest.fixture
def lina(customer: Callable[..., Person]) -> Person:
    return customer("李娜", phone=LINA_PHONE, email=LINA_EMAIL)


def act(db: Database, member: Member, action: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Run one desk service call as `member`, in its own unit of work."""
    with db.unit_of_work() as session:
        return action(session, staff_in(session, member), *args, **kw)


def refused(db: Database, member: Member, action: Callable[..., Any], *args: Any, **kw: Any) -> str:
    with pytest.raises(DomainError) as caught:
        act(db, member, action, *args, **kw)
    return caught.value.code


def strong_call(db: Database, agent: Member, person: Person) -> int:
    contact_id = open_call(db, agent, origin=person.phone)
    verify_strong(db, agent, contact_id)
    return contact_id


def approve(db: Database, member: Member, approval_id: int) -> Any:
    return act(db, member, approvals.approve, approval_id, "checked the call recording")


def balance(books: Books, customer_id: int) -> int:
    return books.wallet(customer_id).balance


# Each action, run on a contact with the least it needs to be attempted.
ACTIONS: dict[str, Callable[[Database, Member, int], Any]] = {
    "view_account": lambda db, m, c: act(db, m, actions.view_account, c, "en"),
    "explain": lambda db, m, c: act(db, m, actions.explain_for_agent, c, "123456789012", "en"),
    "send_password_reset": lambda db, m, c: act(
        db, m, actions.send_password_reset, c, channel="email"
    ),
    "unlock": lambda db, m, c: act(db, m, actions.request_unlock, c, reason="r"),
    "change_phone": lambda db, m, c: act(
        db, m, actions.request_contact_change, c, phone=NEW_PHONE, reason="r"
    ),
    "change_email": lambda db, m, c: act(
        db, m, actions.request_contact_change, c, email="new@example.com", reason="r"
    ),
    "goodwill": lambda db, m, c: act(
        db, m, actions.goodwill, c, amount=10_00, currency="CNY", reason="sorry"
    ),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_is_refused_below_its_level_and_leaves_nothing(
    db: Database,
    agent: Member,
    lina: Person,
    customer: Callable[..., Person],
    books: Books,
    action: str,
    frozen_clock: FrozenClock,
) -> None:
    customer("王芳", phone=WANG_PHONE)
    send_money(db, books, lina.id, WANG_PHONE, 42_00)
    contact_id = open_call(db, agent, origin=LINA_PHONE)  # caller ID: never enough alone
    if actions.MINIMUM_LEVEL[action] == "strong":
        with db.unit_of_work() as session:  # the caller knew a recent amount: still not enough
            staff = staff_in(session, agent)
            contact = session.get(Contact, contact_id)
            assert contact is not None
            assert check_knowledge(session, contact, staff, amount=42_00, currency="CNY") is None

    with pytest.raises(DomainError) as caught:
        ACTIONS[action](db, agent, contact_id)

    assert caught.value.code == "contact_verification_insufficient"
    assert caught.value.params["required"] == actions.MINIMUM_LEVEL[action]
    with db.unit_of_work() as session:
        assert session.execute(select(AgentAction)).first() is None
        assert session.execute(select(Approval)).first() is None
    assert messages(db, lina.id, "agent_action") == []
    assert messages(db, lina.id, "password_reset_link") == []


def test_freeze_works_unverified_but_needs_a_customer(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=None)
    assert refused(db, agent, actions.freeze, contact_id, reason="lost phone") == (
        "contact_customer_required"
    )
    assert attach(db, agent, contact_id, LINA_EMAIL)

    act(db, agent, actions.freeze, contact_id, reason="caller says the phone was stolen")

    assert status_of(db, lina.id) == "frozen"
    [(actor, subject, detail)] = audit_events(db, "desk.freeze")
    assert (actor, subject) == (f"staff:{agent.id}", f"customer:{lina.id}")
    assert detail["verification_level"] == "none"
    assert (detail["status_before"], detail["status_after"]) == ("active", "frozen")
    assert detail["contact_id"] == contact_id
    done = [params["done"] for channel, _d, params in messages(db, lina.id, "agent_action")]
    assert done and all("冻结了您的账户" in text for text in done)


@pytest.mark.parametrize(
    ("channel", "event", "registered"),
    [("email", "password_reset_link", LINA_EMAIL), ("sms", "password_reset_code", LINA_PHONE)],
)
def test_a_reset_sent_by_an_agent_goes_only_to_the_registered_channel(
    db: Database,
    agent: Member,
    lina: Person,
    channel: str,
    event: str,
    registered: str,
    frozen_clock: FrozenClock,
) -> None:
    contact_id = strong_call(db, agent, lina)

    result = act(db, agent, actions.send_password_reset, contact_id, channel=channel)

    assert result is None  # the agent gets neither the link nor the code
    [(_channel, destination, _params)] = messages(db, lina.id, event)
    assert destination == registered
    [(_actor, _subject, detail)] = audit_events(db, "desk.send_password_reset")
    assert detail["verification_level"] == "strong" and detail["channel"] == channel
    assert messages(db, lina.id, "agent_action")


def test_unlock_needs_another_supervisors_approval(
    db: Database,
    agent: Member,
    supervisor: Member,
    lina: Person,
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    lock_by_risk_engine(db, books, lina.id)
    contact_id = strong_call(db, agent, lina)

    approval = act(db, agent, actions.request_unlock, contact_id, reason="cards were hers")
    assert approval.status == "pending"
    assert status_of(db, lina.id) == "locked"  # nothing happens before a supervisor agrees

    assert refused(db, agent, approvals.approve, approval.id, "ok") == "approval_supervisor_only"

    # A supervisor taking a call cannot approve their own request either.
    own_call = strong_call(db, supervisor, lina)
    own = act(db, supervisor, actions.request_unlock, own_call, reason="cards were hers")
    assert refused(db, supervisor, approvals.approve, own.id, "ok") == "approval_self"
    assert status_of(db, lina.id) == "locked"

    approve(db, supervisor, approval.id)

    assert status_of(db, lina.id) == "active"
    with db.unit_of_work() as session:
        [alert] = session.execute(select(RiskAlert)).scalars()
        assert (alert.status, alert.resolved_by) == ("resolved", f"staff:{supervisor.id}")
        [row] = session.execute(select(AgentAction).where(AgentAction.action == "unlock")).scalars()
        assert (row.staff_id, row.approval_id, row.verification_level) == (
            agent.id,
            approval.id,
            "strong",
        )
    [(actor, _subject, detail)] = audit_events(db, "desk.unlock")
    assert actor == f"staff:{supervisor.id}"
    assert (detail["status_before"], detail["status_after"]) == ("locked", "active")
    assert detail["approval_id"] == approval.id and detail["requested_by"] == f"staff:{agent.id}"
    assert any("解锁了您的账户" in p["done"] for _c, _d, p in messages(db, lina.id, "agent_action"))
    # The supervisor's own request for the same customer now has nothing left to unlock.
    other = make_staff(db, "sup.wang", StaffRole.SUPERVISOR)
    assert refused(db, other, approvals.approve, own.id, "ok") == "account_not_locked"


def test_unlock_also_lifts_a_freeze(
    db: Database, agent: Member, supervisor: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = strong_call(db, agent, lina)
    act(db, agent, actions.freeze, contact_id, reason="lost phone")
    approval = act(db, agent, actions.request_unlock, contact_id, reason="found the phone")
    approve(db, supervisor, approval.id)
    assert status_of(db, lina.id) == "active"


def test_unlocking_an_active_account_is_refused(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = strong_call(db, agent, lina)
    assert refused(db, agent, actions.request_unlock, contact_id, reason="x") == (
        "account_not_locked"
    )


def test_a_reset_then_a_phone_change_in_one_contact_is_refused(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = strong_call(db, agent, lina)
    act(db, agent, actions.send_password_reset, contact_id, channel="email")

    for change in ({"phone": NEW_PHONE}, {"email": "new@example.com"}):
        code = refused(db, agent, actions.request_contact_change, contact_id, reason="x", **change)
        assert code == "action_conflicts_in_contact"

    # Nor in the next contact for a week: two calls would otherwise do what one may not.
    later = strong_call(db, agent, lina)
    code = refused(db, agent, actions.request_contact_change, later, phone=NEW_PHONE, reason="x")
    assert code == "reset_contact_change_cooldown"
    frozen_clock.advance(timedelta(days=7, minutes=1))
    week_on = strong_call(db, agent, lina)
    act(db, agent, actions.request_contact_change, week_on, phone=NEW_PHONE, reason="new SIM")


def test_a_reset_by_the_hotline_also_holds_off_a_contact_change_but_her_own_does_not(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    with db.unit_of_work() as session:
        identity.forgot_password(session, LINA_EMAIL, "email")  # she asked herself, in the app
    contact_id = strong_call(db, agent, lina)
    approval = act(
        db, agent, actions.request_contact_change, contact_id, phone=NEW_PHONE, reason="r"
    )
    assert approval.status == "pending"

    with db.unit_of_work() as session:
        identity.forgot_password(session, LINA_EMAIL, "email", sent_by="hotline")
    later = strong_call(db, agent, lina)
    code = refused(
        db, agent, actions.request_contact_change, later, email="x@example.com", reason="r"
    )
    assert code == "reset_contact_change_cooldown"


def test_no_reset_on_her_behalf_while_a_change_waits_or_for_a_week_after_one(
    db: Database, agent: Member, supervisor: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    first = strong_call(db, agent, lina)
    approval = act(db, agent, actions.request_contact_change, first, phone=NEW_PHONE, reason="r")

    second = strong_call(db, agent, lina)  # the same impostor, another call
    code = refused(db, agent, actions.send_password_reset, second, channel="email")
    assert code == "reset_contact_change_cooldown"

    approve(db, supervisor, approval.id)
    _destination, sent = latest_code(db, lina.id)
    act(db, agent, actions.confirm_contact_change, first, what="phone", code=sent)
    on_her_new_number = Person(lina.id, lina.token, NEW_PHONE, lina.email)
    third = strong_call(db, agent, on_her_new_number)
    code = refused(db, agent, actions.send_password_reset, third, channel="email")
    assert code == "reset_contact_change_cooldown"
    assert messages(db, lina.id, "password_reset_link") == []

    frozen_clock.advance(timedelta(days=7, minutes=1))
    week_on = strong_call(db, agent, on_her_new_number)
    act(db, agent, actions.send_password_reset, week_on, channel="email")
    assert len(messages(db, lina.id, "password_reset_link")) == 1


def test_a_payment_pin_is_knowledge_at_the_desk_never_strong(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    with db.unit_of_work() as session:  # the caller keyed her payment PIN in the IVR
        contact = session.get(Contact, contact_id)
        assert contact is not None
        step(contact, VerificationLevel.STRONG, "payment_pin", by=None, passed=True)

    act(db, agent, actions.view_account, contact_id, "en")  # knowledge is enough to look
    with pytest.raises(DomainError) as caught:
        act(db, agent, actions.goodwill, contact_id, amount=1_00, currency="CNY", reason="x")
    assert caught.value.code == "contact_verification_insufficient"
    assert caught.value.params == {"required": "strong", "current": "knowledge"}

    verify_strong(db, agent, contact_id)  # a code to her phone, read back: possession
    act(db, agent, actions.goodwill, contact_id, amount=1_00, currency="CNY", reason="x")


def test_a_phone_change_then_a_reset_in_one_contact_is_refused_even_once_rejected(
    db: Database, agent: Member, supervisor: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = strong_call(db, agent, lina)
    approval = act(
        db, agent, actions.request_contact_change, contact_id, phone=NEW_PHONE, reason="new SIM"
    )
    act(db, supervisor, approvals.reject, approval.id, "the caller hesitated")

    code = refused(db, agent, actions.send_password_reset, contact_id, channel="sms")
    assert code == "action_conflicts_in_contact"
    assert messages(db, lina.id, "password_reset_code") == []


def test_an_approved_phone_change_happens_when_the_new_numbers_code_comes_back(
    db: Database, agent: Member, supervisor: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = strong_call(db, agent, lina)
    approval = act(
        db, agent, actions.request_contact_change, contact_id, phone=NEW_PHONE, reason="new SIM"
    )
    with db.unit_of_work() as session:
        assert approvals.describe(session, approval)["details"] == {"new": "+861****2222"}
    approve(db, supervisor, approval.id)

    destination, code = latest_code(db, lina.id)
    assert destination == NEW_PHONE  # the code proves the new number, so it goes there
    told = messages(db, lina.id, "agent_action")
    assert {d for _c, d, _p in told} >= {LINA_PHONE, LINA_EMAIL}  # heard on the old ones

    wrong = act(db, agent, actions.confirm_contact_change, contact_id, what="phone", code="000")
    assert isinstance(wrong, DomainError)
    changed = act(db, agent, actions.confirm_contact_change, contact_id, what="phone", code=code)

    assert changed.phone == NEW_PHONE
    with db.unit_of_work() as session:
        credential = session.get(Credential, lina.id)
        assert credential is not None and credential.contact_changed_at is not None
    warned = {d for _c, d, _p in messages(db, lina.id, "contact_changed")}
    assert {LINA_PHONE, NEW_PHONE} <= warned  # the old number hears of it too


def test_large_payments_are_held_for_48_hours_after_a_contact_change(
    db: Database,
    client: TestClient,
    lina: Person,
    customer: Callable[..., Person],
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    wang = customer("王芳", phone="+8613700137000")
    books.fund(lina.id, 8_000_00)
    with db.unit_of_work() as session:
        identity.start_contact_change(session, lina.id, phone=NEW_PHONE, email=None)
    _destination, code = latest_code(db, lina.id)
    with db.unit_of_work() as session:
        assert not isinstance(
            identity.confirm_contact_change(session, lina.id, "phone", code), DomainError
        )

    def send(amount: str, key: str) -> Any:
        body = {"to": wang.phone, "amount": amount, "currency": "CNY"}
        return client.post(
            "/v1/transfers", json=body, headers={**lina.auth, "Idempotency-Key": key}
        )

    held = send("5000.00", "large-1")
    assert held.status_code == 403
    assert held.json()["code"] == "held_after_contact_change"
    assert held.json()["until"].startswith("2026-01-17T10:00")  # 48 h on, Asia/Shanghai
    assert send("100.00", "small-1").status_code == 201  # everyday amounts still move
    assert balance(books, wang.id) == 100_00

    frozen_clock.advance(timedelta(hours=47, minutes=59))
    assert send("5000.00", "large-2").json()["code"] == "held_after_contact_change"
    frozen_clock.advance(timedelta(minutes=1))
    assert send("5000.00", "large-3").status_code == 201
    assert balance(books, wang.id) == 5_100_00


def test_two_goodwill_credits_at_once_cannot_both_use_the_days_room(
    db: Database, lina: Person, frozen_clock: FrozenClock
) -> None:
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writer at a time: two credits cannot overlap there")
    agent = make_staff(db, "agent.wu", per_action=50_00, per_day=60_00)
    first, second = strong_call(db, agent, lina), strong_call(db, agent, lina)

    def credit(contact_id: int) -> Callable[[Any], str]:
        def run(session: Any) -> str:
            staff = staff_in(session, agent)
            done = actions.goodwill(
                session, staff, contact_id, amount=40_00, currency="CNY", reason="sorry"
            )
            return type(done).__name__

        return run

    outcomes = overlapping(db, credit(first), credit(second))

    assert outcomes == ("WalletTransaction", "Approval")  # 80.00 would pass the 60.00 a day
    with db.unit_of_work() as session:
        assert actions.goodwill_used_today(session, staff_in(session, agent)) == 40_00


def test_goodwill_within_limits_is_credited_through_the_ledger(
    db: Database, agent: Member, lina: Person, books: Books, frozen_clock: FrozenClock
) -> None:
    contact_id = strong_call(db, agent, lina)

    txn = act(
        db, agent, actions.goodwill, contact_id, amount=30_00, currency="CNY", reason="late refund"
    )

    assert isinstance(txn, WalletTransaction) and txn.status == "succeeded"
    assert balance(books, lina.id) == 30_00
    assert books.account("system:goodwill:CNY").balance == -30_00
    assert books.entries(txn.number) == [
        ("system:goodwill:CNY", -30_00),
        (f"wallet:{lina.id}:CNY", 30_00),
    ]
    assert books.verify() == []
    with db.unit_of_work() as session:  # the customer sees it in their history, as money in
        [seen] = history.list_transactions(session, lina.id, history.HistoryFilter()).items
        assert (seen.kind, history.direction(seen, lina.id)) == ("goodwill", "in")
    [(_actor, _subject, detail)] = audit_events(db, "desk.goodwill")
    assert (detail["amount"], detail["currency"], detail["verification_level"]) == (
        30_00,
        "CNY",
        "strong",
    )
    assert any("30.00 CNY" in p["done"] for _c, _d, p in messages(db, lina.id, "agent_action"))


def test_goodwill_above_the_per_action_limit_waits_for_a_supervisor(
    db: Database,
    agent: Member,
    supervisor: Member,
    lina: Person,
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    contact_id = strong_call(db, agent, lina)

    pending = act(
        db, agent, actions.goodwill, contact_id, amount=80_00, currency="CNY", reason="outage"
    )

    assert isinstance(pending, Approval) and pending.action == "goodwill"
    assert balance(books, lina.id) == 0
    approve(db, supervisor, pending.id)
    assert balance(books, lina.id) == 80_00
    with db.unit_of_work() as session:
        [row] = session.execute(
            select(AgentAction).where(AgentAction.action == "goodwill")
        ).scalars()
        assert (row.staff_id, row.approval_id, row.amount) == (agent.id, pending.id, 80_00)


def test_goodwill_above_the_daily_limit_waits_until_tomorrow_or_a_supervisor(
    db: Database,
    agent: Member,
    supervisor: Member,
    lina: Person,
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    contact_id = strong_call(db, agent, lina)

    def credit(amount: int) -> Any:
        return act(
            db, agent, actions.goodwill, contact_id, amount=amount, currency="CNY", reason="r"
        )

    assert isinstance(credit(40_00), WalletTransaction)
    assert isinstance(credit(40_00), WalletTransaction)
    over = credit(40_00)  # 120.00 today would pass the daily 100.00
    assert isinstance(over, Approval)
    approve(db, supervisor, over.id)
    assert balance(books, lina.id) == 120_00
    assert isinstance(credit(20_00), WalletTransaction)  # approved credits use no allowance

    frozen_clock.set(frozen_clock.now().replace(hour=15, minute=59))  # 23:59 in Shanghai
    assert isinstance(credit(10_00), Approval)
    frozen_clock.advance(timedelta(minutes=1))  # a new local day
    assert isinstance(credit(40_00), WalletTransaction)


def test_goodwill_in_another_currency_than_the_limits_needs_approval(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = strong_call(db, agent, lina)
    pending = act(db, agent, actions.goodwill, contact_id, amount=1_00, currency="USD", reason="r")
    assert isinstance(pending, Approval)


def test_approvals_expire_after_four_hours(
    db: Database,
    agent: Member,
    supervisor: Member,
    lina: Person,
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    lock_by_risk_engine(db, books, lina.id)
    contact_id = strong_call(db, agent, lina)
    approval = act(db, agent, actions.request_unlock, contact_id, reason="cards were hers")
    with db.unit_of_work() as session:
        assert [a.id for a in approvals.list_pending(session)] == [approval.id]

    frozen_clock.advance(timedelta(hours=4))
    expired = approve(db, supervisor, approval.id)

    assert isinstance(expired, DomainError) and expired.code == "approval_expired"
    assert status_of(db, lina.id) == "locked"
    with db.unit_of_work() as session:
        assert approvals.list_pending(session) == []
        stored = session.get(Approval, approval.id)
        assert stored is not None and stored.status == "expired"


def test_view_account_shows_money_history_cases_and_alerts_and_is_audited_silently(
    db: Database,
    agent: Member,
    lina: Person,
    books: Books,
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    shop = merchant("CITYMALL")
    books.fund(lina.id, 50_00)
    lock_by_risk_engine(db, books, lina.id)
    with db.unit_of_work() as session:
        refused_payment = payments.pay(session, lina.id, shop.code, 20_00, "CNY")
        open_case(
            session,
            customer_id=lina.id,
            type="account_locked",
            subject="Cannot pay",
            channel="phone",
            actor="system",
        )
    contact_id = strong_call(db, agent, lina)

    view = act(db, agent, actions.view_account, contact_id, "en")

    assert view.customer.id == lina.id
    assert [(b.currency, b.balance) for b in view.balances] == [("CNY", 50_00)]
    assert view.recent[0].number == refused_payment.number
    assert view.recent[0].failure_code == "account_locked"
    assert [case.subject for case in view.open_cases] == ["Cannot pay"]
    [(_alert, why)] = view.open_alerts
    assert why  # the risk engine's reasons, in words
    [(_actor, _subject, detail)] = audit_events(db, "desk.view_account")
    assert detail["verification_level"] == "strong"
    assert messages(db, lina.id, "agent_action") == []  # looking is not messaged


def test_explain_gives_the_customers_own_explanation_with_the_account_state(
    db: Database,
    agent: Member,
    lina: Person,
    books: Books,
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    shop = merchant("CITYMALL")
    books.fund(lina.id, 10_00)
    lock_by_risk_engine(db, books, lina.id)
    with db.unit_of_work() as session:
        failed = payments.pay(session, lina.id, shop.code, 20_00, "CNY")
    contact_id = strong_call(db, agent, lina)

    answer = act(db, agent, actions.explain_for_agent, contact_id, failed.number, "zh-CN")

    assert answer.explanation.code == "account_locked"
    assert "锁定" in answer.explanation.summary
    assert answer.risk and answer.account_status == "locked"
    assert audit_events(db, "desk.explain")[0][2]["number"] == failed.number


def test_someone_elses_transaction_is_not_found(
    db: Database,
    agent: Member,
    lina: Person,
    customer: Callable[..., Person],
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    wang = customer("王芳", phone="+8613700137000")
    books.fund(wang.id, 10_00)
    with db.unit_of_work() as session:
        [theirs] = history.list_transactions(session, wang.id, history.HistoryFilter()).items
    contact_id = strong_call(db, agent, lina)
    code = refused(db, agent, actions.explain_for_agent, contact_id, theirs.number, "en")
    assert code == "transaction_not_found"


def test_a_case_gets_a_timeline_line_for_each_action(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    with db.unit_of_work() as session:
        case = open_case(
            session,
            customer_id=lina.id,
            type="login",
            subject="Forgot password",
            channel="phone",
            actor="system",
        )
        contact = session.get(Contact, contact_id)
        assert contact is not None
        contact.case_id = case.id
    verify_strong(db, agent, contact_id)
    act(db, agent, actions.send_password_reset, contact_id, channel="email")
    act(db, agent, actions.view_account, contact_id, "en")

    with db.unit_of_work() as session:
        events = [e for e in timeline(session, case, for_customer=False) if e.kind == "action"]
        visible = [e for e in timeline(session, case, for_customer=True) if e.kind == "action"]
    assert [e.data["action"] for e in events] == ["send_password_reset", "view_account"]
    assert [e.body for e in visible] == ["向您登记的邮箱发送了密码重置信息"]


def test_a_request_stands_only_for_the_customer_it_was_made_for(
    db: Database,
    agent: Member,
    supervisor: Member,
    lina: Person,
    customer: Callable[..., Person],
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    wang = customer("王芳", phone="+8613700137000", email="wangfang@example.com")
    contact_id = strong_call(db, agent, lina)
    pending = act(
        db, agent, actions.goodwill, contact_id, amount=90_00, currency="CNY", reason="outage"
    )
    assert attach(db, agent, contact_id, wang.email or "")

    assert refused(db, supervisor, approvals.approve, pending.id, "ok") == (
        "approval_customer_changed"
    )
    assert balance(books, lina.id) == balance(books, wang.id) == 0


def test_demo_seed_leaves_one_unlock_for_a_supervisor(
    db: Database,
    agent: Member,
    supervisor: Member,
    lina: Person,
    books: Books,
    frozen_clock: FrozenClock,
) -> None:
    lock_by_risk_engine(db, books, lina.id)
    for _ in range(2):  # loading the demo twice changes nothing
        with db.unit_of_work() as session:
            actions.seed_demo(session, {"agent.li": agent.id}, {"lina": lina.id})

    with db.unit_of_work() as session:
        [pending] = approvals.list_pending(session)
        seen = approvals.describe(session, pending)
    assert (seen["action"], seen["requested_by"], seen["verification_level"]) == (
        "unlock",
        agent.id,
        "strong",
    )
    assert messages(db, lina.id, "contact_summary")  # she got the record of the call
    approve(db, supervisor, pending.id)
    assert status_of(db, lina.id) == "active"
