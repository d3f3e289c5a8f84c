"""Secrets handling: random tokens, their stored hashes, and personal data encrypted at rest.

Tokens and one-time codes are stored only as a keyed hash (HMAC-SHA256 with the server's
secret: they are random and short-lived, so a slow hash adds nothing, and the key keeps a stolen
database from being searched for 6-digit codes); passwords use argon2id. Personal data is sealed
with AES-256-GCM under a key id, so keys can rotate: `seal` always uses the newest key and
`open_sealed` reads the key id from the value. Other keyed uses (payment PINs) take a key derived
from a data key for their purpose alone (`purpose_key`), and rotate with the data keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import datetime
from functools import lru_cache

import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from walletdesk.config import get_settings


def random_token(nbytes: int = 32) -> str:
    """URL-safe random text with `nbytes` of entropy (32 bytes = 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def keyed_digest(text: str) -> str:
    """HMAC-SHA256 under the server's secret key.

    Stored digests of tokens, codes and request bodies are keyed: a copy of the database alone
    cannot be brute-forced back to a 6-digit code, a PIN or a card's CVC.
    """
    key = get_settings().secret_key.encode()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return keyed_digest(f"token:{token}")


def random_digits(length: int = 6) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(length))


def same(a: str, b: str) -> bool:
    """Compare secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


def _decode_key(text: str) -> bytes:
    key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(key) != 32:
        raise ValueError("data keys must be 32 bytes (AES-256), base64url encoded")
    return key


@lru_cache
def _keys(spec: str) -> dict[str, bytes]:
    """Parse "id1:base64key,id2:base64key"; the last one is the current key."""
    keys: dict[str, bytes] = {}
    for item in spec.split(","):
        key_id, _, encoded = item.strip().partition(":")
        keys[key_id] = _decode_key(encoded)
    return keys


def _current() -> tuple[str, bytes]:
    keys = _keys(get_settings().data_keys)
    key_id = list(keys)[-1]
    return key_id, keys[key_id]


def purpose_key(purpose: str, key_id: str | None = None) -> tuple[str, bytes]:
    """A key for `purpose` alone, derived (HKDF-SHA256) from data key `key_id`, by default the
    newest, and that key's id. KeyError when no data key has that id."""
    key_id = key_id if key_id is not None else _current()[0]
    return key_id, _derived(get_settings().data_keys, key_id, purpose)


@lru_cache(maxsize=64)
def _derived(spec: str, key_id: str, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(_keys(spec)[key_id])


def seal(plaintext: str, *, context: str) -> str:
    """Encrypt `plaintext`; `context` (e.g. "customer.name") binds it to its column."""
    key_id, key = _current()
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_sealed(value: str, *, context: str) -> str:
    key_id, _, encoded = value.partition(":")
    key = _keys(get_settings().data_keys)[key_id]
    raw = base64.urlsafe_b64decode(encoded)
    return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()


def sealed_with_current_key(value: str) -> bool:
    return value.partition(":")[0] == _current()[0]


def reseal(value: str, *, context: str) -> str:
    """The same plaintext under the current key (key rotation)."""
    return seal(open_sealed(value, context=context), context=context)


def new_data_key() -> str:
    """A fresh key for WALLETDESK_DATA_KEYS (`walletdesk admin new-data-key`)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def accepted_step(secret: str, code: str, last_step: int | None, now: datetime) -> int | None:
    """The time step `code` belongs to, within ±1 step of 30 s, or None.

    A step at or before `last_step` (the last one used) is refused: a code works once.
    """
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if same(totp.generate_otp(step), code.strip()):
            return step
    return None
