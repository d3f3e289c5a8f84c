"""Knowledge-base search: tokenising zh-CN and English, and BM25 ranking of the shipped articles."""

from __future__ import annotations

import pytest

from walletdesk.kit.errors import DomainError
from walletdesk.support import kb_service
from walletdesk.support.kb import Document, build_index, search, snippet, tokenize


def test_chinese_is_cut_into_words_without_particles() -> None:
    assert tokenize("忘记密码怎么办") == ["忘记", "密码", "怎么办"]
    assert tokenize("不认识的扣款！") == ["不", "认识", "扣款"]


def test_english_is_lower_cased_words_without_punctuation_or_stop_words() -> None:
    assert tokenize("Why did my PAYMENT fail?!") == ["did", "payment", "fail"]
    assert tokenize("A charge I don't recognise") == ["charge", "recognise"]


def test_mixed_and_full_width_text() -> None:
    assert tokenize("ＡＰＰ里支付失败 code 123") == ["app", "里", "支付", "失败", "code", "123"]


@pytest.mark.parametrize(
    ("query", "language", "slug"),
    [
        ("忘记密码怎么办", "zh-CN", "forgot-password"),
        ("支付失败", "zh-CN", "payment-failed"),
        ("不认识的扣款", "zh-CN", "unrecognised-charge"),
        ("客服电话几点", "zh-CN", "service-hours-and-channels"),
        ("打电话前要准备什么", "zh-CN", "prepare-before-calling"),
        ("退款多久到账", "zh-CN", "refund-status"),
        ("手机丢了怎么办", "zh-CN", "lost-phone"),
        ("账户被冻结了", "zh-CN", "account-locked"),
        ("有人问我要验证码", "zh-CN", "security-tips"),
        ("forgot my password", "en", "forgot-password"),
        ("payment failed why", "en", "payment-failed"),
        ("charge I don't recognise", "en", "unrecognised-charge"),
        ("what to prepare before calling", "en", "prepare-before-calling"),
        ("what time is the hotline open", "en", "service-hours-and-channels"),
        ("where is my refund", "en", "refund-status"),
        ("someone asked for my code, is it a scam", "en", "security-tips"),
    ],
)
def test_the_right_article_comes_first(query: str, language: str, slug: str) -> None:
    hits = kb_service.search_articles(query, language)
    assert hits and hits[0].slug == slug
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("query", ["", "   ", "!!!?。,", "xyzzy qwrtp", "的了吗"])
def test_empty_or_garbage_queries_find_nothing(query: str) -> None:
    assert kb_service.search_articles(query, "zh-CN") == []
    assert kb_service.search_articles(query, "en") == []


def test_hits_carry_a_snippet_with_the_query_words() -> None:
    hit = kb_service.search_articles("refund bank card", "en")[0]
    assert hit.slug == "refund-status" and "bank card" in hit.snippet
    assert len(hit.snippet) <= 120


def test_category_filter_and_limit() -> None:
    hits = kb_service.search_articles("账户", "zh-CN", category="security", limit=10)
    assert hits and {h.category for h in hits} == {"security"}
    assert len(kb_service.search_articles("account", "en", limit=2)) == 2


def test_every_article_ships_in_both_languages() -> None:
    zh = {d.slug for d in kb_service.list_articles("zh-CN")}
    en = {d.slug for d in kb_service.list_articles("en")}
    assert zh == en and len(zh) >= 8
    assert {d.category for d in kb_service.list_articles("en")} == set(kb_service.CATEGORIES)


def test_an_unknown_article_is_a_404_in_both_languages() -> None:
    assert kb_service.get_article("forgot-password", "zh").title.startswith("忘记")
    with pytest.raises(DomainError) as raised:
        kb_service.get_article("no-such-thing", "en")
    assert raised.value.status == 404 and "no-such-thing" in raised.value.message("en")
    assert "帮助文章" in raised.value.message("zh-CN")


def test_agents_get_suggestions_from_a_case_description() -> None:
    text = "客户说昨晚有一笔 268 元的扣款不是他本人消费的，想申诉，担心账户被盗。"
    slugs = [h.slug for h in kb_service.suggest_for(text, "zh-CN")]
    assert slugs[0] == "unrecognised-charge" and len(slugs) <= 3


def test_the_title_outweighs_the_body() -> None:
    index = build_index(
        [
            Document("a", "en", "service", "Opening hours", "We help you with refunds."),
            Document("b", "en", "payments", "Refunds", "Ask during opening hours."),
        ]
    )
    assert [h.slug for h in search(index, "refunds", "en")] == ["b", "a"]
    assert [h.slug for h in search(index, "opening hours", "en")] == ["a", "b"]
    assert search(index, "refunds", "zh-CN") == []


def test_snippet_cuts_long_sentences() -> None:
    body = "Short one. " + "word " * 60 + "refund here."
    assert snippet(body, ["refund"], length=40).endswith("…")
    assert snippet(body, ["nothing"]) == "Short one."
