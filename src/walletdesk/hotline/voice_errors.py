"""Error codes of the voice webhooks and the softphone."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "voice_signature_invalid",
    403,
    en="This request is not signed by the telephony carrier (X-Twilio-Signature).",
    zh="该请求没有电话运营商的有效签名(X-Twilio-Signature)。",
)
define(
    "call_not_found",
    404,
    en="There is no call {sid}.",
    zh="没有找到通话 {sid}。",
)
define(
    "call_unreachable",
    502,
    en="The hotline at {url} did not answer: {reason}.",
    zh="热线 {url} 没有响应：{reason}。",
)
