"""Identity REST API: register, log in, devices, password reset, PIN, TOTP, step-up, freeze.

Authentication endpoints take no Idempotency-Key: their answers carry secrets (session tokens,
recovery codes) that must not be stored for replay, and each is safe to repeat — a repeated
login opens another session, a code works once. Every other mutating endpoint takes one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from walletdesk.db import Database
from walletdesk.idempotency import service as idempotency
from walletdesk.idempotency.service import fingerprint
from walletdesk.identity import guard, sessions
from walletdesk.identity import service as identity
from walletdesk.identity.models import AuthSession
from walletdesk.kit import ratelimit
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import RowId, bearer_token, db_of, run_idempotent
from walletdesk.wallet.rules import normalize_email, normalize_phone

router = APIRouter(prefix="/v1", tags=["identity"])
pages = APIRouter(include_in_schema=False)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    customer_id: int
    session_id: int


def session_token(request: Request) -> str:
    """The bearer token, or for web pages the session cookie."""
    if request.headers.get("authorization"):
        return bearer_token(request)
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if not cookie:
        raise DomainError("unauthorized")
    return cookie


def current_caller(request: Request) -> Caller:
    token = session_token(request)
    with db_of(request).unit_of_work() as session:
        auth = sessions.resolve(session, token)
        if auth is None:
            raise DomainError("unauthorized")
        return Caller(auth.customer_id, auth.id)


CallerDep = Annotated[Caller, Depends(current_caller)]


def limit(request: Request, name: str, key: str) -> None:
    """Count an attempt against a named rate limit (committed at once; 429 when over)."""
    ratelimit.hit(db_of(request), name, key.strip().lower())


def login_key(login: str) -> str:
    """One key per account however it is written ("138 0013 8000", "+8613800138000")."""
    try:
        return normalize_email(login) if "@" in login else normalize_phone(login)
    except DomainError:
        return login.strip().lower()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def committing(db: Database, work: Callable[[Session], T | DomainError]) -> T:
    """Run `work`, commit what it recorded, then raise the refusal it returned, if any."""
    with db.unit_of_work() as session:
        outcome = work(session)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def auth_of(session: Session, caller: Caller) -> AuthSession:
    auth = session.get(AuthSession, caller.session_id)
    if auth is None:
        raise DomainError("unauthorized")
    return auth


def require_verified_device(request: Request, caller: Caller) -> None:
    with db_of(request).unit_of_work() as session:
        if not sessions.device_verified(session, auth_of(session, caller)):
            raise DomainError("verified_device_required")


def guard_movement(
    request: Request, caller: Caller, body: BaseModel, movement: guard.Movement
) -> None:
    """Raise unless the checks before moving money pass (see identity.guard)."""
    # A retry of a request already answered only replays that answer (run_idempotent): nothing
    # moves again, so there is nothing to check. Checking anyway hid the outcome of a payment
    # that had happened behind checks that tightened since (the risk engine's velocity rule
    # asking for a second factor, a PIN lock), contrary to "a client can always retry".
    digest = fingerprint(
        request.method, request.url.path, body.model_dump(mode="json") if body else None
    )
    key, principal = request.headers.get("idempotency-key"), f"customer:{caller.customer_id}"
    pin = request.headers.get("x-payment-pin")

    def check(s: Session) -> DomainError | None:
        if idempotency.answered(s, principal, key, digest):
            return None
        return guard.check(s, auth_of(s, caller), movement, pin)

    committing(db_of(request), check)


def request_digest(request: Request, body: BaseModel | None) -> str:
    """Binds a step-up challenge to one request: its key, method, path and body."""
    key = request.headers.get("idempotency-key", "")
    return fingerprint(
        request.method, f"{request.url.path}#{key}", body.model_dump(mode="json") if body else None
    )


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterIn(In):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024, repr=False)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    language: Literal["zh-CN", "en"] = "zh-CN"
    national_id: str | None = Field(
        default=None,
        pattern=r"^[0-9]{17}[0-9Xx]$",
        description="Resident ID number for real-name verification; kept encrypted",
    )


class VerifyContactIn(In):
    login: str = Field(max_length=254)
    code: str = Field(max_length=12)


class LoginIn(In):
    login: str = Field(max_length=254, description="Phone number or email")
    password: str = Field(max_length=1024, repr=False)
    device_id: str = Field(
        min_length=6,
        max_length=128,
        description="A random id the app makes once and keeps for this device",
    )
    device_label: str = Field(default="", max_length=100)
    web: bool = Field(default=False, description="Set a session cookie for web pages as well")


class CodeIn(In):
    code: str = Field(min_length=1, max_length=32)


class ForgotIn(In):
    login: str = Field(max_length=254)
    channel: Literal["email", "sms"] = "email"


class ResetIn(In):
    token: str | None = Field(default=None, max_length=100, description="From the emailed link")
    login: str | None = Field(default=None, max_length=254, description="With an SMS code")
    code: str | None = Field(default=None, max_length=12)
    new_password: str = Field(max_length=1024, repr=False)
    second_factor: str | None = Field(
        default=None, max_length=32, description="Authenticator or recovery code, if TOTP is on"
    )


class ChangePasswordIn(In):
    current_password: str = Field(max_length=1024, repr=False)
    new_password: str = Field(max_length=1024, repr=False)


class PinIn(In):
    pin: str = Field(min_length=6, max_length=6, repr=False)
    current_pin: str | None = Field(default=None, max_length=6, repr=False)
    password: str | None = Field(
        default=None, max_length=1024, repr=False, description="Instead of a forgotten PIN"
    )


class UnfreezeIn(In):
    password: str | None = Field(default=None, max_length=1024, repr=False)


class ContactIn(In):
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)


class ContactConfirmIn(In):
    what: Literal["phone", "email"]
    code: str = Field(min_length=1, max_length=12)


class FreezeIn(In):
    reason: str = Field(default="frozen by the customer", max_length=200)


ACCEPTED = {"status": "accepted"}


@router.post("/auth/register", status_code=202)
def register(request: Request, body: RegisterIn) -> dict[str, str]:
    """Always the same answer, so nobody learns whether a number or email is registered."""
    limit(request, "register.ip", client_ip(request))
    with db_of(request).unit_of_work() as session:
        identity.register(
            session,
            name=body.name,
            password=body.password,
            phone=body.phone,
            email=body.email,
            language=body.language,
            national_id=body.national_id,
        )
    return ACCEPTED


@router.post("/auth/verify-contact")
def verify_contact(request: Request, body: VerifyContactIn) -> dict[str, str]:
    limit(request, "otp.verify", login_key(body.login))
    committing(db_of(request), lambda s: identity.verify_contact(s, body.login, body.code))
    return {"status": "verified"}


@router.post("/auth/verify-email", status_code=202)
def send_email_proof(request: Request, caller: CallerDep) -> dict[str, str]:
    """Send a code to the account's email; prove it with /v1/auth/verify-contact."""
    limit(request, "otp.send", f"customer:{caller.customer_id}")
    with db_of(request).unit_of_work() as session:
        identity.send_email_proof(session, caller.customer_id)
    return {"status": "code_sent"}


@router.post("/auth/login")
def login(request: Request, body: LoginIn) -> Response:
    ip = client_ip(request)
    limit(request, "login.ip", ip)
    limit(request, "login.account", login_key(body.login))
    result = committing(
        db_of(request),
        lambda s: identity.login(
            s,
            body.login,
            body.password,
            device_key=body.device_id,
            device_label=body.device_label or request.headers.get("user-agent", "")[:100],
            ip=ip,
            kind="web" if body.web else "api",
        ),
    )
    answer = JSONResponse(
        {
            "token": result.token,
            "customer_id": result.customer_id,
            "device_verification_required": result.device_verification_required,
        }
    )
    if body.web:
        set_session_cookie(answer, result.token)
    return answer


def set_session_cookie(answer: Response, token: str) -> None:
    """__Host- prefix: Secure, Path=/, no Domain, so no other host can set or read it."""
    answer.set_cookie(
        sessions.COOKIE_NAME, token, secure=True, httponly=True, samesite="lax", path="/"
    )


@router.post("/auth/device/verify")
def verify_device(request: Request, body: CodeIn, caller: CallerDep) -> dict[str, str]:
    limit(request, "otp.verify", f"customer:{caller.customer_id}")
    committing(db_of(request), lambda s: identity.verify_device(s, auth_of(s, caller), body.code))
    return {"status": "verified"}


@router.post("/auth/logout")
def logout(request: Request, caller: CallerDep) -> Response:
    with db_of(request).unit_of_work() as session:
        identity.logout(session, auth_of(session, caller))
    answer = JSONResponse({"status": "signed_out"})
    answer.delete_cookie(sessions.COOKIE_NAME, secure=True, httponly=True, samesite="lax")
    return answer


@router.post("/auth/password/forgot", status_code=202)
def forgot_password(request: Request, body: ForgotIn) -> dict[str, str]:
    limit(request, "reset.ip", client_ip(request))
    limit(request, "reset.request", login_key(body.login))
    with db_of(request).unit_of_work() as session:
        identity.forgot_password(session, body.login, body.channel)
    return ACCEPTED


@router.post("/auth/password/reset")
def reset_password(request: Request, body: ResetIn) -> dict[str, str]:
    limit(
        request, "otp.verify", f"reset:{body.token}" if body.token else login_key(body.login or "")
    )
    committing(
        db_of(request),
        lambda s: identity.reset_password(
            s,
            token=body.token,
            login_id=body.login,
            code=body.code,
            new_password=body.new_password,
            second_factor=body.second_factor,
        ),
    )
    return {"status": "password_changed"}


@router.post("/auth/password/change")
def change_password(request: Request, body: ChangePasswordIn, caller: CallerDep) -> dict[str, str]:
    _step_up_if(request, caller, body, "change_password", lambda _s: False, credential_change=True)
    committing(
        db_of(request),
        lambda s: identity.change_password(
            s, auth_of(s, caller), body.current_password, body.new_password
        ),
    )
    return {"status": "password_changed", "next": "sign in again"}


@router.post("/auth/pin")
def set_pin(request: Request, body: PinIn, caller: CallerDep) -> Response:
    """Set the payment PIN; changing an existing one needs a second factor first."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        identity.set_pin(
            session,
            caller.customer_id,
            body.pin,
            current_pin=body.current_pin,
            password=body.password,
        )
        return 200, {"status": "pin_set"}

    limit(request, "otp.verify", f"customer:{caller.customer_id}")

    with db_of(request).unit_of_work() as session:
        changing = identity.credential_of(session, caller.customer_id).pin_hash is not None
    # Setting the first PIN is part of signing up; changing one is a credential change.
    _step_up_if(
        request, caller, body, "change_pin", lambda _s: changing, credential_change=changing
    )
    return run_idempotent(request, f"customer:{caller.customer_id}", body, operation)


@router.post("/auth/totp/enroll")
def start_totp(request: Request, caller: CallerDep) -> dict[str, str]:
    """Only from a verified device, after a code on the factor the customer already has."""
    require_verified_device(request, caller)
    _step_up_if(request, caller, None, "enroll_totp", lambda _s: True, credential_change=True)
    with db_of(request).unit_of_work() as session:
        enrolment = identity.start_totp(session, caller.customer_id)
    return {"secret": enrolment.secret, "otpauth_uri": enrolment.uri, "qr_svg": enrolment.qr_svg}


@router.post("/auth/totp/confirm")
def confirm_totp(request: Request, body: CodeIn, caller: CallerDep) -> dict[str, Any]:
    limit(request, "otp.verify", f"customer:{caller.customer_id}")
    recovery = committing(
        db_of(request), lambda s: identity.confirm_totp(s, caller.customer_id, body.code)
    )
    return {"status": "enabled", "recovery_codes": recovery}


@router.post("/challenges/{challenge_id}/verify")
def answer_challenge(
    request: Request, challenge_id: str, body: CodeIn, caller: CallerDep
) -> Response:
    """Pass a step-up challenge, then retry the original request with the same Idempotency-Key."""
    limit(request, "otp.verify", f"customer:{caller.customer_id}")
    passed = committing(
        db_of(request),
        lambda s: identity.answer_challenge(s, auth_of(s, caller), challenge_id, body.code),
    )
    answer = JSONResponse({"status": "passed", "challenge_id": passed.challenge_id})
    if passed.new_token:
        set_session_cookie(answer, passed.new_token)
    return answer


@router.post("/challenges/{challenge_id}/resend")
def resend_challenge(request: Request, challenge_id: str, caller: CallerDep) -> dict[str, str]:
    limit(request, "otp.send", f"customer:{caller.customer_id}")
    with db_of(request).unit_of_work() as session:
        identity.resend_challenge(session, auth_of(session, caller), challenge_id)
    return {"status": "sent", "challenge_id": challenge_id}


@router.get("/devices")
def list_devices(request: Request, caller: CallerDep) -> list[dict[str, Any]]:
    with db_of(request).unit_of_work() as session:
        current = auth_of(session, caller).device_id
        return [
            {
                "id": d.id,
                "label": d.label,
                "verified": d.verified_at is not None,
                "current": d.id == current,
                "last_seen_at": as_utc(d.last_seen_at).isoformat(),
            }
            for d in identity.list_devices(session, caller.customer_id)
        ]


@router.delete("/devices/{device_id}")
def revoke_device(request: Request, device_id: RowId, caller: CallerDep) -> Response:
    """Only from a verified device: a stolen password alone cannot sign the owner out."""
    require_verified_device(request, caller)

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        identity.revoke_device(session, caller.customer_id, device_id)
        return 200, {"status": "revoked", "id": device_id}

    return run_idempotent(request, f"customer:{caller.customer_id}", None, operation)


@router.post("/account/contact", status_code=202)
def change_contact(request: Request, body: ContactIn, caller: CallerDep) -> Response:
    """Change the phone or email: a second factor on the current one, then a code to the new."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        identity.start_contact_change(
            session, caller.customer_id, phone=body.phone, email=body.email
        )
        return 202, {"status": "code_sent"}

    _step_up_if(request, caller, body, "change_contact", lambda _s: True, credential_change=True)
    return run_idempotent(request, f"customer:{caller.customer_id}", body, operation)


@router.post("/account/contact/confirm")
def confirm_contact(request: Request, body: ContactConfirmIn, caller: CallerDep) -> dict[str, Any]:
    limit(request, "otp.verify", f"customer:{caller.customer_id}")
    customer = committing(
        db_of(request),
        lambda s: identity.confirm_contact_change(s, caller.customer_id, body.what, body.code),
    )
    return {"status": "changed", "phone": customer.phone, "email": customer.email}


@router.post("/account/freeze")
def freeze(request: Request, body: FreezeIn, caller: CallerDep) -> Response:
    """ "I lost my phone": stops all outgoing money at once, at any hour."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        customer = identity.freeze(
            session,
            caller.customer_id,
            actor=f"customer:{caller.customer_id}",
            reason=body.reason,
            keep_session=caller.session_id,
        )
        return 200, {"status": customer.status}

    return run_idempotent(request, f"customer:{caller.customer_id}", body, operation)


@router.post("/account/unfreeze")
def unfreeze(request: Request, body: UnfreezeIn, caller: CallerDep) -> Response:
    """Needs the password and a second factor: a frozen account is unfrozen only by its owner."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        customer = identity.unfreeze(
            session,
            caller.customer_id,
            actor=f"customer:{caller.customer_id}",
            password=body.password,
        )
        return 200, {"status": customer.status}

    limit(request, "otp.verify", f"customer:{caller.customer_id}")
    _step_up_if(request, caller, body, "unfreeze", lambda _s: True)
    return run_idempotent(request, f"customer:{caller.customer_id}", body, operation)


def _step_up_if(
    request: Request,
    caller: Caller,
    body: BaseModel | None,
    purpose: str,
    needed: Callable[[Session], bool],
    *,
    credential_change: bool = False,
) -> None:
    """Raise verification_required (with a new or the open challenge) unless it was passed.

    A credential change also goes past the risk engine, which may refuse it or ask for the
    second factor where `needed` would not.
    """
    digest = request_digest(request, body)

    def work(session: Session) -> DomainError | None:
        auth = auth_of(session, caller)
        risk = guard.check_credential_change(session, auth) if credential_change else None
        if isinstance(risk, DomainError):
            return risk
        wanted = risk == "challenge" or needed(session)
        if not wanted or identity.passed_challenge(session, auth, digest):
            return None
        pending = identity.challenge(
            session, auth, purpose=purpose, reason=purpose, request_digest=digest
        )
        return DomainError("verification_required", challenge_id=pending.id, reason=purpose)

    committing(db_of(request), work)


_RESET_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>walletdesk · 重设密码 Reset password</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/reset.css"></head>
<body><main>
<h1>重设密码 · Reset your password</h1>
<form id="reset"><label>新密码 New password
<input type="password" name="new_password" autocomplete="new-password" minlength="8" required></label>
<label>验证器代码（如已启用）Authenticator code (if on)
<input type="text" name="second_factor" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">确认 Confirm</button></form>
<p id="result" role="status"></p>
</main><script src="/static/reset.js"></script></body></html>
"""


@pages.get("/reset-password", response_class=HTMLResponse)
def reset_page(request: Request) -> HTMLResponse:
    """The page an emailed link opens; the token stays in the URL fragment, never sent to us."""
    del request
    return HTMLResponse(
        _RESET_PAGE, headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
    )
