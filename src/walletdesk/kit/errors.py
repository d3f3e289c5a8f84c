"""Errors are values with stable codes, an HTTP status and a message in zh-CN and en.

Each domain declares its codes with `define(...)` in its own errors module; the catalogue
below holds the ones every domain shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    status: int
    en: str
    zh: str


_CATALOGUE: dict[str, ErrorSpec] = {}


def define(code: str, status: int, *, en: str, zh: str) -> ErrorSpec:
    spec = ErrorSpec(code, status, en, zh)
    existing = _CATALOGUE.get(code)
    if existing is not None and existing != spec:
        raise ValueError(f"error code {code!r} defined twice with different texts")
    _CATALOGUE[code] = spec
    return spec


def spec_for(code: str) -> ErrorSpec:
    return _CATALOGUE[code]


def all_specs() -> list[ErrorSpec]:
    return sorted(_CATALOGUE.values(), key=lambda spec: spec.code)


class DomainError(Exception):
    """A failure a caller can act on. `params` fill the message templates and travel in the body."""

    def __init__(self, code: str, /, **params: Any) -> None:
        if code not in _CATALOGUE:
            raise KeyError(f"undefined error code {code!r}")
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def status(self) -> int:
        return _CATALOGUE[self.code].status

    def message(self, language: str) -> str:
        spec = _CATALOGUE[self.code]
        template = spec.zh if language.startswith("zh") else spec.en
        return template.format(**self.params)

    def __str__(self) -> str:
        return f"{self.code}: {self.message('en')}"


define("invalid_request", 422, en="The request is not valid.", zh="请求内容无效。")
define("not_found", 404, en="Not found.", zh="未找到。")
define(
    "unauthorized",
    401,
    en="Sign in first: send a valid bearer token.",
    zh="请先登录：需要有效的访问令牌。",
)
define("forbidden", 403, en="You may not do this.", zh="您无权执行此操作。")
define(
    "invalid_amount",
    422,
    en="'{amount}' is not an amount: write it as digits, like 12.50.",
    zh="“{amount}”不是有效金额，请写成数字，例如 12.50。",
)
define(
    "too_many_decimals",
    422,
    en="{currency} amounts have at most {places} decimal places.",
    zh="{currency} 金额最多保留 {places} 位小数。",
)
define("amount_not_positive", 422, en="The amount must be more than zero.", zh="金额必须大于零。")
define("amount_too_large", 422, en="The amount is too large.", zh="金额过大。")
define(
    "unknown_currency",
    422,
    en="Currency '{currency}' is not supported.",
    zh="不支持币种“{currency}”。",
)
define(
    "idempotency_key_required",
    400,
    en="Send an Idempotency-Key header with every request that changes something.",
    zh="所有会修改数据的请求都必须带 Idempotency-Key 请求头。",
)
define(
    "idempotency_key_invalid",
    400,
    en="The Idempotency-Key must be 1 to 255 visible characters.",
    zh="Idempotency-Key 必须是 1 到 255 个可见字符。",
)
define(
    "idempotency_key_reused",
    422,
    en="This Idempotency-Key was already used with a different request.",
    zh="该 Idempotency-Key 已用于另一个不同的请求。",
)
define(
    "idempotency_key_in_use",
    409,
    en="A request with this Idempotency-Key is still being processed; retry shortly.",
    zh="使用该 Idempotency-Key 的请求仍在处理中，请稍后重试。",
)
define(
    "internal_error",
    500,
    en="Something went wrong on our side. Nothing was changed; please retry.",
    zh="系统出现问题，未做任何更改，请重试。",
)
