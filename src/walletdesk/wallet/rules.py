"""Pure wallet rules: no database, no clock of their own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal

import phonenumbers

from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import exponent

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_digits(number: str) -> str:
    """The number without the spaces and dashes people type between digit groups."""
    return re.sub(r"[\s-]", "", number)


def check_card(number: str, exp_month: int, exp_year: int, today: date) -> str:
    """The card number without spaces, if it passes the Luhn check and has not expired."""
    digits = card_digits(number)
    if not luhn_valid(digits):
        raise DomainError("card_number_invalid")
    if exp_year < 100:
        exp_year += 2000
    if not 1 <= exp_month <= 12 or (exp_year, exp_month) < (today.year, today.month):
        raise DomainError("card_expired")
    return digits


def normalize_phone(text: str) -> str:
    """E.164 form of a phone number; numbers without a country code are read as Chinese."""
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise DomainError("invalid_phone") from None
    if not phonenumbers.is_valid_number(parsed):
        raise DomainError("invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(text: str) -> str:
    email = text.strip().lower()
    if not _EMAIL.match(email):
        raise DomainError("invalid_email")
    return email


@dataclass(frozen=True, slots=True)
class LimitBreach:
    window: str  # "transaction" or "daily"
    limit: int
    used: int


def check_limits(
    amount: int, per_transaction: int, daily: int, used_today: int
) -> LimitBreach | None:
    if amount > per_transaction:
        return LimitBreach("transaction", per_transaction, 0)
    if used_today + amount > daily:
        return LimitBreach("daily", daily, used_today)
    return None


def fee_for(amount: int, fee_bps: int) -> int:
    """The platform's fee in minor units, rounded down so a customer is never overcharged."""
    return amount * fee_bps // 10_000


def convert(amount: int, source: str, target: str, rate: Decimal) -> int:
    """Minor units of `target` for `amount` minor units of `source`, rounded down."""
    scale = Decimal(10) ** (exponent(target) - exponent(source))
    return int((Decimal(amount) * rate * scale).to_integral_value(rounding=ROUND_FLOOR))


def mask_recipient(text: str) -> str:
    """Enough of a phone or email to recognise it, not enough to harvest it."""
    if "@" in text:
        name, _, domain = text.partition("@")
        return f"{name[:1]}***@{domain}"
    return f"{text[:4]}****{text[-4:]}" if len(text) > 8 else "****"
