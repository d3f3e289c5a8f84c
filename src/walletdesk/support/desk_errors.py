"""Error codes of the agent desk: verification, guarded actions and supervisor approvals."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "contact_verification_insufficient",
    403,
    en="Verify the caller first: this needs level '{required}' (now '{current}'). No account "
    "data is shown before that.",
    zh="请先核实来电者身份：此操作需要“{required}”级别（当前为“{current}”）。核实前不显示任何账户信息。",
)
define(
    "contact_not_yours",
    403,
    en="Another agent is handling this contact.",
    zh="该联络正由其他客服处理。",
)
define(
    "contact_customer_required",
    409,
    en="Find the customer first: by the calling number, or the phone or email they give.",
    zh="请先确定客户：通过来电号码，或客户提供的手机号或邮箱查找。",
)
define(
    "action_conflicts_in_contact",
    409,
    en="'{action}' cannot be done in the same contact as '{earlier}': a password reset and a "
    "phone or email change never go together. The customer can call again for the other one.",
    zh="“{action}”不能与“{earlier}”在同一次联络中办理：密码重置与更换手机号或邮箱不能同时进行。"
    "客户可另行来电办理。",
)
define(
    "knowledge_mismatch",
    422,
    en="That amount matches none of the customer's completed transactions of the last "
    "{days} days. {remaining} tries left in this contact.",
    zh="该金额与客户近 {days} 天内已完成的交易均不符。本次联络还可尝试 {remaining} 次。",
)
define(
    "knowledge_check_closed",
    403,
    en="Too many wrong answers in this contact: verify with a code sent to the registered "
    "phone or email instead.",
    zh="本次联络中回答错误次数过多：请改为向登记的手机或邮箱发送验证码进行验证。",
)
define(
    "channel_not_registered",
    409,
    en="The customer has no verified {channel} on file; use the other channel.",
    zh="该客户没有已验证的{channel}，请改用另一种方式。",
)
define(
    "account_not_locked",
    409,
    en="The account is neither locked nor frozen: there is nothing to unlock.",
    zh="该账户既未锁定也未冻结，无需解锁。",
)
define(
    "approval_not_found",
    404,
    en="There is no approval request {approval_id}.",
    zh="没有编号为 {approval_id} 的审批申请。",
)
define(
    "approval_not_pending",
    409,
    en="This request was already decided ({status}).",
    zh="该申请已处理（状态：{status}）。",
)
define(
    "approval_expired",
    409,
    en="This request waited more than {hours} hours and expired; the agent can ask again.",
    zh="该申请等待超过 {hours} 小时已过期，客服可重新申请。",
)
define(
    "approval_self",
    403,
    en="Dual control: a supervisor other than the one who asked must decide.",
    zh="双人复核：须由申请人以外的主管审批。",
)
define(
    "approval_supervisor_only",
    403,
    en="Only a supervisor can approve or reject requests.",
    zh="只有主管可以批准或驳回申请。",
)
define(
    "approval_customer_changed",
    409,
    en="The contact was moved to another customer after this request; it no longer stands.",
    zh="提交申请后该联络已改为其他客户，此申请不再有效。",
)
