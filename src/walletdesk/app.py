"""create_app(): routers, error handlers, middleware. Wiring only."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from walletdesk import __version__
from walletdesk.config import Settings, get_settings
from walletdesk.db import Database
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import error_body, language_of, problem, problem_body
from walletdesk.wallet.api import admin_router, merchant_router
from walletdesk.wallet.api import router as wallet_router
from walletdesk.wallet.gateway import CardGateway, SandboxGateway

log = logging.getLogger("walletdesk")

DESCRIPTION = """
A self-hosted digital wallet with its own customer-service hotline.

* Send `Authorization: Bearer <token>` (demo tokens are printed by `walletdesk demo`).
* Send an `Idempotency-Key` header with every POST and DELETE; retrying with the same key and
  body replays the first answer.
* Amounts are decimal strings (`"12.50"`) with a currency code; errors are
  `application/problem+json` with a stable `code`, in the language of `Accept-Language`
  (zh-CN or en).
"""


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    gateway: CardGateway | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="walletdesk", version=__version__, description=DESCRIPTION)
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url, pool_size=settings.database_pool_size)
    app.state.gateway = gateway or SandboxGateway(settings.gateway_sandbox_path)
    _add_error_handlers(app)
    app.include_router(wallet_router)
    app.include_router(merchant_router)
    app.include_router(admin_router)

    @app.get("/health", tags=["operations"])
    def health(request: Request) -> JSONResponse:
        """Liveness, and whether the database answers."""
        try:
            reachable = request.app.state.db.ping()
        except Exception:  # the point of this endpoint is to report it, not to fail
            reachable = False
        body = {"status": "ok" if reachable else "degraded", "database": reachable}
        return JSONResponse(body, status_code=200 if reachable else 503)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        return problem(error.status, error_body(error, language_of(request)))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in error.errors()]
        return problem(422, problem_body("invalid_request", language_of(request), errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else "invalid_request"
        body = problem_body(code, language_of(request))
        body["status"] = error.status_code
        return problem(error.status_code, body)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, problem_body("internal_error", language_of(request)))


def _field_error(error: Any) -> dict[str, Any]:
    return {
        "field": ".".join(str(p) for p in error.get("loc", ())[1:]),
        "message": error.get("msg"),
    }
