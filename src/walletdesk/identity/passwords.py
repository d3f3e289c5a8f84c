"""Passwords and payment PINs: NIST-style rules (length, not a common one) and how each is kept.

Passwords are argon2id hashes. A payment PIN is kept as an HMAC-SHA256 under a key that is not in
the database (derived from the data keys): six digits are a million candidates, which a slow
hash only delays (argon2id at OWASP's floor: about 6 CPU-hours for them all, minutes on rented
cores) while a key the database does not hold makes a stolen copy useless, the way card issuers
keep PIN verification values under a PIN key. Attempt limits guard the online guess. Each value
binds its customer (a copied value does not verify on another account) and a random salt.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
from functools import lru_cache
from hashlib import sha256
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from walletdesk.kit import crypto
from walletdesk.kit.errors import DomainError, define

log = logging.getLogger(__name__)

MIN_PASSWORD = 8
MAX_PASSWORD = 256  # long passphrases are welcome; nothing is ever truncated
PIN_LENGTH = 6
PIN_SCHEME = "pin-hmac1"  # scheme:key id:salt:mac, base64url
PIN_KEY_PURPOSE = "walletdesk payment PIN v1"
PIN_SALT_BYTES = 16

# OWASP's argon2id floor for memory and passes (m = 19 MiB, t = 2).
_HASHER = PasswordHasher(
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
    hash_len=RFC_9106_LOW_MEMORY.hash_len,
    salt_len=RFC_9106_LOW_MEMORY.salt_len,
)
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


def hash_pin(customer_id: int, pin: str) -> str:
    """The value kept for `customer_id`'s payment PIN, under the newest data key."""
    key_id, key = crypto.purpose_key(PIN_KEY_PURPOSE)
    salt = os.urandom(PIN_SALT_BYTES)
    return ":".join((PIN_SCHEME, key_id, _b64(salt), _b64(_pin_mac(key, salt, customer_id, pin))))


def pin_matches(stored: str | None, customer_id: int, pin: str) -> bool:
    """Whether `pin` is the PIN `stored` keeps for `customer_id`. PINs kept as argon2id hashes
    (before keyed PINs) still verify; `pin_is_current` tells when to keep one again."""
    if stored is None:
        return False
    if not is_keyed_pin(stored):
        return verify_secret(stored, pin)
    parts = _keyed_parts(stored)
    if parts is None:
        return False
    key, salt, mac = parts
    return hmac.compare_digest(_pin_mac(key, salt, customer_id, pin), mac)


def is_keyed_pin(stored: str) -> bool:
    return stored.startswith(PIN_SCHEME + ":")


def pin_checkable(stored: str) -> bool:
    """False for a keyed PIN whose data key is no longer configured (or a damaged value): no
    PIN can match it, so the customer has to set a new one rather than be counted wrong."""
    return not is_keyed_pin(stored) or _keyed_parts(stored) is not None


def pin_is_current(stored: str) -> bool:
    """Kept the current way under the newest data key: once a PIN checks out, any other value
    is replaced (key rotation; argon2id hashes from before keyed PINs)."""
    return stored.startswith(f"{PIN_SCHEME}:{crypto.purpose_key(PIN_KEY_PURPOSE)[0]}:")


def _keyed_parts(stored: str) -> tuple[bytes, bytes, bytes] | None:
    """A keyed PIN's key, salt and MAC; None, logged, when its key is gone or it is damaged."""
    parts = stored.split(":")
    if len(parts) != 4:
        log.error("a payment PIN value is damaged (%d parts)", len(parts))
        return None
    _, key_id, salt, mac = parts
    try:
        _, key = crypto.purpose_key(PIN_KEY_PURPOSE, key_id)
        salt_bytes, mac_bytes = _unb64(salt), _unb64(mac)
        if (len(salt_bytes), len(mac_bytes)) == (PIN_SALT_BYTES, sha256().digest_size):
            return key, salt_bytes, mac_bytes
        log.error("a payment PIN value under data key %r is damaged", key_id)
    except KeyError:  # its data key was removed from WALLETDESK_DATA_KEYS too soon
        log.error("a payment PIN is kept under data key %r, which is no longer configured", key_id)
    except ValueError:  # not base64url
        log.error("a payment PIN value under data key %r is damaged", key_id)
    return None


def _pin_mac(key: bytes, salt: bytes, customer_id: int, pin: str) -> bytes:
    return hmac.new(key, salt + f"{customer_id}:{pin}".encode(), sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_secret(stored: str | None, candidate: str) -> bool:
    """Constant work whether or not there is a stored hash (no timing hint of existence)."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, candidate) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
