"""Sessions: opaque 256-bit tokens stored hashed, revocable, with idle and absolute timeouts.

Bearer tokens serve the app and the API; cookie sessions (kind "web") serve web pages. A new
token is issued on login and on every step-up that raises what a session may do.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.identity.models import AuthSession, Device
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.crypto import random_token, token_hash

COOKIE_NAME = "__Host-walletdesk_session"
# Writing last_seen_at on every request would make each read a write; a minute is precise enough.
_TOUCH_EVERY = timedelta(minutes=1)


def _timeouts(kind: str) -> tuple[timedelta, timedelta]:
    settings = get_settings()
    if kind == "web":
        return (
            timedelta(minutes=settings.session_idle_minutes),
            timedelta(hours=settings.session_absolute_hours),
        )
    return (
        timedelta(minutes=settings.api_session_idle_minutes),
        timedelta(hours=settings.api_session_absolute_hours),
    )


def start(
    session: Session,
    customer_id: int,
    *,
    device_id: int | None,
    kind: str = "api",
    ip: str | None = None,
    token: str | None = None,
) -> tuple[AuthSession, str]:
    """A new session and its token (the token is returned once and never stored)."""
    now = clock.now()
    token = token or random_token(32)
    _, absolute = _timeouts(kind)
    auth = AuthSession(
        token_hash=token_hash(token),
        customer_id=customer_id,
        device_id=device_id,
        kind=kind,
        created_at=now,
        last_seen_at=now,
        expires_at=now + absolute,
        ip=ip,
    )
    session.add(auth)
    session.flush()
    return auth, token


def resolve(session: Session, token: str) -> AuthSession | None:
    """The live session behind `token`, or None if unknown, revoked, idle too long or expired."""
    auth = session.execute(
        select(AuthSession).where(AuthSession.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if auth is None or auth.revoked_at is not None:
        return None
    now = clock.now()
    idle, _ = _timeouts(auth.kind)
    if as_utc(auth.expires_at) <= now or as_utc(auth.last_seen_at) + idle <= now:
        return None
    if auth.device_id is not None:
        device = session.get(Device, auth.device_id)
        if device is None or device.revoked_at is not None:
            return None
    if now - as_utc(auth.last_seen_at) >= _TOUCH_EVERY:
        auth.last_seen_at = now
    return auth


def rotate(auth: AuthSession) -> str:
    """A new token for the same session; the old one stops working at once."""
    token = random_token(32)
    auth.token_hash = token_hash(token)
    return token


def revoke(session: Session, auth: AuthSession) -> None:
    auth.revoked_at = auth.revoked_at or clock.now()


def revoke_all(session: Session, customer_id: int, *, keep: int | None = None) -> int:
    """End every session of the customer (password change, reset), except `keep` if given."""
    query = update(AuthSession).where(
        AuthSession.customer_id == customer_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    return session.execute(query.values(revoked_at=clock.now())).rowcount


def device_verified(session: Session, auth: AuthSession) -> bool:
    if auth.device_id is None:
        return False
    device = session.get(Device, auth.device_id)
    return device is not None and device.verified_at is not None and device.revoked_at is None
