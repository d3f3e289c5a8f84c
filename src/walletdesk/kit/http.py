"""HTTP plumbing every router shares: problem+json, language, credentials, idempotent writes."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.idempotency import service as idempotency
from walletdesk.kit.errors import DomainError, spec_for
from walletdesk.kit.i18n import choose, pick_language

PROBLEM_TYPE = "application/problem+json"

# Row ids in paths and queries: a number past a 64-bit column is bad input, not a crash.
MAX_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def db_of(request: Request) -> Database:
    return request.app.state.db


def language_of(request: Request) -> str:
    return pick_language(
        request.headers.get("accept-language"), settings_of(request).default_language
    )


def problem_body(code: str, language: str, *, detail: str | None = None, **extra: Any) -> dict:
    """An RFC 9457 problem document; `code` is the stable machine-readable reason."""
    spec = spec_for(code)
    body: dict[str, Any] = {
        "type": f"urn:walletdesk:problem:{code}",
        "title": choose(language, en=spec.en, zh=spec.zh),
        "status": spec.status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def error_body(error: DomainError, language: str) -> dict:
    body = problem_body(error.code, language, **_json_safe(error.params))
    body["title"] = error.message(language)
    return body


def problem(status: int, body: dict, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = _with_retry_after(body, headers)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def _with_retry_after(body: Any, headers: dict[str, str] | None) -> dict[str, str] | None:
    # Clients and proxies read when to come back from the header (RFC 9110), not the body.
    if isinstance(body, dict) and "retry_after" in body:
        return {"Retry-After": str(body["retry_after"]), **(headers or {})}
    return headers


def _json_safe(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, int | float | str | bool | None) else str(v)
        for k, v in params.items()
    }


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DomainError("unauthorized")
    return token.strip()


def require_admin(request: Request) -> None:
    token = bearer_token(request)
    if not hmac.compare_digest(token.encode(), settings_of(request).admin_token.encode()):
        raise DomainError("unauthorized")


Operation = Callable[[Session, str], tuple[int, Any]]


def run_idempotent(
    request: Request, principal: str, body: BaseModel | None, operation: Operation
) -> JSONResponse:
    """Run `operation(session, request_key)` at most once per Idempotency-Key (see idempotency).

    The operation returns (status, json body); a DomainError it raises becomes the stored answer
    too, while whatever it had written is rolled back. The session begins its transaction only
    when the operation first uses it, so an operation may commit a step of its own first (a
    top-up records its pending charge before calling the card gateway).
    """
    db, settings = db_of(request), settings_of(request)
    key = idempotency.check_key(request.headers.get("idempotency-key"))
    digest = idempotency.fingerprint(
        request.method, request.url.path, body.model_dump(mode="json") if body else None
    )
    claimed = idempotency.claim(
        db,
        principal,
        key,
        digest,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        lock=timedelta(seconds=settings.idempotency_lock_seconds),
    )
    if isinstance(claimed, idempotency.StoredResponse):
        return _respond(claimed.status, claimed.body, {"Idempotent-Replayed": "true"})
    try:
        with db.unit_of_work() as session:
            try:
                status, payload = operation(session, f"{principal}:{key}")
            except DomainError as error:
                session.rollback()
                status, payload = error.status, error_body(error, language_of(request))
            idempotency.complete(session, claimed, status, payload)
    except BaseException:
        idempotency.release(db, claimed)
        raise
    return _respond(status, payload)


def _respond(status: int, payload: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    media = PROBLEM_TYPE if status >= 400 else "application/json"
    headers = _with_retry_after(payload, headers) if status >= 400 else headers
    return JSONResponse(payload, status_code=status, media_type=media, headers=headers)
