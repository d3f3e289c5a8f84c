"""The case desk's service layer on a real database: status machine, SLA clocks and breaches,
complaints with their record, satisfaction ratings and reports, demo cases.

The clock starts on Thursday 2026-01-15 at 10:00 in Beijing; the phone hours (which the
ordinary and complaint policies count in) are 08:00-22:00 every day there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from tests.integration.desk_support import Member, audit_events, make_staff, messages
from tests.integration.wallet_support import Books, Person

from walletdesk.db import Database
from walletdesk.kit import ids
from walletdesk.kit.clock import FrozenClock, as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.notify.templates import render
from walletdesk.staff.models import StaffRole
from walletdesk.support import case_demo, cases, csat
from walletdesk.support.models import Case, CaseEvent, CaseStatus
from walletdesk.wallet.service import customers as customer_accounts

BEIJING = timezone(timedelta(hours=8))
HOUR = timedelta(hours=1)


def beijing(*args: int) -> datetime:
    """A Beijing wall-clock time as the UTC instant the clock and the database deal in."""
    return datetime(*args, tzinfo=BEIJING).astimezone(UTC)


@pytest.fixture
def clock_at_ten(frozen_clock: FrozenClock) -> FrozenClock:
    frozen_clock.set(beijing(2026, 1, 15, 10))
    return frozen_clock


@pytest.fixture
def agent(db: Database) -> Member:
    return make_staff(db, "agent.li")


def actor(member: Member) -> str:
    return f"staff:{member.id}"


def open_for(db: Database, person: Person, **fields: Any) -> str:
    """A case the customer opened in the app; its number."""
    fields.setdefault("type", "payment_failed")
    fields.setdefault("subject", "付款失败")
    fields.setdefault("message", "我在幸运咖啡付款失败了")
    with db.unit_of_work() as session:
        return cases.open_customer_case(session, person.id, **fields).number


def act(db: Database, number: str, do: Callable[[Any, Case], Any]) -> Any:
    """Run `do(session, case)` in its own unit of work, as one request would."""
    with db.unit_of_work() as session:
        return do(session, cases.find_case(session, number, for_update=True))


def read(db: Database, number: str) -> Case:
    with db.unit_of_work() as session:
        case = cases.find_case(session, number)
        session.expunge(case)
        return case


def events(db: Database, number: str, *, for_customer: bool) -> list[tuple[str, str | None]]:
    with db.unit_of_work() as session:
        case = cases.find_case(session, number)
        return [(e.kind, e.body) for e in cases.timeline(session, case, for_customer=for_customer)]


def resolve(db: Database, number: str, by: Member) -> None:
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.OPEN, actor(by)))
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.RESOLVED, actor(by)))


# --- opening and the status machine ----------------------------------------------------------


def test_a_new_case_gets_its_deadlines_from_the_policy_in_business_hours(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person]
) -> None:
    number = open_for(db, customer("张伟"))
    case = read(db, number)
    assert ids.is_valid_number(number, cases.CASE_NUMBER_LENGTH)
    assert (case.status, case.channel, case.priority) == ("new", "in_app", "normal")
    # normal: first answer in 4 service hours, solved in 42 (three 14-hour days from 10:00).
    assert as_utc(case.first_response_due) == beijing(2026, 1, 15, 14)
    assert as_utc(case.resolution_due) == beijing(2026, 1, 18, 10)
    assert events(db, number, for_customer=True) == [
        ("created", "付款失败"),
        ("message_in", "我在幸运咖啡付款失败了"),
    ]


def test_the_first_response_is_the_first_thing_staff_say_to_the_customer(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    number = open_for(db, customer())
    clock_at_ten.advance(HOUR)
    act(db, number, lambda s, c: cases.add_note(s, c, "checking the gateway log", actor(agent)))
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.OPEN, actor(agent)))
    assert read(db, number).first_response_at is None  # a note and a status are not answers
    clock_at_ten.advance(HOUR)
    act(db, number, lambda s, c: cases.reply(s, c, "请提供交易号", actor(agent)))
    clock_at_ten.advance(HOUR)
    act(db, number, lambda s, c: cases.reply(s, c, "again", actor(agent)))
    assert as_utc(read(db, number).first_response_at) == beijing(2026, 1, 15, 12)


def test_a_case_an_agent_opens_during_a_call_is_answered_at_once(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    person = customer()
    with db.unit_of_work() as session:
        case = cases.open_case(
            session,
            customer_id=person.id,
            type="login",
            subject="Forgot password",
            channel="phone",
            actor=actor(agent),
        )
        assert as_utc(case.first_response_at) == beijing(2026, 1, 15, 10)


def test_a_bad_transition_is_refused_and_changes_nothing(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    number = open_for(db, customer())
    with pytest.raises(DomainError) as raised:
        act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.RESOLVED, actor(agent)))
    assert raised.value.code == "case_transition_invalid" and raised.value.status == 409
    assert raised.value.params == {"from_status": "new", "to_status": "resolved"}
    assert read(db, number).status == "new"


def test_status_changes_are_on_the_customers_timeline_and_audited(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    number = open_for(db, customer())
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.OPEN, actor(agent), "在查"))
    assert ("status", "在查") in events(db, number, for_customer=True)
    assert audit_events(db, "case.status_changed") == [
        (actor(agent), f"case:{number}", {"from": "new", "to": "open"})
    ]


def test_notes_assignments_and_priorities_stay_internal(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    number = open_for(db, customer())
    act(db, number, lambda s, c: cases.add_note(s, c, "customer sounded stressed", actor(agent)))
    act(db, number, lambda s, c: cases.assign(s, c, agent.id, actor(agent)))
    act(db, number, lambda s, c: cases.set_priority(s, c, "high", actor(agent)))
    kinds = [kind for kind, _ in events(db, number, for_customer=True)]
    assert kinds == ["created", "message_in"]
    staff_kinds = [kind for kind, _ in events(db, number, for_customer=False)]
    assert staff_kinds[-3:] == ["note", "assigned", "priority"]
    assert read(db, number).owner_id == agent.id
    assert [a for a, *_ in audit_events(db, "case.assigned")] == [actor(agent)]


def test_only_active_agents_and_supervisors_can_own_a_case(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    analyst = make_staff(db, "risk.zhao", StaffRole.RISK_ANALYST)
    number = open_for(db, customer())
    for staff_id in (analyst.id, 999_999):
        with pytest.raises(DomainError) as raised:
            act(db, number, lambda s, c, who=staff_id: cases.assign(s, c, who, actor(agent)))
        assert raised.value.code == "case_assignee_invalid"
    act(db, number, lambda s, c: cases.assign(s, c, None, actor(agent)))
    assert read(db, number).owner_id is None


def test_a_higher_priority_brings_the_deadlines_forward_from_the_opening(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    number = open_for(db, customer())
    clock_at_ten.advance(HOUR)
    act(db, number, lambda s, c: cases.set_priority(s, c, "high", actor(agent)))
    case = read(db, number)
    # high: 2 and 14 service hours from 10:00 (10-22 is 12, then 2 on Friday morning).
    assert as_utc(case.first_response_due) == beijing(2026, 1, 15, 12)
    assert as_utc(case.resolution_due) == beijing(2026, 1, 16, 10)
    with pytest.raises(DomainError) as raised:
        act(db, number, lambda s, c: cases.set_priority(s, c, "whenever", actor(agent)))
    assert raised.value.code == "case_priority_invalid"


def test_a_priority_change_keeps_the_time_already_spent_waiting_on_the_customer(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    person = customer()
    number = open_for(db, person)
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.OPEN, actor(agent)))
    act(db, number, lambda s, c: cases.change_status(s, c, "waiting_on_customer", actor(agent)))
    clock_at_ten.advance(3 * HOUR)
    act(db, number, lambda s, c: cases.customer_message(s, c, person.id, "交易号 123"))
    act(db, number, lambda s, c: cases.set_priority(s, c, "high", actor(agent)))
    assert as_utc(read(db, number).resolution_due) == beijing(2026, 1, 16, 13)  # 10:00 + 3 h


# --- the SLA clock: pause, resume, breaches ----------------------------------------------------


def test_waiting_on_the_customer_stops_the_resolution_clock(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    person = customer()
    number = open_for(db, person)
    act(db, number, lambda s, c: cases.reply(s, c, "请提供交易号", actor(agent)))
    act(db, number, lambda s, c: cases.change_status(s, c, "waiting_on_customer", actor(agent)))
    assert read(db, number).sla_paused_at is not None
    # The customer answers at 09:00 next morning: 12 + 1 service hours passed while waiting.
    clock_at_ten.set(beijing(2026, 1, 16, 9))
    landed = act(db, number, lambda s, c: cases.customer_message(s, c, person.id, "123456789012"))
    assert landed.number == number
    case = read(db, number)
    assert case.status == "open" and case.sla_paused_at is None
    assert as_utc(case.resolution_due) == beijing(2026, 1, 19, 9)  # Sunday 10:00 + 13 h


def test_the_sweep_marks_each_breach_once_and_skips_paused_cases(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    late = open_for(db, customer())
    answered = open_for(db, customer())
    waiting = open_for(db, customer())
    act(db, answered, lambda s, c: cases.reply(s, c, "在处理", actor(agent)))
    act(db, waiting, lambda s, c: cases.reply(s, c, "请提供交易号", actor(agent)))
    act(db, waiting, lambda s, c: cases.change_status(s, c, "waiting_on_customer", actor(agent)))

    clock_at_ten.set(beijing(2026, 1, 15, 14))
    with db.unit_of_work() as session:
        assert cases.sweep_sla(session) == []  # due at 14:00, so not late yet
    clock_at_ten.advance(timedelta(minutes=1))
    with db.unit_of_work() as session:
        assert [c.number for c in cases.sweep_sla(session)] == [late]
    with db.unit_of_work() as session:
        assert cases.sweep_sla(session) == []  # once

    clock_at_ten.set(beijing(2026, 1, 18, 11))  # past the 42-hour resolution target
    with db.unit_of_work() as session:
        assert sorted(c.number for c in cases.sweep_sla(session)) == sorted([late, answered])
    with db.unit_of_work() as session:
        assert cases.sweep_sla(session) == []
        breached = {c.number for c in cases.sla_breaches(session)}
    assert breached == {late, answered}  # the waiting case's clock stood still

    case = read(db, late)
    assert as_utc(case.first_response_breached_at) == beijing(2026, 1, 15, 14, 1)
    assert as_utc(case.resolution_breached_at) == beijing(2026, 1, 18, 11)
    internal = [k for k, _ in events(db, late, for_customer=False) if k == "sla_breach"]
    assert len(internal) == 2 and "sla_breach" not in dict(events(db, late, for_customer=True))
    breaches = audit_events(db, "case.sla_breached")
    assert [(a, s, d["target"]) for a, s, d in breaches] == [
        ("system", f"case:{late}", "first_response"),
        ("system", f"case:{late}", "resolution"),
        ("system", f"case:{answered}", "resolution"),
    ]


def test_a_resolved_case_closes_itself_after_a_quiet_week(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    number = open_for(db, customer())
    resolve(db, number, agent)
    clock_at_ten.advance(timedelta(days=6))
    with db.unit_of_work() as session:
        assert cases.close_resolved(session) == []
    clock_at_ten.advance(timedelta(days=1))
    with db.unit_of_work() as session:
        assert [c.number for c in cases.close_resolved(session)] == [number]
    assert read(db, number).status == "closed"


def test_writing_on_a_closed_case_opens_a_new_one_linked_both_ways(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    person = customer()
    number = open_for(db, person)
    resolve(db, number, agent)
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.CLOSED, "system"))
    follow_up = act(db, number, lambda s, c: cases.customer_message(s, c, person.id, "又失败了"))
    assert follow_up.number != number
    with db.unit_of_work() as session:
        new = cases.find_case(session, follow_up.number)
        old = cases.find_case(session, number)
        assert [(x.kind, x.ref) for x in cases.links_of(session, new)] == [("case", number)]
        assert [(x.kind, x.ref) for x in cases.links_of(session, old)] == [("case", new.number)]
        assert (old.status, new.status, new.type) == ("closed", "new", "payment_failed")
    assert ("message_in", "又失败了") in events(db, follow_up.number, for_customer=True)


def test_a_reply_reaches_the_customer_threaded_by_case_number(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    person = customer(email="zhang@example.com")
    number = open_for(db, person)
    act(db, number, lambda s, c: cases.reply(s, c, "请提供交易号", actor(agent)))
    sent = messages(db, person.id, "case_reply")
    assert [channel for channel, *_ in sent] == ["inapp", "email"]
    params = sent[0][2]
    assert render("case_reply", params, "zh-CN").subject == f"[工单 {number}] 付款失败"
    assert render("case_reply", params, "en").subject == f"[Case {number}] 付款失败"
    assert read(db, number).status == "open"  # replying opened the new case


def test_the_app_links_only_the_customers_own_transaction(
    db: Database,
    clock_at_ten: FrozenClock,
    customer: Callable[..., Person],
    books: Books,
) -> None:
    owner, stranger = customer(), customer()
    txn = books.top_up(owner.id, books.card(owner.id), 10_000)
    number = open_for(db, owner, transaction_number=txn.number)
    with db.unit_of_work() as session:
        linked = cases.links_of(session, cases.find_case(session, number))
        assert [(x.kind, x.ref) for x in linked] == [("transaction", txn.number)]
        assert [c.number for c in cases.cases_linked_to(session, "transaction", txn.number)] == [
            number
        ]
    with pytest.raises(DomainError) as raised:
        open_for(db, stranger, transaction_number=txn.number)
    assert raised.value.code == "transaction_not_found"


# --- complaints --------------------------------------------------------------------------------


def test_a_complaint_carries_the_record_and_has_its_own_sla(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    person = customer(email="wang@example.com")
    number = open_for(db, person)
    act(db, number, lambda s, c: cases.add_note(s, c, "internal: gateway bug", actor(agent)))
    act(db, number, lambda s, c: cases.reply(s, c, "已为您处理", actor(agent)))
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.RESOLVED, actor(agent)))
    clock_at_ten.set(beijing(2026, 1, 15, 20))
    me = f"customer:{person.id}"
    complaint = act(db, number, lambda s, c: cases.escalate_to_complaint(s, c, me, "根本没解决"))

    with db.unit_of_work() as session:
        filed = cases.find_case(session, complaint.number)
        original = cases.find_case(session, number)
        assert filed.is_complaint and filed.escalated_from_id == original.id
        assert (filed.priority, filed.queue, filed.status) == ("high", "complaints", "new")
        # The complaint policy: a first answer within 4 phone-hours (20-22, then 08-10).
        assert as_utc(filed.first_response_due) == beijing(2026, 1, 16, 10)
        assert as_utc(filed.resolution_due) == beijing(2026, 1, 17, 20)
        first = (
            session.execute(
                select(CaseEvent).where(CaseEvent.case_id == filed.id).order_by(CaseEvent.id)
            )
            .scalars()
            .first()
        )
        assert first is not None and first.body == "根本没解决"
        record = first.data["record"]
        assert first.data["escalated_from"] == number
        assert [line["kind"] for line in record] == [
            "created",
            "message_in",
            "status",
            "message_out",
            "status",
        ]
        assert "已为您处理" in [line["body"] for line in record]
        assert "internal: gateway bug" not in str(record)  # only what the customer saw
        assert [(x.kind, x.ref) for x in cases.links_of(session, filed)] == [("case", number)]
        assert ("case", filed.number) in [
            (x.kind, x.ref) for x in cases.links_of(session, original)
        ]
    sent = messages(db, person.id, "complaint_opened")
    assert [channel for channel, *_ in sent] == ["inapp", "email"]
    assert sent[0][2]["case_number"] == complaint.number and sent[0][2]["original_number"] == number
    assert audit_events(db, "case.complaint_opened") == [
        (me, f"case:{complaint.number}", {"escalated_from": number})
    ]

    with pytest.raises(DomainError) as raised:
        act(db, number, lambda s, c: cases.escalate_to_complaint(s, c, me, "again"))
    assert raised.value.code == "complaint_exists"
    assert raised.value.params["complaint_number"] == complaint.number


def test_complaints_go_to_the_least_busy_supervisor_and_only_to_supervisors(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    busy = make_staff(db, "sup.busy", StaffRole.SUPERVISOR)
    free = make_staff(db, "sup.free", StaffRole.SUPERVISOR)
    owners = []
    for _ in range(3):
        person = customer()
        number = open_for(db, person)
        act(db, number, lambda s, c: cases.reply(s, c, "已处理", actor(agent)))
        act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.RESOLVED, actor(agent)))
        me = f"customer:{person.id}"
        complaint = act(
            db, number, lambda s, c, me=me: cases.escalate_to_complaint(s, c, me, "不满意")
        )
        owners.append(complaint.owner_id)
    # Ties go to the earlier supervisor; then each new complaint to whoever has fewer open.
    assert owners == [busy.id, free.id, busy.id]

    with pytest.raises(DomainError) as raised:
        act(db, complaint.number, lambda s, c: cases.assign(s, c, agent.id, actor(busy)))
    assert raised.value.code == "case_assignee_invalid"
    moved = act(db, complaint.number, lambda s, c: cases.assign(s, c, free.id, actor(busy)))
    assert moved.owner_id == free.id


def test_a_complaint_needs_a_resolution_or_a_long_wait_and_the_cases_own_customer(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person]
) -> None:
    person, other = customer(), customer()
    number = open_for(db, person)
    me = f"customer:{person.id}"
    with pytest.raises(DomainError) as raised:
        act(db, number, lambda s, c: cases.escalate_to_complaint(s, c, me, "too slow"))
    assert raised.value.code == "complaint_not_allowed" and raised.value.params["days"] == 5
    with pytest.raises(DomainError) as raised:
        act(
            db,
            number,
            lambda s, c: cases.escalate_to_complaint(s, c, f"customer:{other.id}", "x"),
        )
    assert raised.value.code == "forbidden"
    clock_at_ten.advance(timedelta(days=5))
    complaint = act(db, number, lambda s, c: cases.escalate_to_complaint(s, c, me, "too slow"))
    assert complaint.is_complaint


# --- satisfaction ------------------------------------------------------------------------------


def test_resolving_asks_for_a_rating_which_counts_once(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    person, other = customer(email="alice@example.com"), customer()
    number = open_for(db, person)
    with db.unit_of_work() as session, pytest.raises(DomainError) as raised:
        csat.rate_case(session, person.id, number, 5)
    assert raised.value.code == "csat_not_ready"

    resolve(db, number, agent)
    sent = messages(db, person.id, "csat_request")
    assert [(channel, params) for channel, _, params in sent] == [
        ("inapp", {"case_number": number}),
        ("email", {"case_number": number}),
    ]
    with db.unit_of_work() as session, pytest.raises(DomainError) as raised:
        csat.rate_case(session, other.id, number, 1)
    assert raised.value.code == "case_not_found"  # someone else's case does not exist for them
    with db.unit_of_work() as session:
        csat.rate_case(session, person.id, number, 4, "  quick, thanks ")
    with db.unit_of_work() as session, pytest.raises(DomainError) as raised:
        csat.rate_case(session, person.id, number, 5)
    assert raised.value.code == "csat_already_rated" and raised.value.status == 409
    assert ("csat", "quick, thanks") in events(db, number, for_customer=True)
    me = f"customer:{person.id}"
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.REOPENED, me, "not yet"))
    act(db, number, lambda s, c: cases.change_status(s, c, CaseStatus.RESOLVED, actor(agent)))
    assert len(messages(db, person.id, "csat_request")) == 2  # rated already: not asked again


def test_the_csat_report_groups_by_agent_queue_and_type_within_the_dates(
    db: Database, clock_at_ten: FrozenClock, customer: Callable[..., Person], agent: Member
) -> None:
    sam = make_staff(db, "agent.sam")
    person = customer()

    def rated(
        owner: Member, score: int, case_type: str = "payment_failed", queue: str = "general"
    ) -> None:
        with db.unit_of_work() as session:
            case = cases.open_case(
                session,
                customer_id=person.id,
                type=case_type,
                subject="s",
                channel="in_app",
                actor=f"customer:{person.id}",
                queue=queue,
            )
            number = case.number
        act(db, number, lambda s, c: cases.assign(s, c, owner.id, actor(owner)))
        resolve(db, number, owner)
        with db.unit_of_work() as session:
            csat.rate_case(session, person.id, number, score)

    rated(agent, 2)  # on the 15th: outside the window below
    clock_at_ten.advance(timedelta(days=1))
    rated(agent, 5)
    rated(agent, 4, "refund")
    rated(sam, 3, "refund", queue="payments")
    start, end = beijing(2026, 1, 16), beijing(2026, 1, 17)
    with db.unit_of_work() as session:
        by_agent = csat.csat_report(session, start, end, "agent")
        by_queue = csat.csat_report(session, start, end, "queue")
        by_type = csat.csat_report(session, start, end, "case_type")
        everything = csat.csat_report(session, beijing(2026, 1, 1), end, "agent")
    assert (by_agent.overall.count, by_agent.overall.average) == (3, 4.0)
    assert by_agent.overall.satisfied_percent == 66.7
    assert [(g.label, g.count, g.average, g.satisfied_percent) for g in by_agent.groups] == [
        ("agent.li", 2, 4.5, 100.0),
        ("agent.sam", 1, 3.0, 0.0),
    ]
    assert [(g.group, g.count) for g in by_queue.groups] == [("general", 2), ("payments", 1)]
    assert [(g.group, g.average) for g in by_type.groups] == [
        ("refund", 3.5),
        ("payment_failed", 5.0),
    ]
    assert everything.overall.count == 4 and everything.groups[0].average == 3.67
    with db.unit_of_work() as session, pytest.raises(DomainError) as raised:
        csat.csat_report(session, start, end, "weather")
    assert raised.value.code == "csat_group_invalid"


# --- demo --------------------------------------------------------------------------------------


def test_the_demo_cases_have_fixed_numbers_and_can_be_loaded_twice(
    db: Database, frozen_clock: FrozenClock, books: Books
) -> None:
    people = {}
    with db.unit_of_work() as session:
        for key, name in (
            ("zhangwei", "张伟"),
            ("alice", "Alice"),
            ("lina", "李娜"),
            ("wangfang", "王芳"),
        ):
            created, _ = customer_accounts.create_customer(
                session, name, email=f"{key}@example.com"
            )
            people[key] = created.id
    make_staff(db, "agent.li")
    for _ in range(2):
        with db.unit_of_work() as session:
            case_demo.seed_demo(session, people)
    with db.unit_of_work() as session:
        demo = {c.number: c for c in session.execute(select(Case)).scalars()}
        assert set(demo) == set(case_demo.DEMO_NUMBERS.values())
        zhang = demo[case_demo.DEMO_NUMBERS["zhangwei"]]
        assert (zhang.status, zhang.customer_id) == ("waiting_on_customer", people["zhangwei"])
        assert demo[case_demo.DEMO_NUMBERS["alice"]].status == "resolved"
        lina = demo[case_demo.DEMO_NUMBERS["lina"]]
        assert (lina.type, lina.priority) == ("account_locked", "high")
        assert [c.number for c in cases.sla_breaches(session)] == [
            case_demo.DEMO_NUMBERS["wangfang"]
        ]
