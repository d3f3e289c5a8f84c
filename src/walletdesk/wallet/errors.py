"""Wallet error codes. Those a failed money movement can carry are recorded on the transaction."""

from __future__ import annotations

from walletdesk.kit.errors import define

# Reasons a money movement fails; each is stored on the failed transaction and explained.
define("insufficient_balance", 402, en="Your balance is too low.", zh="余额不足。")
define("account_frozen", 423, en="The account is frozen.", zh="账户已冻结。")
define("account_locked", 423, en="The account is locked.", zh="账户已锁定。")
define("limit_exceeded", 403, en="This is over your limit.", zh="超出交易限额。")
define("card_declined", 402, en="The card was declined.", zh="银行卡被拒绝。")
define(
    "insufficient_funds_on_card",
    402,
    en="The card has insufficient funds.",
    zh="银行卡余额不足。",
)
define(
    "gateway_timeout",
    504,
    en="The card network did not answer in time.",
    zh="银行卡网络未及时响应。",
)
define("invalid_recipient", 422, en="There is no such recipient.", zh="收款人不存在。")
define(
    "currency_mismatch",
    422,
    en="The currencies do not match.",
    zh="币种不一致。",
)
define("bank_rejected", 402, en="The bank returned the withdrawal.", zh="银行退回了提现。")

# Input and lookup errors: nothing is recorded, nothing changes.
define(
    "card_number_invalid",
    422,
    en="That card number is not valid; check the digits.",
    zh="卡号无效，请核对数字。",
)
define("card_expired", 422, en="That card has expired.", zh="该卡已过期。")
define("card_not_found", 404, en="No such card in your wallet.", zh="您的钱包中没有这张卡。")
define("merchant_not_found", 404, en="No merchant has that code.", zh="没有该编号的商户。")
define(
    "transaction_not_found",
    404,
    en="No transaction with that number is yours.",
    zh="没有找到您名下该编号的交易。",
)
define(
    "transaction_number_invalid",
    422,
    en="Transaction numbers have 12 digits; one digit looks wrong.",
    zh="交易编号为 12 位数字，其中有数字不正确。",
)
define(
    "refund_exceeds_payment",
    422,
    en="That is more than what is left to refund on this payment.",
    zh="退款金额超过该笔付款可退余额。",
)
define(
    "not_refundable",
    422,
    en="Only succeeded payments can be refunded.",
    zh="只有成功的付款可以退款。",
)
define(
    "withdrawal_not_pending",
    409,
    en="This withdrawal is already settled or returned.",
    zh="该提现已结算或已退回。",
)
define(
    "customer_exists",
    409,
    en="That phone number or email is already registered.",
    zh="该手机号或邮箱已注册。",
)
define("merchant_exists", 409, en="A merchant already has that code.", zh="该商户编号已存在。")
define("invalid_phone", 422, en="That is not a valid phone number.", zh="手机号无效。")
define("invalid_email", 422, en="That is not a valid email address.", zh="邮箱地址无效。")
define(
    "contact_required",
    422,
    en="Give a phone number or an email address.",
    zh="请提供手机号或邮箱。",
)
define(
    "exchange_rate_unavailable",
    422,
    en="We do not exchange {source} to {target}.",
    zh="暂不支持 {source} 兑换为 {target}。",
)
define("wallet_not_found", 404, en="You have no {currency} wallet.", zh="您没有 {currency} 钱包。")
