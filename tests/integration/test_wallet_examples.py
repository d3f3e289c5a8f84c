"""Worked examples of every money movement, with every balance it touches and the entries it wrote.

Each example reads like an accountant's worksheet: who had what before, what the wallet did,
who has what after, which ledger entries say so, and that the books still balance
(`ledger.verify` finds nothing wrong).

Account names: `wallet:<customer>:<CUR>` (a customer's wallet), `merchant:<CODE>:<CUR>`
(what the platform owes a merchant), `system:fee_income:<CUR>`, `system:gateway_clearing:<CUR>`
(what the card network owes the platform), `system:bank_clearing:<CUR>` (money on its way to
customers' banks) and `system:exchange:<CUR>` (the platform's currency desk). A system account's
balance is credits minus debits, so money the platform is owed shows as negative.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from tests.integration.wallet_support import (
    CARD_NO_FUNDS,
    DECLINED,
    TIMEOUT_AFTER_CHARGE,
    TIMEOUT_BEFORE_CHARGE,
    Account,
    Books,
    Person,
    Shop,
)

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.models import WalletTransaction
from walletdesk.wallet.service import exchange, history, payments, topups, transfers, withdrawals
from walletdesk.wallet.service.history import HistoryFilter

GATEWAY = "system:gateway_clearing:CNY"
FEES = "system:fee_income:CNY"
BANK = "system:bank_clearing:CNY"
BANK_ACCOUNT = "6222020200112233445"


def wallet_of(person: Person, currency: str = "CNY") -> str:
    return f"wallet:{person.id}:{currency}"


def figures(books: Books, person: Person, currency: str = "CNY") -> tuple[int, int, int, int]:
    """(balance, available, incoming pending, outgoing pending) of a customer's wallet."""
    w = books.wallet(person.id, currency)
    return w.balance, w.available, w.incoming_pending, w.outgoing_pending


def phases(books: Books, number: str) -> dict[str, str]:
    return {external_id: t.phase for external_id, t in books.transfers(number).items()}


# --- top-ups -------------------------------------------------------------------------------------


def test_top_up_with_a_good_card_credits_the_wallet_from_gateway_clearing(
    books: Books, customer: Callable[..., Person], frozen_clock: FrozenClock
) -> None:
    person = customer()
    card = books.card(person.id)

    txn = books.top_up(person.id, card, 100_00)

    assert (txn.status, txn.failure_code) == ("succeeded", None)
    assert txn.counterparty_label == "visa ****4242"
    assert figures(books, person) == (100_00, 100_00, 0, 0)
    assert books.account(GATEWAY) == Account(-100_00, 0, 0)
    # A hold while the card is charged, posted once the gateway said yes.
    assert phases(books, txn.number) == {
        f"txn:{txn.number}:hold": "pending",
        f"txn:{txn.number}:post": "post",
    }
    assert books.entries(txn.number) == [(GATEWAY, -100_00), (wallet_of(person), 100_00)]
    assert books.charges(txn.number) == 1
    assert books.verify() == []


def test_a_declined_card_moves_nothing(
    books: Books, customer: Callable[..., Person], frozen_clock: FrozenClock
) -> None:
    person = customer()
    for number, code in (
        (DECLINED, "card_declined"),
        (CARD_NO_FUNDS, "insufficient_funds_on_card"),
    ):
        card = books.card(person.id, number)

        txn = books.top_up(person.id, card, 100_00)

        assert (txn.status, txn.failure_code) == ("failed", code)
        assert figures(books, person) == (0, 0, 0, 0)
        assert books.account(GATEWAY) == Account(0, 0, 0)
        # The hold was released; no entry was ever written.
        assert phases(books, txn.number) == {
            f"txn:{txn.number}:hold": "pending",
            f"txn:{txn.number}:void": "void",
        }
        assert books.entries(txn.number) == []
        assert books.verify() == []


def test_timeout_after_the_charge_stays_pending_until_reconcile_posts_it(
    db: Database,
    books: Books,
    gateway: SandboxGateway,
    customer: Callable[..., Person],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    books.fund(person.id, 50_00)
    card = books.card(person.id, TIMEOUT_AFTER_CHARGE)

    txn = books.top_up(person.id, card, 100_00)

    # The network never answered, but it did charge the card: the money is on its way.
    assert (txn.status, txn.failure_code) == ("pending", "gateway_timeout")
    assert books.charges(txn.number) == 1
    assert figures(books, person) == (50_00, 50_00, 100_00, 0)
    assert books.account(GATEWAY) == Account(-50_00, 100_00, 0)
    assert books.entries(txn.number) == []
    assert books.verify() == []

    with db.unit_of_work() as session:
        settled = [t.number for t in topups.reconcile(session, gateway)]

    assert settled == [txn.number]
    after = books.txn(txn.number)
    assert (after.status, after.failure_code) == ("succeeded", None)
    assert figures(books, person) == (150_00, 150_00, 0, 0)
    assert books.account(GATEWAY) == Account(-150_00, 0, 0)
    assert books.entries(txn.number) == [(GATEWAY, -100_00), (wallet_of(person), 100_00)]
    assert books.charges(txn.number) == 1
    assert books.verify() == []


def test_timeout_before_the_charge_is_voided_once_the_hold_window_closes(
    db: Database,
    books: Books,
    gateway: SandboxGateway,
    customer: Callable[..., Person],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    books.fund(person.id, 50_00)
    card = books.card(person.id, TIMEOUT_BEFORE_CHARGE)
    hold = timedelta(minutes=get_settings().gateway_timeout_hold_minutes)

    txn = books.top_up(person.id, card, 100_00)

    assert (txn.status, txn.failure_code) == ("pending", "gateway_timeout")
    assert books.charges(txn.number) == 0
    assert figures(books, person) == (50_00, 50_00, 100_00, 0)

    # Within the window a retry might still charge it, so reconcile leaves it alone.
    for moment in (timedelta(0), hold - timedelta(minutes=1)):
        frozen_clock.set(txn.created_at.replace(tzinfo=frozen_clock.now().tzinfo) + moment)
        with db.unit_of_work() as session:
            assert topups.reconcile(session, gateway) == []
        assert books.txn(txn.number).status == "pending"
        assert figures(books, person) == (50_00, 50_00, 100_00, 0)

    frozen_clock.advance(timedelta(minutes=1))
    with db.unit_of_work() as session:
        settled = [t.number for t in topups.reconcile(session, gateway)]

    assert settled == [txn.number]
    after = books.txn(txn.number)
    assert (after.status, after.failure_code) == ("failed", "gateway_timeout")
    assert after.failure_params == {"charged": False}
    assert figures(books, person) == (50_00, 50_00, 0, 0)
    assert books.account(GATEWAY) == Account(-50_00, 0, 0)
    assert phases(books, txn.number) == {
        f"txn:{txn.number}:hold": "pending",
        f"txn:{txn.number}:void": "void",
    }
    assert books.entries(txn.number) == []
    assert books.charges() == 1  # only the funding top-up was ever charged
    assert books.verify() == []


def test_retrying_a_timed_out_top_up_with_the_same_key_charges_once(
    db: Database,
    books: Books,
    gateway: SandboxGateway,
    customer: Callable[..., Person],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    card = books.card(person.id, TIMEOUT_AFTER_CHARGE)

    first = books.top_up(person.id, card, 100_00, key="app-retry-1")
    assert (first.status, first.failure_code) == ("pending", "gateway_timeout")

    retry = books.top_up(person.id, card, 100_00, key="app-retry-1")
    again = books.top_up(person.id, card, 100_00, key="app-retry-1")

    assert retry.number == again.number == first.number
    assert (retry.status, retry.failure_code) == ("succeeded", None)
    assert books.charges() == 1
    assert figures(books, person) == (100_00, 100_00, 0, 0)
    assert books.account(GATEWAY) == Account(-100_00, 0, 0)
    assert phases(books, first.number) == {
        f"txn:{first.number}:hold": "pending",
        f"txn:{first.number}:post": "post",
    }
    with db.unit_of_work() as session:
        assert topups.reconcile(session, gateway) == []
    assert figures(books, person) == (100_00, 100_00, 0, 0)
    assert books.transaction_count() == 1
    assert books.verify() == []


# --- paying merchants ----------------------------------------------------------------------------


def test_paying_a_merchant_with_a_fee(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    shop = merchant("COFFEE", fee_bps=60)  # 0.6 %
    books.fund(person.id, 200_00)
    settlement = f"merchant:{shop.code}:CNY"

    with db.unit_of_work() as session:
        txn = payments.pay(session, person.id, "coffee", 100_00, "CNY", description="拿铁")

    assert (txn.status, txn.amount, txn.fee) == ("succeeded", 100_00, 60)
    assert figures(books, person) == (100_00, 100_00, 0, 0)
    assert books.account(settlement) == Account(99_40, 0, 0)
    assert books.account(FEES) == Account(60, 0, 0)
    assert books.entries(txn.number) == [
        (wallet_of(person), -100_00),
        (settlement, 100_00),
        (settlement, -60),
        (FEES, 60),
    ]

    # 0.6 % of 12.34 is 0.07404: the fee is rounded down, never up.
    with db.unit_of_work() as session:
        small = payments.pay(session, person.id, "COFFEE", 12_34, "CNY")
    assert small.fee == 7
    assert figures(books, person) == (87_66, 87_66, 0, 0)
    assert books.account(settlement) == Account(99_40 + 12_27, 0, 0)
    assert books.account(FEES) == Account(67, 0, 0)
    assert books.verify() == []


# --- sending money -------------------------------------------------------------------------------


def test_sending_money_by_phone_or_email_opens_the_recipients_wallet_on_first_use(
    db: Database, books: Books, customer: Callable[..., Person], frozen_clock: FrozenClock
) -> None:
    sender = customer("张伟", currencies=("CNY", "USD"))
    recipient = customer("李娜", phone="+8613900139000", email="li.na@example.com")
    books.fund(sender.id, 100_00, "CNY")
    books.fund(sender.id, 100_00, "USD")
    assert [b.currency for b in books.balances(recipient.id)] == ["CNY"]  # no USD wallet yet

    # Typed the way people type: no country code and spaces; the email in another case.
    with db.unit_of_work() as session:
        by_phone = transfers.send(session, sender.id, "139 0013 9000", 40_00, "CNY")
        by_email = transfers.send(session, sender.id, " Li.Na@Example.com", 25_50, "USD")

    for txn in (by_phone, by_email):
        assert (txn.status, txn.counterparty_customer_id) == ("succeeded", recipient.id)
    assert figures(books, sender, "CNY") == (60_00, 60_00, 0, 0)
    assert figures(books, sender, "USD") == (74_50, 74_50, 0, 0)
    assert figures(books, recipient, "CNY") == (40_00, 40_00, 0, 0)
    assert figures(books, recipient, "USD") == (25_50, 25_50, 0, 0)
    assert books.entries(by_phone.number) == [
        (wallet_of(sender, "CNY"), -40_00),
        (wallet_of(recipient, "CNY"), 40_00),
    ]
    assert books.entries(by_email.number) == [
        (wallet_of(sender, "USD"), -25_50),
        (wallet_of(recipient, "USD"), 25_50),
    ]
    with db.unit_of_work() as session:
        seen = history.list_transactions(session, recipient.id, HistoryFilter()).items
        assert [(t.number, history.direction(t, recipient.id)) for t in seen] == [
            (by_email.number, "in"),
            (by_phone.number, "in"),
        ]
    assert books.verify() == []


# --- refunds -------------------------------------------------------------------------------------


def _paid(
    db: Database, books: Books, customer: Callable[..., Person], merchant: Callable[..., Shop]
) -> tuple[Person, Shop, WalletTransaction]:
    """A customer who had 100.00 and paid 80.00 to a shop taking 1 % (0.80)."""
    person = customer()
    shop = merchant("MALL", fee_bps=100)
    books.fund(person.id, 100_00)
    with db.unit_of_work() as session:
        payment = payments.pay(session, person.id, shop.code, 80_00, "CNY")
    assert payment.status == "succeeded"
    assert books.account(f"merchant:{shop.code}:CNY") == Account(79_20, 0, 0)
    return person, shop, payment


def _refund(db: Database, shop: Shop, number: str, amount: int | None) -> WalletTransaction:
    with db.unit_of_work() as session:
        return payments.refund(session, shop.id, number, amount, reason="customer returned it")


def test_a_full_refund_returns_the_whole_payment_and_the_platform_keeps_its_fee(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person, shop, payment = _paid(db, books, customer, merchant)
    settlement = f"merchant:{shop.code}:CNY"

    refund = _refund(db, shop, payment.number, None)

    assert (refund.status, refund.amount, refund.parent_id) == ("succeeded", 80_00, payment.id)
    assert books.txn(payment.number).refunded_amount == 80_00
    assert figures(books, person) == (100_00, 100_00, 0, 0)
    # The merchant bears the fee on a refund, as with card networks.
    assert books.account(settlement) == Account(-80, 0, 0)
    assert books.account(FEES) == Account(80, 0, 0)
    assert books.entries(refund.number) == [(settlement, -80_00), (wallet_of(person), 80_00)]
    with pytest.raises(DomainError) as raised:
        _refund(db, shop, payment.number, 1)
    assert raised.value.code == "refund_exceeds_payment"
    assert books.verify() == []


def test_partial_refunds_then_an_over_refund_changes_nothing(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person, shop, payment = _paid(db, books, customer, merchant)
    settlement = f"merchant:{shop.code}:CNY"

    partial = _refund(db, shop, payment.number, 30_00)

    assert (partial.status, partial.amount) == ("succeeded", 30_00)
    assert books.txn(payment.number).refunded_amount == 30_00
    assert figures(books, person) == (50_00, 50_00, 0, 0)
    assert books.account(settlement) == Account(49_20, 0, 0)
    assert books.entries(partial.number) == [(settlement, -30_00), (wallet_of(person), 30_00)]

    _refund(db, shop, payment.number, 40_00)
    assert figures(books, person) == (90_00, 90_00, 0, 0)
    assert books.account(settlement) == Account(9_20, 0, 0)
    before = books.snapshot()

    with pytest.raises(DomainError) as raised:
        _refund(db, shop, payment.number, 10_01)  # 10.00 is all that is left

    assert raised.value.code == "refund_exceeds_payment"
    assert books.snapshot() == before
    assert books.txn(payment.number).refunded_amount == 70_00

    last = _refund(db, shop, payment.number, None)  # "the rest" is exactly what is left
    assert last.amount == 10_00
    assert figures(books, person) == (100_00, 100_00, 0, 0)
    assert books.account(settlement) == Account(-80, 0, 0)
    assert books.verify() == []


# --- withdrawals ---------------------------------------------------------------------------------


def test_a_withdrawal_is_held_then_settled_or_returned(
    db: Database,
    books: Books,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
    frozen_clock: FrozenClock,
) -> None:
    person = customer()
    merchant("SHOP")
    books.fund(person.id, 100_00)

    with db.unit_of_work() as session:
        paid_out = withdrawals.withdraw(session, person.id, 40_00, "CNY", BANK_ACCOUNT)
        returned = withdrawals.withdraw(session, person.id, 25_00, "CNY", BANK_ACCOUNT)

    assert paid_out.status == returned.status == "pending"
    assert paid_out.counterparty_label == "bank ****3445"
    assert figures(books, person) == (100_00, 35_00, 0, 65_00)
    assert books.account(BANK) == Account(0, 0, 65_00)
    assert books.entries(paid_out.number) == books.entries(returned.number) == []
    # The held money cannot be spent a second time while the bank decides.
    with db.unit_of_work() as session:
        refused = payments.pay(session, person.id, "SHOP", 50_00, "CNY")
    assert (refused.status, refused.failure_code) == ("failed", "insufficient_balance")
    assert refused.failure_params == {"available": 35_00}
    assert books.verify() == []

    with db.unit_of_work() as session:
        settled = withdrawals.settle(session, paid_out.number)

    assert (settled.status, settled.failure_code) == ("succeeded", None)
    assert figures(books, person) == (60_00, 35_00, 0, 25_00)
    assert books.account(BANK) == Account(40_00, 0, 25_00)
    assert books.entries(paid_out.number) == [(wallet_of(person), -40_00), (BANK, 40_00)]
    assert books.verify() == []

    with db.unit_of_work() as session:
        bounced = withdrawals.settle(session, returned.number, returned=True)

    assert (bounced.status, bounced.failure_code) == ("failed", "bank_rejected")
    assert figures(books, person) == (60_00, 60_00, 0, 0)
    assert books.account(BANK) == Account(40_00, 0, 0)
    assert books.entries(returned.number) == []
    for number in (paid_out.number, returned.number):
        with pytest.raises(DomainError) as raised, db.unit_of_work() as session:
            withdrawals.settle(session, number)
        assert raised.value.code == "withdrawal_not_pending"
    assert figures(books, person) == (60_00, 60_00, 0, 0)
    assert books.verify() == []


# --- exchange ------------------------------------------------------------------------------------


def test_exchanging_usd_to_cny_at_the_configured_rate(
    db: Database, books: Books, customer: Callable[..., Person], frozen_clock: FrozenClock
) -> None:
    person = customer(currencies=("USD",))
    books.fund(person.id, 200_00, "USD")
    rate = get_settings().exchange_rates["USD:CNY"]
    received = int(Decimal(100_00) * Decimal(rate))  # cents of USD x rate = fen of CNY

    with db.unit_of_work() as session:
        txn = exchange.exchange(session, person.id, 100_00, "USD", "CNY")

    assert txn.status == "succeeded"
    assert (txn.amount, txn.currency) == (100_00, "USD")
    assert (txn.counter_amount, txn.counter_currency) == (received, "CNY")
    assert Decimal(txn.exchange_rate or "0") == Decimal(rate)
    assert figures(books, person, "USD") == (100_00, 100_00, 0, 0)
    assert figures(books, person, "CNY") == (received, received, 0, 0)
    assert books.account("system:exchange:USD") == Account(100_00, 0, 0)
    assert books.account("system:exchange:CNY") == Account(-received, 0, 0)
    legs = books.transfers(txn.number)
    assert {k: Decimal(t.exchange_rate or "0") for k, t in legs.items()} == {
        f"txn:{txn.number}:sell": Decimal(rate),
        f"txn:{txn.number}:buy": Decimal(rate),
    }
    assert books.entries(txn.number) == [
        (wallet_of(person, "USD"), -100_00),
        ("system:exchange:USD", 100_00),
        ("system:exchange:CNY", -received),
        (wallet_of(person, "CNY"), received),
    ]
    assert books.verify() == []


def test_the_recipient_sees_who_sent_the_money(
    client: TestClient, customer: Callable[..., Person], books: Books
) -> None:
    sender = customer("王小明")
    recipient = customer("李娜", phone="+8613900139000")
    books.fund(sender.id, 100_00)
    sent = client.post(
        "/v1/transfers",
        json={"to": "13900139000", "amount": "12.00", "currency": "CNY"},
        headers={**sender.auth, "Idempotency-Key": "gift"},
    ).json()
    assert sent["counterparty"] == "1390****9000"  # as the sender typed it, masked
    received = client.get(f"/v1/transactions/{sent['number']}", headers=recipient.auth).json()
    assert (received["direction"], received["counterparty"]) == ("in", "王小明")
    statement = client.get(
        "/v1/statements/CNY.csv?since=2000-01-01&until=2100-01-01", headers=recipient.auth
    ).text
    assert "王小明" in statement and "****" not in statement
