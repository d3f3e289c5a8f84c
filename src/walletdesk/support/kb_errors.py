"""Knowledge-base error codes."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "article_not_found",
    404,
    en="There is no help article '{slug}'.",
    zh="没有找到帮助文章“{slug}”。",
)
