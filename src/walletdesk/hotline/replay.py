"""Carrier retries: a webhook that arrives twice is answered twice the same, and acted on once.

A carrier that got no answer in time (a timeout, a dropped connection) sends the same webhook
again; Twilio marks every request with `I-Twilio-Idempotency-Token`, the same on its retries.
The call keeps its last webhook's key and TwiML answer (in `Call.memory`), and a request with
that key again hears the stored answer, without moving the call on a second time.

Without the token, the key is a fingerprint of the path (with its query) and the form, keyed
with the server's secret. That is safe because the engine's step URLs carry the call's turn
(`?turn=N`): the same keys pressed at two menus in a row are two different requests, while a
retry repeats both URL and form.
The queue's wait URL is polled with the same form on purpose, so only a token replays it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping

from walletdesk.hotline.models import Call

TOKEN_HEADER = "I-Twilio-Idempotency-Token"
MEMORY_KEY = "last_webhook"


def key_of(
    token: str | None, path: str, form: Mapping[str, str], *, polled: bool, secret: str
) -> str | None:
    """The request's replay key; None for a poll without a token (each poll is new)."""
    if token:
        return f"token:{token[:128]}"
    if polled:
        return None
    canonical = json.dumps([path, sorted(form.items())], ensure_ascii=False)
    # Keyed with the server's secret: the form holds the digits the caller keyed, a PIN among
    # them, and a plain hash of six digits is undone by trying all million.
    return "form:" + hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def answer_once(call: Call, key: str | None, run: Callable[[], str]) -> str:
    """The stored answer when `key` is the call's last request; else `run()`, remembered."""
    last = (call.memory or {}).get(MEMORY_KEY) or {}
    if key is not None and last.get("key") == key:
        return str(last["answer"])
    answer = run()
    if key is not None:
        call.memory = {**(call.memory or {}), MEMORY_KEY: {"key": key, "answer": answer}}
    return answer
