"""Error codes of the case desk: status changes, owners, complaints, ratings and reply macros."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "case_transition_invalid",
    409,
    en="A case cannot go from {from_status} to {to_status}.",
    zh="工单状态不能从 {from_status} 变为 {to_status}。",
)
define(
    "case_priority_invalid",
    422,
    en="'{priority}' is not a priority: use low, normal, high or urgent.",
    zh="“{priority}”不是有效的优先级，请使用 low、normal、high 或 urgent。",
)
define(
    "case_assignee_invalid",
    422,
    en="Staff member {staff_id} cannot own this case: cases go to active agents and "
    "supervisors, complaints to supervisors only.",
    zh="员工 {staff_id} 不能负责此工单：工单只能分给在职的客服或主管，投诉只能分给主管。",
)
define(
    "complaint_not_allowed",
    409,
    en="Case {number} can be escalated to a complaint once it is resolved, or after it has "
    "been open for {days} days.",
    zh="工单 {number} 需在处理完成后，或受理满 {days} 天仍未解决时，才能升级为投诉。",
)
define(
    "complaint_exists",
    409,
    en="Case {number} is already escalated: your complaint is case {complaint_number}.",
    zh="工单 {number} 已升级为投诉，投诉工单号 {complaint_number}。",
)
define(
    "csat_not_ready",
    409,
    en="Case {number} can be rated once it is resolved.",
    zh="工单 {number} 处理完成后才能评价。",
)
define(
    "csat_already_rated",
    409,
    en="You have already rated case {number}. Thank you!",
    zh="您已评价过工单 {number}，感谢您的反馈！",
)
define(
    "csat_score_invalid",
    422,
    en="A rating is a whole number from 1 to 5.",
    zh="评分须为 1 到 5 的整数。",
)
define(
    "csat_group_invalid",
    422,
    en="Group ratings by agent, queue or case_type.",
    zh="评价统计只能按 agent、queue 或 case_type 分组。",
)
define(
    "macro_not_found",
    404,
    en="There is no reply template '{slug}'.",
    zh="没有名为“{slug}”的回复模板。",
)
define(
    "macro_values_missing",
    422,
    en="The reply template '{slug}' needs: {names}.",
    zh="回复模板“{slug}”还需要填写：{names}。",
)
define(
    "reply_text_required",
    422,
    en="Write a reply or choose a reply template (one of the two).",
    zh="请填写回复内容或选择一个回复模板（二选一）。",
)
define(
    "case_closed",
    409,
    en="Case {number} is closed; a new message about it opens a new case.",
    zh="工单 {number} 已关闭，如有新问题将为您新建工单。",
)
