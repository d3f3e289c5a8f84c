"""Passwords and payment PINs: argon2id hashes, NIST-style rules (length, not a common one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from walletdesk.kit.errors import DomainError, define

MIN_PASSWORD = 8
MAX_PASSWORD = 256  # long passphrases are welcome; nothing is ever truncated
PIN_LENGTH = 6


def _argon2id(lanes: int) -> PasswordHasher:
    """OWASP's argon2id floor for memory and passes (m = 19 MiB, t = 2), on `lanes` threads."""
    return PasswordHasher(
        time_cost=2,
        memory_cost=19456,
        parallelism=lanes,
        hash_len=RFC_9106_LOW_MEMORY.hash_len,
        salt_len=RFC_9106_LOW_MEMORY.salt_len,
    )


_HASHER = _argon2id(lanes=1)
# Payment PINs: the same memory and passes filled by two lanes on two cores at once, so a check
# takes about half the time (10 ms, not 19) for the same work and an attacker's cost per guess
# is unchanged (RFC 9106 itself recommends four lanes). A PIN is checked only for a customer
# already known, so unlike a password it needs no timing match with the dummy hash below.
# PINs hashed with one lane carry their parameters and still verify.
_PIN_HASHER = _argon2id(lanes=2)
# Verified against when an account does not exist, so a miss costs what a hit costs.
_DUMMY_HASH = _HASHER.hash("walletdesk-timing-equaliser")

define(
    "password_too_short",
    422,
    en="Use at least 8 characters; a few words make a strong, memorable passphrase.",
    zh="密码至少 8 个字符；几个词组成的短语既安全又好记。",
)
define("password_too_long", 422, en="Use at most 256 characters.", zh="密码最多 256 个字符。")
define(
    "password_too_common",
    422,
    en="That password is too common or too easy to guess; choose another.",
    zh="该密码过于常见或容易被猜到，请换一个。",
)
define(
    "pin_invalid",
    422,
    en="The payment PIN is 6 digits, and not an easy one like 123456 or 111111.",
    zh="支付密码为 6 位数字，且不能是 123456、111111 这类简单组合。",
)


@lru_cache
def _common() -> frozenset[str]:
    text = resources.files("walletdesk.identity").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def check_password(password: str, *, personal: tuple[str | None, ...] = ()) -> None:
    """Length, and not a common password or the account's own phone/email."""
    if len(password) < MIN_PASSWORD:
        raise DomainError("password_too_short")
    if len(password) > MAX_PASSWORD:
        raise DomainError("password_too_long")
    lowered = password.lower()
    if lowered in _common() or any(
        p and lowered in (p.lower(), p.lower().lstrip("+")) for p in personal
    ):
        raise DomainError("password_too_common")


def check_pin(pin: str) -> None:
    """A new PIN: six digits, not all the same, not a run."""
    if not may_be_pin(pin) or len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise DomainError("pin_invalid")


def may_be_pin(digits: str) -> bool:
    """The shape of a payment PIN: six ASCII digits."""
    return len(digits) == PIN_LENGTH and digits.isascii() and digits.isdigit()


def hash_secret(secret: str) -> str:
    """A password's hash."""
    return _HASHER.hash(secret)


def hash_pin(pin: str) -> str:
    return _PIN_HASHER.hash(pin)


def verify_secret(stored: str | None, candidate: str) -> bool:
    """Constant work whether or not there is a stored hash (no timing hint of existence)."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, candidate) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


SecretCheck = Callable[[str | None, str], bool]  # verify_secret or one of its stand-ins


@dataclass(frozen=True, slots=True)
class CheckedAhead:
    """`verify_secret` with one answer worked out beforehand, outside the transaction that uses
    it: a check takes tens of milliseconds, too long to hold locks others wait on. The answer
    counts only for the same stored hash and candidate; anything else is checked now."""

    stored: str | None
    candidate: str
    matches: bool

    @classmethod
    def check(cls, stored: str | None, candidate: str) -> CheckedAhead:
        return cls(stored, candidate, verify_secret(stored, candidate))

    def __call__(self, stored: str | None, candidate: str) -> bool:
        if stored == self.stored and candidate == self.candidate:
            return self.matches
        return verify_secret(stored, candidate)
