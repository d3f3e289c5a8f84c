"""Registration, login, devices, password reset, payment PIN, TOTP, step-up and self-freeze.

Refusals that must leave a trace (a wrong password, a wrong code, a wrong PIN) are returned as
`DomainError` values instead of raised, so the caller commits the bookkeeping and then reports
the error: otherwise a rolled-back request would give an attacker unlimited guesses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pyotp
import segno
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.identity import codes, sessions
from walletdesk.identity.models import (
    AuthSession,
    Challenge,
    Credential,
    Device,
    RecoveryCode,
    ResetToken,
)
from walletdesk.identity.passwords import (
    check_password,
    check_pin,
    hash_pin,
    hash_secret,
    is_keyed_pin,
    pin_checkable,
    pin_is_current,
    pin_matches,
    verify_secret,
)
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.crypto import (
    accepted_step,
    open_sealed,
    random_digits,
    random_token,
    reseal,
    seal,
    sealed_with_current_key,
    token_hash,
)
from walletdesk.kit.errors import DomainError, define
from walletdesk.wallet.models import NAME_CONTEXT, NATIONAL_ID_CONTEXT, Customer, CustomerStatus
from walletdesk.wallet.rules import normalize_email, normalize_phone
from walletdesk.wallet.service.common import ensure_wallet
from walletdesk.wallet.service.customers import find_by_contact

define(
    "invalid_credentials",
    401,
    en="That login and password do not match an account, or the account is resting after failed attempts.",
    zh="账号或密码不正确，或账户因多次失败正在暂时保护中。",
)
define("code_invalid", 422, en="That code is wrong or has expired.", zh="验证码错误或已过期。")
define(
    "verification_required",
    403,
    en="Confirm it's you: enter the code we sent (or your authenticator's), then retry the same request.",
    zh="请验证身份：输入我们发送的验证码（或身份验证器中的验证码）后，用同一请求重试。",
)
define(
    "device_not_verified",
    403,
    en="This device is new: confirm it with the code we sent before paying.",
    zh="这是新设备：付款前请先输入我们发送的验证码确认设备。",
)
define(
    "contact_not_verified",
    403,
    en="Verify your phone number or email before moving money.",
    zh="请先验证手机号或邮箱，才能进行资金操作。",
)
define("pin_required", 403, en="Enter your 6-digit payment PIN.", zh="请输入 6 位支付密码。")
define("pin_not_set", 403, en="Set a payment PIN first.", zh="请先设置支付密码。")
define("pin_wrong", 403, en="The payment PIN is wrong.", zh="支付密码错误。")
define(
    "pin_reset_required",
    403,
    en="Your payment PIN has to be set again: set a new one with your password.",
    zh="您的支付密码需要重新设置，请凭登录密码设置新的支付密码。",
)
define(
    "pin_locked",
    423,
    en="Too many wrong PINs: payments are paused for {minutes} minutes. Reset the PIN if you forgot it.",
    zh="支付密码错误次数过多，付款功能暂停 {minutes} 分钟。如忘记密码请重置。",
)
define("challenge_not_found", 404, en="No such verification.", zh="没有找到该验证。")
define(
    "second_factor_required",
    403,
    en="This account uses an authenticator app: give its current code (or a recovery code).",
    zh="该账户已启用身份验证器，请提供当前验证码（或恢复码）。",
)
define(
    "totp_not_enrolled",
    409,
    en="Start authenticator enrolment first.",
    zh="请先开始绑定身份验证器。",
)
define(
    "account_not_frozen",
    409,
    en="The account is not frozen.",
    zh="账户未处于冻结状态。",
)
define(
    "verified_device_required",
    403,
    en="Do this from a device you have confirmed with a code.",
    zh="请在已通过验证码确认的设备上进行此操作。",
)
define(
    "pin_change_needs_proof",
    403,
    en="To change the PIN, give the current PIN — or your password if you forgot it.",
    zh="修改支付密码需要提供当前支付密码；如已忘记，请提供登录密码。",
)
define(
    "session_invalid",
    401,
    en="Your session has ended; sign in again.",
    zh="会话已失效，请重新登录。",
)

# Who asked for a reset the customer asked for themselves (the audit log's actor).
SELF_SERVICE = "anonymous"
PIN_MAX_FAILURES = 5
PIN_LOCK = timedelta(minutes=30)
CHALLENGE_TTL = timedelta(minutes=10)
RECOVERY_CODES = 10


# --- helpers -------------------------------------------------------------------------------------


def _audit(
    session: Session, actor: str, action: str, subject: str, *, ip: str | None = None, **detail: Any
) -> None:
    from walletdesk.audit.service import record

    record(session, actor=actor, action=action, subject=subject, detail=detail or None, ip=ip)


def _notify(session: Session, customer_id: int, event: str, **params: Any) -> None:
    from walletdesk.notify.service import notify

    notify(session, customer_id, event, params)


def credential_of(session: Session, customer_id: int) -> Credential:
    credential = session.get(Credential, customer_id)
    if credential is None:
        credential = Credential(customer_id=customer_id, login_failures=0, pin_failures=0)
        session.add(credential)
        session.flush()
    return credential


def _contact_verified(credential: Credential) -> bool:
    return credential.phone_verified_at is not None or credential.email_verified_at is not None


def _channel_of(customer: Customer) -> tuple[str, str]:
    """Where codes go: the phone if there is one, else the email."""
    if customer.phone:
        return "sms", customer.phone
    return "email", customer.email or ""


# --- registration ------------------------------------------------------------------------------


def register(
    session: Session,
    *,
    name: str,
    password: str,
    phone: str | None,
    email: str | None,
    language: str,
    national_id: str | None = None,
) -> None:
    """Start a registration; the same answer whether or not the phone/email is taken.

    A taken, verified contact gets a notice instead of a code. An unverified registration may be
    started again (by whoever can read the code), so nobody can squat on someone's number.
    """
    if not phone and not email:
        raise DomainError("contact_required")
    phone = normalize_phone(phone) if phone else None
    email = normalize_email(email) if email else None
    check_password(password, personal=(phone, email))
    password_hash = hash_secret(password)  # always, so both paths take the same time
    existing = find_by_contact(session, phone or email or "")
    if existing is not None and _contact_verified(credential_of(session, existing.id)):
        _notify(session, existing.id, "registration_attempt")
        return
    customer = existing or _new_customer(session, name, phone, email, language)
    customer.national_id = national_id
    credential = credential_of(session, customer.id)
    credential.password_hash = password_hash
    credential.password_changed_at = clock.now()
    channel, destination = _channel_of(customer)
    codes.send(session, customer.id, "verify_contact", channel, destination)


def _new_customer(
    session: Session, name: str, phone: str | None, email: str | None, language: str
) -> Customer:
    customer = Customer(
        display_name=name.strip()[:100],
        phone=phone,
        email=email,
        language=language,
        status=CustomerStatus.ACTIVE,
        created_at=clock.now(),
    )
    session.add(customer)
    session.flush()
    ensure_wallet(session, customer.id, "CNY")
    return customer


def send_email_proof(session: Session, customer_id: int) -> None:
    """A code to the customer's email, so that an address given at sign-up can be proven too."""
    customer = session.get(Customer, customer_id)
    if customer is None or not customer.email:
        raise DomainError("contact_required")
    codes.send(session, customer_id, "verify_contact", "email", customer.email)


def verify_contact(session: Session, login: str, code: str) -> DomainError | None:
    customer = find_by_contact(session, login)
    confirmed = customer and codes.check(session, customer.id, "verify_contact", code)
    if customer is None or not confirmed:
        return DomainError("code_invalid")
    # The code proves only the address it was sent to, whichever login was typed with it.
    credential = credential_of(session, customer.id)
    now = clock.now()
    if confirmed.destination == customer.email:
        credential.email_verified_at = now
    if confirmed.destination == customer.phone:
        credential.phone_verified_at = now
    _audit(session, f"customer:{customer.id}", "contact.verified", f"customer:{customer.id}")
    return None


# --- login ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    customer_id: int
    device_verification_required: bool


def login(
    session: Session,
    login_id: str,
    password: str,
    *,
    device_key: str,
    device_label: str,
    ip: str | None,
    kind: str = "api",
) -> LoginResult | DomainError:
    customer = find_by_contact(session, login_id)
    credential = credential_of(session, customer.id) if customer else None
    matches = verify_secret(credential.password_hash if credential else None, password)
    now = clock.now()
    if customer is None or credential is None:
        return DomainError("invalid_credentials")
    locked = credential.login_locked_until and as_utc(credential.login_locked_until) > now
    if locked or not matches:
        if not locked:
            _count_login_failure(session, customer, credential, now, ip)
        return DomainError("invalid_credentials")
    failures_before, credential.login_failures = credential.login_failures, 0
    device, new_device = _device_for(session, customer.id, device_key, device_label, now)
    decision = _assess_login(session, customer, credential, failures_before, new_device, now)
    if decision in ("decline", "lock"):
        return DomainError("account_locked" if decision == "lock" else "invalid_credentials")
    if decision == "challenge":
        device.verified_at = None  # the risk engine wants this device confirmed again
    needs_code = device.verified_at is None
    auth, token = sessions.start(session, customer.id, device_id=device.id, kind=kind, ip=ip)
    if needs_code:
        if credential.totp_enabled_at is None:
            channel, destination = _channel_of(customer)
            codes.send(session, customer.id, "verify_device", channel, destination)
        if new_device and _has_other_devices(session, customer.id, device.id):
            _notify(
                session, customer.id, "new_device_login", device=device_label, when=now.isoformat()
            )
    _audit(
        session,
        f"customer:{customer.id}",
        "login",
        f"session:{auth.id}",
        new_device=new_device,
        ip=ip,
    )
    return LoginResult(token, customer.id, needs_code)


def _has_other_devices(session: Session, customer_id: int, device_id: int) -> bool:
    """A first-ever device (just signed up) is no news to the customer; a further one is."""
    return (
        session.execute(
            select(Device.id).where(Device.customer_id == customer_id, Device.id != device_id)
        ).first()
        is not None
    )


def _count_login_failure(
    session: Session, customer: Customer, credential: Credential, now: datetime, ip: str | None
) -> None:
    """Growing delays after three misses; a lock (that ends by itself) after `login_lock_after`."""
    settings = get_settings()
    credential.login_failures += 1
    failures = credential.login_failures
    if failures >= settings.login_lock_after:
        credential.login_locked_until = now + timedelta(minutes=settings.login_lock_minutes)
        credential.login_failures = 0
        _notify(session, customer.id, "account_locked", reason="failed_logins")
        _audit(session, "system", "login.locked", f"customer:{customer.id}", ip=ip)
    elif failures >= 3:
        credential.login_locked_until = now + timedelta(seconds=2 ** (failures - 3))


def _device_for(
    session: Session, customer_id: int, device_key: str, label: str, now: datetime
) -> tuple[Device, bool]:
    digest = token_hash(device_key)
    device = session.execute(
        select(Device).where(Device.customer_id == customer_id, Device.device_hash == digest)
    ).scalar_one_or_none()
    if device is not None and device.revoked_at is None:
        device.last_seen_at = now
        return device, False
    if device is None:
        device = Device(
            customer_id=customer_id,
            device_hash=digest,
            label=label[:100] or "device",
            created_at=now,
            last_seen_at=now,
        )
        session.add(device)
    else:  # a revoked device logging in again starts over as a new one
        device.revoked_at, device.verified_at, device.first_payment_at = None, None, None
        device.last_seen_at = now
    session.flush()
    return device, True


def _assess_login(
    session: Session,
    customer: Customer,
    credential: Credential,
    failures_before: int,
    new_device: bool,
    now: datetime,
) -> str:
    from walletdesk.risk.rules import RiskEvent
    from walletdesk.risk.service import evaluate

    event = RiskEvent(
        kind="login",
        customer_id=customer.id,
        at=now,
        amount=None,
        currency=None,
        new_device=new_device,
        recipient_id=None,
        card_fingerprint=None,
        failed_logins_before=failures_before,
        password_reset_at=credential.last_password_reset_at,
        per_transaction_limit=None,
    )
    return evaluate(session, event).action


def verify_device(session: Session, auth: AuthSession, code: str) -> DomainError | None:
    """Confirm a new device with the SMS/email code or an authenticator code."""
    credential = credential_of(session, auth.customer_id)
    if not (
        _check_totp(credential, code)
        or codes.check(session, auth.customer_id, "verify_device", code)
    ):
        return DomainError("code_invalid")
    device = session.get(Device, auth.device_id) if auth.device_id else None
    if device is not None:
        device.verified_at = clock.now()
    _audit(session, f"customer:{auth.customer_id}", "device.verified", f"device:{auth.device_id}")
    return None


def logout(session: Session, auth: AuthSession) -> None:
    sessions.revoke(session, auth)


def list_devices(session: Session, customer_id: int) -> list[Device]:
    return list(
        session.execute(
            select(Device)
            .where(Device.customer_id == customer_id, Device.revoked_at.is_(None))
            .order_by(Device.id)
        ).scalars()
    )


def revoke_device(session: Session, customer_id: int, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.customer_id != customer_id or device.revoked_at is not None:
        raise DomainError("not_found")
    device.revoked_at = clock.now()
    session.execute(
        update(AuthSession)
        .where(AuthSession.device_id == device_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    _audit(session, f"customer:{customer_id}", "device.revoked", f"device:{device_id}")
    return device


# --- forgot password ---------------------------------------------------------------------------


define(
    "reset_contact_change_cooldown",
    409,
    en="A password reset and a phone or email change are not done on the customer's behalf "
    "within {days} days of each other, nor while a change waits for approval.",
    zh="代客户发送密码重置与更换手机号或邮箱，两者须间隔 {days} 天，且变更待审批期间不可重置。",
)


def forgot_password(
    session: Session, login_id: str, channel: str, *, sent_by: str = SELF_SERVICE
) -> None:
    """Send a reset link (email) or code (SMS) if the account exists; same answer either way.

    One sent on the customer's behalf (`sent_by` an agent or the hotline) is refused within
    Settings.desk_reset_cooldown_days of a phone or email change: with a new number and a
    reset, a caller holds the account.
    """
    customer = find_by_contact(session, login_id)
    if customer is None:
        token_hash(random_token())  # comparable work on both paths
        return
    destination = customer.email if channel == "email" else customer.phone
    credential = credential_of(session, customer.id)
    if sent_by != SELF_SERVICE and _contact_changed_lately(credential):
        raise DomainError(
            "reset_contact_change_cooldown", days=get_settings().desk_reset_cooldown_days
        )
    verified = credential.email_verified_at if channel == "email" else credential.phone_verified_at
    if not destination or verified is None:
        return  # a reset goes only to an address the customer has proven is theirs
    _void_reset_tokens(session, customer.id)
    settings = get_settings()
    now = clock.now()
    if channel == "email":
        secret = random_token(32)  # 256 bits
        ttl = timedelta(minutes=settings.reset_link_ttl_minutes)
        link = f"{settings.public_base_url.rstrip('/')}/reset-password#token={secret}"
        params = {"link": link, "minutes": settings.reset_link_ttl_minutes}
        event = "password_reset_link"
    else:
        secret = random_digits(6)
        ttl = timedelta(minutes=settings.otp_ttl_minutes)
        params = {"code": secret, "minutes": settings.otp_ttl_minutes}
        event = "password_reset_code"
    session.add(
        ResetToken(
            customer_id=customer.id,
            token_hash=token_hash(_reset_key(customer.id, channel, secret)),
            channel=channel,
            attempts=0,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    from walletdesk.notify.service import notify

    notify(
        session, customer.id, event, params, channels=("email" if channel == "email" else "sms",)
    )
    _audit(session, sent_by, "password.reset_requested", f"customer:{customer.id}", channel=channel)


def _contact_changed_lately(credential: Credential) -> bool:
    days = get_settings().desk_reset_cooldown_days
    changed = credential.contact_changed_at
    return changed is not None and as_utc(changed) > clock.now() - timedelta(days=days)


def _reset_key(customer_id: int, channel: str, secret: str) -> str:
    # Links are unique on their own; 6-digit codes are only unique per customer.
    return secret if channel == "email" else f"{customer_id}:{secret}"


def _void_reset_tokens(session: Session, customer_id: int) -> None:
    session.execute(
        update(ResetToken)
        .where(
            ResetToken.customer_id == customer_id,
            ResetToken.used_at.is_(None),
            ResetToken.voided_at.is_(None),
        )
        .values(voided_at=clock.now())
    )


def reset_password(
    session: Session,
    *,
    token: str | None,
    login_id: str | None,
    code: str | None,
    new_password: str,
    second_factor: str | None,
) -> DomainError | None:
    """Use a reset link token, or a login + SMS code; then every session ends."""
    record = _live_reset_token(session, token=token, login_id=login_id, code=code)
    if record is None:
        return DomainError("code_invalid")
    customer = session.get(Customer, record.customer_id)
    assert customer is not None
    credential = credential_of(session, customer.id)
    if credential.totp_enabled_at is not None and not _second_factor_ok(
        session, credential, second_factor
    ):
        # Whoever holds the mailbox must not get unlimited authenticator guesses.
        record.attempts += 1
        if record.attempts >= codes.MAX_GUESSES:
            record.voided_at = clock.now()
        return DomainError("second_factor_required")
    check_password(new_password, personal=(customer.phone, customer.email))
    now = clock.now()
    record.used_at = now
    _set_password(session, customer, credential, new_password)
    credential.last_password_reset_at = now
    credential.login_failures, credential.login_locked_until = 0, None
    _audit(session, f"customer:{customer.id}", "password.reset", f"customer:{customer.id}")
    return None


def _live_reset_token(
    session: Session, *, token: str | None, login_id: str | None, code: str | None
) -> ResetToken | None:
    if token:
        key = token
    elif login_id and code:
        customer = find_by_contact(session, login_id)
        if customer is None:
            return None
        key = f"{customer.id}:{code.strip()}"
        _count_reset_guess(session, customer.id)
    else:
        return None
    record = session.execute(
        select(ResetToken).where(ResetToken.token_hash == token_hash(key))
    ).scalar_one_or_none()
    if record is None or record.used_at or record.voided_at:
        return None
    if as_utc(record.expires_at) <= clock.now():
        return None
    return record


def _count_reset_guess(session: Session, customer_id: int) -> None:
    """An SMS reset code is 6 digits: its live token dies after five guesses, right or wrong."""
    live = session.execute(
        select(ResetToken).where(
            ResetToken.customer_id == customer_id,
            ResetToken.channel == "sms",
            ResetToken.used_at.is_(None),
            ResetToken.voided_at.is_(None),
        )
    ).scalar_one_or_none()
    if live is None:
        return
    live.attempts += 1
    if live.attempts > codes.MAX_GUESSES:
        live.voided_at = clock.now()


def _set_password(
    session: Session, customer: Customer, credential: Credential, password: str
) -> None:
    credential.password_hash = hash_secret(password)
    credential.password_changed_at = clock.now()
    _void_reset_tokens(session, customer.id)
    sessions.revoke_all(session, customer.id)
    _notify(session, customer.id, "password_changed")


def change_password(
    session: Session, auth: AuthSession, current: str, new_password: str
) -> DomainError | None:
    customer = session.get(Customer, auth.customer_id)
    assert customer is not None
    credential = credential_of(session, customer.id)
    if not verify_secret(credential.password_hash, current):
        return DomainError("invalid_credentials")
    check_password(new_password, personal=(customer.phone, customer.email))
    _set_password(session, customer, credential, new_password)
    _audit(session, f"customer:{customer.id}", "password.changed", f"customer:{customer.id}")
    return None


# --- payment PIN ---------------------------------------------------------------------------------


def set_pin(
    session: Session,
    customer_id: int,
    pin: str,
    *,
    current_pin: str | None = None,
    password: str | None = None,
) -> None:
    """Set the 6-digit payment PIN. Changing one (after a passed step-up, checked by the caller)
    also needs the current PIN, or the password when the PIN is forgotten."""
    check_pin(pin)
    credential = credential_of(session, customer_id)
    changing = credential.pin_hash is not None
    if changing and not (
        pin_matches(credential.pin_hash, customer_id, current_pin or "")
        or verify_secret(credential.password_hash, password or "")
    ):
        raise DomainError("pin_change_needs_proof")
    credential.pin_hash = hash_pin(customer_id, pin)
    credential.pin_failures, credential.pin_locked_until = 0, None
    if changing:
        _notify(session, customer_id, "pin_changed")
    _audit(session, f"customer:{customer_id}", "pin.set", f"customer:{customer_id}")


def check_payment_pin(session: Session, customer_id: int, pin: str | None) -> DomainError | None:
    """The payment PIN, when the customer has credentials; misses count and lock for a while."""
    credential = session.get(Credential, customer_id)
    if credential is None:
        return None  # an operator-issued integration customer: no interactive credentials
    if credential.pin_hash is None:
        return DomainError("pin_not_set")
    now = clock.now()
    if credential.pin_locked_until and as_utc(credential.pin_locked_until) > now:
        remaining = as_utc(credential.pin_locked_until) - now
        return DomainError("pin_locked", minutes=math.ceil(remaining.total_seconds() / 60))
    if not pin:
        return DomainError("pin_required")
    if pin_matches(credential.pin_hash, customer_id, pin):
        credential.pin_failures = 0
        if not pin_is_current(credential.pin_hash):  # an older data key, or argon2id
            _keep_pin_again(session, credential, pin)
        return None
    if not pin_checkable(credential.pin_hash):  # its data key is gone: not the customer's miss
        return DomainError("pin_reset_required")
    credential.pin_failures += 1
    if credential.pin_failures >= PIN_MAX_FAILURES:
        credential.pin_failures = 0
        credential.pin_locked_until = now + PIN_LOCK
        _notify(session, customer_id, "account_locked", reason="payment_pin")
        return DomainError("pin_locked", minutes=int(PIN_LOCK.total_seconds() // 60))
    return DomainError("pin_wrong")


def _keep_pin_again(session: Session, credential: Credential, pin: str) -> None:
    """The PIN kept under the newest data key, unless it changed since it was read: a PIN set
    meanwhile by another transaction must not be overwritten with the one it replaced."""
    session.execute(
        update(Credential)
        .where(
            Credential.customer_id == credential.customer_id,
            Credential.pin_hash == credential.pin_hash,
        )
        .values(pin_hash=hash_pin(credential.customer_id, pin))
    )


# --- TOTP and recovery codes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    uri: str
    qr_svg: str


def start_totp(session: Session, customer_id: int) -> TotpEnrolment:
    customer = session.get(Customer, customer_id)
    assert customer is not None
    secret = pyotp.random_base32()
    credential = credential_of(session, customer_id)
    # Kept aside: an active authenticator stays in force until this one is confirmed.
    credential.totp_pending_sealed = seal(secret, context=f"totp:{customer_id}")
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=customer.email or customer.phone or str(customer_id), issuer_name="walletdesk"
    )
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    return TotpEnrolment(secret, uri, svg)


def confirm_totp(session: Session, customer_id: int, code: str) -> list[str] | DomainError:
    """Turn TOTP on with a first valid code; returns recovery codes, shown this once."""
    credential = credential_of(session, customer_id)
    pending = credential.totp_pending_sealed
    if pending is None:
        raise DomainError("totp_not_enrolled")
    if not _check_totp(credential, code, sealed=pending):
        return DomainError("code_invalid")
    credential.totp_secret_sealed, credential.totp_pending_sealed = pending, None
    credential.totp_enabled_at = clock.now()
    _notify(session, customer_id, "authenticator_enabled")
    _audit(session, f"customer:{customer_id}", "totp.enabled", f"customer:{customer_id}")
    return _new_recovery_codes(session, customer_id)


def _new_recovery_codes(session: Session, customer_id: int) -> list[str]:
    session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.customer_id == customer_id, RecoveryCode.used_at.is_(None))
        .values(used_at=clock.now())
    )
    fresh = [f"{random_digits(5)}-{random_digits(5)}" for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(customer_id=customer_id, code_hash=token_hash(c)) for c in fresh)
    return fresh


def _check_totp(credential: Credential, code: str, *, sealed: str | None = None) -> bool:
    """±1 step of 30 s; a step once used cannot be used again (no replay).

    Checks the active authenticator, or `sealed` (the one being set up) when given.
    """
    if sealed is None:
        if credential.totp_enabled_at is None:
            return False
        sealed = credential.totp_secret_sealed
    if sealed is None:
        return False
    secret = open_sealed(sealed, context=f"totp:{credential.customer_id}")
    step = accepted_step(secret, code, credential.totp_last_step, clock.now())
    if step is None:
        return False
    credential.totp_last_step = step
    return True


def _use_recovery_code(session: Session, customer_id: int, code: str) -> bool:
    record = session.execute(
        select(RecoveryCode).where(
            RecoveryCode.customer_id == customer_id,
            RecoveryCode.code_hash == token_hash(code.strip()),
            RecoveryCode.used_at.is_(None),
        )
    ).scalar_one_or_none()
    if record is None:
        return False
    record.used_at = clock.now()
    return True


def _second_factor_ok(session: Session, credential: Credential, code: str | None) -> bool:
    if not code:
        return False
    return _check_totp(credential, code) or _use_recovery_code(
        session, credential.customer_id, code
    )


# --- step-up challenges ----------------------------------------------------------------------------


def challenge(
    session: Session, auth: AuthSession, *, purpose: str, reason: str, request_digest: str
) -> Challenge:
    """Ask for a second factor before `request_digest` may run; a code goes out unless TOTP is on.

    Retrying the request before answering returns the same open challenge and sends nothing
    new (no SMS on every retry); `resend_challenge` asks for a fresh code.
    """
    now = clock.now()
    waiting = (
        session.execute(
            select(Challenge).where(
                Challenge.session_id == auth.id,
                Challenge.request_digest == request_digest,
                Challenge.passed_at.is_(None),
                Challenge.expires_at > now,
            )
        )
        .scalars()
        .first()
    )
    if waiting is not None:
        return waiting
    record = Challenge(
        id=random_token(18),
        customer_id=auth.customer_id,
        session_id=auth.id,
        purpose=purpose,
        reason=reason,
        request_digest=request_digest,
        created_at=now,
        expires_at=now + CHALLENGE_TTL,
    )
    session.add(record)
    credential = credential_of(session, auth.customer_id)
    if credential.totp_enabled_at is None:
        customer = session.get(Customer, auth.customer_id)
        assert customer is not None
        _send_challenge_code(session, customer, record)
    session.flush()
    return record


def _send_challenge_code(session: Session, customer: Customer, record: Challenge) -> None:
    channel, destination = _channel_of(customer)
    codes.send(session, customer.id, f"challenge:{record.id}", channel, destination)


def resend_challenge(session: Session, auth: AuthSession, challenge_id: str) -> Challenge:
    """A fresh code for an open challenge; the previous code stops working."""
    record = session.get(Challenge, challenge_id)
    if record is None or record.session_id != auth.id or record.passed_at is not None:
        raise DomainError("challenge_not_found")
    customer = session.get(Customer, auth.customer_id)
    assert customer is not None
    _send_challenge_code(session, customer, record)
    return record


def passed_challenge(session: Session, auth: AuthSession, request_digest: str) -> Challenge | None:
    """A challenge this session passed for exactly this request, still fresh."""
    record = session.execute(
        select(Challenge)
        .where(
            Challenge.session_id == auth.id,
            Challenge.request_digest == request_digest,
            Challenge.passed_at.is_not(None),
        )
        .order_by(Challenge.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if record is None or as_utc(record.expires_at) <= clock.now():
        return None
    return record


@dataclass(frozen=True, slots=True)
class PassedChallenge:
    challenge_id: str
    new_token: str | None  # a web session gets a new cookie token on re-authentication


def answer_challenge(
    session: Session, auth: AuthSession, challenge_id: str, code: str
) -> PassedChallenge | DomainError:
    record = session.get(Challenge, challenge_id)
    if record is None or record.session_id != auth.id:
        raise DomainError("challenge_not_found")
    if record.passed_at is not None:
        return PassedChallenge(record.id, None)
    if as_utc(record.expires_at) <= clock.now():
        return DomainError("code_invalid")
    credential = credential_of(session, auth.customer_id)
    if _check_totp(credential, code):
        method = "totp"
    elif codes.check(session, auth.customer_id, f"challenge:{record.id}", code):
        method = "otp"
    elif _use_recovery_code(session, auth.customer_id, code):
        method = "recovery_code"
    else:
        return DomainError("code_invalid")
    record.passed_at, record.passed_with = clock.now(), method
    _audit(
        session,
        f"customer:{auth.customer_id}",
        "step_up.passed",
        f"challenge:{record.id}",
        purpose=record.purpose,
        method=method,
    )
    # Cookie sessions get a fresh token (no fixation); app bearer tokens were never exposed
    # before sign-in, and rotating them would break a retry already in flight.
    return PassedChallenge(record.id, sessions.rotate(auth) if auth.kind == "web" else None)


# --- changing phone or email -----------------------------------------------------------------


def start_contact_change(
    session: Session, customer_id: int, *, phone: str | None, email: str | None
) -> None:
    """Send a code to the new phone or email; it changes once that code comes back.

    The caller has already passed a step-up challenge on the current contact.
    """
    if bool(phone) == bool(email):
        raise DomainError("contact_required")
    new = normalize_phone(phone) if phone else normalize_email(email or "")
    clash = find_by_contact(session, new)
    if clash is not None and clash.id != customer_id:
        raise DomainError("customer_exists")
    what = "phone" if phone else "email"
    codes.send(session, customer_id, f"change_{what}", "sms" if phone else "email", new)


def confirm_contact_change(
    session: Session, customer_id: int, what: str, code: str
) -> Customer | DomainError:
    confirmed = codes.check(session, customer_id, f"change_{what}", code)
    if confirmed is None:
        return DomainError("code_invalid")
    clash = find_by_contact(session, confirmed.destination)
    if clash is not None and clash.id != customer_id:
        return DomainError("customer_exists")  # registered by someone else in the meantime
    customer = session.get(Customer, customer_id)
    assert customer is not None
    old = customer.phone if what == "phone" else customer.email
    channel = "sms" if what == "phone" else "email"
    if what == "phone":
        customer.phone = confirmed.destination
    else:
        customer.email = confirmed.destination
    credential = credential_of(session, customer_id)
    now = clock.now()
    if what == "phone":
        credential.phone_verified_at = now
    else:
        credential.email_verified_at = now
    credential.contact_changed_at = now  # starts the hold on large outgoing payments (guard)
    from walletdesk.notify.service import notify

    # Both the old and the new address hear of it: the old one is how a victim finds out.
    notify(session, customer_id, "contact_changed", {"what": what}, channels=("inapp", channel))
    if old:
        notify(session, customer_id, "contact_changed", {"what": what}, channels=(channel,), to=old)
    _audit(session, f"customer:{customer_id}", f"{what}.changed", f"customer:{customer_id}")
    return customer


# --- freezing ------------------------------------------------------------------------------------


def freeze(
    session: Session,
    customer_id: int,
    *,
    actor: str,
    reason: str,
    keep_session: int | None = None,
) -> Customer:
    """Stop all outgoing money at once and sign out every other session (a lost phone's).

    Anyone may do it at any hour, since it only protects.
    """
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise DomainError("not_found")
    if customer.status == CustomerStatus.ACTIVE:
        customer.status, customer.status_reason = CustomerStatus.FROZEN, reason
        _notify(session, customer_id, "account_frozen")
    sessions.revoke_all(session, customer_id, keep=keep_session)
    _audit(session, actor, "account.frozen", f"customer:{customer_id}", reason=reason)
    return customer


def unfreeze(session: Session, customer_id: int, *, actor: str, password: str | None) -> Customer:
    """The password and a passed step-up (checked by the caller): a phone alone is not enough."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise DomainError("not_found")
    if customer.status != CustomerStatus.FROZEN:
        raise DomainError("account_not_frozen")
    credential = session.get(Credential, customer_id)
    has_password = credential is not None and credential.password_hash is not None
    if has_password and not verify_secret(credential.password_hash, password or ""):
        raise DomainError("invalid_credentials")
    customer.status, customer.status_reason = CustomerStatus.ACTIVE, None
    _notify(session, customer_id, "account_unfrozen")
    _audit(session, actor, "account.unfrozen", f"customer:{customer_id}")
    return customer


# --- key rotation ---------------------------------------------------------------------------------


def reseal_personal_data(session: Session) -> int:
    """Re-encrypt names, national ids and TOTP secrets under the newest data key.

    Run after adding a key to WALLETDESK_DATA_KEYS; once it reports 0, and no payment PIN is
    left under an older key (`pins_to_move`), older keys can go.
    """
    changed = 0
    for customer in session.execute(select(Customer)).scalars():
        if not sealed_with_current_key(customer.name_sealed):
            customer.name_sealed = reseal(customer.name_sealed, context=NAME_CONTEXT)
            changed += 1
        sealed_id = customer.national_id_sealed
        if sealed_id and not sealed_with_current_key(sealed_id):
            customer.national_id_sealed = reseal(sealed_id, context=NATIONAL_ID_CONTEXT)
            changed += 1
    for credential in session.execute(select(Credential)).scalars():
        context = f"totp:{credential.customer_id}"
        for field in ("totp_secret_sealed", "totp_pending_sealed"):
            secret = getattr(credential, field)
            if secret and not sealed_with_current_key(secret):
                setattr(credential, field, reseal(secret, context=context))
                changed += 1
    return changed + _reseal_outbox(session)


class PinsToMove(NamedTuple):
    """Payment PINs not yet kept under the newest data key. Without the PIN none can be moved:
    each moves when its customer next uses it."""

    under_older_keys: int  # an older key cannot go before this is 0 (else: a new PIN to set)
    argon2id: int  # hashed before keyed PINs: they need no data key


def pins_to_move(session: Session) -> PinsToMove:
    older = argon2id = 0
    for value in session.scalars(
        select(Credential.pin_hash).where(Credential.pin_hash.is_not(None))
    ):
        if value is None or pin_is_current(value):
            continue
        if is_keyed_pin(value):
            older += 1
        else:
            argon2id += 1
    return PinsToMove(under_older_keys=older, argon2id=argon2id)


def _reseal_outbox(session: Session) -> int:
    """Messages not yet sent still need their parameters after the old key is gone."""
    from walletdesk.notify.models import OutboxMessage, OutboxStatus
    from walletdesk.notify.service import PARAMS_CONTEXT

    changed = 0
    for message in session.execute(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
    ).scalars():
        if not sealed_with_current_key(message.params_sealed):
            message.params_sealed = reseal(message.params_sealed, context=PARAMS_CONTEXT)
            changed += 1
    return changed


# --- operator-issued access ----------------------------------------------------------------------


def issue_api_session(
    session: Session, customer_id: int, *, label: str, token: str | None = None
) -> str:
    """A bearer token on a pre-verified device, for the demo and operator integrations."""
    now = clock.now()
    device, _ = _device_for(session, customer_id, f"operator:{label}", label, now)
    device.verified_at = device.verified_at or now
    device.first_payment_at = device.first_payment_at or now
    if token is not None:
        existing = session.execute(
            select(AuthSession).where(AuthSession.token_hash == token_hash(token))
        ).scalar_one_or_none()
        if existing is not None:
            existing.revoked_at = None
            existing.last_seen_at = now
            existing.expires_at = now + timedelta(hours=get_settings().api_session_absolute_hours)
            return token
    _, token = sessions.start(session, customer_id, device_id=device.id, kind="api", token=token)
    return token
