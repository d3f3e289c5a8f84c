"""Security headers on every response the application sends, error pages included.

`install_security(app)` wraps the whole ASGI stack, outside Starlette's ServerErrorMiddleware:
a middleware added the usual way sits inside it, so the 500 page it renders would go out bare.

The API docs: FastAPI's /docs (Swagger UI) and /redoc pages load their scripts and styles from
a CDN and start them with an inline script, which the strict policy forbids. Only on those
pages, the policy allows exactly the script and stylesheet URLs the page itself names, and the
inline scripts by their SHA-256 hash (computed from the page as it is sent, so it follows
FastAPI upgrades), plus the inline styles, data: images, fonts and blob: workers those viewers
need. No other page gets any of that, and every page keeps frame-ancestors 'none'.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STRICT_CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "content-security-policy": STRICT_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # Password-reset links carry their token in the URL: never leak it to another site.
    "referrer-policy": "no-referrer",
    # Nothing here needs these; the microphone stays available to our own pages (agent softphone).
    "permissions-policy": "camera=(), geolocation=(), payment=(), usb=(), microphone=(self)",
    "cross-origin-opener-policy": "same-origin",
}
NO_STORE = "no-store"

_SCRIPT_URL = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)
_LINK_URL = re.compile(r"<link\b[^>]*\bhref=\"([^\"]+)\"", re.IGNORECASE)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.I | re.S)
_SAFE_SOURCE = re.compile(r"^https://[^\s;,'\"]+$")  # nothing that could end a CSP directive

_Decorate = Callable[[Message, str, str], None]  # adds the headers to a response start


def install_security(app: FastAPI, *, static_prefix: str = "/static/") -> None:
    """Add the security headers to every response of `app`; call once, before it serves."""
    if app.middleware_stack is not None:
        raise RuntimeError("install_security must be called before the app serves requests")
    if getattr(app.state, "security_headers", False):
        return
    app.state.security_headers = True
    docs = {
        path for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path
    }
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build(), docs_paths=docs, static_prefix=static_prefix)

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]


class SecurityHeaders:
    """Pure ASGI middleware (no BaseHTTPMiddleware: that one buffers and breaks streaming)."""

    def __init__(self, app: ASGIApp, *, docs_paths: Iterable[str], static_prefix: str) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _app_path(scope)
        if path in self.docs_paths:
            await self.app(scope, receive, _DocsPage(send, self._decorate, path).send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._decorate(message, path, STRICT_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _decorate(self, start: Message, path: str, csp: str) -> None:
        headers = MutableHeaders(scope=start)
        for name, value in HEADERS.items():
            headers.setdefault(name, csp if name == "content-security-policy" else value)
        if path.startswith("/v1/"):
            headers["cache-control"] = NO_STORE  # API answers carry balances and personal data
        elif not path.startswith(self.static_prefix):
            headers.setdefault("cache-control", NO_STORE)


class _DocsPage:
    """Holds a docs page back until its body is complete, to hash its inline scripts."""

    def __init__(self, send: Send, decorate: _Decorate, path: str) -> None:
        self._send, self._decorate, self._path = send, decorate, path
        self._start: Message | None = None
        self._body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
        elif message["type"] == "http.response.body" and self._start is not None:
            self._body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                await self._flush()
        else:
            await self._send(message)

    async def _flush(self) -> None:
        assert self._start is not None
        csp = docs_csp(self._body.decode("utf-8", errors="replace"))
        self._decorate(self._start, self._path, csp)
        await self._send(self._start)
        await self._send({"type": "http.response.body", "body": bytes(self._body)})


def docs_csp(html: str) -> str:
    """The policy of an API docs page: what it names itself, nothing else from elsewhere."""
    scripts = _sources(_SCRIPT_URL.findall(html))
    links = _sources(_LINK_URL.findall(html))  # stylesheets, web fonts' CSS, the favicon
    hashes = [_script_hash(script) for script in _INLINE_SCRIPT.findall(html)]
    return "; ".join(
        [
            "default-src 'self'",
            " ".join(["script-src 'self'", *scripts, *hashes]),
            # Swagger UI and ReDoc style elements inline and draw icons as data: SVGs.
            " ".join(["style-src 'self' 'unsafe-inline'", *links]),
            " ".join(["img-src 'self' data:", *links]),
            "font-src 'self' https://fonts.gstatic.com",  # ReDoc's web fonts
            "worker-src 'self' blob:",  # ReDoc's search index runs in a worker
            "connect-src 'self'",  # the viewers fetch /openapi.json
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ]
    )


def _sources(urls: Iterable[str]) -> list[str]:
    return sorted({url for url in urls if _SAFE_SOURCE.match(url)})


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _app_path(scope: Scope) -> str:
    # Behind a proxy's path prefix, scope["path"] includes root_path; routes do not.
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
