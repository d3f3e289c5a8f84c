"""Money as an integer of minor units plus a currency code. Never float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from walletdesk.kit.errors import DomainError

# ISO 4217 exponents, plus the crypto assets the wallet can hold.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "HKD": 2,
    "JPY": 0,
    "BTC": 8,
    "USDT": 6,
}

# Bigger than any real balance, small enough for a signed 64-bit column with room for sums.
MAX_MINOR_UNITS = 10**15

_DECIMAL_TEXT = re.compile(r"^\d{1,20}(\.\d{1,20})?$")


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise DomainError("unknown_currency", currency=currency) from None


def check_currency(currency: str) -> str:
    exponent(currency)
    return currency


@dataclass(frozen=True, slots=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        exponent(self.currency)

    def __str__(self) -> str:
        return f"{format_minor(self.minor, self.currency)} {self.currency}"


def parse_amount(text: str | int, currency: str) -> int:
    """Parse a positive decimal amount ("12.34") into minor units of `currency`.

    Integers are accepted as whole units. Floats are refused by the callers' schemas:
    a binary float cannot say 0.1 exactly.
    """
    places = exponent(currency)
    raw = str(text).strip()
    if not _DECIMAL_TEXT.match(raw):
        raise DomainError("invalid_amount", amount=raw[:40])
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise DomainError("invalid_amount", amount=raw[:40]) from None
    fraction = raw.partition(".")[2].rstrip("0")
    if len(fraction) > places:
        raise DomainError("too_many_decimals", currency=currency, places=places)
    minor = int(value.scaleb(places))
    if minor <= 0:
        raise DomainError("amount_not_positive")
    if minor > MAX_MINOR_UNITS:
        raise DomainError("amount_too_large")
    return minor


def format_minor(minor: int, currency: str) -> str:
    """Render minor units as a plain decimal string with the currency's places."""
    places = exponent(currency)
    if places == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}"
