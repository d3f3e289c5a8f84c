"""Service-hours error codes."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "hours_not_found",
    404,
    en="There are no service hours named '{name}'.",
    zh="没有名为“{name}”的服务时间。",
)
define(
    "hours_invalid",
    422,
    en="These service hours cannot be used: {reason}.",
    zh="服务时间设置无效：{reason}。",
)
define(
    "hours_exception_not_found",
    404,
    en="'{name}' has no exception on {day}.",
    zh="“{name}”在 {day} 没有特殊安排。",
)
