"""Staff API: sign in with password and authenticator code, sign out, and (admins) accounts.

Other routers admit staff with `require_staff(*roles)`. Sign-in, sign-out and creating an
account take no Idempotency-Key: their answers carry secrets (a session token, a TOTP secret)
that must not be stored for replay, and repeating them is safe — another sign-in opens another
session, a second create of the same username is refused. Unlock and disable take one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from walletdesk.db import Database
from walletdesk.identity.api import client_ip
from walletdesk.kit import ratelimit
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import RowId, bearer_token, db_of, run_idempotent, settings_of
from walletdesk.staff import service
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.staff.schemas import CreateStaffIn, LoginIn, staff_out, staff_summary

router = APIRouter(prefix="/v1/staff", tags=["staff"])


def staff_token(request: Request) -> str:
    try:
        return bearer_token(request)
    except DomainError:
        raise DomainError("staff_auth_required") from None


def require_staff(*roles: StaffRole) -> Callable[[Request], StaffUser]:
    """A dependency giving the signed-in staff member, if their role is one of `roles`.

    No roles admits any staff member. Admin is not implied: list it where admins belong.
    """
    allowed = frozenset(roles)

    def current_staff(request: Request) -> StaffUser:
        token = staff_token(request)
        with db_of(request).unit_of_work() as session:
            staff = service.staff_for_token(session, token)
        if staff is None:
            raise DomainError("staff_auth_required")
        if allowed and staff.role not in allowed:
            raise DomainError("staff_forbidden")
        return staff

    return current_staff


AnyStaff = Annotated[StaffUser, Depends(require_staff())]
Admin = Annotated[StaffUser, Depends(require_staff(StaffRole.ADMIN))]


def sign_in(db: Database, username: str, password: str, totp: str, ip: str | None) -> dict:
    """Sign in and answer {token, expires_at, staff}; the web console's sign-in uses it too.

    A refusal is raised only after its unit of work commits: the failure count and the audit
    entry must survive it.
    """
    refusal: DomainError | None = None
    with db.unit_of_work() as session:
        try:
            token = service.login(session, username, password, totp, ip)
        except DomainError as error:
            refusal = error
        else:
            record = service.resolve(session, token)
            assert record is not None
            staff = session.get(StaffUser, record.staff_id)
            assert staff is not None
            answer = {
                "token": token,
                "expires_at": as_utc(record.expires_at).isoformat(),
                "staff": staff_summary(staff),
            }
    if refusal is not None:
        raise refusal
    return answer


@router.post("/login")
def login(request: Request, body: LoginIn) -> dict[str, Any]:
    ip, db, settings = client_ip(request), db_of(request), settings_of(request)
    ratelimit.hit(db, "staff_login.ip", ip, settings=settings)
    ratelimit.hit(
        db, "staff_login.account", service.normalize_username(body.username), settings=settings
    )
    return sign_in(db, body.username, body.password, body.totp, ip)


@router.post("/logout")
def logout(request: Request, _staff: AnyStaff) -> dict[str, str]:
    with db_of(request).unit_of_work() as session:
        service.logout(session, staff_token(request))
    return {"status": "signed_out"}


@router.get("/me")
def me(staff: AnyStaff) -> dict[str, Any]:
    return staff_out(staff)


@router.post("/users", status_code=201)
def create_user(request: Request, body: CreateStaffIn, admin: Admin) -> dict[str, Any]:
    """Create a staff account; the answer holds its authenticator secret, shown this once."""
    with db_of(request).unit_of_work() as session:
        staff, secret = service.create_staff(
            session,
            username=body.username,
            display_name=body.display_name,
            role=body.role,
            password=body.password,
            skills=body.skills,
            goodwill_per_action=service.parse_goodwill(
                body.goodwill_per_action, body.limits_currency
            ),
            goodwill_per_day=service.parse_goodwill(body.goodwill_per_day, body.limits_currency),
            limits_currency=body.limits_currency,
            actor=admin.actor,
        )
        return {
            "staff": staff_out(staff),
            "totp_secret": secret,
            "otpauth_uri": service.provisioning_uri(staff, secret),
        }


@router.get("/users")
def list_users(request: Request, _admin: Admin) -> list[dict[str, Any]]:
    with db_of(request).unit_of_work() as session:
        return [staff_out(staff) for staff in service.list_staff(session)]


@router.post("/users/{staff_id}/unlock")
def unlock_user(request: Request, staff_id: RowId, admin: Admin) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 200, staff_out(service.unlock(session, staff_id, actor=admin.actor))

    return run_idempotent(request, admin.actor, None, operation)


@router.post("/users/{staff_id}/disable")
def disable_user(request: Request, staff_id: RowId, admin: Admin) -> Response:
    """No more sign-ins; every session of theirs ends at once."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 200, staff_out(service.disable(session, staff_id, actor=admin.actor))

    return run_idempotent(request, admin.actor, None, operation)
