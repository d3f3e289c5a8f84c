"""Every self-service path of the shipped call flow, through the softphone against the app."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from tests.integration.wallet_support import Books, Person, Shop

from walletdesk.db import Database
from walletdesk.disputes import service as disputes
from walletdesk.hotline.models import Call, CallStatus, QueueEntry
from walletdesk.hotline.softphone import Heard, Softphone
from walletdesk.identity.models import Credential
from walletdesk.identity.service import set_pin
from walletdesk.kit.clock import FrozenClock, as_utc
from walletdesk.notify.models import OutboxMessage
from walletdesk.notify.service import open_params
from walletdesk.notify.templates import render
from walletdesk.support import service as hours
from walletdesk.support.cases import customer_timeline
from walletdesk.support.models import Case, CaseEvent, Contact
from walletdesk.wallet.explain import explain
from walletdesk.wallet.models import Customer, CustomerStatus
from walletdesk.wallet.service import payments
from walletdesk.wallet.service.history import get_by_number

PIN = "258036"
TOKEN = "demo-twilio-auth-token"

Dial = Callable[..., tuple[Heard, Softphone]]


@pytest.fixture
def caller(db: Database, customer: Callable[..., Person], books: Books) -> Callable[..., Person]:
    """A customer with the payment PIN and 1,234.50 CNY."""

    def make(language: str = "zh-CN", *, pin: bool = True) -> Person:
        person = customer("张伟" if language == "zh-CN" else "Alice", language=language)
        with db.unit_of_work() as session:
            if pin:
                set_pin(session, person.id, PIN)
        books.fund(person.id, 123450)
        return person

    return make


@pytest.fixture
def dial(client: TestClient) -> Dial:
    def call(
        from_number: str, keys: str = "", *, language: str | None = None
    ) -> tuple[Heard, Softphone]:
        phone = Softphone(
            client,
            "http://testserver",
            TOKEN,
            from_number=from_number,
            keys=[k for k in keys.split(",")] if keys else [],
            language=language,
            show=lambda _: None,
        )
        return phone.call(), phone

    return call


def _call(db: Database, sid: str) -> Call:
    with db.unit_of_work() as session:
        found = session.execute(select(Call).where(Call.sid == sid)).scalar_one()
        session.expunge(found)
        return found


def test_balance_in_chinese_after_the_pin(db: Database, caller, dial: Dial) -> None:
    person = caller("zh-CN")
    heard, phone = dial(person.phone, f"1,{PIN}")
    text = heard.text()
    assert "您好，欢迎致电钱包客服。" in text
    assert "请输入六位支付密码" in text
    assert "您的可用余额为：1234.50 CNY。" in text
    call = _call(db, phone.sid)
    assert call.verification == "strong"
    assert PIN not in str(call.path) and PIN not in str(call.memory)
    assert call.status == CallStatus.COMPLETED and call.outcome == "self_service"


def test_the_pin_is_never_sent_to_the_database(db: Database, caller, dial: Dial) -> None:
    # Not even for a moment inside the webhook's transaction: a row version written and then
    # overwritten before the commit still reaches PostgreSQL's write-ahead log.
    person = caller("en")
    sent: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(repr(parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        heard, _ = dial(person.phone, f"1,{PIN}")
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert "Your available balance is: 1234.50 CNY." in heard.text()
    assert sent and not [parameters for parameters in sent if PIN in parameters]


def test_balance_in_english(db: Database, caller, dial: Dial) -> None:
    person = caller("en")
    heard, _ = dial(person.phone, f"1,{PIN}")
    assert "Your available balance is: 1234.50 CNY." in heard.text()


def _outbox(db: Database, customer_id: int, event: str) -> list[OutboxMessage]:
    with db.unit_of_work() as session:
        rows = session.execute(
            select(OutboxMessage).where(
                OutboxMessage.customer_id == customer_id, OutboxMessage.event == event
            )
        ).scalars()
        return list(rows)


def test_the_caller_gets_the_record_of_the_call(db: Database, caller, dial: Dial) -> None:
    person = caller("zh-CN")
    _, phone = dial(person.phone, f"1,{PIN}")
    call = _call(db, phone.sid)
    with db.unit_of_work() as session:
        contact = session.get(Contact, call.contact_id)
        assert contact is not None and contact.ended_at is not None
        assert contact.channel == "phone" and contact.origin == person.phone
        assert contact.verification_level == "strong"
        assert contact.summary == "电话服务：为您播报了账户余额"
        case = session.get(Case, contact.case_id)
        assert case is not None and case.customer_id == person.id and case.status == "resolved"
        timeline = customer_timeline(session, person.id, for_customer=True)
        assert [event.kind for event in timeline] == [
            "created",
            "status",  # open
            "status",  # resolved: the caller served themselves
            "contact_summary",
        ]
    assert _outbox(db, person.id, "contact_summary")


@pytest.mark.parametrize(
    ("language", "confirm", "done"),
    [
        ("zh-CN", "确认冻结请按 1", "您的账户已冻结。"),
        ("en", "To freeze your account now, press 1.", "Your account is now frozen."),
    ],
)
def test_freeze_needs_no_pin(db: Database, caller, dial: Dial, language, confirm, done) -> None:
    person = caller(language)
    heard, _ = dial(person.phone, "9,1")
    assert confirm in heard.text() and done in heard.text()
    with db.unit_of_work() as session:
        assert session.get(Customer, person.id).status == CustomerStatus.FROZEN
    assert _outbox(db, person.id, "account_frozen")


@pytest.mark.parametrize(
    ("language", "told"),
    [
        ("zh-CN", "您最近的交易如下：1月15日，充值收入 1234.50 CNY，已完成。"),
        ("en", "Your latest transactions are: on January 15, top-up in 1234.50 CNY, completed."),
    ],
)
def test_last_transactions_are_read_out(caller, dial: Dial, language: str, told: str) -> None:
    heard, _ = dial(caller(language).phone, f"2,{PIN}")
    assert told in heard.text()


def test_no_failed_payment_to_explain(caller, dial: Dial) -> None:
    heard, _ = dial(caller("zh-CN").phone, f"3,{PIN}")
    assert "您最近没有失败的付款。" in heard.text()


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_why_the_last_payment_failed(
    db: Database, caller, dial: Dial, merchant: Callable[..., Shop], language: str
) -> None:
    person = caller(language)
    merchant("SHOP")
    with db.unit_of_work() as session:
        number = payments.pay(session, person.id, "SHOP", 5000_00, "CNY").number
    heard, phone = dial(person.phone, f"3,{PIN}")
    # Word for word what an agent is shown for the same payment (wallet.explain).
    with db.unit_of_work() as session:
        told = explain(get_by_number(session, person.id, number), language)
    assert told.code == "insufficient_balance"
    gap = "" if language == "zh-CN" else " "  # Chinese sentences run on without a space
    assert f"{told.summary}{gap}{told.next_step}" in heard.said
    assert "explain_last_failure" in _call(db, phone.sid).actions


def _paid(db: Database, person: Person, amount: int) -> str:
    """A payment to SHOP the caller made; its number, as read on their statement."""
    with db.unit_of_work() as session:
        txn = payments.pay(session, person.id, "SHOP", amount, "CNY")
        assert txn.status == "succeeded"
        return txn.number


@pytest.mark.parametrize(
    ("language", "filed_as", "status_is"),
    [
        ("zh-CN", "您的争议已受理，服务单号是 {}。", "您的争议 {} 目前的状态是：等待商户答复。"),
        (
            "en",
            "We've opened your dispute as case {}.",
            "Your dispute {} is: waiting for the merchant's answer.",
        ),
    ],
)
def test_a_dispute_filed_by_phone_and_its_status_by_number(
    db: Database, caller, dial: Dial, merchant: Callable[..., Shop], language, filed_as, status_is
) -> None:
    person = caller(language)
    merchant("SHOP")
    _paid(db, person, 10_00)
    charged_twice = _paid(db, person, 88_00)
    # 6: dispute a payment; the PIN; the payment's number; 2: charged twice.
    heard, phone = dial(person.phone, f"6,{PIN},{charged_twice},2")
    with db.unit_of_work() as session:
        [filed] = disputes.customer_disputes(session, person.id).items
        view = disputes.dispute_status(session, person.id, filed.dispute.id)
        assert view.transaction_number == charged_twice
        assert (view.dispute.reason, view.dispute.status) == ("duplicate", "awaiting_merchant")
        case_number = view.case_number
    assert filed_as.format(case_number) in heard.text()
    with db.unit_of_work() as session:
        contact = session.get(Contact, _call(db, phone.sid).contact_id)
        assert session.get(Case, contact.case_id).number == case_number  # the call's record

    heard, _ = dial(person.phone, f"5,{PIN},{case_number}#")
    assert status_is.format(case_number) in heard.text()


@pytest.mark.parametrize(
    ("language", "told"),
    [
        ("zh-CN", "重置密码的链接或验证码已发送到您账户登记的手机或邮箱"),
        ("en", "We've sent a link or code to reset your password to the phone or email"),
    ],
)
def test_reset_code_goes_to_the_registered_phone(
    db: Database, caller, dial: Dial, language: str, told: str
) -> None:
    person = caller(language)
    heard, _ = dial(person.phone, "4")
    assert told in heard.text()
    sent = _outbox(db, person.id, "password_reset_code")
    assert [m.destination or m.channel for m in sent] and all(m.channel == "sms" for m in sent)


@pytest.mark.parametrize(
    ("language", "status", "not_found"),
    [
        (
            "zh-CN",
            "您的服务单 {} 目前的状态是：已受理，等待处理。",
            "抱歉，没有找到编号为 123 的服务单或争议。",
        ),
        (
            "en",
            "Your case {} is: received, waiting for us to start on it.",
            "Sorry, we couldn't find a case or dispute numbered 123.",
        ),
    ],
)
def test_case_status_by_its_number(
    db: Database, caller, dial: Dial, language: str, status: str, not_found: str
) -> None:
    from walletdesk.support.cases import open_case

    person = caller(language)
    with db.unit_of_work() as session:
        number = open_case(
            session,
            customer_id=person.id,
            type="other",
            subject="Help",
            channel="email",
            actor="test",
        ).number
    heard, _ = dial(person.phone, f"5,{PIN},{number}#")
    assert status.format(number) in heard.text()
    heard, _ = dial(person.phone, f"5,{PIN},123#")
    assert not_found in heard.text()


@pytest.mark.parametrize(
    ("language", "told"),
    [
        ("zh-CN", "我们的人工服务时间是：每天 08:00-22:00。"),
        ("en", "Our agents are available: every day, 08:00-22:00."),
    ],
)
def test_hours_are_read_out(caller, dial: Dial, language: str, told: str) -> None:
    heard, _ = dial(caller(language).phone, "7")
    assert told in heard.text()


def test_wrong_pins_lock_self_service_not_the_account(db: Database, caller, dial: Dial) -> None:
    person = caller("en")
    heard, _ = dial(person.phone, "1,111111,222222,333333")
    text = heard.text()
    assert text.count("That PIN isn't right.") == 2
    assert "phone self-service is locked for now. Your account itself is not affected." in text
    assert len(_outbox(db, person.id, "hotline_self_service_locked")) >= 1
    with db.unit_of_work() as session:
        assert session.get(Customer, person.id).status == CustomerStatus.ACTIVE
        assert session.get(Credential, person.id).pin_locked_until is None
    # Another call, even with the right PIN, finds self-service still locked.
    heard, phone = dial(person.phone, f"1,{PIN}")
    assert "Your available balance is" not in heard.text()
    assert "phone self-service is locked" in heard.text()
    assert _call(db, phone.sid).verification == "caller_id"


def test_a_pin_whose_key_was_removed_offers_a_person_and_counts_no_miss(
    db: Database, caller, dial: Dial
) -> None:
    person = caller("en")
    with db.unit_of_work() as session:
        credential = session.get(Credential, person.id)
        scheme, _key_id, salt, mac = credential.pin_hash.split(":")
        credential.pin_hash = ":".join((scheme, "retired", salt, mac))  # a key no longer set
    heard, phone = dial(person.phone, f"1,{PIN}")
    text = heard.text()
    assert "Sorry, we couldn't do that just now." in text
    assert "To speak with someone, press 0." in text
    assert "That PIN isn't right." not in text
    assert _call(db, phone.sid).verification == "caller_id"
    with db.unit_of_work() as session:
        assert session.get(Credential, person.id).pin_failures == 0


def test_an_unknown_caller_chooses_a_language_and_cannot_self_serve(
    db: Database, dial: Dial
) -> None:
    heard, phone = dial("+8613000000001", "1", language="en")
    text = heard.text()
    assert "Welcome to walletdesk. For English, press 2." in text
    assert "Sorry, self-service needs you to call from the phone number registered" in text
    with db.unit_of_work() as session:
        contact = session.get(Contact, _call(db, phone.sid).contact_id)
        assert contact.customer_id is None and contact.case_id is None and contact.ended_at


def test_reaching_the_queue_and_hanging_up(db: Database, caller, dial: Dial) -> None:
    person = caller("zh-CN")
    heard, phone = dial(person.phone, "0")
    assert "您目前排在第 1 位" in heard.text()
    assert "如果不想等待，请按 1" in heard.text()
    call = _call(db, phone.sid)
    assert call.status == CallStatus.ABANDONED
    with db.unit_of_work() as session:
        entry = session.execute(
            select(QueueEntry).where(QueueEntry.call_id == call.id)
        ).scalar_one()
        assert entry.status == "abandoned" and "zh-CN" in entry.skills


def test_a_callback_keeps_the_place(db: Database, caller, dial: Dial) -> None:
    person = caller("en")
    heard, phone = dial(person.phone, "0,1")
    assert "You keep your place in line" in heard.text()
    said = [event for event in heard.events if event[0] == "say"]
    assert len(said) == len(set(said))  # each line heard once
    assert heard.events[-1] == ("hangup", "hotline")
    with db.unit_of_work() as session:
        entry = session.execute(
            select(QueueEntry).where(QueueEntry.call_id == _call(db, phone.sid).id)
        ).scalar_one()
        assert entry.status == "callback" and entry.callback_number == person.phone


@pytest.fixture
def holiday(db: Database, frozen_clock: FrozenClock) -> date:
    """Today (Asia/Shanghai) is a holiday: the phone lines are closed all day."""
    today = (frozen_clock.now() + timedelta(hours=8)).date()
    with db.unit_of_work() as session:
        hours.add_exception(session, "phone", today, note="Spring Festival", actor="test")
    return today


def test_closed_on_a_holiday_offers_a_callback_at_opening(
    db: Database, caller, dial: Dial, holiday
) -> None:
    person = caller("zh-CN")
    heard, phone = dial(person.phone, "1")
    text = heard.text()
    assert "现在是非服务时间，我们将于 明天 08:00 恢复人工服务" in text
    assert "好的，我们会在 明天 08:00 回拨您现在使用的号码。" in text
    with db.unit_of_work() as session:
        entry = session.execute(
            select(QueueEntry).where(QueueEntry.call_id == _call(db, phone.sid).id)
        ).scalar_one()
        assert entry.status == "callback" and entry.not_before is not None
    # Hanging up after booking is the plan, not an abandoned call.
    call = _call(db, phone.sid)
    assert call.status == CallStatus.COMPLETED and call.outcome == "callback"


def test_closed_voicemail_opens_a_case(db: Database, caller, dial: Dial, holiday) -> None:
    person = caller("en")
    heard, phone = dial(person.phone, "2")
    assert "Please leave your name and how we can help after the tone" in heard.text()
    number = _call(db, phone.sid).memory["case_number"]
    assert f"Your message is saved as case {number}" in heard.text()


def test_freeze_works_when_closed(db: Database, caller, dial: Dial, holiday) -> None:
    person = caller("zh-CN")
    heard, _ = dial(person.phone, "9,1")
    assert "您的账户已冻结。" in heard.text()
    with db.unit_of_work() as session:
        assert session.get(Customer, person.id).status == CustomerStatus.FROZEN


def test_wrong_codes_lock_self_service_without_a_pin(db: Database, caller, dial: Dial) -> None:
    person = caller("en", pin=False)
    heard, _ = dial(person.phone, "1,000000,000001,000002")
    text = heard.text()
    assert "We've sent a six-digit code to your registered phone." in text
    assert text.count("That code isn't right.") == 2
    assert "phone self-service is locked for now" in text
    assert _outbox(db, person.id, "one_time_code")


def test_the_agent_who_takes_the_call_is_connected(
    db: Database, caller, client: TestClient
) -> None:
    from walletdesk.hotline import queue
    from walletdesk.staff.models import StaffRole
    from walletdesk.staff.service import create_staff

    person = caller("zh-CN")
    with db.unit_of_work() as session:
        agent, _ = create_staff(
            session,
            username="li",
            display_name="Li",
            role=StaffRole.AGENT,
            password="a long enough password 123",
            skills=("zh-CN",),
        )
        agent_id = agent.id

    taken: list[bool] = []

    def take_the_call(_: float) -> str:
        """While the caller waits, the agent comes online and accepts the offer."""
        if taken:
            return ""  # talking with the agent; then the caller hangs up
        taken.append(True)
        with db.unit_of_work() as session:
            staff = session.get(agent.__class__, agent_id)
            queue.set_presence(session, staff, "available")
            queue.route_all(session)
            offer = queue.current_offer(session, staff)
            assert offer is not None
            queue.accept(session, staff, offer.id, queue.LoopbackDialer())
        return ""  # the caller says nothing; the hold menu times out

    phone = Softphone(
        client,
        "http://testserver",
        TOKEN,
        from_number=person.phone,
        keys=["0"],
        ask=take_the_call,
        show=lambda _: None,
    )
    heard = phone.call()
    assert ("agent", f"staff-{agent_id}") in heard.events
    assert _call(db, phone.sid).agent_id == agent_id


# --- callbacks: the caller keeps their place, the agent accepts, the customer is dialled -------

_idempotency = itertools.count(1)


def _desk(client: TestClient, token: str, path: str, body: dict | None = None) -> dict:
    """An agent's desk API call: GET without a body, POST (idempotent) with one."""
    headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        answer = client.get(path, headers=headers)
    else:
        headers["Idempotency-Key"] = f"desk-{next(_idempotency)}"
        answer = client.post(path, json=body, headers=headers)
    assert answer.status_code < 300, answer.text
    return answer.json()


@pytest.fixture
def callback_waiting(db: Database, caller, dial: Dial) -> tuple[Person, Call, int, str]:
    """An English caller who chose to be called back, keeping their place, and the agent
    (Li Na, signed out) who will take the callback: the caller, their call, the agent's id
    and bearer token."""
    from walletdesk.staff.models import StaffRole
    from walletdesk.staff.service import create_staff, issue_session

    person = caller("en")
    _, phone = dial(person.phone, "0,1")
    with db.unit_of_work() as session:
        agent, _ = create_staff(
            session,
            username="li.na",
            display_name="Li Na",
            role=StaffRole.AGENT,
            password="a long enough password 123",
            skills=("en",),
        )
        agent_id, token = agent.id, issue_session(session, agent)
    return person, _call(db, phone.sid), agent_id, token


def _accept_next(client: TestClient, db: Database, token: str) -> tuple[int, Call]:
    """The agent becomes available and accepts the callback offered: its entry, the dial."""
    _desk(client, token, "/v1/desk/presence", {"state": "available"})
    offer = _desk(client, token, "/v1/desk/calls/offer")["offer"]
    assert offer is not None, "the callback is not offered"
    _desk(client, token, f"/v1/desk/calls/{offer['id']}/accept", {})
    with db.unit_of_work() as session:
        leg = session.execute(
            select(Call).where(Call.direction == "callback").order_by(Call.id.desc()).limit(1)
        ).scalar_one()
        session.expunge(leg)
    return offer["id"], leg


def _callee(client: TestClient, leg: Call) -> Softphone:
    """The customer's phone, ringing with the hotline's dial."""
    return Softphone(
        client,
        "http://testserver",
        TOKEN,
        from_number=leg.from_number,
        to_number=leg.to_number,
        sid=leg.sid,
        show=lambda _: None,
    )


def _notes(db: Database, call: Call) -> list[str]:
    with db.unit_of_work() as session:
        contact = session.get(Contact, call.contact_id)
        rows = session.execute(
            select(CaseEvent.body).where(
                CaseEvent.case_id == contact.case_id, CaseEvent.kind == "note"
            )
        ).scalars()
        return [body or "" for body in rows]


def test_a_callback_is_answered_and_put_through_to_the_agent(
    db: Database, client: TestClient, callback_waiting
) -> None:
    person, call, agent_id, token = callback_waiting
    entry_id, leg = _accept_next(client, db, token)
    # The loopback dialer placed the dial to the number the caller left.
    assert leg.to_number == person.phone and leg.memory["callback_entry_id"] == entry_id

    heard = _callee(client, leg).answer(f"/v1/voice/callback?entry={entry_id}")
    assert "This is walletdesk calling you back. Connecting you to Li Na." in heard.text()
    assert ("agent", f"staff-{agent_id}") in heard.events
    with db.unit_of_work() as session:
        assert session.get(Call, call.id).status == CallStatus.CONNECTED
        assert session.get(Call, leg.id).agent_id == agent_id
        assert session.get(QueueEntry, entry_id).status == "connected"
    assert "Callback answered (attempt 1)." in _notes(db, call)


def test_a_callback_for_an_entry_no_longer_connected_hangs_up(
    db: Database, client: TestClient, callback_waiting
) -> None:
    *_, token = callback_waiting
    entry_id, leg = _accept_next(client, db, token)
    heard = _callee(client, leg).answer(f"/v1/voice/callback?entry={entry_id + 1}")
    assert heard.said == [] and heard.events[-1] == ("hangup", "hotline")


def test_an_unanswered_callback_is_retried_then_fails_with_a_case_note(
    db: Database, client: TestClient, frozen_clock: FrozenClock, callback_waiting
) -> None:
    person, call, _, token = callback_waiting
    for attempt, status in enumerate(("no-answer", "busy", "no-answer"), start=1):
        entry_id, leg = _accept_next(client, db, token)
        _callee(client, leg).miss(status)
        with db.unit_of_work() as session:
            entry = session.get(QueueEntry, entry_id)
            assert entry.callback_attempts == attempt
            assert session.get(Call, leg.id).ended_at is not None
            if attempt == 3:
                assert entry.status == "callback_failed"
                continue
            # Back in its place; the next dial waits 120 s, then 240 s.
            delay = timedelta(seconds=120 * 2 ** (attempt - 1))
            assert entry.status == "callback"
            assert as_utc(entry.not_before) == frozen_clock.now() + delay
        frozen_clock.advance(delay)
    assert any("no answer after 3 attempts" in note for note in _notes(db, call))
    # The customer hears of it in the app and by SMS, in their language, with how often we tried.
    told = _outbox(db, person.id, "hotline_callback_failed")
    assert {m.channel for m in told} >= {"inapp", "sms"} and {m.language for m in told} == {"en"}
    text = render("hotline_callback_failed", open_params(told[0]), told[0].language).body
    assert text.startswith("We tried to call you back 3 times but couldn't reach you.")
