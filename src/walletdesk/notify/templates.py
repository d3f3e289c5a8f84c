"""Message templates per event, in zh-CN and en: a subject and a body (Python format strings).

Each template names the params it needs; `render` refuses to run without them, so a message
never goes out with a hole in it. Some params are codes (a lock reason, a code's purpose) and
are shown in words in the customer's language. `hotline` is filled in for every template.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from walletdesk.config import get_settings

BRAND = "walletdesk"
AUTO_PARAMS = ("hotline",)


@dataclass(frozen=True, slots=True)
class Text:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Template:
    event: str
    params: tuple[str, ...]
    en: Text
    zh: Text
    # Security events go out whatever any future preference says (the rule).
    security: bool = False
    # The params are a credential (code, reset link): sent by email or SMS only, never kept
    # in the in-app inbox, where they would sit in clear.
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Rendered:
    language: str
    subject: str
    body: str

    def email_body(self) -> str:
        # "-- " on its own line is the signature separator mail clients recognise.
        return f"{self.body}\n\n-- \n{BRAND}\n"

    def sms_text(self) -> str:
        # Chinese SMS carry their sender's signature in 【】 at the start, by convention.
        prefix = f"【{BRAND}】" if self.language == "zh-CN" else f"[{BRAND}] "
        return prefix + self.body


_TEMPLATES: tuple[Template, ...] = (
    Template(
        "one_time_code",
        ("code", "minutes", "purpose"),
        secret=True,
        en=Text(
            "Your walletdesk verification code",
            "Your code to {purpose} is {code}. It works once and expires in {minutes} minutes. "
            "Nobody from walletdesk will ever ask you for it: if someone does, hang up.",
        ),
        zh=Text(
            "walletdesk 验证码",
            "您正在{purpose}，验证码 {code}，{minutes} 分钟内有效，仅可使用一次。"
            "walletdesk 工作人员绝不会向您索要验证码，请勿告诉任何人。",
        ),
    ),
    Template(
        "support_verification_code",
        ("code", "minutes", "purpose"),
        secret=True,
        en=Text(
            "Your walletdesk support verification code",
            "You are in contact with walletdesk support. If YOU called or wrote to us just now, "
            "read this code to the agent to {purpose}: {code} (valid {minutes} minutes, once). "
            "If you did not contact us, do not share it with anyone, and call us.",
        ),
        zh=Text(
            "walletdesk 客服身份验证码",
            "您正在联系 walletdesk 客服。如果是您本人刚刚致电或留言，请{purpose}："
            "将验证码 {code} 告诉客服（{minutes} 分钟内有效，仅可使用一次）。"
            "如果您没有联系我们，请勿告诉任何人，并致电客服。",
        ),
    ),
    Template(
        "password_reset_link",
        ("link", "minutes"),
        secret=True,
        en=Text(
            "Reset your walletdesk password",
            "We received a request to reset the password of your walletdesk account. "
            "Open this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
            "The link works once. If you did not ask for it, ignore this message and your "
            "password stays as it is; if it keeps happening, call us on {hotline}.",
        ),
        zh=Text(
            "重置您的 walletdesk 登录密码",
            "我们收到了重置您 walletdesk 账户登录密码的请求。请在 {minutes} 分钟内打开以下链接"
            "设置新密码：\n\n{link}\n\n该链接只能使用一次。如非本人操作，请忽略本邮件，"
            "您的密码不会改变；如多次收到，请致电 {hotline}。",
        ),
    ),
    Template(
        "password_reset_code",
        ("code", "minutes"),
        secret=True,
        en=Text(
            "Your walletdesk password reset code",
            "{code} is your code to reset your walletdesk password; it expires in {minutes} "
            "minutes. Do not give it to anyone, even someone who says they work for us. "
            "Did not ask for it? Ignore this message.",
        ),
        zh=Text(
            "walletdesk 密码重置验证码",
            "您正在重置 walletdesk 登录密码，验证码 {code}，{minutes} 分钟内有效。"
            "请勿将验证码告诉任何人，包括自称我们工作人员的人。如非本人操作，请忽略。",
        ),
    ),
    Template(
        "new_device_login",
        ("device", "when"),
        security=True,
        en=Text(
            "New sign-in to your walletdesk account",
            "Your walletdesk account was signed in to on a new device, {device}, at {when}. "
            "If that was you, there is nothing to do. If not, freeze your account in the app "
            "now and call us on {hotline}.",
        ),
        zh=Text(
            "您的 walletdesk 账户在新设备上登录",
            "您的 walletdesk 账户于 {when} 在新设备“{device}”上登录。如是本人操作，无需处理；"
            "如非本人操作，请立即在 App 中冻结账户并致电 {hotline}。",
        ),
    ),
    Template(
        "password_changed",
        (),
        security=True,
        en=Text(
            "Your walletdesk password was changed",
            "The password of your walletdesk account was just changed, and your other "
            "devices were signed out. If you did not do this, call us on {hotline} right away.",
        ),
        zh=Text(
            "您的 walletdesk 登录密码已修改",
            "您 walletdesk 账户的登录密码刚刚已修改，其他设备上的登录已全部退出。"
            "如非本人操作，请立即致电 {hotline}。",
        ),
    ),
    Template(
        "pin_changed",
        (),
        security=True,
        en=Text(
            "Your walletdesk payment PIN was changed",
            "The payment PIN of your walletdesk account was just changed. If you did not do "
            "this, freeze your account in the app and call us on {hotline}.",
        ),
        zh=Text(
            "您的 walletdesk 支付密码已修改",
            "您 walletdesk 账户的支付密码刚刚已修改。如非本人操作，请在 App 中冻结账户并致电 {hotline}。",
        ),
    ),
    Template(
        "contact_changed",
        ("what",),
        security=True,
        en=Text(
            "Your walletdesk {what} was changed",
            "The {what} of your walletdesk account was just changed; security messages now go "
            "to the new one. If you did not make this change, call us on {hotline} at once.",
        ),
        zh=Text(
            "您的 walletdesk {what}已变更",
            "您 walletdesk 账户绑定的{what}刚刚已变更，今后的安全通知将发送到新的{what}。"
            "如非本人操作，请立即致电 {hotline}。",
        ),
    ),
    Template(
        "authenticator_enabled",
        (),
        security=True,
        en=Text(
            "An authenticator app was set up for your walletdesk account",
            "An authenticator app was just set up for your walletdesk account; from now on "
            "its codes confirm sensitive actions. If you did not do this, freeze your account "
            "in the app and call us on {hotline} at once.",
        ),
        zh=Text(
            "您的 walletdesk 账户已绑定身份验证器",
            "您的 walletdesk 账户刚刚绑定了身份验证器，今后敏感操作将使用其验证码确认。"
            "如非本人操作，请立即在 App 中冻结账户并致电 {hotline}。",
        ),
    ),
    Template(
        "account_locked",
        ("reason",),
        security=True,
        en=Text(
            "Your walletdesk account is locked",
            "We locked your walletdesk account to protect your money: {reason}. While it is "
            "locked, no money can leave it. Please call our hotline on {hotline}; we will "
            "check that it is you and help you get going again.",
        ),
        zh=Text(
            "您的 walletdesk 账户已被锁定",
            "为保护您的资金安全，我们已锁定您的 walletdesk 账户，原因：{reason}。"
            "锁定期间资金无法转出。请致电客服热线 {hotline}，核实身份后我们会协助您恢复使用。",
        ),
    ),
    Template(
        "account_frozen",
        (),
        security=True,
        en=Text(
            "Your walletdesk account is frozen",
            "Your walletdesk account is now frozen: no money can leave it until it is "
            "unfrozen. If you did not ask for this, or need help, call us on {hotline}.",
        ),
        zh=Text(
            "您的 walletdesk 账户已冻结",
            "您的 walletdesk 账户已冻结，解冻前资金无法转出。如非本人申请或需要帮助，请致电 {hotline}。",
        ),
    ),
    Template(
        "account_unfrozen",
        (),
        security=True,
        en=Text(
            "Your walletdesk account is unfrozen",
            "Your walletdesk account is unfrozen and works normally again. If you did not ask "
            "for this, freeze it again in the app and call us on {hotline}.",
        ),
        zh=Text(
            "您的 walletdesk 账户已解冻",
            "您的 walletdesk 账户已解冻，可正常使用。如非本人操作，请在 App 中重新冻结并致电 {hotline}。",
        ),
    ),
    Template(
        "large_payment",
        ("amount", "counterparty"),
        security=True,
        en=Text(
            "A large payment left your walletdesk account",
            "{amount} was just paid from your walletdesk account to {counterparty}. If this "
            "was not you, freeze your account in the app and call us on {hotline} at once.",
        ),
        zh=Text(
            "您的 walletdesk 账户有一笔大额支出",
            "您的 walletdesk 账户刚刚向{counterparty}支付了 {amount}。"
            "如非本人操作，请立即在 App 中冻结账户并致电 {hotline}。",
        ),
    ),
    Template(
        "risk_hold",
        ("amount",),
        security=True,
        en=Text(
            "We paused a payment of {amount}",
            "To keep your money safe, we paused a payment of {amount} from your walletdesk "
            "account until we can check it with you. Please call us on {hotline}.",
        ),
        zh=Text(
            "一笔 {amount} 的付款已暂停",
            "为保障资金安全，您 walletdesk 账户的一笔 {amount} 付款已暂停处理，需要与您本人确认。"
            "请致电 {hotline}。",
        ),
    ),
    Template(
        "registration_attempt",
        (),
        security=True,
        en=Text(
            "Someone tried to register with your details",
            "Someone just tried to open a new walletdesk account with your phone number or "
            "email, which already belong to your account. Nothing was changed. If it was you, "
            "sign in instead, or reset your password if you have forgotten it.",
        ),
        zh=Text(
            "有人尝试使用您的信息注册",
            "刚刚有人尝试使用您的手机号或邮箱注册新的 walletdesk 账户，但它们已绑定您的账户，"
            "我们未做任何更改。如是本人，请直接登录；忘记密码可以重置。",
        ),
    ),
    Template(
        "hotline_self_service_locked",
        (),
        security=True,
        en=Text(
            "Phone self-service is locked after wrong PINs",
            "Someone calling our hotline keyed your payment PIN wrongly too many times, so phone "
            "self-service is locked for a while. Your account and payments are not affected. If "
            "this was not you, change your payment PIN in the app and call us on {hotline}.",
        ),
        zh=Text(
            "电话自助服务因支付密码多次错误已锁定",
            "有人致电客服热线时多次输错您的支付密码，电话自助服务已暂时锁定；您的账户和付款不受影响。"
            "如非本人操作，请在 App 中修改支付密码并致电 {hotline}。",
        ),
    ),
    Template(
        "desk_knowledge_check_locked",
        (),
        security=True,
        en=Text(
            "Too many wrong answers about your account",
            "Someone talking to our customer service gave wrong amounts for your recent payments "
            "too many times, so we no longer accept that check today. If this was not you, your "
            "account is safe, but please call us on {hotline}.",
        ),
        zh=Text(
            "有人多次答错您账户的信息",
            "有人在联系客服时多次说错您最近付款的金额，今天我们不再接受此项核实。如非本人操作，"
            "您的账户仍然安全，但请致电 {hotline}。",
        ),
    ),
    Template(
        "hotline_callback_failed",
        ("attempts",),
        en=Text(
            "We couldn't reach you for your callback",
            "We tried to call you back {attempts} times but couldn't reach you. Call us on "
            "{hotline} or reply in the app, and we'll pick up where we left off.",
        ),
        zh=Text(
            "回拨未能接通",
            "我们已尝试回拨您 {attempts} 次，但未能接通。请致电 {hotline} 或在 App 中回复，"
            "我们会继续为您处理。",
        ),
    ),
    Template(
        "contact_summary",
        ("case_number", "summary", "next_steps"),
        en=Text(
            "Your contact with walletdesk, case {case_number}",
            "Thank you for contacting walletdesk. Here is a record of what we did.\n\n"
            "Case number: {case_number}\nWhat we did: {summary}\nWhat happens next: "
            "{next_steps}\n\nIf you call again about this, key in the case number and we "
            "will carry on from here.",
        ),
        zh=Text(
            "您的 walletdesk 服务记录（工单号 {case_number}）",
            "感谢您联系 walletdesk，以下是本次服务记录。\n\n工单号：{case_number}\n"
            "处理情况：{summary}\n后续安排：{next_steps}\n\n"
            "如就此事再次来电，请输入工单号，我们会接着为您处理。",
        ),
    ),
    Template(
        "dispute_filed",
        ("case_number", "transaction_number", "amount", "merchant", "when"),
        en=Text(
            "We received your dispute, case {case_number}",
            "We received your dispute of {amount} paid to {merchant} (transaction "
            "{transaction_number}). {merchant} has until {when} to answer; if they do not, we "
            "review it ourselves. We will write to you at every step.\n\nCase number: "
            "{case_number}",
        ),
        zh=Text(
            "我们已收到您的争议申请（工单号 {case_number}）",
            "我们已收到您对支付给{merchant}的 {amount}(交易编号 {transaction_number})提出的争议。"
            "{merchant}须在 {when} 前答复，逾期未答复的由我们直接审理。每一步进展都会通知您。"
            "\n\n工单号：{case_number}",
        ),
    ),
    Template(
        "dispute_provisional_credit",
        ("case_number", "amount"),
        en=Text(
            "{amount} set aside for you, case {case_number}",
            "While we look into your dispute (case {case_number}) we have set aside {amount} "
            "for you. It shows in your wallet as incoming money; if the dispute is decided in "
            "your favour, the merchant's refund makes it yours to spend.",
        ),
        zh=Text(
            "已为您预留 {amount}(工单号 {case_number})",
            "在处理您的争议（工单号 {case_number}）期间，我们已为您预留 {amount}，在钱包中显示为"
            "待入账金额；如争议裁定对您有利，商户退款到账后即可使用。",
        ),
    ),
    Template(
        "dispute_under_review",
        ("case_number", "transaction_number"),
        en=Text(
            "Your dispute is being reviewed, case {case_number}",
            "Your dispute of transaction {transaction_number} (case {case_number}) is now "
            "being reviewed by our team. We will tell you the outcome.",
        ),
        zh=Text(
            "您的争议正在审理中（工单号 {case_number}）",
            "您对交易 {transaction_number} 提出的争议（工单号 {case_number}）已进入平台审理，"
            "我们会将结果通知您。",
        ),
    ),
    Template(
        "dispute_won",
        ("case_number", "amount", "merchant"),
        en=Text(
            "Your dispute was decided in your favour, case {case_number}",
            "Your dispute (case {case_number}) was decided in your favour: {merchant} has "
            "refunded {amount} to your wallet.",
        ),
        zh=Text(
            "您的争议已裁定对您有利（工单号 {case_number}）",
            "您的争议（工单号 {case_number}）已裁定对您有利：{merchant}已将 {amount} 退回您的钱包。",
        ),
    ),
    Template(
        "dispute_lost",
        ("case_number", "outcome"),
        en=Text(
            "The outcome of your dispute, case {case_number}",
            "We reviewed your dispute (case {case_number}) and could not decide it in your "
            "favour: {outcome}. Any amount set aside for you has been released. If you "
            "disagree, call us on {hotline} with your case number.",
        ),
        zh=Text(
            "您的争议处理结果（工单号 {case_number}）",
            "我们审理了您的争议（工单号 {case_number}），未能支持您的请求，原因：{outcome}。"
            "为您预留的款项已释放。如有异议，请凭工单号致电 {hotline}。",
        ),
    ),
    Template(
        "dispute_withdrawn",
        ("case_number", "transaction_number"),
        en=Text(
            "You withdrew your dispute, case {case_number}",
            "You withdrew your dispute of transaction {transaction_number} (case "
            "{case_number}); any amount set aside for you has been released. If you did not "
            "do this, call us on {hotline}.",
        ),
        zh=Text(
            "您已撤回争议（工单号 {case_number}）",
            "您已撤回对交易 {transaction_number} 提出的争议（工单号 {case_number}），"
            "为您预留的款项已释放。如非本人操作，请致电 {hotline}。",
        ),
    ),
    Template(
        "case_reply",
        ("case_number", "subject", "reply"),
        en=Text(
            "[Case {case_number}] {subject}",
            "We replied to your case {case_number}:\n\n{reply}\n\nAnswer in the app (Support, "
            "your cases) or reply to this email, keeping the case number in the subject.",
        ),
        zh=Text(
            "[工单 {case_number}] {subject}",
            "您的工单 {case_number} 有新的回复:\n\n{reply}\n\n"
            "您可以在 App 的“客服 - 我的工单”中回复，或直接回复本邮件（请保留标题中的工单号）。",
        ),
    ),
    Template(
        "csat_request",
        ("case_number",),
        en=Text(
            "[Case {case_number}] Resolved: how did we do?",
            "We have marked your case {case_number} as resolved. How did we do? Rate our help "
            "from 1 (poor) to 5 (excellent) in the app under Support, your cases; a comment "
            "helps us improve.\n\nNot solved after all? Reopen the case there and we will pick "
            "it up again.",
        ),
        zh=Text(
            "[工单 {case_number}] 已处理完成，请为我们的服务评分",
            "您的工单 {case_number} 已处理完成。请在 App 的“客服 - 我的工单”中为本次服务评分"
            "(1 分最差,5 分最好),欢迎留下意见帮助我们改进。\n\n"
            "如问题仍未解决，可在该工单中申请重新处理，我们会继续跟进。",
        ),
    ),
    Template(
        "complaint_opened",
        ("case_number", "original_number", "when"),
        en=Text(
            "[Case {case_number}] Your complaint is registered",
            "We have registered your complaint about case {original_number} as case "
            "{case_number}, with the record of that case attached. A supervisor will review "
            "it and answer you by {when}. Quote {case_number} if you call us on {hotline}.",
        ),
        zh=Text(
            "[工单 {case_number}] 您的投诉已受理",
            "您对工单 {original_number} 的投诉已受理，投诉工单号 {case_number}，原工单的全部"
            "记录已附上。主管将进行复核，并在 {when} 前答复您。致电 {hotline} 时请提供工单号 "
            "{case_number}。",
        ),
    ),
    Template(
        "agent_action",
        ("done",),
        security=True,
        en=Text(
            "walletdesk customer service acted on your account",
            "During your contact with walletdesk customer service, our agent {done}. If you "
            "did not contact us, call {hotline} at once.",
        ),
        zh=Text(
            "walletdesk 客服已处理您的账户",
            "在您联系 walletdesk 客服期间，客服人员{done}。如您未曾联系我们，请立即致电 {hotline}。",
        ),
    ),
    Template(
        "case_email_received",
        ("case_number", "subject"),
        en=Text(
            "[Case {case_number}] We received your email: {subject}",
            "Thank you for writing to walletdesk. We opened case {case_number} for your "
            "message, and an agent will reply to this address.\n\nTo add anything, reply to "
            "this email and keep [Case {case_number}] in the subject. We never ask for your "
            "password, payment PIN or verification codes: do not send them to anyone.",
        ),
        zh=Text(
            "[工单 {case_number}] 我们已收到您的邮件：{subject}",
            "感谢您联系 walletdesk。我们已为您的邮件创建工单 {case_number}，客服会回复到此邮箱。"
            "\n\n如需补充，请直接回复本邮件，并保留主题中的 [工单 {case_number}]。"
            "我们绝不会索要您的登录密码、支付密码或验证码，请勿告诉任何人。",
        ),
    ),
)

TEMPLATES: dict[str, Template] = {t.event: t for t in _TEMPLATES}

# Params that arrive as codes and are shown in words: {param: {code: (en, zh)}}.
_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "purpose": {
        "verify_contact": ("confirm your phone number or email", "验证手机号或邮箱"),
        "verify_device": ("sign in on a new device", "在新设备上登录"),
        "challenge": ("confirm a sensitive action", "确认一项敏感操作"),
        "change_phone": ("change your phone number", "更换手机号"),
        "change_email": ("change your email address", "更换邮箱"),
        "login": ("sign in", "登录"),
        "agent_verify": (
            "confirm who you are",
            "向正在为您服务的 walletdesk 客服确认身份",
        ),
    },
    "reason": {
        "failed_logins": (
            "the password was entered wrongly too many times",
            "登录密码连续输错次数过多",
        ),
        "payment_pin": (
            "the payment PIN was entered wrongly too many times",
            "支付密码连续输错次数过多",
        ),
        "risk": ("we noticed unusual activity", "检测到异常活动"),
        "reported_stolen": ("you reported your phone or card stolen", "您报告了手机或银行卡被盗"),
    },
    "what": {
        "phone": ("phone number", "手机号"),
        "email": ("email address", "邮箱"),
    },
}
_DEFAULT_PURPOSE = ("verify that it is you", "进行身份验证")


def language_of(language: str | None) -> str:
    """The supported language closest to a customer's preference."""
    return "zh-CN" if (language or "zh-CN").lower().startswith("zh") else "en"


def template_for(event: str) -> Template:
    try:
        return TEMPLATES[event]
    except KeyError:
        raise ValueError(f"unknown notification event {event!r}") from None


def check_params(event: str, params: Mapping[str, Any]) -> Template:
    """The event's template, once `params` has every value it needs (names only in errors)."""
    template = template_for(event)
    missing = [name for name in template.params if params.get(name) is None]
    if missing:
        raise ValueError(f"notification {event!r} needs params: {', '.join(missing)}")
    return template


def render(event: str, params: Mapping[str, Any], language: str | None) -> Rendered:
    template = check_params(event, params)
    lang = language_of(language)
    values = {name: _present(name, value, lang) for name, value in params.items()}
    values.setdefault("hotline", get_settings().hotline_number)
    text = template.zh if lang == "zh-CN" else template.en
    return Rendered(lang, text.subject.format_map(values), text.body.format_map(values))


def placeholders(text: str) -> set[str]:
    """The field names a format string uses."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def _present(name: str, value: Any, language: str) -> str:
    if name in _LABELS:
        return _label(name, str(value), language)
    if name == "when":
        return _local_time(value)
    return str(value)


def _label(name: str, code: str, language: str) -> str:
    # A challenge's purpose carries its id ("challenge:42"); the words are the same for all.
    key = code.split(":", 1)[0]
    labels = _LABELS[name].get(key)
    if labels is None:
        if name != "purpose":
            return code  # a caller's own readable text
        labels = _DEFAULT_PURPOSE
    return labels[1] if language == "zh-CN" else labels[0]


def _local_time(value: Any) -> str:
    """An ISO timestamp, shown in the operator's zone, to the minute."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    local = moment.astimezone(ZoneInfo(get_settings().timezone))
    return f"{local:%Y-%m-%d %H:%M} (UTC{local.isoformat()[-6:]})"
