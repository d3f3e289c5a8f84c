"""The audit log: who did what, when, from where, as a SHA-256 hash chain.

`record` appends one event inside the caller's unit of work (it never commits). Each event
stores the hash of the one before it, and its own hash covers that link plus its fields, so
editing an event breaks its hash, deleting one leaves a gap or a broken link, and cutting off
the tail disagrees with the head row. `verify` walks the chain and lists what it finds.

The chain is only as trustworthy as the database around it: someone who can drop the triggers
and rewrite every later hash can forge a consistent history. Operators who need more keep the
head hash `walletdesk audit verify` prints somewhere else and compare it later.

Appending locks the head row until the caller's transaction ends, so audited transactions take
turns from that point on: record late in a unit of work, not before slow work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from walletdesk.audit.models import GENESIS_HASH, HEAD_ID, AuditEvent, AuditHead
from walletdesk.db import get_or_create
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc

MAX_LENGTHS = {"actor": 64, "action": 64, "subject": 200, "ip": 45}

# Keys that would put a secret into a log nobody can ever clean up. Not a complete filter:
# callers must still never pass passwords, PINs, codes, tokens or card numbers in `detail`.
SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "old_password",
        "pin",
        "otp",
        "token",
        "secret",
        "totp_secret",
        "recovery_code",
        "card_number",
        "pan",
        "cvv",
        "cvc",
    }
)


class _Hashable(Protocol):
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str | None
    ip: str | None
    detail_json: str | None
    prev_hash: str


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event to the chain in the caller's transaction; never commits.

    `actor` is who acted ("customer:12", "agent:3", "system"), `action` what happened
    ("login", "account.frozen"), `subject` what it happened to ("customer:12", "case:…"),
    `ip` where the request came from. `detail` is extra JSON-able context kept forever: it must
    never hold a secret (password, PIN, one-time code, token, card number); well-known secret
    keys are refused with ValueError.
    """
    _check_lengths(actor=actor, action=action, subject=subject, ip=ip)
    detail_json = _canonical_detail(detail)
    head = _locked_head(session)
    event = AuditEvent(
        seq=head.seq + 1,
        occurred_at=clock.now().astimezone(UTC),  # SQLite keeps no zone: store UTC only
        actor=actor,
        action=action,
        subject=subject,
        ip=ip,
        detail_json=detail_json,
        prev_hash=head.hash,
    )
    event.hash = chain_hash(event)
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    session.flush()
    return event


def verify(session: Session) -> list[str]:
    """Walk the whole chain; returns the problems found ([] means intact)."""
    # The head is read first: events committed after it (seq beyond it) are ordinary
    # concurrent appends, not tampering, so they are checked as links but not against it.
    head = _read_head(session)
    problems: list[str] = []
    expected_seq, prev_hash, hash_at_head = 1, GENESIS_HASH, None
    for event in _events_in_order(session):
        problems.extend(_check_event(event, expected_seq, prev_hash))
        expected_seq, prev_hash = event.seq + 1, event.hash
        if head is not None and event.seq == head.seq:
            hash_at_head = event.hash
    problems.extend(_check_head(head, last_seq=expected_seq - 1, hash_at_head=hash_at_head))
    return problems


def tail(session: Session, count: int = 20) -> list[AuditEvent]:
    """The last `count` events, oldest first."""
    newest = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(count))
    return list(reversed(newest.all()))


def head_of(session: Session) -> AuditHead | None:
    return _read_head(session)


def chain_hash(event: _Hashable) -> str:
    """SHA-256 over the previous hash and a canonical serialisation of the event's fields."""
    fields = [
        event.seq,
        _utc_text(event.occurred_at),
        event.actor,
        event.action,
        event.subject,
        event.ip,
        event.detail_json,
    ]
    # A JSON array has no delimiter ambiguity: ("a:b", "c") and ("a", "b:c") differ.
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{event.prev_hash}\n{payload}".encode()).hexdigest()


# --- appending -----------------------------------------------------------------------------------


def _check_lengths(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None and len(value) > MAX_LENGTHS[name]:
            raise ValueError(f"audit {name} is longer than {MAX_LENGTHS[name]} characters")
    if not values["actor"] or not values["action"]:
        raise ValueError("an audit event needs an actor and an action")


def _canonical_detail(detail: Mapping[str, Any] | None) -> str | None:
    if not detail:
        return None
    _refuse_secrets(detail)
    # default=str keeps dates, Decimals and enums readable; the text stored is the text hashed.
    return json.dumps(
        detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )


def _refuse_secrets(value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if str(key).lower() in SECRET_KEYS:
                raise ValueError(f"audit detail must not carry secrets (key {key!r})")
            _refuse_secrets(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            _refuse_secrets(inner)


def _locked_head(session: Session) -> AuditHead:
    """The head row, locked until the transaction ends (SQLite's writer lock already is one)."""
    head = _read_head(session, lock=True)
    if head is None:
        _create_head(session)
        head = _read_head(session, lock=True)
        assert head is not None
    return head


def _read_head(session: Session, *, lock: bool = False) -> AuditHead | None:
    query = select(AuditHead).where(AuditHead.id == HEAD_ID)
    if lock:
        query = query.with_for_update()
    # populate_existing: a head cached in this session from before the lock may be stale.
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def _create_head(session: Session) -> None:
    # Migration 0004 inserts the head; it is gone only if someone emptied the tables. With
    # events left, starting a new chain would hide that, so refuse loudly instead.
    if session.scalar(select(exists().where(AuditEvent.seq > 0))):
        raise RuntimeError("the audit chain head is missing; run `walletdesk audit verify`")
    get_or_create(
        session,
        lambda: session.get(AuditHead, HEAD_ID),
        lambda: _add_flushed(session, AuditHead(id=HEAD_ID, seq=0, hash=GENESIS_HASH)),
    )


def _add_flushed(session: Session, head: AuditHead) -> AuditHead:
    session.add(head)
    session.flush()
    return head


def _utc_text(moment: datetime) -> str:
    return as_utc(moment).astimezone(UTC).isoformat(timespec="microseconds")


# --- verifying -----------------------------------------------------------------------------------


def _events_in_order(session: Session) -> Iterable[Any]:
    columns = [
        AuditEvent.seq,
        AuditEvent.occurred_at,
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.subject,
        AuditEvent.ip,
        AuditEvent.detail_json,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    ]
    # Streamed in batches: the log only grows, and verify must not need it all in memory.
    query = select(*columns).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    return session.execute(query)


def _check_event(event: Any, expected_seq: int, prev_hash: str) -> list[str]:
    problems = []
    if event.seq != expected_seq:
        missing = _span(expected_seq, event.seq - 1)
        problems.append(f"{missing} missing: deleted from the log")
    elif event.prev_hash != prev_hash:
        problems.append(f"event {event.seq} does not link to the event before it")
    if chain_hash(event) != event.hash:
        problems.append(f"event {event.seq} was altered: its fields do not match its hash")
    return problems


def _check_head(head: AuditHead | None, *, last_seq: int, hash_at_head: str | None) -> list[str]:
    if head is None:
        return ["the chain head row is missing"] if last_seq > 0 else []
    if head.seq > last_seq:
        return [f"{_span(last_seq + 1, head.seq)} missing: the end of the log was cut off"]
    if head.seq > 0 and hash_at_head != head.hash:
        return [f"event {head.seq} does not match the hash the chain head recorded for it"]
    return []


def _span(first: int, last: int) -> str:
    return f"event {first} is" if first == last else f"events {first} to {last} are"
