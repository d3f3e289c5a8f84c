"""Plain-language reasons for a risk decision, in zh-CN and en.

One text serves the customer (app, SMS), the agent and the IVR, so it speaks to the customer,
names facts they can check ("5 different cards added within 24 hours") and never the rule's
internal name or threshold, which would teach a fraudster where the line is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from walletdesk.kit.i18n import choose
from walletdesk.kit.money import format_minor
from walletdesk.risk.rules import ALLOW, CHALLENGE, DECLINE, HOLD, LOCK, RuleHit

_OUTCOME = {
    ALLOW: ("Nothing unusual was found.", "未发现异常。"),
    CHALLENGE: (
        "For your safety we need to confirm it is you before going ahead.",
        "为保障账户安全，继续之前需要再次确认是您本人操作。",
    ),
    HOLD: (
        "We have paused this for a short review by our team; call us if it is urgent.",
        "此操作已暂停，等待我们的团队审核；如有急事请致电我们。",
    ),
    DECLINE: ("We declined this to protect your account.", "为保护您的账户，此操作已被拒绝。"),
    LOCK: (
        "We have locked your account to protect it; please call us to unlock it.",
        "为保护您的账户，我们已将其锁定；请致电我们解锁。",
    ),
}

_REASONS = {
    "velocity_count": (
        "{count} payments or transfers within {window_en}",
        "{window_zh}内有 {count} 笔付款或转账",
    ),
    "velocity_amount": ("{total} sent within {window_en}", "{window_zh}内共转出 {total}"),
    "amount_above_usual": (
        "{amount} is far above your usual {usual}",
        "金额 {amount} 远高于您平常的 {usual}",
    ),
    "new_device_large_amount": (
        "a large amount ({amount}) from a device you have not used before",
        "在一台新设备上操作大额资金({amount})",
    ),
    "failed_logins_then_success": (
        "{failures} wrong passwords were tried before this sign-in",
        "本次登录前有 {failures} 次密码错误",
    ),
    "reset_then_large_payment": (
        "a large amount ({amount}) within {window_en} of a password reset",
        "重置密码后{window_zh}内转出大额资金({amount})",
    ),
    "new_recipient_large_amount": (
        "a large amount ({amount}) to someone you have not sent money to before",
        "向从未转过账的对象转出大额资金({amount})",
    ),
    "many_cards": (
        "{cards} different cards were added within {window_en}",
        "{window_zh}内添加了 {cards} 张不同的银行卡",
    ),
    "just_under_limit": (
        "{count} amounts just under the {limit} limit within {window_en}",
        "{window_zh}内有 {count} 笔金额接近单笔限额 {limit}",
    ),
    "credential_change_new_device": (
        "your sign-in details were changed from a device you have not used before",
        "在一台新设备上修改了登录信息",
    ),
}

_MONEY_FACTS = ("amount", "total", "usual", "limit")


def explain(action: str, hits: Sequence[RuleHit], language: str) -> str:
    reasons = [_reason(hit, language) for hit in hits]
    if action == ALLOW and reasons:
        # Monitor-only rules fired: nothing happened to the customer, the facts are kept.
        return choose(
            language,
            en=f"Allowed; noted: {'; '.join(reasons)}.",
            zh=f"已放行；记录到：{'；'.join(reasons)}。",
        )
    outcome = choose(language, en=_OUTCOME[action][0], zh=_OUTCOME[action][1])
    if not reasons:
        return outcome
    return choose(
        language,
        en=f"{outcome} Why: {'; '.join(reasons)}.",
        zh=f"{outcome}原因：{'；'.join(reasons)}。",
    )


def _reason(hit: RuleHit, language: str) -> str:
    en, zh = _REASONS.get(hit.rule, (hit.rule, hit.rule))
    facts = _readable(hit.reason_params)
    return choose(language, en=en, zh=zh).format(**facts)


def _readable(params: dict[str, Any]) -> dict[str, Any]:
    facts = dict(params)
    currency = params.get("currency")
    for name in _MONEY_FACTS:
        if name in facts and currency:
            facts[name] = f"{format_minor(facts[name], currency)} {currency}"
    if "window_minutes" in facts:
        facts["window_en"], facts["window_zh"] = _span(facts["window_minutes"])
    return facts


def _span(minutes: int) -> tuple[str, str]:
    """'24 hours' / '24 小时' rather than '1440 minutes'; whole days from two days up."""
    if minutes % 1440 == 0 and minutes >= 2880:
        count, en, zh = minutes // 1440, "days", "天"
    elif minutes % 60 == 0:
        count, en, zh = minutes // 60, "hours", "小时"
    else:
        count, en, zh = minutes, "minutes", "分钟"
    return f"{count} {en[:-1] if count == 1 else en}", f"{count} {zh}"
