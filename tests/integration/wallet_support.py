"""What the wallet's integration tests share: people, merchants, card numbers and the books.

`Books` reads the ledger and the wallet the way an accountant would, and sets money up through
the real paths (a card top-up through the sandbox gateway), never behind the wallet's back.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from walletdesk.db import Database
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import Entry, LedgerAccount, Transfer
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.models import WalletTransaction
from walletdesk.wallet.service import cards, customers, topups
from walletdesk.wallet.service.customers import WalletBalance

ADMIN_TOKEN = "integration-admin-token"

# The sandbox gateway's test cards (see walletdesk.wallet.gateway).
VISA_OK = "4242424242424242"
DECLINED = "4000000000000002"
CARD_NO_FUNDS = "4000000000009995"
TIMEOUT_AFTER_CHARGE = "4000000000000259"
TIMEOUT_BEFORE_CHARGE = "4000000000000267"


@dataclass(frozen=True, slots=True)
class Person:
    """A wallet customer as a test sees them: id, bearer token and how others reach them."""

    id: int
    token: str
    phone: str | None
    email: str | None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class Shop:
    id: int
    code: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass(frozen=True, slots=True)
class Account:
    """A ledger account's figures (all zero for an account never opened)."""

    balance: int = 0
    pending_debits: int = 0
    pending_credits: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.pending_debits


class Books:
    """Read the ledger and the wallet the way an accountant would, and set up money."""

    def __init__(self, db: Database, gateway: SandboxGateway, gateway_path: Path) -> None:
        self.db = db
        self.gateway = gateway
        self.gateway_path = gateway_path

    # --- setting up ------------------------------------------------------------------------

    def card(self, customer_id: int, number: str = VISA_OK) -> int:
        with self.db.unit_of_work() as session:
            return cards.add_card(session, self.gateway, customer_id, number, 12, 2030, "123").id

    def top_up(
        self,
        customer_id: int,
        card_id: int,
        amount: int,
        currency: str = "CNY",
        *,
        key: str | None = None,
    ) -> WalletTransaction:
        with self.db.unit_of_work() as session:
            return topups.top_up(
                self.db,
                session,
                self.gateway,
                customer_id,
                card_id,
                amount,
                currency,
                request_key=key,
            )

    def fund(self, customer_id: int, amount: int, currency: str = "CNY") -> None:
        """Top the wallet up by `amount` from a fresh Visa, in top-ups the limit allows."""
        card_id = self.card(customer_id)
        step = 50_000_00 if currency == "CNY" else 10_000_00
        while amount > 0:
            txn = self.top_up(customer_id, card_id, min(step, amount), currency)
            assert txn.status == "succeeded", txn.failure_code
            amount -= txn.amount

    # --- reading ---------------------------------------------------------------------------

    def account(self, code: str) -> Account:
        with self.db.unit_of_work() as session:
            row = session.execute(
                select(LedgerAccount).where(LedgerAccount.code == code)
            ).scalar_one_or_none()
            if row is None:
                return Account()
            return Account(row.balance, row.pending_debits, row.pending_credits)

    def balances(self, customer_id: int) -> list[WalletBalance]:
        """Every wallet the customer has, in the order they were opened."""
        with self.db.unit_of_work() as session:
            return customers.balances(session, customer_id)

    def wallet(self, customer_id: int, currency: str = "CNY") -> WalletBalance:
        found = [b for b in self.balances(customer_id) if b.currency == currency]
        return found[0] if found else WalletBalance(currency, 0, 0, 0, 0)

    def txn(self, number: str) -> WalletTransaction:
        with self.db.unit_of_work() as session:
            return session.execute(
                select(WalletTransaction).where(WalletTransaction.number == number)
            ).scalar_one()

    def transaction_count(self) -> int:
        with self.db.unit_of_work() as session:
            return session.execute(select(func.count(WalletTransaction.id))).scalar_one()

    def transfers(self, number: str) -> dict[str, Transfer]:
        """The ledger transfers a wallet transaction wrote, by external id."""
        with self.db.unit_of_work() as session:
            rows = session.execute(
                select(Transfer).where(
                    (Transfer.external_id == f"txn:{number}")
                    | Transfer.external_id.like(f"txn:{number}:%")
                )
            ).scalars()
            return {t.external_id: t for t in rows}

    def entries(self, number: str) -> list[tuple[str, int]]:
        """(account code, signed amount) of every entry the transaction's transfers wrote."""
        with self.db.unit_of_work() as session:
            rows = session.execute(
                select(LedgerAccount.code, Entry.amount)
                .join(Entry, Entry.account_id == LedgerAccount.id)
                .join(Transfer, Transfer.id == Entry.transfer_id)
                .where(
                    (Transfer.external_id == f"txn:{number}")
                    | Transfer.external_id.like(f"txn:{number}:%")
                )
                .order_by(Entry.id)
            ).all()
            return [(code, amount) for code, amount in rows]

    def snapshot(self) -> tuple[dict[str, Account], int, int]:
        """Every account's figures, the transaction count and the transfer count."""
        with self.db.unit_of_work() as session:
            accounts = {
                row.code: Account(row.balance, row.pending_debits, row.pending_credits)
                for row in session.execute(select(LedgerAccount)).scalars()
            }
            transfers = session.execute(select(func.count(Transfer.id))).scalar_one()
        return accounts, self.transaction_count(), transfers

    def verify(self) -> list[ledger.Discrepancy]:
        with self.db.unit_of_work() as session:
            return ledger.verify(session)

    def charges(self, key: str | None = None) -> int:
        """How many charges the card gateway (an outside system) made, optionally for one key."""
        with sqlite3.connect(self.gateway_path) as connection:
            if key is None:
                return connection.execute("SELECT count(*) FROM charges").fetchone()[0]
            query = "SELECT count(*) FROM charges WHERE key = ?"
            return connection.execute(query, (key,)).fetchone()[0]
