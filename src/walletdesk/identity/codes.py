"""One-time codes by SMS or email: 6 digits, single use, ≤ 10 minutes, voided after 5 misses.

Sending a new code for the same purpose voids the previous one ("resend replaces"). The code is
stored only as a hash; in clear it exists in the outbox message (sealed) and the customer's SMS.
The caller must commit after `check` whatever it returns: a miss has to count.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.identity.models import OneTimeCode
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.crypto import random_digits, same, token_hash

MAX_GUESSES = 5


def send(
    session: Session,
    customer_id: int,
    purpose: str,
    channel: str,
    destination: str,
    *,
    event: str = "one_time_code",
) -> OneTimeCode:
    """Void any earlier live code for `purpose` and send a new one to `destination`.

    `event` picks the message: a code the customer reads back to a support agent needs words
    other than "never tell anyone this code".
    """
    now = clock.now()
    _void_live(session, customer_id, purpose)
    code = random_digits(6)
    minutes = get_settings().otp_ttl_minutes
    record = OneTimeCode(
        customer_id=customer_id,
        purpose=purpose,
        channel=channel,
        destination=destination,
        code_hash=token_hash(f"{purpose}:{code}"),
        attempts=0,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(record)
    session.flush()
    from walletdesk.notify.service import notify  # notify sits above identity in the layers

    notify(
        session,
        customer_id,
        event,
        {"code": code, "minutes": minutes, "purpose": purpose},
        channels=(channel,),
        to=destination,
    )
    return record


def check(session: Session, customer_id: int, purpose: str, code: str) -> OneTimeCode | None:
    """The code's record, once, for the right code; every miss counts, the fifth voids it."""
    now = clock.now()
    live = session.execute(
        select(OneTimeCode)
        .where(
            OneTimeCode.customer_id == customer_id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.used_at.is_(None),
            OneTimeCode.voided_at.is_(None),
        )
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if live is None or as_utc(live.expires_at) <= now:
        return None
    if same(live.code_hash, token_hash(f"{purpose}:{code.strip()}")):
        live.used_at = now
        return live
    live.attempts += 1
    if live.attempts >= MAX_GUESSES:
        live.voided_at = now
    return None


def _void_live(session: Session, customer_id: int, purpose: str) -> None:
    session.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.customer_id == customer_id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.used_at.is_(None),
            OneTimeCode.voided_at.is_(None),
        )
        .values(voided_at=clock.now())
    )
