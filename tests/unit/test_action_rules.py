"""The agent desk's pure rules: verification levels, what each action needs, what may not
share a contact, and the goodwill limits."""

from __future__ import annotations

import pytest

from walletdesk.staff.models import StaffUser
from walletdesk.support.actions import (
    MINIMUM_LEVEL,
    conflicting,
    goodwill_within_limits,
    missing_level,
)
from walletdesk.support.verification import at_least, knowledge_misses, methods_passed

ORDER = ["none", "caller_id", "knowledge", "strong"]


def test_levels_are_ordered_from_none_to_strong() -> None:
    for i, lower in enumerate(ORDER):
        for higher in ORDER[i:]:
            assert at_least(higher, lower)
        for above in ORDER[i + 1 :]:
            assert not at_least(lower, above)


def test_what_each_action_needs() -> None:
    assert MINIMUM_LEVEL == {
        "view_account": "knowledge",
        "explain": "knowledge",
        "file_dispute": "knowledge",
        "send_password_reset": "strong",
        "freeze": "none",
        "unlock": "strong",
        "change_phone": "strong",
        "change_email": "strong",
        "goodwill": "strong",
    }


@pytest.mark.parametrize("action", sorted(MINIMUM_LEVEL))
def test_caller_id_alone_opens_only_the_freeze(action: str) -> None:
    needed = missing_level("caller_id", action)
    assert (needed is None) == (action == "freeze")
    assert missing_level("strong", action) is None


def test_knowledge_opens_looking_but_no_sensitive_action() -> None:
    opened = {a for a in MINIMUM_LEVEL if missing_level("knowledge", a) is None}
    assert opened == {"view_account", "explain", "file_dispute", "freeze"}


@pytest.mark.parametrize("change", ["change_phone", "change_email"])
def test_a_reset_and_a_contact_change_refuse_each_other_in_either_order(change: str) -> None:
    assert conflicting("send_password_reset", {change}) == change
    assert conflicting(change, {"send_password_reset"}) == "send_password_reset"


def test_other_actions_share_a_contact_freely() -> None:
    everything = set(MINIMUM_LEVEL)
    for action in ("freeze", "unlock", "goodwill", "view_account"):
        assert conflicting(action, everything) is None
    assert conflicting("change_phone", {"change_email", "unlock"}) is None
    assert conflicting("send_password_reset", {"send_password_reset", "freeze"}) is None


def agent(per_action: int, per_day: int, currency: str = "CNY") -> StaffUser:
    return StaffUser(
        goodwill_per_action=per_action, goodwill_per_day=per_day, limits_currency=currency
    )


@pytest.mark.parametrize(
    ("amount", "used_today", "within"),
    [
        (50_00, 0, True),  # exactly the per-action limit
        (50_01, 0, False),  # a cent over it
        (50_00, 50_00, True),  # exactly the daily limit
        (1, 100_00, False),  # the day is used up
        (30_00, 80_00, False),
    ],
)
def test_goodwill_limits_per_action_and_per_day(amount: int, used_today: int, within: bool) -> None:
    assert goodwill_within_limits(amount, "CNY", agent(50_00, 100_00), used_today) is within


def test_goodwill_in_another_currency_or_without_limits_is_never_within() -> None:
    assert not goodwill_within_limits(1_00, "USD", agent(50_00, 100_00), 0)
    assert not goodwill_within_limits(1, "CNY", agent(0, 0), 0)


def step(method: str, passed: bool, level: str = "knowledge") -> dict[str, object]:
    return {"level": level, "method": method, "passed": passed, "customer": 1, "at": "", "by": 1}


def test_knowledge_misses_count_only_wrong_amounts() -> None:
    steps = [
        step("caller_id", True, "caller_id"),
        step("recent_amount", False),
        step("code", False, "strong"),
        step("recent_amount", False),
        step("recent_amount", True),
    ]
    assert knowledge_misses(steps) == 2


def test_how_a_customer_was_verified_starts_over_when_the_customer_changes() -> None:
    steps = [
        step("caller_id", True, "caller_id"),
        step("code_sms", True, "strong"),
        {**step("customer_changed", True, "none"), "customer": 2},
        {**step("recent_amount", False), "customer": 2},
        {**step("recent_amount", True), "customer": 2},
    ]
    assert methods_passed(steps, 2) == ["recent_amount"]
    assert methods_passed(steps, 1) == ["caller_id", "code_sms"]
