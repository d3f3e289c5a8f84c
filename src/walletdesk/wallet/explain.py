"""Why did transaction N fail (or why is it still pending)? A plain answer and what to do next.

The customer, an agent and the IVR all ask this one function, so everyone hears the same story.
Texts are built from what was recorded at the time (the reason code and its parameters), not
from today's state: "your balance was 12.00 when you tried to pay 50.00".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from walletdesk.config import get_settings
from walletdesk.kit.i18n import choose
from walletdesk.kit.money import Money
from walletdesk.wallet.models import TxnKind, TxnStatus, WalletTransaction


@dataclass(frozen=True, slots=True)
class Explanation:
    number: str
    status: str
    code: str | None
    summary: str
    next_step: str


KIND_NAMES = {
    TxnKind.TOPUP: ("top-up", "充值"),
    TxnKind.PAYMENT: ("payment", "付款"),
    TxnKind.TRANSFER: ("transfer", "转账"),
    TxnKind.REFUND: ("refund", "退款"),
    TxnKind.WITHDRAWAL: ("withdrawal", "提现"),
    TxnKind.EXCHANGE: ("exchange", "换汇"),
    TxnKind.GOODWILL: ("goodwill credit", "补偿金"),
}


def explain(txn: WalletTransaction, language: str) -> Explanation:
    params = dict(txn.failure_params or {})
    money = _money_formatter(txn.currency)
    en_kind, zh_kind = KIND_NAMES.get(TxnKind(txn.kind), (txn.kind, txn.kind))
    facts = {
        "amount": money(txn.amount),
        "kind_en": en_kind,
        "kind_zh": zh_kind,
        "counterparty": txn.counterparty_label or "",
        "hold_minutes": get_settings().gateway_timeout_hold_minutes,
        **{k: money(v) if k in _AMOUNT_PARAMS else v for k, v in params.items()},
    }
    if txn.status == TxnStatus.SUCCEEDED:
        template = _SUCCEEDED
    elif txn.status == TxnStatus.PENDING:
        template = _PENDING.get(txn.failure_code or txn.kind, _PENDING_DEFAULT)
    else:
        template = _FAILED.get(_variant(txn.failure_code, params), _FAILED_DEFAULT)
    known = _Facts(facts)
    summary, next_step = (
        choose(language, en=en.format_map(known), zh=zh.format_map(known)) for en, zh in template
    )
    return Explanation(txn.number, txn.status, txn.failure_code, summary, next_step)


_AMOUNT_PARAMS = {"available", "limit", "used"}


class _Facts(dict[str, Any]):
    """A fact missing from an old record reads as "?" rather than breaking the explanation."""

    def __missing__(self, key: str) -> str:
        return "?"


def _money_formatter(currency: str) -> Any:
    return lambda minor: str(Money(int(minor), currency))


def _variant(code: str | None, params: dict[str, Any]) -> str:
    if code == "limit_exceeded":
        return f"limit_exceeded:{params.get('window', 'transaction')}"
    if code == "invalid_recipient" and params.get("own"):
        return "invalid_recipient:own"
    if code == "gateway_timeout":
        return "gateway_timeout:uncharged"
    return code or ""


Template = tuple[tuple[str, str], tuple[str, str]]  # (summary en, zh), (next step en, zh)

_SUCCEEDED: Template = (
    ("This {kind_en} of {amount} went through.", "这笔 {amount} 的{kind_zh}已成功。"),
    (
        "If you don't recognise it, you can dispute it from the transaction.",
        "如果您不认识这笔交易，可以在交易详情中发起申诉。",
    ),
)

_PENDING_DEFAULT: Template = (
    (
        "This {kind_en} of {amount} is still being processed.",
        "这笔 {amount} 的{kind_zh}仍在处理中。",
    ),
    ("No action is needed; we will tell you when it completes.", "无需操作，完成后我们会通知您。"),
)

_PENDING: dict[str, Template] = {
    "gateway_timeout": (
        (
            "The card network did not answer in time. {amount} is held as pending: it is not "
            "in your available balance yet and has not been charged twice.",
            "银行卡网络未及时响应。{amount} 目前处于待确认状态，尚未计入可用余额，也不会被重复扣款。",
        ),
        (
            "Don't top up again. We check with the card network and settle it within "
            "{hold_minutes} minutes: either it is credited, or the hold is released.",
            "请不要重复充值。我们会向银行卡网络核实，并在 {hold_minutes} 分钟内处理：到账或释放冻结。",
        ),
    ),
    TxnKind.WITHDRAWAL: (
        (
            "Your withdrawal of {amount} is on its way to {counterparty}; the money is held "
            "until the bank confirms.",
            "您的 {amount} 提现正在转入 {counterparty}，银行确认前该金额处于冻结状态。",
        ),
        (
            "Banks usually confirm within one working day. If the bank returns it, the money "
            "comes back to your wallet.",
            "银行通常在一个工作日内确认；如被银行退回，资金将返还到您的钱包。",
        ),
    ),
}

_FAILED_DEFAULT: Template = (
    ("This {kind_en} of {amount} did not go through.", "这笔 {amount} 的{kind_zh}未成功。"),
    ("Please try again, or contact us.", "请重试，或联系客服。"),
)

_FAILED: dict[str, Template] = {
    "insufficient_balance": (
        (
            "Your available balance was {available} when you tried to pay {amount}.",
            "您尝试支付 {amount} 时，可用余额只有 {available}。",
        ),
        (
            "Top up your wallet from a card, then try again. No money left your wallet.",
            "请先用银行卡充值后再试。此次没有扣款。",
        ),
    ),
    "account_frozen": (
        (
            "Your account was frozen at the time, so no money could leave it.",
            "当时您的账户处于冻结状态，资金无法转出。",
        ),
        (
            "If you froze it yourself and have your phone back, unfreeze it after verifying; "
            "otherwise call us.",
            "如果是您本人冻结且已找回手机，验证身份后即可解冻；否则请致电客服。",
        ),
    ),
    "account_locked": (
        (
            "Your account was locked for your protection, so no money could leave it.",
            "为保护您的资金安全，账户当时已被锁定，资金无法转出。",
        ),
        (
            "Call us: after we verify it's you, we can review and unlock the account.",
            "请致电客服：核实身份后，我们会审核并解锁账户。",
        ),
    ),
    "limit_exceeded:transaction": (
        (
            "{amount} is over your single-transaction limit of {limit}.",
            "{amount} 超过了单笔交易限额 {limit}。",
        ),
        (
            "Split it into smaller payments, or ask us about your limits.",
            "请分成几笔较小的金额，或咨询客服调整限额。",
        ),
    ),
    "limit_exceeded:daily": (
        (
            "With {used} already sent today, {amount} would be over your daily limit of {limit}.",
            "您今天已转出 {used}，再转出 {amount} 将超过每日限额 {limit}。",
        ),
        ("Try again tomorrow, or ask us about your limits.", "请明天再试，或咨询客服调整限额。"),
    ),
    "card_declined": (
        ("Your card issuer declined the charge of {amount}.", "发卡行拒绝了这笔 {amount} 的扣款。"),
        (
            "Nothing was charged. Use another card, or ask your bank why it declined.",
            "没有扣款。请换一张卡，或向发卡行询问拒绝原因。",
        ),
    ),
    "insufficient_funds_on_card": (
        ("The card did not have {amount} available.", "该银行卡可用额度不足 {amount}。"),
        (
            "Nothing was charged. Use another card or a smaller amount.",
            "没有扣款。请换一张卡或减少金额。",
        ),
    ),
    "gateway_timeout:uncharged": (
        (
            "The card network never answered, and it has no record of the charge: no money moved.",
            "银行卡网络始终没有响应，也没有这笔扣款记录：资金没有变动。",
        ),
        ("You can safely try again.", "您可以放心重试。"),
    ),
    "invalid_recipient": (
        (
            "No walletdesk customer is registered as {recipient}.",
            "没有以 {recipient} 注册的用户。",
        ),
        (
            "Check the phone number or email with the person you are paying. No money moved.",
            "请向收款人核对手机号或邮箱。资金没有变动。",
        ),
    ),
    "invalid_recipient:own": (
        (
            "{recipient} is your own number or email: you cannot send money to yourself.",
            "{recipient} 是您自己的手机号或邮箱，不能给自己转账。",
        ),
        (
            "Check the phone number or email of the person you meant to pay. No money moved.",
            "请核对收款人的手机号或邮箱。资金没有变动。",
        ),
    ),
    "currency_mismatch": (
        (
            "The merchant does not accept this currency (it takes {accepted}).",
            "该商户不接受此币种（仅接受 {accepted}）。",
        ),
        ("Pay in a currency the merchant accepts.", "请使用商户接受的币种支付。"),
    ),
    "bank_rejected": (
        (
            "The bank returned your withdrawal of {amount}; the money is back in your wallet.",
            "银行退回了您 {amount} 的提现，资金已返还到您的钱包。",
        ),
        (
            "Check the bank account details and try again.",
            "请核对银行账户信息后重试。",
        ),
    ),
}
