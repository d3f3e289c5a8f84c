"""Help articles: the shipped zh-CN and en articles, searched with the BM25 index in kb.

Customers search before opening a case; agents get `suggest_for(case text)`. The articles
ship in the package (kb_articles.yaml) and are read and indexed once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from walletdesk.kit.errors import DomainError
from walletdesk.kit.i18n import SUPPORTED
from walletdesk.support import kb_errors as _errors  # noqa: F401  (registers article codes)
from walletdesk.support.kb import Document, Hit, Index, build_index, search

ARTICLES_FILE = "kb_articles.yaml"
SUGGESTIONS = 3
MAX_LIMIT = 20
CATEGORIES: dict[str, dict[str, str]] = {
    "account": {"zh-CN": "账户与密码", "en": "Account and password"},
    "payments": {"zh-CN": "付款与退款", "en": "Payments and refunds"},
    "disputes": {"zh-CN": "扣款争议", "en": "Disputed charges"},
    "security": {"zh-CN": "账户安全", "en": "Security"},
    "service": {"zh-CN": "联系客服", "en": "Contacting us"},
}


@dataclass(frozen=True)
class Library:
    index: Index
    by_key: dict[tuple[str, str], Document]


@lru_cache(maxsize=1)
def library() -> Library:
    raw = resources.files("walletdesk.support").joinpath(ARTICLES_FILE).read_text("utf-8")
    documents = [doc for entry in yaml.safe_load(raw) for doc in _documents(entry)]
    return Library(build_index(documents), {(d.slug, d.language): d for d in documents})


def _documents(entry: dict[str, Any]) -> list[Document]:
    slug, category = entry["slug"], entry["category"]
    if category not in CATEGORIES:
        raise ValueError(f"article {slug!r} has an unknown category {category!r}")
    missing = [language for language in SUPPORTED if language not in entry]
    if missing:
        raise ValueError(f"article {slug!r} is missing {', '.join(missing)}")
    return [_document(slug, category, language, entry[language]) for language in SUPPORTED]


def _document(slug: str, category: str, language: str, text: dict[str, Any]) -> Document:
    keywords = tuple(str(k) for k in text.get("keywords", ()))
    return Document(slug, language, category, text["title"], text["body"].strip(), keywords)


def search_articles(
    query: str, language: str, category: str | None = None, limit: int = 5
) -> list[Hit]:
    """Articles in `language` for a customer's words, best first ([] for a blank query)."""
    limit = max(1, min(limit, MAX_LIMIT))
    return search(library().index, query, _language(language), limit, category=category)


def list_articles(language: str, category: str | None = None) -> list[Document]:
    """Every article in `language` (of one category), by category then title: a browsable list."""
    documents = library().index.documents(_language(language))
    chosen = [d for d in documents if category is None or d.category == category]
    order = list(CATEGORIES)
    return sorted(chosen, key=lambda d: (order.index(d.category), d.title))


def get_article(slug: str, language: str) -> Document:
    document = library().by_key.get((slug, _language(language)))
    if document is None:
        raise DomainError("article_not_found", slug=slug)
    return document


def suggest_for(text: str, language: str, limit: int = SUGGESTIONS) -> list[Hit]:
    """Articles an agent may send for a case, from its subject and description."""
    return search_articles(text, language, limit=limit)


def category_name(category: str, language: str) -> str:
    return CATEGORIES[category][_language(language)]


def _language(language: str) -> str:
    return "zh-CN" if language.lower().startswith("zh") else "en"
