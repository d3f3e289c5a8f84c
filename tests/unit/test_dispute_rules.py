"""Dispute rules without a database: what may be disputed, for how much, and what may follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from walletdesk.disputes import rules
from walletdesk.disputes.models import DisputeReason, DisputeStatus
from walletdesk.kit.errors import DomainError
from walletdesk.support.models import CaseType
from walletdesk.wallet.models import TxnKind, TxnStatus

PAID = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
WINDOW = 120
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    return caught.value.code


# --- what may be disputed ------------------------------------------------------------------------


def test_a_completed_payment_is_disputable_until_the_window_closes() -> None:
    last_moment = PAID + timedelta(days=WINDOW)
    rules.check_disputable(TxnKind.PAYMENT, TxnStatus.SUCCEEDED, PAID, last_moment, WINDOW)
    too_late = last_moment + timedelta(seconds=1)
    with pytest.raises(DomainError) as caught:
        rules.check_disputable(TxnKind.PAYMENT, TxnStatus.SUCCEEDED, PAID, too_late, WINDOW)
    assert caught.value.code == "dispute_window_closed"
    assert "2026-01-15" in caught.value.message("en") and "120" in caught.value.message("en")


def test_a_time_stored_without_zone_counts_as_utc() -> None:
    naive = PAID.replace(tzinfo=None)  # as SQLite gives it back
    rules.check_disputable(
        TxnKind.PAYMENT, TxnStatus.SUCCEEDED, naive, PAID + timedelta(days=1), WINDOW
    )


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (TxnKind.TRANSFER, TxnStatus.SUCCEEDED),  # money to a person: a fraud report instead
        (TxnKind.TOPUP, TxnStatus.SUCCEEDED),  # disputed with the card's bank
        (TxnKind.WITHDRAWAL, TxnStatus.SUCCEEDED),
        (TxnKind.REFUND, TxnStatus.SUCCEEDED),
        (TxnKind.PAYMENT, TxnStatus.FAILED),  # no money left
        (TxnKind.PAYMENT, TxnStatus.PENDING),
    ],
)
def test_only_completed_payments_are_disputable(kind: str, status: str) -> None:
    assert code_of(rules.check_disputable, kind, status, PAID, PAID, WINDOW) == "not_disputable"


# --- how much ------------------------------------------------------------------------------------


def test_the_amount_defaults_to_what_was_not_refunded() -> None:
    assert rules.disputed_amount(None, 64800, 0, "CNY") == 64800
    assert rules.disputed_amount(None, 64800, 10000, "CNY") == 54800
    assert rules.disputed_amount(54800, 64800, 10000, "CNY") == 54800


def test_a_dispute_never_covers_more_than_paid_less_refunds() -> None:
    with pytest.raises(DomainError) as caught:
        rules.disputed_amount(54801, 64800, 10000, "CNY")
    assert caught.value.code == "dispute_amount_too_large"
    assert "548.00 CNY" in caught.value.message("en")
    assert code_of(rules.disputed_amount, None, 64800, 64800, "CNY") == "nothing_to_dispute"
    assert code_of(rules.disputed_amount, 0, 64800, 0, "CNY") == "amount_not_positive"


# --- which step may follow which -----------------------------------------------------------------

OPEN = (DisputeStatus.AWAITING_MERCHANT, DisputeStatus.UNDER_REVIEW)
CLOSED = (DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.WITHDRAWN)


@pytest.mark.parametrize("status", OPEN)
@pytest.mark.parametrize(
    "action", ["add_evidence", "grant_provisional_credit", "accept", "withdraw"]
)
def test_while_open_the_customer_may_add_or_withdraw_and_the_merchant_may_concede(
    status: str, action: str
) -> None:
    rules.check_action(status, action)


def test_the_merchant_contests_before_review_and_staff_decide_only_after() -> None:
    rules.check_action(DisputeStatus.AWAITING_MERCHANT, "contest")
    rules.check_action(DisputeStatus.AWAITING_MERCHANT, "review")
    rules.check_action(DisputeStatus.UNDER_REVIEW, "decide")
    assert (
        code_of(rules.check_action, DisputeStatus.UNDER_REVIEW, "contest")
        == "dispute_action_not_allowed"
    )
    assert (
        code_of(rules.check_action, DisputeStatus.AWAITING_MERCHANT, "decide")
        == "dispute_action_not_allowed"
    )


@pytest.mark.parametrize("status", CLOSED)
@pytest.mark.parametrize("action", sorted(rules.ACTIONS))
def test_a_closed_dispute_allows_nothing(status: str, action: str) -> None:
    assert code_of(rules.check_action, status, action) == "dispute_closed"


def test_the_merchant_may_contest_until_the_deadline_and_not_after() -> None:
    respond_by = rules.response_deadline(PAID, 7)
    assert respond_by == PAID + timedelta(days=7)
    rules.check_contest_in_time(respond_by, respond_by)
    late = respond_by + timedelta(seconds=1)
    assert code_of(rules.check_contest_in_time, respond_by, late) == "dispute_response_late"


def test_only_an_unanswered_dispute_past_its_deadline_is_overdue() -> None:
    respond_by = PAID + timedelta(days=7)
    after = respond_by + timedelta(minutes=1)
    assert rules.is_overdue(DisputeStatus.AWAITING_MERCHANT, respond_by, after)
    assert not rules.is_overdue(DisputeStatus.AWAITING_MERCHANT, respond_by, respond_by)
    assert not rules.is_overdue(DisputeStatus.UNDER_REVIEW, respond_by, after)


# --- provisional credit --------------------------------------------------------------------------


def test_provisional_credit_is_the_disputed_amount_at_most_and_once() -> None:
    assert rules.check_provisional_credit(0, None, 64800, "CNY") == 64800
    assert rules.check_provisional_credit(0, 30000, 64800, "CNY") == 30000
    assert (
        code_of(rules.check_provisional_credit, 0, 64801, 64800, "CNY")
        == "provisional_credit_too_large"
    )
    assert (
        code_of(rules.check_provisional_credit, 64800, None, 64800, "CNY")
        == "provisional_credit_exists"
    )


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (DisputeStatus.AWAITING_MERCHANT, "held"),
        (DisputeStatus.UNDER_REVIEW, "held"),
        (DisputeStatus.WON, "replaced_by_refund"),
        (DisputeStatus.LOST, "released"),
        (DisputeStatus.WITHDRAWN, "released"),
    ],
)
def test_what_becomes_of_a_provisional_credit(status: str, state: str) -> None:
    assert rules.provisional_state(status, 100) == state
    assert rules.provisional_state(status, 0) is None


def test_an_unauthorised_charge_offers_freezing_and_a_new_card_and_its_own_case_type() -> None:
    assert rules.offers_for(DisputeReason.UNAUTHORISED) == ("freeze_account", "replace_card")
    assert rules.case_type_for(DisputeReason.UNAUTHORISED) == CaseType.UNRECOGNISED_CHARGE
    for reason in set(DisputeReason) - {DisputeReason.UNAUTHORISED}:
        assert rules.offers_for(reason) == ()
        assert rules.case_type_for(reason) == CaseType.REFUND


# --- evidence ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "image/jpeg"),
        (b"%PDF-1.7\n%...", "application/pdf"),
        ("订单 2026-01-15 未发货\r\n".encode(), "text/plain"),
    ],
)
def test_evidence_type_is_read_from_its_bytes(content: bytes, content_type: str) -> None:
    checked = rules.check_evidence("file", content, max_bytes=1024, count=0, max_files=5)
    assert checked.content_type == content_type
    assert checked.size == len(content) and len(checked.sha256) == 64


@pytest.mark.parametrize(
    "content",
    [b"MZ\x90\x00\x03\x00\x00\x00", b"PK\x03\x04zip", b"text with a \x00 byte", b"\x1b[31mred"],
)
def test_executables_archives_and_binary_junk_are_refused(content: bytes) -> None:
    assert (
        code_of(rules.check_evidence, "a.png", content, max_bytes=1024, count=0, max_files=5)
        == "evidence_type_not_allowed"
    )


def test_evidence_size_and_count_are_limited() -> None:
    rules.check_evidence("a.png", PNG, max_bytes=len(PNG), count=4, max_files=5)
    check = rules.check_evidence
    assert code_of(check, "a.png", PNG, max_bytes=len(PNG) - 1, count=0, max_files=5) == (
        "evidence_too_large"
    )
    assert code_of(check, "a.png", PNG, max_bytes=1024, count=5, max_files=5) == (
        "too_much_evidence"
    )
    assert code_of(check, "a.png", b"", max_bytes=1024, count=0, max_files=5) == "evidence_empty"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\receipt.png", "receipt.png"),
        ("收据 (1).png", "收据 (1).png"),
        ('a"b;c<d>.pdf', "a_b_c_d_.pdf"),
        ("...", "evidence"),
    ],
)
def test_filenames_keep_only_a_safe_last_part(given: str, kept: str) -> None:
    assert rules.clean_filename(given) == kept
