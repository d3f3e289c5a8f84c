"""Help-centre API: public search and reading of the knowledge base, in zh-CN or en."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from walletdesk.kit.http import language_of
from walletdesk.kit.i18n import pick_language
from walletdesk.support import kb_service
from walletdesk.support.kb import Document

router = APIRouter(prefix="/v1/help", tags=["support"])

Category = Literal["account", "payments", "disputes", "security", "service"]
Lang = Annotated[
    str | None, Query(max_length=35, description="zh-CN or en; default: Accept-Language")
]


def _language(request: Request, response: Response, lang: str | None) -> str:
    fallback = language_of(request)
    language = pick_language(lang, fallback) if lang else fallback
    response.headers["Content-Language"] = language
    return language


def _summary(document: Document, language: str) -> dict[str, Any]:
    return {
        "slug": document.slug,
        "category": document.category,
        "category_name": kb_service.category_name(document.category, language),
        "title": document.title,
    }


@router.get("/articles")
def find_articles(
    request: Request,
    response: Response,
    q: Annotated[str, Query(max_length=200, description="What you need help with")] = "",
    category: Category | None = None,
    lang: Lang = None,
    limit: Annotated[int, Query(ge=1, le=kb_service.MAX_LIMIT)] = 5,
) -> dict[str, Any]:
    """Articles ranked for `q`; without `q`, every article (of `category`) to browse."""
    language = _language(request, response, lang)
    if not q.strip():
        articles = [_summary(d, language) for d in kb_service.list_articles(language, category)]
        return {"language": language, "query": "", "articles": articles}
    hits = kb_service.search_articles(q, language, category, limit)
    articles = [
        {**asdict(h), "category_name": kb_service.category_name(h.category, language)} for h in hits
    ]
    return {"language": language, "query": q, "articles": articles}


@router.get("/articles/{slug}")
def read_article(
    request: Request,
    response: Response,
    slug: Annotated[str, Path(max_length=64, examples=["forgot-password"])],
    lang: Lang = None,
) -> dict[str, Any]:
    language = _language(request, response, lang)
    document = kb_service.get_article(slug, language)
    return {
        **_summary(document, language),
        "language": language,
        "body": document.body,
        "keywords": list(document.keywords),
    }
