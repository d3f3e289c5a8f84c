"""Idempotency keys with Stripe's semantics.

1. `claim` (its own short transaction, committed at once) records the key as in flight, so a
   concurrent request with the same key sees it and gets 409 instead of running twice.
2. The operation runs in the request's unit of work, and `complete` stores its response in that
   same transaction: the change and the remembered answer commit together or not at all.
3. A retry with the same key and body replays the stored answer; with another body it is 422.

A worker that dies mid-request leaves the key locked until `locked_until`; after that a retry
takes the key over. If the first worker was only slow, `complete` notices it lost the lock
and rolls back, so at most one of them commits.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletdesk.db import Database
from walletdesk.idempotency.models import IdempotencyRecord
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.crypto import keyed_digest
from walletdesk.kit.errors import DomainError

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: int
    lock_token: str


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return keyed_digest(f"request:{canonical}")  # bodies carry CVCs and passwords: keyed


def check_key(key: str | None) -> str:
    if key is None:
        raise DomainError("idempotency_key_required")
    if not (0 < len(key) <= MAX_KEY_LENGTH) or not key.isprintable() or key.strip() != key:
        raise DomainError("idempotency_key_invalid")
    return key


def claim(
    db: Database, principal: str, key: str, digest: str, *, ttl: timedelta, lock: timedelta
) -> Claim | StoredResponse:
    """Take the key for this request, or return the answer already stored under it."""
    for _ in range(3):
        try:
            with db.unit_of_work() as session:
                return _claim(session, principal, key, digest, ttl=ttl, lock=lock)
        except IntegrityError:
            continue  # another request inserted the same key just now: look again
    raise DomainError("idempotency_key_in_use")


def _claim(
    session: Session, principal: str, key: str, digest: str, *, ttl: timedelta, lock: timedelta
) -> Claim | StoredResponse:
    now = clock.now()
    record = session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    ).scalar_one_or_none()
    if record is not None and as_utc(record.expires_at) <= now:
        session.delete(record)
        session.flush()
        record = None
    token = secrets.token_hex(16)
    if record is None:
        record = IdempotencyRecord(
            principal=principal,
            key=key,
            fingerprint=digest,
            lock_token=token,
            locked_until=now + lock,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(record)
        session.flush()
        return Claim(record.id, token)
    if record.fingerprint != digest:
        raise DomainError("idempotency_key_reused")
    if record.response_status is not None:
        return StoredResponse(record.response_status, json.loads(record.response_body or "null"))
    if record.locked_until is not None and as_utc(record.locked_until) > now:
        raise DomainError("idempotency_key_in_use")
    # The request that held the key never finished (its worker died): take it over.
    taken = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record.id,
            IdempotencyRecord.lock_token == record.lock_token,
        )
        .values(lock_token=token, locked_until=now + lock)
    ).rowcount
    if taken != 1:
        raise DomainError("idempotency_key_in_use")
    return Claim(record.id, token)


def complete(session: Session, held: Claim, status: int, body: Any) -> None:
    """Store the answer in the operation's own transaction; fail if the key was taken over."""
    stored = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == held.record_id,
            IdempotencyRecord.lock_token == held.lock_token,
            IdempotencyRecord.response_status.is_(None),
        )
        .values(
            response_status=status,
            response_body=json.dumps(body, ensure_ascii=False),
            lock_token=None,
            locked_until=None,
        )
    ).rowcount
    if stored != 1:
        raise DomainError("idempotency_key_in_use")


def answered(session: Session, principal: str, key: str | None, digest: str) -> bool:
    """Whether `claim` would replay a stored answer for this very request (same key and body).

    Read-only; lets the checks in front of an operation step aside for a mere replay.
    """
    if not key:
        return False
    record = session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    ).scalar_one_or_none()
    return (
        record is not None
        and record.fingerprint == digest
        and record.response_status is not None
        and as_utc(record.expires_at) > clock.now()
    )


def release(db: Database, held: Claim) -> None:
    """Forget an unfinished key after an unexpected failure, so the client may retry at once."""
    with db.unit_of_work() as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == held.record_id,
                IdempotencyRecord.lock_token == held.lock_token,
            )
        )


def purge_expired(session: Session) -> int:
    """Drop keys past their time to live; run from the worker or `walletdesk db purge`."""
    return session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= clock.now())
    ).rowcount
