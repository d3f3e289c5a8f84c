"""Random sequences of wallet operations, checked against a model of every balance after each step.

Three customers (A, B, C) with CNY wallets and a merchant that charges a fee. Hypothesis strings
together top-ups (a card that works and one that is declined, through the real sandbox gateway),
payments, P2P transfers, partial refunds, withdrawals that the bank then settles or returns, and
retries of earlier operations with the same request key. After every step:

* the books balance: ledger.verify() finds nothing (money conserved per currency, balances equal
  their entries, no overdrawn wallet);
* no customer's balance or available amount is negative;
* every wallet, the merchant's settlement account and the fee account hold exactly what the model
  says, so a retry that moved money twice, or a refusal that moved some, shows at once.

Each example makes its own customers and merchant (unique phone numbers and codes) rather than
emptying the database, so examples may share one.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.db import Database
from walletdesk.kit.errors import DomainError
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind, LedgerAccount
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.models import TxnStatus, WalletTransaction
from walletdesk.wallet.rules import fee_for
from walletdesk.wallet.service import cards, customers, payments, topups, transfers, withdrawals

FEE_BPS = 275  # 2.75 %: fees that round down, so the arithmetic is not trivially exact
VISA_OK = "4242424242424242"
DECLINED = "4000000000000002"
BANK_ACCOUNT = "6222020200112233445"
FEE_ACCOUNT = f"system:{AccountKind.FEE_INCOME}:CNY"

_phones = itertools.count(random.randrange(10**7))
who = st.integers(min_value=0, max_value=2)  # A, B or C
top_ups = st.integers(min_value=1, max_value=200_000)  # fen: up to 2000.00 CNY
# What to spend, as a percentage of what is available: above 100 is more than there is.
shares = st.integers(min_value=1, max_value=120)
card_kinds = st.sampled_from(["works", "works", "works", "declined"])
pick = st.integers(min_value=0, max_value=10**6)  # an index into an earlier list, modulo its length


@dataclass
class Wallet:
    customer_id: int
    phone: str
    good_card: int
    declined_card: int
    balance: int = 0
    held: int = 0  # withdrawals waiting for the bank

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass
class Payment:
    number: str
    wallet: Wallet
    amount: int
    refunded: int = 0


@dataclass(frozen=True)
class Pending:
    number: str
    wallet: Wallet
    amount: int


@dataclass(frozen=True)
class Done:
    """An operation that recorded a transaction, and how to ask for it again with its key."""

    number: str
    amount: int
    again: Callable[[Session], WalletTransaction]


@dataclass(frozen=True)
class Seen:
    number: str
    status: str
    failure_code: str | None
    amount: int


def _phone() -> str:
    return f"+86137{next(_phones) % 10**8:08d}"


def share_of(wallet: Wallet, percent: int) -> int:
    """`percent` of the wallet's available money (at least 1 fen; 1.00 CNY per % if empty)."""
    if wallet.available == 0:
        return percent * 100
    return max(1, wallet.available * percent // 100)


class WalletMachine(RuleBasedStateMachine):
    def __init__(self, db: Database, gateway: SandboxGateway) -> None:
        super().__init__()
        self.db, self.gateway = db, gateway
        self.wallets: list[Wallet] = []
        with db.unit_of_work() as session:
            for name in "ABC":
                customer, _ = customers.create_customer(session, name, phone=_phone())
                good = cards.add_card(session, gateway, customer.id, VISA_OK, 12, 2035, "123")
                bad = cards.add_card(session, gateway, customer.id, DECLINED, 12, 2035, "123")
                self.wallets.append(Wallet(customer.id, customer.phone or "", good.id, bad.id))
            merchant, _ = customers.create_merchant(
                session, f"SM{uuid.uuid4().hex[:10].upper()}", "Tea House", fee_bps=FEE_BPS
            )
            self.merchant_id, self.merchant_code = merchant.id, merchant.code
            self.fees_before = self._account_balance(session, FEE_ACCOUNT)
        self.merchant_balance = 0
        self.fees = 0
        self.payments: list[Payment] = []
        self.pending: list[Pending] = []
        self.done: list[Done] = []
        self.status: dict[str, str] = {}  # current status of every transaction, by number

    # --- helpers ---------------------------------------------------------------------------

    def run(self, operation: Callable[[Session], WalletTransaction]) -> Seen:
        """One unit of work, as a request or job would run it; what the caller sees back."""
        with self.db.unit_of_work() as session:
            txn = operation(session)
            return Seen(txn.number, txn.status, txn.failure_code, txn.amount)

    def record(self, seen: Seen, again: Callable[[Session], WalletTransaction]) -> None:
        self.status[seen.number] = seen.status
        self.done.append(Done(seen.number, seen.amount, again))

    @staticmethod
    def _account_balance(session: Session, code: str) -> int:
        balance = session.execute(
            select(LedgerAccount.balance).where(LedgerAccount.code == code)
        ).scalar_one_or_none()
        return balance or 0

    @staticmethod
    def key() -> str:
        return f"sm:{uuid.uuid4().hex}"

    # --- rules -----------------------------------------------------------------------------

    @initialize(amounts=st.tuples(top_ups, top_ups, top_ups))
    def everyone_tops_up(self, amounts: tuple[int, int, int]) -> None:
        for i, amount in enumerate(amounts):
            self.top_up(i, amount, "works")

    @rule(i=who, amount=top_ups, card_kind=card_kinds)
    def top_up(self, i: int, amount: int, card_kind: str) -> None:
        wallet, key = self.wallets[i], self.key()
        declined = card_kind == "declined"
        card = wallet.declined_card if declined else wallet.good_card

        def call(session: Session) -> WalletTransaction:
            return topups.top_up(
                self.db, session, self.gateway, wallet.customer_id, card, amount, "CNY",
                request_key=key,
            )  # fmt: skip

        seen = self.run(call)
        if declined:
            assert (seen.status, seen.failure_code) == (TxnStatus.FAILED, "card_declined")
        else:
            assert seen.status == TxnStatus.SUCCEEDED, seen.failure_code
            wallet.balance += amount
        self.record(seen, call)

    @rule(i=who, percent=shares)
    def pay_merchant(self, i: int, percent: int) -> None:
        wallet, key = self.wallets[i], self.key()
        amount = share_of(wallet, percent)

        def call(session: Session) -> WalletTransaction:
            return payments.pay(
                session, wallet.customer_id, self.merchant_code, amount, "CNY", request_key=key
            )

        affordable = amount <= wallet.available
        seen = self.run(call)
        if affordable:
            assert seen.status == TxnStatus.SUCCEEDED, seen.failure_code
            fee = fee_for(amount, FEE_BPS)
            wallet.balance -= amount
            self.merchant_balance += amount - fee
            self.fees += fee
            self.payments.append(Payment(seen.number, wallet, amount))
        else:
            assert (seen.status, seen.failure_code) == (TxnStatus.FAILED, "insufficient_balance")
        self.record(seen, call)

    @rule(i=who, step=st.integers(min_value=1, max_value=2), percent=shares)
    def send(self, i: int, step: int, percent: int) -> None:
        sender, recipient = self.wallets[i], self.wallets[(i + step) % 3]
        key, amount = self.key(), share_of(sender, percent)

        def call(session: Session) -> WalletTransaction:
            return transfers.send(
                session, sender.customer_id, recipient.phone, amount, "CNY", request_key=key
            )

        affordable = amount <= sender.available
        seen = self.run(call)
        if affordable:
            assert seen.status == TxnStatus.SUCCEEDED, seen.failure_code
            sender.balance -= amount
            recipient.balance += amount
        else:
            assert (seen.status, seen.failure_code) == (TxnStatus.FAILED, "insufficient_balance")
        self.record(seen, call)

    @precondition(lambda self: any(p.refunded < p.amount for p in self.payments))
    @rule(index=pick, percent=st.integers(min_value=1, max_value=100), rest=st.booleans())
    def refund(self, index: int, percent: int, rest: bool) -> None:
        open_ = [p for p in self.payments if p.refunded < p.amount]
        payment = open_[index % len(open_)]
        remaining = payment.amount - payment.refunded
        amount = None if rest else max(1, remaining * percent // 100)
        key = self.key()

        def call(session: Session) -> WalletTransaction:
            return payments.refund(
                session, self.merchant_id, payment.number, amount, request_key=key
            )

        seen = self.run(call)
        refunded = remaining if amount is None else amount
        assert seen.status == TxnStatus.SUCCEEDED
        assert seen.amount == refunded
        payment.refunded += refunded
        self.merchant_balance -= refunded
        payment.wallet.balance += refunded
        self.record(seen, call)

    @precondition(lambda self: bool(self.payments))
    @rule(index=pick)
    def refund_more_than_paid(self, index: int) -> None:
        payment = self.payments[index % len(self.payments)]
        too_much = payment.amount - payment.refunded + 1
        with pytest.raises(DomainError) as refused:
            self.run(
                lambda s: payments.refund(
                    s, self.merchant_id, payment.number, too_much, request_key=self.key()
                )
            )
        assert refused.value.code == "refund_exceeds_payment"

    @rule(i=who, percent=shares)
    def withdraw(self, i: int, percent: int) -> None:
        wallet, key = self.wallets[i], self.key()
        amount = share_of(wallet, percent)

        def call(session: Session) -> WalletTransaction:
            return withdrawals.withdraw(
                session, wallet.customer_id, amount, "CNY", BANK_ACCOUNT, request_key=key
            )

        affordable = amount <= wallet.available
        seen = self.run(call)
        if affordable:
            assert seen.status == TxnStatus.PENDING, seen.failure_code
            wallet.held += amount
            self.pending.append(Pending(seen.number, wallet, amount))
        else:
            assert (seen.status, seen.failure_code) == (TxnStatus.FAILED, "insufficient_balance")
        self.record(seen, call)

    @precondition(lambda self: bool(self.pending))
    @rule(index=pick, returned=st.booleans())
    def bank_answers(self, index: int, returned: bool) -> None:
        withdrawal = self.pending.pop(index % len(self.pending))
        seen = self.run(lambda s: withdrawals.settle(s, withdrawal.number, returned=returned))
        withdrawal.wallet.held -= withdrawal.amount
        if returned:
            assert (seen.status, seen.failure_code) == (TxnStatus.FAILED, "bank_rejected")
        else:
            assert seen.status == TxnStatus.SUCCEEDED
            withdrawal.wallet.balance -= withdrawal.amount
        self.status[withdrawal.number] = seen.status
        # The bank's answer counts once: a second one is refused and moves nothing.
        with pytest.raises(DomainError) as refused:
            self.run(lambda s: withdrawals.settle(s, withdrawal.number, returned=not returned))
        assert refused.value.code == "withdrawal_not_pending"

    @precondition(lambda self: bool(self.done))
    @rule(index=pick)
    def retry(self, index: int) -> None:
        """The same request again (same key): the same transaction back, no money moved."""
        earlier = self.done[index % len(self.done)]
        seen = self.run(earlier.again)
        assert seen.number == earlier.number
        assert seen.amount == earlier.amount
        assert seen.status == self.status[earlier.number]

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def books_match_the_model(self) -> None:
        with self.db.unit_of_work() as session:
            assert ledger.verify(session) == []
            # The wallets' ledger accounts are what customers.balances() shows them.
            codes = {f"wallet:{w.customer_id}:CNY": w for w in self.wallets}
            merchant_code = f"merchant:{self.merchant_code}:CNY"
            found = {
                code: (balance, balance - held)
                for code, balance, held in session.execute(
                    select(
                        LedgerAccount.code, LedgerAccount.balance, LedgerAccount.pending_debits
                    ).where(LedgerAccount.code.in_([*codes, merchant_code, FEE_ACCOUNT]))
                )
            }
            for code, wallet in codes.items():
                balance, available = found.get(code, (0, 0))
                assert balance >= 0 and available >= 0
                assert (balance, available) == (wallet.balance, wallet.available)
            assert found.get(merchant_code, (0, 0))[0] == self.merchant_balance
            assert found.get(FEE_ACCOUNT, (0, 0))[0] - self.fees_before == self.fees
            recorded = session.execute(
                select(WalletTransaction.number, WalletTransaction.status).where(
                    WalletTransaction.customer_id.in_([w.customer_id for w in self.wallets])
                )
            ).all()
            assert dict(recorded) == self.status  # one transaction per operation, never two


def test_wallet_operations_keep_the_books(db: Database, tmp_path: Path) -> None:
    gateway = SandboxGateway(tmp_path / "sandbox_gateway.db")
    # SQLite explores; PostgreSQL re-checks a few sequences on the other engine (its locking and
    # types differ), since each step costs a dozen round trips there.
    on_postgres = db.engine.dialect.name == "postgresql"
    run_state_machine_as_test(
        lambda: WalletMachine(db, gateway),
        settings=settings(
            max_examples=6 if on_postgres else 25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
