"""Error codes of the support channels: inbound email and web chat."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "chat_ticket_invalid",
    401,
    en="This chat ticket is not valid, has expired or was already used: ask for a new one.",
    zh="聊天凭证无效、已过期或已使用，请重新获取。",
)
define(
    "chat_not_found",
    404,
    en="There is no chat {chat_id} in progress.",
    zh="没有进行中的会话 {chat_id}。",
)
define(
    "chat_taken",
    409,
    en="Chat {chat_id} was already taken by another agent, or has ended.",
    zh="会话 {chat_id} 已被其他客服接入，或已结束。",
)
define(
    "chat_not_yours",
    403,
    en="Chat {chat_id} is not yours: accept it first.",
    zh="会话 {chat_id} 不归您处理，请先接入。",
)
define(
    "chat_message_invalid",
    422,
    en="A chat message is 1 to {limit} characters.",
    zh="聊天消息须为 1 到 {limit} 个字符。",
)
define(
    "chat_closed",
    409,
    en="Our chat is closed now; you can leave a message instead.",
    zh="在线客服现已下班，您可以留言。",
)
