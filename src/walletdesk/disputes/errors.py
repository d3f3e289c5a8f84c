"""Dispute error codes."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "dispute_not_found",
    404,
    en="There is no dispute {dispute_id} of yours.",
    zh="没有找到您的争议 {dispute_id}。",
)
define(
    "not_disputable",
    422,
    en="Only your own completed payments to merchants can be disputed. For money sent to "
    "another person, call the hotline: we will help you report it.",
    zh="只能对您本人已成功的商户付款提出争议。转账给他人的款项请致电客服热线，我们会协助您处理。",
)
define(
    "dispute_window_closed",
    422,
    en="Payments can be disputed for {days} days; this one was made on {paid_on}.",
    zh="付款后 {days} 天内可以提出争议，该笔付款发生于 {paid_on}，已超过期限。",
)
define(
    "already_disputed",
    409,
    en="This payment is already disputed (dispute {dispute_id}); each payment can be "
    "disputed once.",
    zh="该笔付款已有争议（争议 {dispute_id}），每笔付款只能提出一次争议。",
)
define(
    "nothing_to_dispute",
    422,
    en="This payment was already refunded in full: there is nothing left to dispute.",
    zh="该笔付款已全额退款，无可争议的金额。",
)
define(
    "dispute_amount_too_large",
    422,
    en="At most {disputable} {currency} of this payment can be disputed (what was paid, "
    "less refunds).",
    zh="该笔付款最多可争议 {disputable} {currency}(付款金额减去已退款金额)。",
)
define(
    "dispute_closed",
    409,
    en="This dispute is {status}: it can no longer be changed.",
    zh="该争议状态为“{status}”，已无法更改。",
)
define(
    "dispute_action_not_allowed",
    409,
    en="A dispute that is {status} cannot be {action}.",
    zh="状态为“{status}”的争议不能执行“{action}”。",
)
define(
    "dispute_response_late",
    409,
    en="The deadline to contest this dispute passed at {respond_by}; it is now reviewed "
    "without your answer. You can still accept it.",
    zh="对该争议提出异议的截止时间 {respond_by} 已过，平台将直接审理；您仍可接受该争议。",
)
define(
    "provisional_credit_exists",
    409,
    en="This dispute already has a provisional credit.",
    zh="该争议已发放临时款项。",
)
define(
    "provisional_credit_too_large",
    422,
    en="A provisional credit can be at most the disputed amount, {disputed} {currency}.",
    zh="临时款项不能超过争议金额 {disputed} {currency}。",
)
define(
    "amount_under_dispute",
    409,
    en="{disputed} {currency} of this payment is under dispute; at most {refundable} "
    "{currency} can be refunded until the dispute is decided.",
    zh="该笔付款中有 {disputed} {currency} 正处于争议中，争议处理完毕前最多可退 "
    "{refundable} {currency}。",
)
define(
    "no_freeze_offer",
    409,
    en="Freezing the account is offered for unrecognised charges only; to freeze it anyway, "
    "use account freeze.",
    zh="仅未授权交易的争议提供冻结账户服务；如仍需冻结，请使用“冻结账户”功能。",
)
define(
    "evidence_too_large",
    413,
    en="An evidence file can be at most {max_kb} KB.",
    zh="证据文件不能超过 {max_kb} KB。",
)
define(
    "evidence_type_not_allowed",
    415,
    en="Evidence can be a JPEG or PNG picture, a PDF or plain UTF-8 text.",
    zh="证据文件只能是 JPEG 或 PNG 图片、PDF 文件或 UTF-8 纯文本。",
)
define(
    "evidence_empty",
    422,
    en="The evidence file is empty.",
    zh="证据文件为空。",
)
define(
    "too_much_evidence",
    409,
    en="A dispute can hold at most {max_files} evidence files.",
    zh="每个争议最多可上传 {max_files} 个证据文件。",
)
define(
    "evidence_not_found",
    404,
    en="There is no evidence file {evidence_id} on this dispute.",
    zh="该争议下没有编号为 {evidence_id} 的证据文件。",
)
