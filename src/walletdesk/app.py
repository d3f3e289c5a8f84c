"""create_app(): routers, error handlers, middleware. Wiring only."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from walletdesk import __version__
from walletdesk.config import Settings, get_settings
from walletdesk.db import Database
from walletdesk.disputes.api import desk_router as dispute_desk_router
from walletdesk.disputes.api import merchant_router as dispute_merchant_router
from walletdesk.disputes.api import router as disputes_router
from walletdesk.hotline import engine as hotline_engine
from walletdesk.hotline.agent_api import router as hotline_desk_router
from walletdesk.hotline.voice_api import engine_for as voice_engine
from walletdesk.hotline.voice_api import router as voice_router
from walletdesk.identity.api import pages as identity_pages
from walletdesk.identity.api import router as identity_router
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import error_body, language_of, problem, problem_body
from walletdesk.kit.security import install_security
from walletdesk.notify import worker as notify_worker
from walletdesk.notify.api import router as inbox_router
from walletdesk.risk.config import current_config as current_risk_config
from walletdesk.staff.api import router as staff_router
from walletdesk.support.api import admin_router as hours_admin_router
from walletdesk.support.api import router as hours_router
from walletdesk.support.case_api import desk_router as case_desk_router
from walletdesk.support.case_api import router as support_cases_router
from walletdesk.support.chat_api import router as chat_router
from walletdesk.support.desk_api import router as desk_router
from walletdesk.support.kb_api import router as help_router
from walletdesk.wallet.api import admin_router, merchant_router
from walletdesk.wallet.api import router as wallet_router
from walletdesk.wallet.gateway import CardGateway, SandboxGateway

log = logging.getLogger("walletdesk")

DESCRIPTION = """
A self-hosted digital wallet with its own customer-service hotline.

* Sign in with `POST /v1/auth/login` and send `Authorization: Bearer <token>` (demo tokens
  are printed by `walletdesk demo`). Payments, transfers and withdrawals also need the
  6-digit payment PIN in `X-Payment-PIN`; large ones answer `verification_required` with a
  challenge: pass it (`POST /v1/challenges/{id}/verify`) and retry with the same key.
* Send an `Idempotency-Key` header with every POST and DELETE; retrying with the same key and
  body replays the first answer.
* Amounts are decimal strings (`"12.50"`) with a currency code; errors are
  `application/problem+json` with a stable `code`, in the language of `Accept-Language`
  (zh-CN or en).
"""


def health(request: Request) -> JSONResponse:
    """Liveness, and whether the database answers."""
    try:
        reachable = request.app.state.db.ping()
    except Exception:  # the point of this endpoint is to report it, not to fail
        reachable = False
    body = {"status": "ok" if reachable else "degraded", "database": reachable}
    return JSONResponse(body, status_code=200 if reachable else 503)


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    gateway: CardGateway | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="walletdesk", version=__version__, description=DESCRIPTION, lifespan=_lifespan
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url, pool_size=settings.database_pool_size)
    app.state.gateway = gateway or SandboxGateway(settings.gateway_sandbox_path)
    current_risk_config()  # a broken operator rules file fails at start-up, not mid-payment
    app.state.hotline_engine = voice_engine(hotline_engine.load(settings))  # and a broken flow
    _add_error_handlers(app)
    install_security(app)
    static = resources.files("walletdesk.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # First: a request walks the routes in order, and the carrier's webhooks are the busiest
    # and most latency-bound traffic (a caller hears the silence).
    app.include_router(voice_router)

    # Next, the health check: probes poll it often, and a route is matched only after every one
    # registered before it (last, matching took a third of its CPU). HEAD is answered too (load
    # balancers use it) but kept out of the API document, where it would repeat the GET.
    app.add_api_route("/health", health, methods=["GET"], tags=["operations"])
    app.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
    app.include_router(identity_router)
    app.include_router(identity_pages)
    app.include_router(wallet_router)
    app.include_router(inbox_router)
    app.include_router(hours_router)
    app.include_router(hours_admin_router)
    app.include_router(help_router)
    app.include_router(merchant_router)
    app.include_router(admin_router)
    app.include_router(disputes_router)
    app.include_router(dispute_merchant_router)
    app.include_router(dispute_desk_router)
    app.include_router(desk_router)
    app.include_router(support_cases_router)
    app.include_router(case_desk_router)
    app.include_router(staff_router)
    app.include_router(chat_router)
    app.include_router(hotline_desk_router)

    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On a single-process pilot, deliver notifications from inside the server. While the app
    serves, threads hand the GIL over sooner (GIL_SWITCH_INTERVAL); the process's own interval
    is put back when it stops (tests start many apps in one process)."""
    worker = notify_worker.start_in_process(app.state.db, app.state.settings)
    _freeze_start_up()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if worker:
            worker.stop()


# A request thread that let go of the GIL for a database round trip must wait for it to be
# handed back by whichever thread runs Python meanwhile: by default up to 5 ms, on every one
# of the ten or so statements a webhook makes (the "convoy effect"). A shorter interval bounds
# that wait. On the hotline bench (PostgreSQL, one process, three runs each) the webhook p99
# was 77-163 ms with the default 5 ms and 76-87 ms with this.
GIL_SWITCH_INTERVAL = 0.0005  # seconds


def _freeze_start_up() -> None:
    """What start-up made (modules, routes, the call flow) lives as long as the process: kept
    out of the cycle collector's way. Otherwise each full collection walks all of it while
    every request waits (over 100 ms under the hotline bench's load; about 10 ms frozen).
    Once per process, after collecting start-up's own garbage, so none is frozen with it."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


_frozen = False


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
