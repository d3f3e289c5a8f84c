"""Notify customers: write outbox rows in the caller's transaction; read and mark the inbox.

`notify` never commits and never sends: the caller's unit of work commits the change and its
messages together, and a worker sends them afterwards (notify.worker). A rolled-back change
therefore sends nothing, and a committed one is never lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.kit.crypto import open_sealed, seal
from walletdesk.kit.errors import DomainError
from walletdesk.notify.models import Channel, InboxMessage, OutboxMessage, OutboxStatus
from walletdesk.notify.templates import Template, check_params, language_of
from walletdesk.wallet.models import Customer

PARAMS_CONTEXT = "outbox_messages.params"
ALL_CHANNELS: tuple[str, ...] = (Channel.INAPP, Channel.EMAIL, Channel.SMS)


def notify(
    session: Session,
    customer_id: int,
    event: str,
    params: dict[str, Any] | None = None,
    *,
    channels: Sequence[str] = ("inapp", "email", "sms"),
    to: str | None = None,
) -> list[int]:
    """Queue `event` for the customer on each of `channels` they can receive; the outbox ids.

    Email is skipped for a customer without an email address and SMS without a phone, unless
    `to` names the destination (a code sent to a new number being verified; or, after a
    change of contact, a warning to the old one). Events whose params are a credential (codes,
    reset links) never go to the in-app inbox. Unknown event or missing params: ValueError.
    """
    values = dict(params or {})
    template = check_params(event, values)
    _check_channels(channels, to)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise ValueError(f"no customer {customer_id}")
    sealed = seal(_to_json(values), context=PARAMS_CONTEXT)
    now = clock.now()
    rows = [
        OutboxMessage(
            customer_id=customer_id,
            channel=channel,
            event=event,
            language=language_of(customer.language),
            destination=destination,
            params_sealed=sealed,
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for channel, destination in _routes(customer, template, channels, to)
    ]
    session.add_all(rows)
    session.flush()  # assigns ids; the caller's unit of work decides whether they persist
    return [row.id for row in rows]


def open_params(message: OutboxMessage) -> dict[str, Any]:
    """An outbox row's params in clear (codes, links): for the worker and tests, never logs."""
    return unseal_params(message.params_sealed)


def unseal_params(sealed: str) -> dict[str, Any]:
    return json.loads(open_sealed(sealed, context=PARAMS_CONTEXT))


def inbox(
    session: Session, customer_id: int, *, unread_only: bool = False, limit: int = 50
) -> list[InboxMessage]:
    """The customer's in-app messages, newest first."""
    query = select(InboxMessage).where(InboxMessage.customer_id == customer_id)
    if unread_only:
        query = query.where(InboxMessage.read_at.is_(None))
    query = query.order_by(InboxMessage.id.desc()).limit(max(1, min(limit, 200)))
    return list(session.scalars(query))


def unread_count(session: Session, customer_id: int) -> int:
    query = select(func.count()).where(
        InboxMessage.customer_id == customer_id, InboxMessage.read_at.is_(None)
    )
    return session.scalar(query) or 0


def mark_read(session: Session, customer_id: int, message_id: int) -> InboxMessage:
    """Mark one of the customer's messages read (again is fine: the first time stays)."""
    message = session.get(InboxMessage, message_id)
    # Someone else's message answers exactly like a missing one: ids reveal nothing.
    if message is None or message.customer_id != customer_id:
        raise DomainError("not_found")
    if message.read_at is None:
        message.read_at = clock.now()
    return message


def _check_channels(channels: Sequence[str], to: str | None) -> None:
    unknown = [c for c in channels if c not in ALL_CHANNELS]
    if unknown:
        raise ValueError(f"unknown notification channels: {', '.join(unknown)}")
    if to is not None and len({c for c in channels if c != Channel.INAPP}) > 1:
        raise ValueError("`to` names one destination: pass a single email or sms channel")


def _routes(
    customer: Customer, template: Template, channels: Sequence[str], to: str | None
) -> list[tuple[str, str | None]]:
    """(channel, destination) for each channel this message can go out on."""
    routes: list[tuple[str, str | None]] = []
    for channel in dict.fromkeys(channels):  # each channel once, in the caller's order
        if channel == Channel.INAPP:
            if not template.secret:
                routes.append((channel, None))
            continue
        own = customer.email if channel == Channel.EMAIL else customer.phone
        destination = to or own
        if destination:
            routes.append((channel, destination))
    return routes


def _to_json(params: Mapping[str, Any]) -> str:
    return json.dumps(params, default=_json_default, ensure_ascii=False, sort_keys=True)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # Decimal, enums...: the templates show them as text anyway
