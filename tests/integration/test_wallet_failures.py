"""Every way a money movement fails: recorded with its reason, shown in history, explained.

The customer, an agent and the IVR all read the same explanation, in zh-CN or en, built from
what was true at the time ("your available balance was 12.00 CNY"). Also here: finding
transactions again (history filters and paging, look-up by a number read over the phone) and
the statement a customer downloads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.integration.wallet_support import (
    CARD_NO_FUNDS,
    DECLINED,
    TIMEOUT_BEFORE_CHARGE,
    Books,
    Person,
    Shop,
)

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.wallet.explain import explain
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.models import CustomerStatus, WalletTransaction
from walletdesk.wallet.service import (
    customers,
    exchange,
    history,
    payments,
    topups,
    transfers,
    withdrawals,
)
from walletdesk.wallet.service.history import HistoryFilter

SHANGHAI = ZoneInfo("Asia/Shanghai")


def recorded_and_explained(
    db: Database, person: Person, txn: WalletTransaction, code: str
) -> tuple[str, str]:
    """Check the failure is on record and in the history; return its explanation (zh, en)."""
    with db.unit_of_work() as session:
        found = history.get_by_number(session, person.id, txn.number)
        failed = history.list_transactions(session, person.id, HistoryFilter(status="failed"))
    assert (found.status, found.failure_code) == ("failed", code)
    assert txn.number in [t.number for t in failed.items]
    zh, en = explain(found, "zh-CN"), explain(found, "en")
    assert zh.code == en.code == code
    assert zh.status == en.status == "failed"
    assert zh.summary != en.summary
    return f"{zh.summary} {zh.next_step}", f"{en.summary} {en.next_step}"


def pay(
    db: Database, person: Person, shop: str, amount: int, currency: str = "CNY"
) -> WalletTransaction:
    with db.unit_of_work() as session:
        return payments.pay(session, person.id, shop, amount, currency)


def send(db: Database, person: Person, to: str, amount: int) -> WalletTransaction:
    with db.unit_of_work() as session:
        return transfers.send(session, person.id, to, amount, "CNY")


def test_insufficient_balance_names_the_balance_at_the_time(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    merchant("SHOP")
    books.fund(person.id, 12_00)

    txn = pay(db, person, "SHOP", 50_00)
    books.fund(person.id, 100_00)  # topping up later does not rewrite what happened

    assert txn.failure_params == {"available": 12_00}
    zh, en = recorded_and_explained(db, person, txn, "insufficient_balance")
    assert "12.00 CNY" in zh and "50.00 CNY" in zh and "余额" in zh
    assert "12.00 CNY" in en and "50.00 CNY" in en and "balance" in en
    assert books.wallet(person.id).balance == 112_00
    assert books.verify() == []


def test_a_frozen_or_locked_account_lets_no_money_out(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    friend = customer()
    merchant("SHOP")
    for status, code, zh_word, en_word in (
        (CustomerStatus.FROZEN, "account_frozen", "冻结", "frozen"),
        (CustomerStatus.LOCKED, "account_locked", "锁定", "locked"),
    ):
        person = customer()
        books.fund(person.id, 100_00)
        with db.unit_of_work() as session:
            customers.set_status(session, person.id, status, "reported stolen phone")

        paid = pay(db, person, "SHOP", 10_00)
        sent = send(db, person, friend.phone or "", 10_00)
        with db.unit_of_work() as session:
            withdrawn = withdrawals.withdraw(session, person.id, 10_00, "CNY", "6222020200112233")

        for txn in (paid, sent, withdrawn):
            zh, en = recorded_and_explained(db, person, txn, code)
            assert zh_word in zh and en_word in en
            assert txn.failure_params == {"reason_detail": "reported stolen phone"}
        wallet = books.wallet(person.id)
        assert (wallet.balance, wallet.available) == (100_00, 100_00)
        assert books.wallet(friend.id).balance == 0

        with db.unit_of_work() as session:
            customers.set_status(session, person.id, CustomerStatus.ACTIVE, None)
        assert pay(db, person, "SHOP", 10_00).status == "succeeded"
    assert books.verify() == []


def test_limits_per_transaction_and_per_shanghai_day_which_resets_at_local_midnight(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    settings = get_settings()
    assert settings.timezone == "Asia/Shanghai"
    daily = int(settings.limits_daily["CNY"]) * 100  # 200 000.00
    single = int(settings.limits_per_transaction["CNY"]) * 100  # 50 000.00
    person = customer()
    merchant("SHOP")
    # 23:59:59 in Shanghai; 16:00:00 UTC is midnight there, on the same UTC day.
    frozen_clock.set(datetime(2026, 1, 15, 15, 59, 59, tzinfo=UTC))
    books.fund(person.id, daily + 2)

    too_big = pay(db, person, "SHOP", single + 1)

    assert too_big.failure_params == {"window": "transaction", "limit": single, "used": 0}
    zh, en = recorded_and_explained(db, person, too_big, "limit_exceeded")
    assert "50000.00 CNY" in zh and "50000.01 CNY" in zh and "单笔" in zh
    assert "50000.00 CNY" in en and "50000.01 CNY" in en and "single-transaction" in en

    for _ in range(daily // single):  # exactly the limit is allowed
        assert pay(db, person, "SHOP", single).status == "succeeded"
    refused = pay(db, person, "SHOP", 1)

    assert refused.failure_params == {"window": "daily", "limit": daily, "used": daily}
    zh, en = recorded_and_explained(db, person, refused, "limit_exceeded")
    assert "200000.00 CNY" in zh and "0.01 CNY" in zh and "每日" in zh
    assert "200000.00 CNY" in en and "0.01 CNY" in en and "daily" in en

    frozen_clock.set(datetime(2026, 1, 15, 16, 0, 0, tzinfo=UTC))  # 00:00 on the 16th locally
    assert pay(db, person, "SHOP", 1).status == "succeeded"
    assert pay(db, person, "SHOP", 1).status == "succeeded"
    assert books.wallet(person.id).balance == 0
    assert books.verify() == []


def test_card_failures_declined_and_timed_out(
    db: Database,
    books: Books,
    gateway: SandboxGateway,
    customer: Callable[..., Person],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    for number, code, zh_word, en_word in (
        (DECLINED, "card_declined", "发卡行", "declined"),
        (CARD_NO_FUNDS, "insufficient_funds_on_card", "额度不足", "did not have"),
    ):
        txn = books.top_up(person.id, books.card(person.id, number), 88_00)

        zh, en = recorded_and_explained(db, person, txn, code)
        assert "88.00 CNY" in zh and zh_word in zh and "没有扣款" in zh
        assert "88.00 CNY" in en and en_word in en and "Nothing was charged" in en

    # The card network never answers: first "wait, don't retry", then "nothing happened".
    hold = get_settings().gateway_timeout_hold_minutes
    txn = books.top_up(person.id, books.card(person.id, TIMEOUT_BEFORE_CHARGE), 66_00)

    with db.unit_of_work() as session:
        pending = history.get_by_number(session, person.id, txn.number)
    zh, en = explain(pending, "zh-CN"), explain(pending, "en")
    assert (zh.status, zh.code) == ("pending", "gateway_timeout")
    assert "66.00 CNY" in zh.summary and f"{hold} 分钟" in zh.next_step
    assert "66.00 CNY" in en.summary and f"{hold} minutes" in en.next_step
    assert "Don't top up again" in en.next_step

    frozen_clock.advance(timedelta(minutes=hold))
    with db.unit_of_work() as session:
        topups.reconcile(session, gateway)

    zh_text, en_text = recorded_and_explained(db, person, txn, "gateway_timeout")
    assert "资金没有变动" in zh_text and "放心重试" in zh_text
    assert "no money moved" in en_text and "safely try again" in en_text
    wallet = books.wallet(person.id)
    assert (wallet.balance, wallet.incoming_pending) == (0, 0)  # nothing held, nothing credited
    assert books.verify() == []


def test_sending_to_an_unknown_phone_or_to_yourself(
    db: Database, books: Books, customer: Callable[..., Person], frozen_clock: FrozenClock
) -> None:
    person = customer(phone="+8613800138000")
    books.fund(person.id, 100_00)

    unknown = send(db, person, "+8613999999999", 10_00)
    yourself = send(db, person, "138 0013 8000", 10_00)

    assert unknown.failure_params == {"recipient": "+861****9999"}
    zh, en = recorded_and_explained(db, person, unknown, "invalid_recipient")
    assert "+861****9999" in zh and "+861****9999" in en and "No money moved" in en
    zh, en = recorded_and_explained(db, person, yourself, "invalid_recipient")
    assert "yourself" in en and "自己" in zh
    assert books.wallet(person.id).balance == 100_00
    assert books.verify() == []


def test_paying_a_merchant_in_a_currency_it_does_not_accept(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer(currencies=("CNY", "USD"))
    merchant("NOODLES", currencies=("CNY",))
    books.fund(person.id, 50_00, "USD")

    txn = pay(db, person, "NOODLES", 10_00, "USD")

    zh, en = recorded_and_explained(db, person, txn, "currency_mismatch")
    assert "CNY" in zh and "币种" in zh
    assert "CNY" in en and "currency" in en
    assert books.wallet(person.id, "USD").balance == 50_00
    assert books.account("merchant:NOODLES:USD").balance == 0
    assert books.verify() == []


# --- finding transactions again --------------------------------------------------------------


def test_history_filters_and_paging_return_every_transaction_exactly_once(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer(currencies=("CNY", "USD"))
    friend = customer()
    merchant("SHOP", currencies=("CNY", "USD"))
    start = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    frozen_clock.set(start)
    card = books.card(person.id)
    made: dict[str, WalletTransaction] = {}

    made["topup_cny"] = books.top_up(person.id, card, 500_00)
    frozen_clock.advance(timedelta(hours=1))
    made["topup_usd"] = books.top_up(person.id, card, 100_00, "USD")
    frozen_clock.advance(timedelta(hours=1))
    made["pay_ok"] = pay(db, person, "SHOP", 30_00)
    made["pay_failed"] = pay(db, person, "SHOP", 9_000_00)
    frozen_clock.advance(timedelta(hours=1))
    made["pay_usd"] = pay(db, person, "SHOP", 5_00, "USD")
    made["sent"] = send(db, person, friend.phone or "", 20_00)
    frozen_clock.advance(timedelta(hours=1))
    books.fund(friend.id, 10_00)
    made["received"] = send(db, friend, person.phone or "", 10_00)
    with db.unit_of_work() as session:
        made["withdrawal"] = withdrawals.withdraw(session, person.id, 40_00, "CNY", "62220202001")
        made["exchange"] = exchange.exchange(session, person.id, 10_00, "USD", "CNY")
    everyone = {t.number for t in made.values()}

    def listed(filters: HistoryFilter = HistoryFilter(), page_size: int = 3) -> list[str]:
        numbers: list[str] = []
        cursor: int | None = None
        with db.unit_of_work() as session:
            while True:
                page = history.list_transactions(
                    session, person.id, filters, before_id=cursor, limit=page_size
                )
                assert len(page.items) <= page_size
                numbers += [t.number for t in page.items]
                if page.next_cursor is None:
                    return numbers
                cursor = page.next_cursor

    def names(numbers: list[str]) -> set[str]:
        assert len(numbers) == len(set(numbers)), "a transaction was listed twice"
        return {name for name, t in made.items() if t.number in numbers}

    # Newest first, every one exactly once, whatever the page size.
    for size in (1, 2, 3, 9, 100):
        assert set(listed(page_size=size)) == everyone
        assert len(listed(page_size=size)) == len(everyone)
    newest_first = listed()
    assert newest_first[0] == made["exchange"].number
    assert newest_first[-1] == made["topup_cny"].number

    assert names(listed(HistoryFilter(kind="payment"), 1)) == {"pay_ok", "pay_failed", "pay_usd"}
    assert names(listed(HistoryFilter(status="failed"))) == {"pay_failed"}
    assert names(listed(HistoryFilter(status="pending"))) == {"withdrawal"}
    assert names(listed(HistoryFilter(currency="USD"))) == {"topup_usd", "pay_usd", "exchange"}
    assert names(listed(HistoryFilter(kind="transfer"))) == {"sent", "received"}
    assert names(listed(HistoryFilter(kind="payment", currency="CNY", status="succeeded"))) == {
        "pay_ok"
    }
    # since is inclusive, until exclusive.
    window = HistoryFilter(since=start + timedelta(hours=2), until=start + timedelta(hours=4))
    assert names(listed(window)) == {"pay_ok", "pay_failed", "pay_usd", "sent"}
    # The same window written in Shanghai time (UTC+8) finds the same transactions.
    local = HistoryFilter(
        since=(start + timedelta(hours=2)).astimezone(SHANGHAI),
        until=(start + timedelta(hours=4)).astimezone(SHANGHAI),
    )
    assert names(listed(local)) == {"pay_ok", "pay_failed", "pay_usd", "sent"}
    # The friend sees the transfers between them, and nothing else of this customer's.
    with db.unit_of_work() as session:
        theirs = history.list_transactions(session, friend.id, HistoryFilter(), limit=100)
    assert {t.number for t in theirs.items} >= {made["sent"].number, made["received"].number}
    assert not {t.number for t in theirs.items} & (
        everyone - {made["sent"].number, made["received"].number}
    )


def test_a_mistyped_transaction_number_is_caught_by_its_check_digit(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    stranger = customer()
    txn = books.top_up(person.id, books.card(person.id), 10_00)
    number = txn.number

    with db.unit_of_work() as session:
        spoken = f"{number[:4]} {number[4:8]}-{number[8:]}"  # as read out over the phone
        assert history.get_by_number(session, person.id, spoken).id == txn.id
        for position in range(len(number)):
            wrong = str((int(number[position]) + 1) % 10)
            typo = number[:position] + wrong + number[position + 1 :]
            with pytest.raises(DomainError) as raised:
                history.get_by_number(session, person.id, typo)
            assert raised.value.code == "transaction_number_invalid", typo
        with pytest.raises(DomainError) as raised:
            history.get_by_number(session, person.id, number[:-1])
        assert raised.value.code == "transaction_number_invalid"
        with pytest.raises(DomainError) as raised:
            history.get_by_number(session, stranger.id, number)
        assert raised.value.code == "transaction_not_found"


def test_statement_lines_carry_running_balances(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer("王芳")
    friend = customer("李娜")
    shop = merchant("SHOP", fee_bps=100)
    books.fund(friend.id, 20_00)
    start = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    frozen_clock.set(start)

    def later() -> None:
        frozen_clock.advance(timedelta(hours=1))

    topup = books.top_up(person.id, books.card(person.id), 100_00)
    later()
    paid = pay(db, person, "SHOP", 30_00)
    assert pay(db, person, "SHOP", 1_000_00).status == "failed"  # moved nothing: no line
    later()
    received = send(db, friend, person.phone or "", 20_00)
    later()
    with db.unit_of_work() as session:
        refund = payments.refund(session, shop.id, paid.number, 10_00)
    later()
    with db.unit_of_work() as session:
        withdrawal = withdrawals.withdraw(session, person.id, 50_00, "CNY", "6222020200112233445")
    later()
    with db.unit_of_work() as session:
        withdrawals.settle(session, withdrawal.number)

    with db.unit_of_work() as session:
        lines = history.statement(session, person.id, "CNY", start, start + timedelta(days=1))
    assert [(line.number, line.kind, line.amount, line.balance_after) for line in lines] == [
        (topup.number, "topup", 100_00, 100_00),
        (paid.number, "payment", -30_00, 70_00),
        (received.number, "p2p", 20_00, 90_00),
        (refund.number, "refund", 10_00, 100_00),
        (withdrawal.number, "withdrawal", -50_00, 50_00),
    ]
    assert [line.balance_after for line in lines][-1] == books.wallet(person.id).balance

    rows = list(csv.reader(io.StringIO(history.statement_csv(lines, "CNY"))))
    assert rows[0] == [
        "posted_at",
        "number",
        "kind",
        "counterparty",
        "amount",
        "balance_after",
        "currency",
    ]
    assert [(r[1], r[4], r[5], r[6]) for r in rows[1:]] == [
        (topup.number, "100.00", "100.00", "CNY"),
        (paid.number, "-30.00", "70.00", "CNY"),
        (received.number, "20.00", "90.00", "CNY"),
        (refund.number, "10.00", "100.00", "CNY"),
        (withdrawal.number, "-50.00", "50.00", "CNY"),
    ]
    counterparty = {r[1]: r[3] for r in rows[1:]}
    assert counterparty[topup.number] == "visa ****4242"
    assert counterparty[paid.number] == counterparty[refund.number] == "SHOP Ltd"
    assert counterparty[withdrawal.number] == "bank ****3445"
    assert rows[1][0] == start.isoformat()

    # A later window shows only its own lines, each with the true balance after it.
    with db.unit_of_work() as session:
        tail = history.statement(
            session, person.id, "CNY", start + timedelta(hours=2), start + timedelta(hours=4)
        )
    assert [(line.amount, line.balance_after) for line in tail] == [(20_00, 90_00), (10_00, 100_00)]
