"""The case status machine, complaint eligibility and the canned replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from walletdesk.kit.errors import DomainError
from walletdesk.support.case_rules import (
    TRANSITIONS,
    can_transition,
    check_transition,
    is_satisfied,
    may_escalate,
)
from walletdesk.support.macros import get_macro, list_macros, render_macro
from walletdesk.support.models import CaseStatus as S

ALLOWED = {
    (S.NEW, S.OPEN),
    (S.OPEN, S.WAITING_ON_CUSTOMER),
    (S.OPEN, S.WAITING_ON_MERCHANT),
    (S.OPEN, S.RESOLVED),
    (S.WAITING_ON_CUSTOMER, S.OPEN),
    (S.WAITING_ON_CUSTOMER, S.RESOLVED),
    (S.WAITING_ON_MERCHANT, S.OPEN),
    (S.WAITING_ON_MERCHANT, S.RESOLVED),
    (S.RESOLVED, S.CLOSED),
    (S.RESOLVED, S.REOPENED),
    (S.REOPENED, S.WAITING_ON_CUSTOMER),
    (S.REOPENED, S.WAITING_ON_MERCHANT),
    (S.REOPENED, S.RESOLVED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("to", list(S))
def test_exactly_the_listed_transitions_are_allowed(current: S, to: S) -> None:
    assert can_transition(current, to) == ((current, to) in ALLOWED)


def test_every_status_is_in_the_machine() -> None:
    assert set(TRANSITIONS) == set(S)


def test_closed_is_final() -> None:
    assert not any(can_transition(S.CLOSED, to) for to in S)


def test_a_bad_transition_names_both_ends_in_both_languages() -> None:
    with pytest.raises(DomainError) as raised:
        check_transition(S.CLOSED, S.OPEN)
    assert raised.value.code == "case_transition_invalid" and raised.value.status == 409
    assert "closed" in raised.value.message("en") and "open" in raised.value.message("en")
    assert "closed" in raised.value.message("zh-CN")


def test_an_unknown_status_is_refused_too() -> None:
    with pytest.raises(DomainError):
        check_transition(S.OPEN, "lost")


def test_complaints_follow_a_resolution_or_a_long_wait() -> None:
    opened = datetime(2026, 1, 1, tzinfo=UTC)
    week = timedelta(days=5)
    assert may_escalate(S.RESOLVED, opened, opened + timedelta(hours=1), week)
    assert may_escalate(S.REOPENED, opened, opened + timedelta(hours=1), week)
    assert not may_escalate(S.OPEN, opened, opened + timedelta(days=4), week)
    assert may_escalate(S.OPEN, opened, opened + timedelta(days=5), week)


def test_four_and_five_are_satisfied() -> None:
    assert [is_satisfied(score) for score in range(1, 6)] == [False, False, False, True, True]


# --- macros ------------------------------------------------------------------------------------


def test_every_macro_has_both_languages_and_standard_placeholders() -> None:
    slugs = [macro.slug for macro in list_macros()]
    assert "ask_transaction_number" in slugs and len(slugs) >= 5
    for macro in list_macros():
        assert macro.title("zh-CN") and macro.title("en")
        assert "case_number" in macro.placeholders()


def test_a_macro_renders_in_the_asked_language_with_a_polite_default_name() -> None:
    zh = render_macro(
        "ask_transaction_number", "zh-CN", case_number="1234567890", agent_name="李静"
    )
    assert "客户您好" in zh and "1234567890" in zh and "李静" in zh
    en = render_macro(
        "ask_transaction_number",
        "en-GB",
        case_number="1234567890",
        agent_name="Sam",
        customer_name="Alice",
    )
    assert en.startswith("Hello Alice,") and "{" not in en


def test_a_macro_is_never_sent_with_a_hole() -> None:
    with pytest.raises(DomainError) as raised:
        render_macro("refund_timeline", "en", case_number="1234567890", agent_name="Sam")
    assert raised.value.code == "macro_values_missing" and "days" in raised.value.message("en")


def test_an_unknown_macro_is_not_found() -> None:
    with pytest.raises(DomainError) as raised:
        get_macro("win_a_prize")
    assert raised.value.code == "macro_not_found"
