"""Case and contact error codes."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "case_not_found",
    404,
    en="There is no case {number}. Check the number on your contact record.",
    zh="没有工单 {number}，请核对服务记录上的工单号。",
)
define(
    "contact_not_found",
    404,
    en="There is no contact {contact_id}.",
    zh="没有编号为 {contact_id} 的联络记录。",
)
define(
    "contact_ended",
    409,
    en="This contact has already ended; start a new one.",
    zh="本次联络已结束，请新建联络。",
)
