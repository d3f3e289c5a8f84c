"""Risk error codes."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "risk_alert_not_found",
    404,
    en="There is no risk alert with this number.",
    zh="没有该编号的风险警报。",
)
define(
    "risk_alert_resolved",
    409,
    en="This risk alert was already resolved.",
    zh="该风险警报已处理。",
)
define(
    "risk_resolution_required",
    422,
    en="Say who resolved the alert and how (at most {max_length} characters).",
    zh="请填写处理人和处理结果（最多 {max_length} 个字符）。",
)
