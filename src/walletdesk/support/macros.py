"""Canned replies (macros) in zh-CN and en, with placeholders filled when an agent sends one.

The macros ship in the package (macros.yaml) and are read once per process. A reply never goes
out with a hole in it: a placeholder without a value is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from walletdesk.kit.errors import DomainError
from walletdesk.kit.i18n import SUPPORTED
from walletdesk.notify.templates import language_of, placeholders
from walletdesk.support import case_desk_errors as _errors  # noqa: F401  (registers the codes)

MACROS_FILE = "macros.yaml"
# Agents see only what the case holds, so a name they did not type becomes a polite address.
DEFAULTS: dict[str, dict[str, str]] = {"customer_name": {"zh-CN": "客户", "en": "there"}}


@dataclass(frozen=True, slots=True)
class Macro:
    slug: str
    titles: dict[str, str]
    texts: dict[str, str]

    def title(self, language: str) -> str:
        return self.titles[language_of(language)]

    def text(self, language: str) -> str:
        return self.texts[language_of(language)]

    def placeholders(self) -> list[str]:
        return sorted(placeholders(self.texts["en"]))


@lru_cache(maxsize=1)
def _macros() -> dict[str, Macro]:
    raw = resources.files("walletdesk.support").joinpath(MACROS_FILE).read_text("utf-8")
    macros = [_macro(entry) for entry in yaml.safe_load(raw)]
    return {macro.slug: macro for macro in macros}


def _macro(entry: dict[str, Any]) -> Macro:
    slug = entry["slug"]
    missing = [lang for lang in SUPPORTED if lang not in entry or lang not in entry["title"]]
    if missing:
        raise ValueError(f"macro {slug!r} is missing {', '.join(missing)}")
    texts = {lang: str(entry[lang]).strip() for lang in SUPPORTED}
    if len({frozenset(placeholders(text)) for text in texts.values()}) != 1:
        raise ValueError(f"macro {slug!r}: the languages use different placeholders")
    return Macro(slug, {lang: entry["title"][lang] for lang in SUPPORTED}, texts)


def list_macros() -> list[Macro]:
    return sorted(_macros().values(), key=lambda macro: macro.slug)


def get_macro(slug: str) -> Macro:
    macro = _macros().get(slug)
    if macro is None:
        raise DomainError("macro_not_found", slug=slug)
    return macro


def render_macro(slug: str, language: str, **values: Any) -> str:
    """The macro's text in `language` with every placeholder filled, or macro_values_missing."""
    macro, lang = get_macro(slug), language_of(language)
    given = {name: str(value) for name, value in values.items() if value not in (None, "")}
    for name, default in DEFAULTS.items():
        given.setdefault(name, default[lang])
    missing = [name for name in macro.placeholders() if name not in given]
    if missing:
        raise DomainError("macro_values_missing", slug=slug, names=", ".join(missing))
    return macro.text(lang).format_map(given)
