"""Caller verification on a contact, on a real database: caller ID is weak, a recent amount is
knowledge, a code sent to the registered phone or email and read back is strong. What was said
(an amount, a code) is never kept; how and when each level was reached is."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from tests.integration.desk_support import (
    Member,
    attach,
    audit_events,
    contact_level,
    latest_code,
    make_staff,
    messages,
    open_call,
    send_money,
    staff_in,
    verify_strong,
)
from tests.integration.wallet_support import DECLINED, Books, Person

from walletdesk.db import Database
from walletdesk.hotline import calls
from walletdesk.hotline.models import Call, EntryStatus, QueueEntry
from walletdesk.kit import clock
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.support import verification
from walletdesk.support.models import Contact

LINA_PHONE = "+8613900139000"
LINA_EMAIL = "lina@example.com"
WANG_EMAIL = "wang@example.com"
HOTLINE = "+861095555"


@pytest.fixture
def agent(db: Database) -> Member:
    return make_staff(db, "agent.li")


@pytest.fixture
def lina(customer: Callable[..., Person]) -> Person:
    return customer("李娜", phone=LINA_PHONE, email=LINA_EMAIL)


@pytest.fixture
def wang(customer: Callable[..., Person]) -> Person:
    return customer("王芳", email=WANG_EMAIL)


def contact_row(db: Database, contact_id: int) -> Contact:
    with db.unit_of_work() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact


def say_amount(db: Database, agent: Member, contact_id: int, amount: int) -> DomainError | None:
    """The caller states an amount; whatever the answer, the attempt is committed."""
    with db.unit_of_work() as session:
        staff = staff_in(session, agent)
        contact = verification.own_contact(session, staff, contact_id)
        return verification.check_knowledge(session, contact, staff, amount=amount, currency="CNY")


def read_back(db: Database, agent: Member, contact_id: int, code: str) -> DomainError | None:
    with db.unit_of_work() as session:
        staff = staff_in(session, agent)
        contact = verification.own_contact(session, staff, contact_id)
        return verification.check_possession_code(session, contact, staff, code)


def send_code(db: Database, agent: Member, contact_id: int, channel: str) -> None:
    with db.unit_of_work() as session:
        staff = staff_in(session, agent)
        contact = verification.own_contact(session, staff, contact_id)
        verification.send_possession_code(session, contact, staff, channel)


# --- caller ID and who the caller says they are --------------------------------------------------


def test_caller_id_attaches_the_registered_customer_at_the_weak_level(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin="139 0013 9000")  # as the network may report it

    contact = contact_row(db, contact_id)
    assert contact.customer_id == lina.id
    assert contact.verification_level == "caller_id"
    assert contact.verification_steps == [
        {
            "level": "caller_id",
            "method": "caller_id",
            "passed": True,
            "customer": lina.id,
            "at": frozen_clock.now().isoformat(),
            "by": agent.id,
        }
    ]


@pytest.mark.parametrize("origin", ["+8613700137999", "anonymous", "lina@example.com", None])
def test_an_unknown_or_withheld_number_attaches_nobody(
    db: Database, agent: Member, lina: Person, origin: str | None, frozen_clock: FrozenClock
) -> None:
    contact = contact_row(db, open_call(db, agent, origin=origin))
    assert contact.customer_id is None
    assert contact.verification_level == "none"


def test_naming_another_customer_starts_verification_over(
    db: Database,
    agent: Member,
    lina: Person,
    customer: Callable[..., Person],
    frozen_clock: FrozenClock,
) -> None:
    wang = customer("王芳", phone="+8613700137000", email="wangfang@example.com")
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    verify_strong(db, agent, contact_id)
    assert contact_level(db, contact_id) == "strong"

    assert attach(db, agent, contact_id, "WangFang@Example.com") is True
    contact = contact_row(db, contact_id)
    assert (contact.customer_id, contact.verification_level) == (wang.id, "none")

    # A code Lina read back proves nothing about Wang.
    _destination, code = latest_code(db, lina.id)
    assert read_back(db, agent, contact_id, code) is not None
    assert contact_level(db, contact_id) == "none"

    assert attach(db, agent, contact_id, "nobody@example.com") is False
    assert contact_row(db, contact_id).customer_id is None


def test_naming_the_same_customer_again_keeps_the_level(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    assert attach(db, agent, contact_id, LINA_EMAIL) is True
    assert contact_level(db, contact_id) == "caller_id"


# --- knowledge ----------------------------------------------------------------------------------


def test_the_amount_of_money_recently_sent_is_knowledge_and_levels_only_rise(
    db: Database, agent: Member, lina: Person, wang: Person, books: Books, frozen_clock: FrozenClock
) -> None:
    send_money(db, books, lina.id, WANG_EMAIL, 123_45)
    contact_id = open_call(db, agent, origin=LINA_PHONE)

    assert say_amount(db, agent, contact_id, 123_45) is None
    assert contact_level(db, contact_id) == "knowledge"

    verify_strong(db, agent, contact_id)
    assert say_amount(db, agent, contact_id, 123_45) is None
    assert contact_level(db, contact_id) == "strong"


def test_three_wrong_amounts_close_the_knowledge_route_but_not_possession(
    db: Database, agent: Member, lina: Person, wang: Person, books: Books, frozen_clock: FrozenClock
) -> None:
    send_money(db, books, lina.id, WANG_EMAIL, 123_45)
    contact_id = open_call(db, agent, origin=LINA_PHONE)

    first, second, third = (say_amount(db, agent, contact_id, wrong) for wrong in (100, 200, 300))
    assert first is not None and first.code == "knowledge_mismatch"
    assert first.params["remaining"] == 2
    assert second is not None and second.params["remaining"] == 1
    assert third is not None and third.code == "knowledge_check_closed"
    with pytest.raises(DomainError) as closed:
        say_amount(db, agent, contact_id, 123_45)  # even the right amount, now
    assert closed.value.code == "knowledge_check_closed"
    assert contact_level(db, contact_id) == "caller_id"

    verify_strong(db, agent, contact_id)
    assert contact_level(db, contact_id) == "strong"
    steps = json.dumps(contact_row(db, contact_id).verification_steps)
    assert "12345" not in steps and "123.45" not in steps and "300" not in steps


def test_old_and_failed_transactions_prove_nothing(
    db: Database, agent: Member, lina: Person, wang: Person, books: Books, frozen_clock: FrozenClock
) -> None:
    send_money(db, books, lina.id, WANG_EMAIL, 500_00)
    frozen_clock.advance(timedelta(days=31))
    declined = books.top_up(lina.id, books.card(lina.id, DECLINED), 77_00)
    assert declined.status == "failed"
    contact_id = open_call(db, agent, origin=LINA_PHONE)

    assert say_amount(db, agent, contact_id, 500_00) is not None  # 31 days ago
    assert say_amount(db, agent, contact_id, 77_00) is not None  # never completed
    assert contact_level(db, contact_id) == "caller_id"


def test_money_received_proves_nothing_anyone_can_send_it(
    db: Database, agent: Member, lina: Person, wang: Person, books: Books, frozen_clock: FrozenClock
) -> None:
    send_money(db, books, wang.id, LINA_PHONE, 1_23)  # the impostor sends, then quotes it
    books.fund(lina.id, 88_00)  # and her own top-up is no secret from a card thief
    contact_id = open_call(db, agent, origin=LINA_PHONE)

    assert say_amount(db, agent, contact_id, 1_23) is not None
    assert say_amount(db, agent, contact_id, 88_00) is not None
    assert contact_level(db, contact_id) == "caller_id"


def test_knowledge_checks_are_limited_per_customer_across_contacts_and_she_is_told(
    db: Database, agent: Member, lina: Person, wang: Person, books: Books, frozen_clock: FrozenClock
) -> None:
    send_money(db, books, lina.id, WANG_EMAIL, 123_45)
    first = open_call(db, agent, origin=LINA_PHONE)
    for wrong in (100, 200, 300):
        say_amount(db, agent, first, wrong)
    second = open_call(db, agent, origin=LINA_PHONE)  # the same guesser calls again
    for wrong in (400, 500):
        assert say_amount(db, agent, second, wrong) is not None
    assert messages(db, lina.id, "desk_knowledge_check_locked") == []

    limited = say_amount(db, agent, second, 123_45)  # even the right amount, today

    assert limited is not None and limited.code == "knowledge_check_closed"
    assert contact_level(db, second) == "caller_id"
    told = messages(db, lina.id, "desk_knowledge_check_locked")
    assert sorted(channel for channel, _to, _params in told) == ["email", "inapp", "sms"]
    frozen_clock.advance(timedelta(days=2))
    assert say_amount(db, agent, open_call(db, agent, origin=LINA_PHONE), 123_45) is None


def test_knowledge_needs_a_customer_attached(
    db: Database, agent: Member, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=None)
    with pytest.raises(DomainError) as refused:
        say_amount(db, agent, contact_id, 100)
    assert refused.value.code == "contact_customer_required"


# --- possession -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "registered"), [("sms", LINA_PHONE), ("email", LINA_EMAIL)])
def test_the_code_goes_only_to_the_registered_phone_or_email(
    db: Database,
    agent: Member,
    lina: Person,
    channel: str,
    registered: str,
    frozen_clock: FrozenClock,
) -> None:
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    send_code(db, agent, contact_id, channel)

    destination, code = latest_code(db, lina.id)
    assert destination == registered
    assert read_back(db, agent, contact_id, code) is None
    contact = contact_row(db, contact_id)
    assert contact.verification_level == "strong"
    assert contact.verification_steps[-1]["method"] == f"code_{channel}"
    assert code not in json.dumps(contact.verification_steps)


def test_no_code_without_a_verified_address_of_that_kind(
    db: Database, agent: Member, customer: Callable[..., Person], frozen_clock: FrozenClock
) -> None:
    phone_only = customer("张伟", phone="+8613800138000")
    contact_id = open_call(db, agent, origin=phone_only.phone)
    with pytest.raises(DomainError) as refused:
        send_code(db, agent, contact_id, "email")
    assert refused.value.code == "channel_not_registered"


def test_a_wrong_code_counts_and_the_fifth_miss_voids_it(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    send_code(db, agent, contact_id, "sms")
    _destination, code = latest_code(db, lina.id)
    wrong = "000000" if code != "000000" else "111111"

    for _ in range(5):
        missed = read_back(db, agent, contact_id, wrong)
        assert missed is not None and missed.code == "code_invalid"
    assert read_back(db, agent, contact_id, code) is not None  # voided after five misses
    assert contact_level(db, contact_id) == "caller_id"


def test_a_code_sent_in_one_contact_proves_nothing_in_another(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    first = open_call(db, agent, origin=LINA_PHONE)
    second = open_call(db, agent, origin=LINA_PHONE)
    send_code(db, agent, first, "sms")
    _destination, code = latest_code(db, lina.id)

    assert read_back(db, agent, second, code) is not None
    assert read_back(db, agent, first, code) is None
    assert (contact_level(db, first), contact_level(db, second)) == ("strong", "caller_id")


def test_a_code_expires(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    send_code(db, agent, contact_id, "sms")
    _destination, code = latest_code(db, lina.id)
    frozen_clock.advance(timedelta(minutes=11))
    assert read_back(db, agent, contact_id, code) is not None


# --- whose contact ------------------------------------------------------------------------------


def test_another_agents_contact_and_an_ended_one_are_refused(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    other = make_staff(db, "agent.sam")
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    with pytest.raises(DomainError) as refused:
        say_amount(db, other, contact_id, 100)
    assert refused.value.code == "contact_not_yours"

    with db.unit_of_work() as session:
        verification.end_desk_contact(
            session, staff_in(session, agent), contact_id, summary="Hung up", next_steps="None"
        )
    with pytest.raises(DomainError) as ended:
        say_amount(db, agent, contact_id, 100)
    assert ended.value.code == "contact_ended"


def test_verification_steps_are_audited_without_what_was_said(
    db: Database, agent: Member, lina: Person, wang: Person, books: Books, frozen_clock: FrozenClock
) -> None:
    send_money(db, books, lina.id, WANG_EMAIL, 88_00)
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    say_amount(db, agent, contact_id, 99_00)
    verify_strong(db, agent, contact_id)
    _destination, code = latest_code(db, lina.id)

    events = audit_events(db, "desk.verification")
    assert [(e[2]["method"], e[2]["passed"]) for e in events] == [
        ("recent_amount", False),
        ("code_sms", True),
    ]
    assert all(actor == f"staff:{agent.id}" for actor, _s, _d in events)
    assert code not in json.dumps(events) and "9900" not in json.dumps(events)


# --- hotline calls: whose call, and whom it verified ---------------------------------------------


def hotline_call(db: Database, sid: str, customer_id: int | None) -> tuple[int, int]:
    """A call as the carrier's first webhook opens it, its caller identified by the IVR:
    (call id, contact id). Its contact has no agent until one accepts it from the queue."""
    with db.unit_of_work() as session:
        call = calls.start(
            session, sid=sid, from_number=LINA_PHONE, to_number=HOTLINE, state="menu"
        )
        call.customer_id = customer_id
        calls.note_verification(call, "caller_id", "caller_id")
        session.flush()  # calls.start leaves the new rows to the next flush
        assert call.contact_id is not None
        return call.id, call.contact_id


def connect(db: Database, call_id: int, agent: Member) -> None:
    """The agent holds the call's connected queue entry (what queue.accept leaves)."""
    with db.unit_of_work() as session:
        session.add(
            QueueEntry(
                call_id=call_id,
                queue="general",
                status=EntryStatus.CONNECTED,
                agent_id=agent.id,
                entered_at=clock.now(),
            )
        )


def test_nobody_takes_over_a_call_they_were_not_put_through_to(
    db: Database, agent: Member, lina: Person, frozen_clock: FrozenClock
) -> None:
    call_id, contact_id = hotline_call(db, "CA-take", lina.id)
    sam = make_staff(db, "agent.sam")

    for member in (agent, sam):  # unassigned: nobody's, and asking does not make it theirs
        with pytest.raises(DomainError) as refused:
            say_amount(db, member, contact_id, 100)
        assert refused.value.code == "contact_not_yours"
    assert contact_row(db, contact_id).agent_id is None

    connect(db, call_id, agent)
    assert say_amount(db, agent, contact_id, 100) is not None  # answered: her call now
    with pytest.raises(DomainError) as refused:
        say_amount(db, sam, contact_id, 100)
    assert refused.value.code == "contact_not_yours"


def test_a_calls_customer_cannot_be_changed_at_the_desk(
    db: Database, agent: Member, lina: Person, wang: Person, frozen_clock: FrozenClock
) -> None:
    _call_id, contact_id = hotline_call(db, "CA-fixed", lina.id)
    with db.unit_of_work() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        with pytest.raises(DomainError) as refused:
            verification.attach_customer(session, contact, staff_in(session, agent), WANG_EMAIL)
    assert refused.value.code == "contact_customer_fixed"
    assert contact_row(db, contact_id).customer_id == lina.id


def test_the_ivr_raises_the_level_only_for_the_customer_it_verified(
    db: Database, lina: Person, wang: Person, frozen_clock: FrozenClock
) -> None:
    call_id, contact_id = hotline_call(db, "CA-bound", lina.id)
    with db.unit_of_work() as session:
        contact = session.get(Contact, contact_id)
        call = session.get(Call, call_id)
        assert contact is not None and call is not None
        contact.customer_id = wang.id  # the contact is about someone else than the caller
        calls.note_verification(call, "strong", "code_sms")
        assert (contact.verification_level, call.verification) == ("none", "none")

        contact.customer_id = lina.id  # Lina's own steps count for Lina
        calls.note_verification(call, "caller_id", "caller_id")
        assert contact.verification_level == "strong"
        assert verification.methods_passed(contact.verification_steps, wang.id) == []


def test_steps_count_only_for_the_customer_attached_now(
    db: Database, agent: Member, lina: Person, wang: Person, frozen_clock: FrozenClock
) -> None:
    contact_id = open_call(db, agent, origin=LINA_PHONE)
    verify_strong(db, agent, contact_id)
    assert attach(db, agent, contact_id, WANG_EMAIL) is True
    assert contact_level(db, contact_id) == "none"

    assert attach(db, agent, contact_id, LINA_PHONE) is True
    assert contact_level(db, contact_id) == "strong"
    steps = contact_row(db, contact_id).verification_steps
    assert verification.methods_passed(steps, lina.id) == ["caller_id", "code_sms"]
    assert verification.methods_passed(steps, wang.id) == []
