"""Twilio-compatible voice webhooks: the carrier posts what happened on a call (form-encoded:
CallSid, From, To, Digits, CallStatus...) and walletdesk answers TwiML.

  POST /v1/voice/incoming  a new call
  POST /v1/voice/step      a gather's digits, a recording, the end of a wait in a queue
  POST /v1/voice/wait      the queue's wait URL: position and estimate, or the agent
  POST /v1/voice/status    status callbacks: completed, no-answer, busy, failed; on a
                           callback's dial also in-progress (answered)
  POST /v1/voice/callback?entry=ID  a callback's dial answered: put the customer through
                           to the agent waiting for them

Every request must carry a valid X-Twilio-Signature (the carrier's HMAC of the URL it called and
the form, keyed with the auth token); anything else is refused with 403 before it is read.
Behind a proxy, WALLETDESK_TWILIO_PUBLIC_URL names the URL the carrier called. A webhook the
carrier retries hears the same answer and moves the call on once (hotline.replay).

The webhooks take turns on threads of their own (Settings.voice_threads: two by default), first
come first served. Python runs one thread at a time: a dozen webhooks arriving together on a
dozen threads all finish late, each also waiting for the interpreter after every database round
trip, where two at a time the first are answered at once (and one waiting for the database
leaves the other to run). Other endpoints keep the server's usual pool, so a slow card gateway
holds up no call. docs/performance.md has the figures (bench/hotline.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import parse_qsl

import anyio
from anyio.lowlevel import RunVar
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from walletdesk.hotline import calls, replay, twiml, voice_paths
from walletdesk.hotline import voice_errors as _errors  # noqa: F401  (registers the codes)
from walletdesk.hotline.engine import Engine, Urls
from walletdesk.hotline.flow import Flow
from walletdesk.hotline.models import Call
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import MAX_ID, db_of, settings_of

URLS = Urls(step=voice_paths.STEP, wait=voice_paths.WAIT)
TWIML = "application/xml"
T = TypeVar("T")


async def signed_form(request: Request) -> dict[str, str]:
    """The webhook's form, once its X-Twilio-Signature checks out."""
    # Carriers post application/x-www-form-urlencoded; empty values (Digits after silence) count.
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    settings = settings_of(request)
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    signature = request.headers.get("x-twilio-signature", "")
    if not signature or not validator.validate(signed_url(request), form, signature):
        raise DomainError("voice_signature_invalid")
    return form


def signed_url(request: Request) -> str:
    public = settings_of(request).twilio_public_url
    if not public:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public.rstrip("/") + request.url.path + query


Form = Annotated[dict[str, str], Depends(signed_form)]
router = APIRouter(tags=["hotline"])


def engine_for(call_flow: Flow) -> Engine:
    """The engine answering these webhooks for `call_flow` (made once, when the app starts)."""
    return Engine(call_flow, URLS)


# Per event loop, as anyio keeps its own thread limiter, sized by the settings of the app whose
# webhook comes first on the loop: a server process runs one loop and one app; a test client may
# start several loops, and a limiter must not be shared between loops.
_turns: RunVar[anyio.CapacityLimiter] = RunVar("walletdesk_voice_turns")


async def _in_turn(request: Request, work: Callable[[], T]) -> T:
    """`work` (it blocks on the database) on one of the webhooks' threads, when one is free."""
    try:
        limiter = _turns.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(settings_of(request).voice_threads)
        _turns.set(limiter)
    return await anyio.to_thread.run_sync(work, limiter=limiter)


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.hotline_engine
    return engine


def _once(
    request: Request, form: dict[str, str], call: Call, run: Callable[[], list[twiml.Step]]
) -> Response:
    """The answer to this webhook, replayed when the carrier retries it (hotline.replay)."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    token = request.headers.get(replay.TOKEN_HEADER)
    polled = request.url.path == voice_paths.WAIT
    secret = settings_of(request).secret_key
    key = replay.key_of(token, path, form, polled=polled, secret=secret)
    answer = replay.answer_once(call, key, lambda: twiml.render(run()))
    return Response(answer, media_type=TWIML)


@router.post(voice_paths.INCOMING)
async def incoming(request: Request, form: Form) -> Response:
    """A call reaches the hotline: identify the caller and greet them."""
    engine = _engine(request)

    def answer() -> Response:
        with db_of(request).unit_of_work() as session:
            call = calls.start(
                session,
                sid=_sid(form),
                from_number=form.get("From", "")[:32],
                to_number=form.get("To", "")[:32],
                state=engine.flow.start,
            )
            return _once(request, form, call, lambda: engine.incoming(session, call))

    return await _in_turn(request, answer)


@router.post(voice_paths.STEP)
async def step(request: Request, form: Form) -> Response:
    engine = _engine(request)
    return await _on_call(request, form, lambda session, call: engine.step(session, call, form))


@router.post(voice_paths.WAIT)
async def wait(request: Request, form: Form) -> Response:
    engine = _engine(request)
    return await _on_call(request, form, engine.wait)


@router.post(voice_paths.STATUS, status_code=204)
async def status(request: Request, form: Form) -> Response:
    """A status callback: a final CallStatus ends the call's record; a callback's dial answered
    or not moves its queue entry."""

    def record() -> None:
        with db_of(request).unit_of_work() as session:
            calls.on_status(session, _locked_call(session, form), form.get("CallStatus", ""))

    await _in_turn(request, record)
    return Response(status_code=204)


@router.post(voice_paths.CALLBACK)
async def callback(
    request: Request, form: Form, entry: Annotated[int, Query(ge=1, le=MAX_ID)]
) -> Response:
    """The customer answered a callback's dial (the dialer named this URL)."""
    engine = _engine(request)
    return await _on_call(request, form, lambda session, leg: engine.callback(session, leg, entry))


async def _on_call(
    request: Request, form: dict[str, str], run: Callable[[Session, Call], list[twiml.Step]]
) -> Response:
    """The answer to a webhook of a call in progress: `run` on the call, locked."""

    def answer() -> Response:
        with db_of(request).unit_of_work() as session:
            call = _locked_call(session, form)
            return _once(request, form, call, lambda: run(session, call))

    return await _in_turn(request, answer)


def _locked_call(session: Session, form: dict[str, str]) -> Call:
    call = calls.find(session, _sid(form))
    assert call is not None  # find raises call_not_found otherwise
    return call


def _sid(form: dict[str, str]) -> str:
    sid = form.get("CallSid", "")
    if not sid or len(sid) > 64:
        raise DomainError("call_not_found", sid=sid[:64])
    return sid
