"""Disputes against a real database: the rules, the lifecycle and every balance it touches.

The world: 张伟 tops up 1000.00 and pays GameZone 648.00, of which the platform keeps a 1% fee
(6.48), so GameZone's settlement account holds 641.52. Each test then asserts the three
balances a dispute can touch: the customer's wallet, the merchant's settlement account and the
platform's dispute account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.integration.desk_support import audit_events, messages
from tests.integration.wallet_support import Books, Person, Shop
from typer.testing import CliRunner

from walletdesk import config
from walletdesk.cli import app as walletdesk_cli
from walletdesk.db import Database
from walletdesk.disputes import service
from walletdesk.disputes.demo import seed_demo
from walletdesk.disputes.models import Dispute
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.support.cases import cases_linked_to, links_of, timeline
from walletdesk.support.models import Case
from walletdesk.wallet.models import Customer, WalletTransaction
from walletdesk.wallet.service import payments, transfers

STAFF = "staff:1"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SETTLEMENT = "merchant:GAMEZONE:CNY"
DISPUTES = "system:dispute:CNY"


@dataclass(frozen=True)
class World:
    db: Database
    books: Books
    clock: FrozenClock
    buyer: Person
    shop: Shop
    payment: str  # the 648.00 payment's number

    def run(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.db.unit_of_work() as session:
            return operation(session, *args, **kwargs)

    def file(self, amount: int | None = None, reason: str = "not_received", **kw: Any) -> int:
        dispute = self.run(
            service.file_dispute,
            self.buyer.id,
            kw.pop("number", self.payment),
            reason,
            "The game pack never arrived",
            amount,
            actor=f"customer:{self.buyer.id}",
            **kw,
        )
        return dispute.id

    def refuse(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        with pytest.raises(DomainError) as caught:
            self.run(operation, *args, **kwargs)
        return caught.value.code

    def dispute(self, dispute_id: int) -> Dispute:
        return self.run(lambda s: s.get(Dispute, dispute_id))

    def refund(self, amount: int | None) -> WalletTransaction:
        return self.run(payments.refund, self.shop.id, self.payment, amount)

    def balances(self) -> dict[str, Any]:
        """Customer (balance, available, incoming pending), merchant settlement balance,
        dispute account (balance, pending debits)."""
        wallet = self.books.wallet(self.buyer.id)
        disputes = self.books.account(DISPUTES)
        return {
            "customer": (wallet.balance, wallet.available, wallet.incoming_pending),
            "merchant": self.books.account(SETTLEMENT).balance,
            "disputes": (disputes.balance, disputes.pending_debits),
        }


PAID = {"customer": (352_00, 352_00, 0), "merchant": 641_52, "disputes": (0, 0)}


@pytest.fixture
def world(
    db: Database,
    books: Books,
    frozen_clock: FrozenClock,
    customer: Callable[..., Person],
    merchant: Callable[..., Shop],
) -> World:
    buyer = customer("张伟", email="zhangwei@example.com")
    shop = merchant("GAMEZONE", fee_bps=100)
    books.fund(buyer.id, 1000_00)
    with db.unit_of_work() as session:
        payment = payments.pay(session, buyer.id, shop.code, 648_00, "CNY")
        assert payment.status == "succeeded"
        number = payment.number
    world = World(db, books, frozen_clock, buyer, shop, number)
    assert world.balances() == PAID
    return world


def after(**changes: Any) -> dict[str, Any]:
    """The balances after the payment, with these changed."""
    return {**PAID, **changes}


# --- filing --------------------------------------------------------------------------------------


def test_filing_opens_a_case_waiting_on_the_merchant_and_moves_no_money(world: World) -> None:
    dispute_id = world.file()
    view = world.run(service.dispute_status, world.buyer.id, dispute_id)
    dispute = view.dispute
    assert (dispute.status, dispute.amount, dispute.currency) == (
        "awaiting_merchant",
        648_00,
        "CNY",
    )
    assert dispute.respond_by.replace(tzinfo=None) == (
        world.clock.now() + timedelta(days=7)
    ).replace(tzinfo=None)
    assert view.transaction_number == world.payment and view.offers == ()
    with world.db.unit_of_work() as session:
        (case,) = cases_linked_to(session, "dispute", str(dispute_id))
        assert (case.type, case.status, case.queue) == ("refund", "waiting_on_merchant", "disputes")
        assert {(link.kind, link.ref) for link in links_of(session, case)} == {
            ("dispute", str(dispute_id)),
            ("transaction", world.payment),
        }
        assert "dispute_filed" in [e.kind for e in timeline(session, case, for_customer=True)]
    sent = messages(world.db, world.buyer.id, "dispute_filed")
    assert [channel for channel, _to, _params in sent] == ["inapp", "email"]
    filed = sent[0][2]
    assert filed["amount"] == "CNY 648.00" and filed["transaction_number"] == world.payment
    assert filed["case_number"] == case.number
    ((actor, subject, detail),) = audit_events(world.db, "dispute.filed")
    assert (actor, subject) == (f"customer:{world.buyer.id}", f"dispute:{dispute_id}")
    assert detail["amount"] == 648_00 and "The game pack" not in str(detail)
    assert world.balances() == PAID
    assert world.books.verify() == []


def test_an_unauthorised_charge_offers_to_freeze_the_account_and_replace_the_card(
    world: World,
) -> None:
    dispute_id = world.file(reason="unauthorised")
    view = world.run(service.dispute_status, world.buyer.id, dispute_id)
    assert view.offers == ("freeze_account", "replace_card")
    case = world.run(lambda s: s.get(Case, view.dispute.case_id))
    assert (case.type, case.priority) == ("unrecognised_charge", "high")
    world.run(service.freeze_for_dispute, world.buyer.id, dispute_id, keep_session=None)
    assert world.run(lambda s: s.get(Customer, world.buyer.id).status) == "frozen"
    assert messages(world.db, world.buyer.id, "account_frozen")


def test_only_unauthorised_charges_come_with_the_freeze_offer(world: World) -> None:
    dispute_id = world.file(reason="duplicate")
    code = world.refuse(service.freeze_for_dispute, world.buyer.id, dispute_id, keep_session=None)
    assert code == "no_freeze_offer"


def test_only_the_customers_own_completed_payments_can_be_disputed(
    world: World, customer: Callable[..., Person]
) -> None:
    friend = customer("李娜", email="lina@example.com")
    sent = world.run(transfers.send, world.buyer.id, "lina@example.com", 50_00, "CNY")
    declined = world.run(payments.pay, world.buyer.id, world.shop.code, 900_00, "CNY")
    assert (sent.status, declined.status) == ("succeeded", "failed")
    file = service.file_dispute
    for who, number in ((world.buyer.id, sent.number), (friend.id, sent.number)):
        assert world.refuse(file, who, number, "unauthorised", "?", actor="x") == "not_disputable"
    assert world.refuse(file, world.buyer.id, declined.number, "duplicate", "?", actor="x") == (
        "not_disputable"
    )
    assert world.refuse(file, friend.id, world.payment, "unauthorised", "?", actor="x") == (
        "transaction_not_found"
    )
    assert world.run(lambda s: s.scalars(select(Dispute)).all()) == []


def test_the_dispute_window_counts_from_the_payment(world: World) -> None:
    world.clock.advance(timedelta(days=120, seconds=1))
    file = service.file_dispute
    code = world.refuse(file, world.buyer.id, world.payment, "not_received", "?", actor="x")
    assert code == "dispute_window_closed"
    world.clock.advance(timedelta(seconds=-1))
    assert world.file()


def test_a_payment_is_disputed_once_and_again_only_after_a_withdrawal(world: World) -> None:
    first = world.file(amount=100_00)
    code = world.refuse(
        service.file_dispute, world.buyer.id, world.payment, "duplicate", "?", actor="x"
    )
    assert code == "already_disputed"
    world.run(service.withdraw, world.buyer.id, first, actor="customer")
    second = world.file()  # withdrawn disputes do not count: nothing was decided
    assert world.dispute(second).amount == 648_00
    world.run(service.sweep_overdue)
    world.clock.advance(timedelta(days=8))
    assert world.run(service.sweep_overdue) == 1
    world.run(service.decide, second, "lost", "the pack was delivered", actor=STAFF)
    code = world.refuse(
        service.file_dispute, world.buyer.id, world.payment, "duplicate", "?", actor="x"
    )
    assert code == "already_disputed"  # a decided dispute is final


def test_the_amount_is_capped_by_what_was_paid_less_refunds(world: World) -> None:
    world.refund(148_00)
    code = world.refuse(
        service.file_dispute, world.buyer.id, world.payment, "amount_wrong", "?", 500_01, actor="x"
    )
    assert code == "dispute_amount_too_large"
    dispute_id = world.file()
    assert world.dispute(dispute_id).amount == 500_00  # all that was not refunded


def test_a_payment_refunded_in_full_cannot_be_disputed(world: World) -> None:
    world.refund(None)
    code = world.refuse(
        service.file_dispute, world.buyer.id, world.payment, "not_received", "?", actor="x"
    )
    assert code == "nothing_to_dispute"
    assert world.balances() == after(customer=(1000_00, 1000_00, 0), merchant=-6_48)


def test_two_filings_at_once_make_exactly_one_dispute(world: World) -> None:
    outcomes = race(
        world,
        lambda s: (
            service.file_dispute(
                s, world.buyer.id, world.payment, "duplicate", "twice?", actor="customer"
            ).id
        ),
        lambda s: (
            service.file_dispute(
                s, world.buyer.id, world.payment, "unauthorised", "not me", actor="customer"
            ).id
        ),
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["DomainError", "int"]
    refused = next(o for o in outcomes if isinstance(o, DomainError))
    assert refused.code == "already_disputed"
    assert len(world.run(lambda s: s.scalars(select(Dispute)).all())) == 1
    assert world.run(lambda s: len(s.scalars(select(Case)).all())) == 1  # the loser left none


def test_a_refund_and_a_filing_at_once_never_cover_the_same_money(world: World) -> None:
    outcomes = race(
        world,
        lambda s: payments.refund(s, world.shop.id, world.payment, None).amount,
        lambda s: (
            service.file_dispute(
                s, world.buyer.id, world.payment, "not_received", "?", actor="customer"
            ).amount
        ),
    )
    winners = [o for o in outcomes if isinstance(o, int)]
    losers = [o.code for o in outcomes if isinstance(o, DomainError)]
    assert winners == [648_00] and losers in (["nothing_to_dispute"], ["amount_under_dispute"])
    payment = world.books.txn(world.payment)
    in_dispute = world.run(service.amount_in_dispute, payment.id)
    assert payment.refunded_amount + in_dispute == 648_00


def test_two_refunds_at_once_never_return_more_than_was_paid(world: World) -> None:
    def refund_most(session: Any) -> int:
        # As the merchant API does: find the payment first, then refund it.
        payment = payments.payment_of_merchant(session, world.shop.id, world.payment)
        return payments.refund(session, world.shop.id, payment.number, 400_00).amount

    outcomes = race(world, refund_most, refund_most)
    assert sorted(map(str, outcomes)) == ["40000", "refund_exceeds_payment: " + REFUND_EXCEEDS]
    assert world.books.txn(world.payment).refunded_amount == 400_00
    assert world.balances() == after(customer=(752_00, 752_00, 0), merchant=241_52)


REFUND_EXCEEDS = "That is more than what is left to refund on this payment."


def race(world: World, *operations: Callable[[Any], Any]) -> list[Any]:
    """Run each operation in its own thread and unit of work, started together."""
    barrier = threading.Barrier(len(operations))
    outcomes: list[Any] = [None] * len(operations)

    def run(index: int, operation: Callable[[Any], Any]) -> None:
        barrier.wait()
        try:
            with world.db.unit_of_work() as session:
                outcomes[index] = operation(session)
        except DomainError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, op)) for i, op in enumerate(operations)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


# --- provisional credit and the outcomes ---------------------------------------------------------

HELD = after(customer=(352_00, 352_00, 648_00), disputes=(0, 648_00))


def test_a_provisional_credit_is_visible_but_cannot_be_spent(world: World) -> None:
    dispute_id = world.file()
    world.run(service.grant_provisional_credit, dispute_id, actor=STAFF)
    assert world.balances() == HELD
    spend = world.run(payments.pay, world.buyer.id, world.shop.code, 400_00, "CNY")
    assert (spend.status, spend.failure_code) == ("failed", "insufficient_balance")
    assert world.refuse(service.grant_provisional_credit, dispute_id, actor=STAFF) == (
        "provisional_credit_exists"
    )
    assert world.balances() == HELD
    assert world.books.verify() == []


def test_winning_replaces_the_held_credit_with_the_merchants_refund(world: World) -> None:
    dispute_id = world.file()
    world.run(service.grant_provisional_credit, dispute_id, actor=STAFF)
    world.run(service.respond, world.shop.id, dispute_id, "contest", "Delivered on the 15th")
    world.run(service.decide, dispute_id, "won", "no delivery record", actor=STAFF)
    # Credited once, by the merchant; the platform keeps its fee; the dispute account is even.
    assert world.balances() == after(customer=(1000_00, 1000_00, 0), merchant=-6_48)
    dispute = world.dispute(dispute_id)
    refund = world.run(lambda s: s.get(WalletTransaction, dispute.refund_transaction_id))
    assert (refund.kind, refund.amount, refund.status) == ("refund", 648_00, "succeeded")
    assert world.books.txn(world.payment).refunded_amount == 648_00  # counts as refunded
    assert world.refuse(payments.refund, world.shop.id, world.payment, None) == (
        "refund_exceeds_payment"
    )
    assert world.refuse(service.decide, dispute_id, "won", "again", actor=STAFF) == (
        "dispute_closed"
    )
    assert world.balances() == after(customer=(1000_00, 1000_00, 0), merchant=-6_48)
    assert world.books.verify() == []


def test_losing_releases_the_held_credit_and_says_why(world: World) -> None:
    dispute_id = world.file()
    world.run(service.grant_provisional_credit, dispute_id, actor=STAFF)
    world.clock.advance(timedelta(days=7, minutes=1))
    assert world.run(service.sweep_overdue) == 1
    world.run(service.decide, dispute_id, "lost", "the merchant proved delivery", actor=STAFF)
    assert world.balances() == PAID
    view = world.run(service.dispute_status, world.buyer.id, dispute_id)
    assert (view.dispute.status, view.provisional_state) == ("lost", "released")
    ((_ch, _dest, lost), *_rest) = messages(world.db, world.buyer.id, "dispute_lost")
    assert lost["outcome"] == "the merchant proved delivery"
    assert world.refund(None).amount == 648_00  # the merchant may still refund by choice
    assert world.books.verify() == []


def test_withdrawing_releases_the_held_credit(world: World) -> None:
    dispute_id = world.file()
    world.run(service.grant_provisional_credit, dispute_id, 200_00, actor=STAFF)
    assert world.balances() == after(customer=(352_00, 352_00, 200_00), disputes=(0, 200_00))
    world.run(service.withdraw, world.buyer.id, dispute_id, actor="customer")
    assert world.balances() == PAID
    assert world.refuse(service.grant_provisional_credit, dispute_id, actor=STAFF) == (
        "dispute_closed"
    )


def test_a_merchant_accepting_refunds_the_customer_at_once(world: World) -> None:
    dispute_id = world.file(amount=148_00)
    world.run(service.respond, world.shop.id, dispute_id, "accept", "")
    dispute = world.dispute(dispute_id)
    assert (dispute.status, dispute.decided_by) == ("won", f"merchant:{world.shop.id}")
    assert world.balances() == after(customer=(500_00, 500_00, 0), merchant=493_52)


def test_the_merchant_cannot_refund_the_disputed_part_while_the_dispute_is_open(
    world: World,
) -> None:
    dispute_id = world.file(amount=300_00)
    assert world.refuse(payments.refund, world.shop.id, world.payment, 348_01) == (
        "amount_under_dispute"
    )
    assert world.refund(348_00).amount == 348_00  # the undisputed part is theirs to refund
    assert world.refuse(payments.refund, world.shop.id, world.payment, None) == (
        "amount_under_dispute"
    )
    assert world.balances() == after(customer=(700_00, 700_00, 0), merchant=293_52)
    world.run(service.respond, world.shop.id, dispute_id, "contest", "Delivered")
    world.run(service.decide, dispute_id, "won", "not delivered", actor=STAFF)
    assert world.books.txn(world.payment).refunded_amount == 648_00
    assert world.balances() == after(customer=(1000_00, 1000_00, 0), merchant=-6_48)
    assert world.books.verify() == []


def test_another_merchant_cannot_answer_and_the_customer_cannot_see_anothers_dispute(
    world: World, merchant: Callable[..., Shop], customer: Callable[..., Person]
) -> None:
    dispute_id = world.file()
    other_shop = merchant("CITYMALL")
    stranger = customer("王芳")
    assert world.refuse(service.respond, other_shop.id, dispute_id, "accept", "") == (
        "dispute_not_found"
    )
    assert world.refuse(service.dispute_status, stranger.id, dispute_id) == "dispute_not_found"
    assert world.refuse(service.withdraw, stranger.id, dispute_id, actor="x") == (
        "dispute_not_found"
    )


# --- the merchant's deadline ---------------------------------------------------------------------


def test_the_sweep_moves_only_disputes_past_their_deadline(
    world: World, customer: Callable[..., Person]
) -> None:
    early = world.file()
    world.clock.advance(timedelta(days=2))
    other = customer("Alice")
    world.books.fund(other.id, 100_00)
    later_payment = world.run(payments.pay, other.id, world.shop.code, 50_00, "CNY").number
    later = world.run(
        service.file_dispute, other.id, later_payment, "duplicate", "?", actor="customer"
    ).id
    world.clock.advance(timedelta(days=5, minutes=1))  # past the first deadline only
    assert world.run(service.sweep_overdue) == 1
    assert world.run(service.sweep_overdue) == 0
    assert (world.dispute(early).status, world.dispute(later).status) == (
        "under_review",
        "awaiting_merchant",
    )
    assert world.refuse(service.respond, world.shop.id, early, "contest", "late") == (
        "dispute_action_not_allowed"
    )
    world.clock.advance(timedelta(days=2))  # past the second deadline, before a sweep
    assert world.refuse(service.respond, world.shop.id, later, "contest", "late") == (
        "dispute_response_late"
    )
    world.run(service.respond, world.shop.id, early, "accept", "")  # conceding is never late
    assert world.dispute(early).status == "won"


def test_the_sweep_runs_from_the_command_line(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispute_id = world.file()
    world.clock.advance(timedelta(days=7, minutes=1))
    monkeypatch.setenv("WALLETDESK_DATABASE_URL", world.db.url)
    config.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(walletdesk_cli, ["disputes", "sweep"])
    finally:
        config.get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "1 dispute(s) moved to review" in result.output
    assert world.dispute(dispute_id).status == "under_review"
    (_ch, _to, params), *_ = messages(world.db, world.buyer.id, "dispute_under_review")
    assert params["transaction_number"] == world.payment


# --- the record of every change ------------------------------------------------------------------


def test_every_change_is_on_the_case_told_to_the_customer_and_audited(world: World) -> None:
    dispute_id = world.file()
    world.run(service.grant_provisional_credit, dispute_id, actor=STAFF)
    world.run(service.respond, world.shop.id, dispute_id, "contest", "Delivered on the 15th")
    world.run(service.decide, dispute_id, "won", "no delivery record", actor=STAFF)
    steps = ("dispute_filed", "dispute_provisional_credit", "dispute_under_review", "dispute_won")
    with world.db.unit_of_work() as session:
        (case,) = cases_linked_to(session, "dispute", str(dispute_id))
        kinds = [e.kind for e in timeline(session, case, for_customer=True)]
        assert [k for k in kinds if k.startswith("dispute_")] == list(steps)
        assert case.status == "resolved"
        contested = next(
            e
            for e in timeline(session, case, for_customer=True)
            if e.kind == "dispute_under_review"
        )
        assert contested.body == "Delivered on the 15th"
    for step in steps:
        assert [c for c, _d, _p in messages(world.db, world.buyer.id, step)] == ["inapp", "email"]
        (event,) = audit_events(world.db, step.replace("dispute_", "dispute."))
        assert event[1] == f"dispute:{dispute_id}"


def test_the_customer_can_add_evidence_while_the_dispute_is_open(world: World) -> None:
    dispute_id = world.file()
    world.run(service.add_evidence, world.buyer.id, dispute_id, "../收据.png", PNG)
    view = world.run(service.dispute_status, world.buyer.id, dispute_id)
    (evidence,) = view.evidence
    assert (evidence.filename, evidence.content_type, evidence.size) == (
        "收据.png",
        "image/png",
        len(PNG),
    )
    stored = world.run(service.evidence_file, dispute_id, evidence.id)
    assert stored.content == PNG
    world.run(service.withdraw, world.buyer.id, dispute_id, actor="customer")
    code = world.refuse(service.add_evidence, world.buyer.id, dispute_id, "late.png", PNG)
    assert code == "dispute_closed"


# --- demo data -----------------------------------------------------------------------------------


def test_the_demo_has_a_dispute_waiting_on_the_merchant_and_a_charge_left_to_dispute(
    db: Database, gateway: Any, frozen_clock: FrozenClock
) -> None:
    from walletdesk import demo

    ids = demo.load(db, gateway)
    with db.unit_of_work() as session:
        filed = seed_demo(session, ids)
        assert filed is not None
        again = seed_demo(session, ids)
        assert again is not None and again.id == filed.id
        assert (filed.status, filed.amount) == ("awaiting_merchant", 900)
    with db.unit_of_work() as session:
        game = session.execute(
            select(WalletTransaction).where(WalletTransaction.request_key == "demo:zhang-game")
        ).scalar_one()
        service.file_dispute(
            session, ids["zhangwei"], game.number, "unauthorised", "不是我买的", actor="test"
        )
