"""Language choice: zh-CN or en, from Accept-Language or a customer's preference."""

from __future__ import annotations

SUPPORTED = ("zh-CN", "en")
DEFAULT = "zh-CN"


def pick_language(accept_language: str | None, default: str = DEFAULT) -> str:
    """Best supported language for an Accept-Language header (RFC 9110 quality values)."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for negative_quality, _, tag in sorted(ranked):
        if negative_quality >= 0:
            continue
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
        if tag == "*":
            return default
    return default


def choose(language: str, *, en: str, zh: str) -> str:
    return zh if language.startswith("zh") else en
