"""Help-centre API: customers search and read articles in zh-CN and en, without signing in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from walletdesk.app import create_app
from walletdesk.config import Settings
from walletdesk.db import Database


@pytest.fixture
def client(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=db.url, run_worker_in_process=False, gateway_sandbox_path=tmp_path / "gw.db"
    )
    with TestClient(create_app(settings, db)) as test_client:
        yield test_client


def test_a_customer_searches_in_chinese(client: TestClient) -> None:
    answer = client.get("/v1/help/articles", params={"q": "忘记密码怎么办", "lang": "zh-CN"})
    assert answer.status_code == 200 and answer.headers["content-language"] == "zh-CN"
    first = answer.json()["articles"][0]
    assert first["slug"] == "forgot-password" and first["category_name"] == "账户与密码"
    assert "忘记密码" in first["snippet"] and first["score"] > 0


def test_the_language_comes_from_accept_language(client: TestClient) -> None:
    headers = {"Accept-Language": "en-GB,en;q=0.9"}
    answer = client.get("/v1/help/articles", params={"q": "payment failed why"}, headers=headers)
    body = answer.json()
    assert body["language"] == "en" and body["articles"][0]["slug"] == "payment-failed"
    assert body["articles"][0]["title"] == "Why did my payment fail?"


def test_browsing_a_category_without_a_query(client: TestClient) -> None:
    answer = client.get("/v1/help/articles", params={"category": "service", "lang": "en"})
    slugs = {a["slug"] for a in answer.json()["articles"]}
    assert slugs == {"service-hours-and-channels", "prepare-before-calling"}
    everything = client.get("/v1/help/articles", params={"lang": "zh"}).json()["articles"]
    assert len(everything) >= 8


def test_reading_an_article_in_each_language(client: TestClient) -> None:
    zh = client.get("/v1/help/articles/prepare-before-calling", params={"lang": "zh-CN"}).json()
    en = client.get(
        "/v1/help/articles/prepare-before-calling", headers={"Accept-Language": "en"}
    ).json()
    assert "交易编号" in zh["body"] and "transaction number" in en["body"]
    assert zh["category"] == en["category"] == "service" and zh["language"] == "zh-CN"


def test_an_unknown_article_is_a_problem_in_the_callers_language(client: TestClient) -> None:
    answer = client.get("/v1/help/articles/nope", headers={"Accept-Language": "zh-CN"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "article_not_found" and "帮助文章" in answer.json()["title"]


def test_bad_input_is_a_422_not_a_crash(client: TestClient) -> None:
    assert client.get("/v1/help/articles", params={"category": "nonsense"}).status_code == 422
    assert client.get("/v1/help/articles", params={"q": "x" * 201}).status_code == 422
    garbage = client.get("/v1/help/articles", params={"q": "?!。", "lang": "en"})
    assert garbage.status_code == 200 and garbage.json()["articles"] == []
