"""Security headers: every answer the app gives, errors included, tells the browser to keep to
HTTPS, not to sniff types, not to be framed, not to leak reset links in Referer, and not to
cache anything personal. The API docs keep working under a policy of their own.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from walletdesk.app import create_app
from walletdesk.config import Settings
from walletdesk.kit.errors import DomainError
from walletdesk.kit.security import HEADERS, STRICT_CSP, install_security


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = Settings(
        database_url="sqlite://",  # the headers do not depend on the database
        gateway_sandbox_path=tmp_path / "gateway.db",
    )
    app = create_app(settings)

    @app.get("/v1/test/refused")
    def refused() -> None:
        raise DomainError("forbidden")

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("a bug")

    install_security(app)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_secured(headers: dict[str, str] | object, *, csp: str = STRICT_CSP) -> None:
    for name, value in HEADERS.items():
        expected = csp if name == "content-security-policy" else value
        assert headers[name] == expected, name  # type: ignore[index]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/no/such/page", 404),
        ("GET", "/v1/wallets", 401),  # no credentials
        ("GET", "/v1/test/refused", 403),  # a domain error
        ("POST", "/v1/auth/login", 422),  # a body that does not validate
        ("GET", "/test/crash", 500),  # an unexpected exception
        ("GET", "/openapi.json", 200),
    ],
)
def test_every_response_carries_the_security_headers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    answer = client.request(method, path, json={})
    assert answer.status_code == status
    assert_secured(answer.headers)
    assert answer.headers["cache-control"] == "no-store"


def test_static_files_may_be_cached_but_are_still_secured(client: TestClient) -> None:
    answer = client.get("/static/reset.css")
    assert answer.status_code == 200
    assert_secured(answer.headers)
    assert "no-store" not in answer.headers.get("cache-control", "")


def test_the_api_is_never_cached_even_if_a_route_says_otherwise(app: FastAPI) -> None:
    @app.get("/v1/test/cacheable")
    def cacheable(response: Response) -> dict[str, str]:
        response.headers["Cache-Control"] = "public, max-age=600"
        return {}

    with TestClient(app) as client:
        answer = client.get("/v1/test/cacheable")
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_may_load_exactly_their_own_scripts(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    scripts = directives["script-src"].split()
    for url in _script_urls(answer.text):
        assert url in scripts
    for inline in _inline_scripts(answer.text):
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
    assert directives["frame-ancestors"] == "'none'"
    assert answer.headers["x-frame-options"] == "DENY"


def test_other_pages_may_not_load_the_docs_cdn(client: TestClient) -> None:
    assert "cdn.jsdelivr.net" not in client.get("/health").headers["content-security-policy"]


def test_installing_after_the_app_has_served_is_refused(tmp_path: Path) -> None:
    app = create_app(Settings(database_url="sqlite://", gateway_sandbox_path=tmp_path / "g.db"))
    with TestClient(app) as client:
        client.get("/health")
    with pytest.raises(RuntimeError):
        install_security(app)


def _script_urls(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('<script src="')[1:]]


def _inline_scripts(html: str) -> list[str]:
    return [part.split("</script>", 1)[0] for part in html.split("<script>")[1:]]
