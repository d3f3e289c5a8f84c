"""The card gateway: a small Protocol, and a sandbox that behaves like a real one.

The sandbox plays an outside system, so it keeps its own records in its own SQLite file: a
charge it accepted stays accepted even when walletdesk's transaction rolls back or its process
dies, which is exactly what reconciliation has to cope with in production.

Test cards (any future expiry, any 3-digit CVC), in the spirit of Stripe's:

| number              | what happens                                              |
|---------------------|-----------------------------------------------------------|
| 4242 4242 4242 4242 | Visa, charge succeeds                                     |
| 5555 5555 5555 4444 | Mastercard, charge succeeds                               |
| 6200 0000 0000 0005 | UnionPay, charge succeeds                                 |
| 4000 0000 0000 0002 | declined: card_declined                                   |
| 4000 0000 0000 9995 | declined: insufficient_funds_on_card                      |
| 4000 0000 0000 0259 | times out, but the charge went through (reconcile posts)  |
| 4000 0000 0000 0267 | times out before charging (reconcile voids)               |
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class TokenizedCard:
    token: str
    brand: str
    last4: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    decline_code: str | None = None  # card_declined, insufficient_funds_on_card


class GatewayTimeout(Exception):
    """No answer in time: the charge may or may not have happened. Ask again with `lookup`."""


class CardGateway(Protocol):
    def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenizedCard: ...

    def charge(self, token: str, amount: int, currency: str, key: str) -> ChargeResult:
        """Charge once per `key`: asking again with the same key returns the first result."""
        ...

    def lookup(self, key: str) -> ChargeResult | None:
        """What became of the charge made under `key`; None if the gateway never made one."""
        ...


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4]) <= 2720:
        return "mastercard"
    if number.startswith("62"):
        return "unionpay"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith("35"):
        return "jcb"
    return "card"


_BEHAVIOUR = {
    "4000000000000002": "decline:card_declined",
    "4000000000009995": "decline:insufficient_funds_on_card",
    "4000000000000259": "timeout_after_charge",
    "4000000000000267": "timeout_before_charge",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, behaviour TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS charges (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, amount INTEGER NOT NULL,
    currency TEXT NOT NULL, status TEXT NOT NULL, decline_code TEXT
);
"""


class SandboxGateway:
    """A test-mode card gateway backed by its own SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._path, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            self._local.connection = connection
        return connection

    def tokenize(self, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenizedCard:
        token = "tok_" + secrets.token_hex(12)
        behaviour = _BEHAVIOUR.get(number, "succeed")
        with self._connect() as connection:
            connection.execute("INSERT INTO tokens VALUES (?, ?)", (token, behaviour))
        return TokenizedCard(token=token, brand=card_brand(number), last4=number[-4:])

    def charge(self, token: str, amount: int, currency: str, key: str) -> ChargeResult:
        earlier = self.lookup(key)
        if earlier is not None:
            return earlier
        behaviour = self._behaviour(token)
        if behaviour == "timeout_before_charge":
            raise GatewayTimeout(key)
        status, decline_code = ChargeStatus.SUCCEEDED, None
        if behaviour.startswith("decline:"):
            status, decline_code = ChargeStatus.DECLINED, behaviour.partition(":")[2]
        with self._connect() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO charges VALUES (?, ?, ?, ?, ?, ?)",
                (key, token, amount, currency, str(status), decline_code),
            )
        if behaviour == "timeout_after_charge":
            raise GatewayTimeout(key)
        return ChargeResult(status, decline_code)

    def lookup(self, key: str) -> ChargeResult | None:
        row = (
            self._connect()
            .execute("SELECT status, decline_code FROM charges WHERE key = ?", (key,))
            .fetchone()
        )
        return ChargeResult(ChargeStatus(row[0]), row[1]) if row else None

    def _behaviour(self, token: str) -> str:
        row = (
            self._connect()
            .execute("SELECT behaviour FROM tokens WHERE token = ?", (token,))
            .fetchone()
        )
        return row[0] if row else "decline:card_declined"
