"""Staff accounts, their sign-in with password and authenticator code, and their sessions.

Roles are agent, supervisor, risk_analyst and admin; each endpoint names the roles it admits.
A failed sign-in is counted and audited before the refusal is raised, so a caller must commit
its unit of work even then (catch the DomainError inside it, re-raise after; see
`staff.api.sign_in`), or a rollback would hand a guesser unlimited tries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletdesk.config import DEMO_SECRETS, demo_secrets_in_use, get_settings
from walletdesk.identity.passwords import check_password, hash_secret, verify_secret
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.crypto import (
    accepted_step,
    open_sealed,
    random_token,
    reseal,
    seal,
    sealed_with_current_key,
    token_hash,
)
from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import check_currency, parse_amount
from walletdesk.staff import errors as _errors  # noqa: F401  (defines this domain's codes)
from walletdesk.staff.models import StaffRole, StaffSession, StaffUser

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOTP_ISSUER = "walletdesk"
# Writing last_seen_at on every request would make each read a write; a minute is precise enough.
_TOUCH_EVERY = timedelta(minutes=1)


def _audit(
    session: Session, actor: str, action: str, subject: str, *, ip: str | None = None, **detail: Any
) -> None:
    from walletdesk.audit.service import record

    record(session, actor=actor, action=action, subject=subject, detail=detail or None, ip=ip)


def _totp_context(staff_id: int) -> str:
    # Not "totp:<id>" as for customers: a customer's sealed secret must not open as a staff one.
    return f"staff.totp:{staff_id}"


def normalize_username(username: str) -> str:
    return username.strip().lower()


def _role(role: StaffRole | str) -> StaffRole:
    try:
        return StaffRole(role)
    except ValueError:
        raise DomainError("staff_role_invalid") from None


# --- accounts --------------------------------------------------------------------------------


def create_staff(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: StaffRole | str,
    password: str,
    skills: Iterable[str] = (),
    goodwill_per_action: int = 0,
    goodwill_per_day: int = 0,
    limits_currency: str = "CNY",
    actor: str = "system",
) -> tuple[StaffUser, str]:
    """A new staff member with an authenticator already set up; returns it and the TOTP secret.

    The secret (base32) is returned this once, for the person's authenticator app; it is kept
    only sealed. Goodwill limits are minor units of `limits_currency`.
    """
    username = normalize_username(username)
    if not USERNAME.match(username):
        raise DomainError("staff_username_invalid")
    if get_by_username(session, username) is not None:
        raise DomainError("staff_username_taken")
    check_password(password, personal=(username,))
    if goodwill_per_action < 0 or goodwill_per_day < goodwill_per_action:
        raise DomainError("staff_goodwill_invalid")
    staff = StaffUser(
        username=username,
        display_name=display_name.strip()[:100] or username,
        role=_role(role).value,
        password_hash=hash_secret(password),
        failed_logins=0,
        skills=[skill.strip() for skill in skills if skill.strip()],
        limits_currency=check_currency(limits_currency),
        goodwill_per_action=goodwill_per_action,
        goodwill_per_day=goodwill_per_day,
        created_at=clock.now(),
    )
    session.add(staff)
    session.flush()
    secret = pyotp.random_base32()
    _set_totp_secret(staff, secret)
    _audit(session, actor, "staff.created", staff.actor, username=username, role=staff.role)
    return staff, secret


def _set_totp_secret(staff: StaffUser, secret: str) -> None:
    staff.totp_secret_sealed = seal(secret, context=_totp_context(staff.id))
    staff.totp_last_step = None


def provisioning_uri(staff: StaffUser, secret: str) -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code) or takes as a link."""
    return pyotp.TOTP(secret).provisioning_uri(name=staff.username, issuer_name=TOTP_ISSUER)


def parse_goodwill(text: str, currency: str) -> int:
    """A goodwill limit in minor units; unlike a payment amount it may be zero ("0.00")."""
    try:
        return parse_amount(text, currency)
    except DomainError as error:
        if error.code == "amount_not_positive":
            return 0
        raise


def get_by_username(
    session: Session, username: str, *, for_update: bool = False
) -> StaffUser | None:
    query = select(StaffUser).where(StaffUser.username == normalize_username(username))
    return session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()


def staff_by_username(session: Session, username: str) -> StaffUser:
    staff = get_by_username(session, username)
    if staff is None:
        raise DomainError("not_found")
    return staff


def _get(session: Session, staff_id: int) -> StaffUser:
    staff = session.get(StaffUser, staff_id)
    if staff is None:
        raise DomainError("not_found")
    return staff


def list_staff(session: Session) -> list[StaffUser]:
    return list(session.execute(select(StaffUser).order_by(StaffUser.username)).scalars())


def unlock(session: Session, staff_id: int, *, actor: str) -> StaffUser:
    """End a lock after failed sign-ins (someone checked it was the person, not an attacker)."""
    staff = _get(session, staff_id)
    staff.failed_logins, staff.locked_until = 0, None
    _audit(session, actor, "staff.unlocked", staff.actor)
    return staff


def disable(session: Session, staff_id: int, *, actor: str) -> StaffUser:
    """No more sign-ins, and every open session ends now (someone left, or a laptop was lost)."""
    staff = _get(session, staff_id)
    if actor == staff.actor:
        raise DomainError("staff_cannot_disable_self")
    now = clock.now()
    staff.disabled_at = staff.disabled_at or now
    session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff.id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    _audit(session, actor, "staff.disabled", staff.actor)
    return staff


def is_locked(staff: StaffUser, now: datetime) -> bool:
    return staff.locked_until is not None and as_utc(staff.locked_until) > now


# --- sign-in ---------------------------------------------------------------------------------


def login(
    session: Session, username: str, password: str, totp_code: str, ip: str | None = None
) -> str:
    """A session token for the right password and a fresh authenticator code.

    Raises staff_login_failed alike for an unknown or disabled user, a wrong password and a
    wrong or replayed code; staff_locked (with the time it ends) once `staff_lockout_failures`
    failures in a row have locked the account, even for the right credentials. Every outcome is
    audited, never with the password or code.
    """
    # Locked: two sign-ins at once with one code take turns, and the second sees it used.
    staff = get_by_username(session, username, for_update=True)
    now = clock.now()
    if staff is not None and is_locked(staff, now):
        _audit(session, "anonymous", "staff.login_failed", staff.actor, ip=ip, reason="locked")
        raise _locked_error(staff)
    # Always hash, so an unknown username takes as long as a known one.
    password_ok = verify_secret(staff.password_hash if staff else None, password)
    if staff is None or staff.disabled_at is not None:
        subject = staff.actor if staff else "staff:unknown"
        reason = "disabled" if staff else "unknown_user"
        _audit(session, "anonymous", "staff.login_failed", subject, ip=ip, reason=reason)
        raise DomainError("staff_login_failed")
    # The code is only tried after the password, so a guesser cannot burn the owner's code.
    if not (password_ok and _accept_totp(staff, totp_code, now)):
        raise _failure(session, staff, now, ip, reason="totp" if password_ok else "password")
    staff.failed_logins, staff.locked_until = 0, None
    record, token = _start_session(session, staff, ip=ip)
    _audit(session, staff.actor, "staff.login", f"staff_session:{record.id}", ip=ip)
    return token


def _failure(
    session: Session, staff: StaffUser, now: datetime, ip: str | None, *, reason: str
) -> DomainError:
    """Count a failed sign-in and lock the account at the limit; returns the refusal."""
    settings = get_settings()
    staff.failed_logins += 1
    _audit(
        session,
        "anonymous",
        "staff.login_failed",
        staff.actor,
        ip=ip,
        reason=reason,
        failures=staff.failed_logins,
    )
    if staff.failed_logins < settings.staff_lockout_failures:
        return DomainError("staff_login_failed")
    # The count starts again, so once the lock ends the person has their full tries back.
    staff.failed_logins = 0
    staff.locked_until = now + timedelta(minutes=settings.staff_lockout_minutes)
    _audit(session, "system", "staff.locked", staff.actor, ip=ip, until=_utc_text(staff))
    return _locked_error(staff)


def _locked_error(staff: StaffUser) -> DomainError:
    return DomainError("staff_locked", until=_utc_text(staff))


def _utc_text(staff: StaffUser) -> str:
    assert staff.locked_until is not None
    return as_utc(staff.locked_until).isoformat(timespec="seconds")


def _accept_totp(staff: StaffUser, code: str, now: datetime) -> bool:
    if staff.totp_secret_sealed is None:
        return False
    secret = open_sealed(staff.totp_secret_sealed, context=_totp_context(staff.id))
    step = accepted_step(secret, code, staff.totp_last_step, now)
    if step is None:
        return False
    staff.totp_last_step = step
    return True


# --- sessions --------------------------------------------------------------------------------


def _timeouts() -> tuple[timedelta, timedelta]:
    settings = get_settings()
    return (
        timedelta(minutes=settings.staff_session_idle_minutes),
        timedelta(hours=settings.staff_session_absolute_hours),
    )


def _start_session(
    session: Session, staff: StaffUser, *, ip: str | None = None, token: str | None = None
) -> tuple[StaffSession, str]:
    now = clock.now()
    token = token or random_token(32)
    record = StaffSession(
        token_hash=token_hash(token),
        staff_id=staff.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + _timeouts()[1],
        ip=ip,
    )
    session.add(record)
    session.flush()
    return record, token


def issue_session(
    session: Session, staff: StaffUser, *, token: str | None = None, ip: str | None = None
) -> str:
    """A bearer token without the interactive sign-in, for tests and the demo.

    A given `token` (the demo's fixed ones) is reused: its session starts afresh.
    """
    if token is not None:
        existing = session.execute(
            select(StaffSession).where(StaffSession.token_hash == token_hash(token))
        ).scalar_one_or_none()
        if existing is not None and existing.staff_id == staff.id:
            now = clock.now()
            existing.revoked_at, existing.created_at, existing.last_seen_at = None, now, now
            existing.expires_at = now + _timeouts()[1]
            _audit(session, "system", "staff.session_issued", f"staff_session:{existing.id}")
            return token
    record, token = _start_session(session, staff, ip=ip, token=token)
    _audit(session, "system", "staff.session_issued", f"staff_session:{record.id}")
    return token


def resolve(session: Session, token: str) -> StaffSession | None:
    """The live session behind `token`: not revoked, not idle too long, not too old, and its
    staff member not disabled. Using it keeps it from going idle."""
    record = session.execute(
        select(StaffSession).where(StaffSession.token_hash == token_hash(token))
    ).scalar_one_or_none()
    if record is None or record.revoked_at is not None:
        return None
    now = clock.now()
    idle, _ = _timeouts()
    if as_utc(record.expires_at) <= now or as_utc(record.last_seen_at) + idle <= now:
        return None
    staff = session.get(StaffUser, record.staff_id)
    if staff is None or staff.disabled_at is not None:
        return None
    if now - as_utc(record.last_seen_at) >= _TOUCH_EVERY:
        record.last_seen_at = now
    return record


def staff_for_token(session: Session, token: str) -> StaffUser | None:
    record = resolve(session, token)
    return session.get(StaffUser, record.staff_id) if record else None


def logout(session: Session, token: str) -> None:
    record = resolve(session, token)
    if record is None:
        raise DomainError("staff_auth_required")
    record.revoked_at = clock.now()
    _audit(session, f"staff:{record.staff_id}", "staff.logout", f"staff_session:{record.id}")


# --- key rotation ----------------------------------------------------------------------------


def reseal_secrets(session: Session) -> int:
    """Re-encrypt staff TOTP secrets under the newest data key; returns how many changed."""
    changed = 0
    for staff in session.execute(select(StaffUser)).scalars():
        sealed = staff.totp_secret_sealed
        if sealed and not sealed_with_current_key(sealed):
            staff.totp_secret_sealed = reseal(sealed, context=_totp_context(staff.id))
            changed += 1
    return changed


# --- demo --------------------------------------------------------------------------------------

# Published in the README, like every demo password: get a code with
#   python -c "import pyotp; print(pyotp.TOTP('WALLETDESKDEMOSTAFFTOTPSECRET234').now())"
DEMO_TOTP_SECRET = "WALLETDESKDEMOSTAFFTOTPSECRET234"


@dataclass(frozen=True, slots=True)
class DemoStaff:
    username: str
    display_name: str
    role: StaffRole
    skills: tuple[str, ...]
    token: str
    goodwill_per_action: str = "0"
    goodwill_per_day: str = "0"

    @property
    def password(self) -> str:
        return f"{self.username}-demo-passphrase"


DEMO_STAFF = (
    DemoStaff(
        "agent.li",
        "李静",
        StaffRole.AGENT,
        ("zh-CN", "en", "payments"),
        "demo-agent-li",
        goodwill_per_action="50.00",
        goodwill_per_day="200.00",
    ),
    DemoStaff(
        "agent.sam", "Sam Carter", StaffRole.AGENT, ("en", "zh-CN", "disputes"), "demo-agent-sam"
    ),
    DemoStaff("sup.chen", "陈主管", StaffRole.SUPERVISOR, ("zh-CN", "en"), "demo-sup-chen"),
    DemoStaff("risk.zhao", "赵风控", StaffRole.RISK_ANALYST, ("zh-CN", "fraud"), "demo-risk-zhao"),
    DemoStaff("admin.wu", "吴管理员", StaffRole.ADMIN, (), "demo-admin-wu"),
)


def seed_demo(session: Session) -> None:
    """Create the demo staff (safe to run again) and (re)start their fixed bearer tokens.

    Their passwords, TOTP secret and tokens are published, so this refuses unless the server
    still runs on every one of the demo secrets (see config.demo_secrets_in_use): an operator
    who has set one real secret is past the demo.
    """
    if set(demo_secrets_in_use(get_settings())) != set(DEMO_SECRETS):
        raise DomainError("staff_demo_refused")
    for demo in DEMO_STAFF:
        staff = get_by_username(session, demo.username)
        if staff is None:
            staff, _ = create_staff(
                session,
                username=demo.username,
                display_name=demo.display_name,
                role=demo.role,
                password=demo.password,
                skills=demo.skills,
                goodwill_per_action=parse_goodwill(demo.goodwill_per_action, "CNY"),
                goodwill_per_day=parse_goodwill(demo.goodwill_per_day, "CNY"),
            )
            _set_totp_secret(staff, DEMO_TOTP_SECRET)
        issue_session(session, staff, token=demo.token)
