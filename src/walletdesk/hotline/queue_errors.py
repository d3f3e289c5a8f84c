"""Error codes of the call queue, agent presence and the agent's side of calls."""

from __future__ import annotations

from walletdesk.kit.errors import define

define(
    "queue_unknown",
    422,
    en="There is no queue '{queue}'.",
    zh="不存在队列“{queue}”。",
)
define(
    "queue_entry_not_found",
    404,
    en="That queued call does not exist.",
    zh="该排队来电不存在。",
)
define(
    "queue_offer_gone",
    409,
    en="This call is no longer offered to you: the offer lapsed or the caller hung up.",
    zh="该来电已不再分配给您：分配已超时或来电者已挂断。",
)
define(
    "queue_call_not_yours",
    403,
    en="Another agent has this call.",
    zh="该来电正由其他客服处理。",
)
define(
    "queue_call_not_connected",
    409,
    en="This call is not connected: it has ended or not been accepted.",
    zh="该来电未接通：已结束或尚未接听。",
)
define(
    "queue_call_not_waiting",
    409,
    en="This call is not waiting in a queue.",
    zh="该来电未在队列中等待。",
)
define(
    "presence_on_call",
    409,
    en="Finish the current call first (end it, then end wrap-up).",
    zh="请先结束当前通话（挂断后结束整理）。",
)
define(
    "presence_not_in_wrap_up",
    409,
    en="You are not in wrap-up.",
    zh="您当前不在话后整理状态。",
)
define(
    "transfer_target_required",
    422,
    en="Transfer to a queue or to a supervisor: give exactly one.",
    zh="请指定转接目标：队列或主管，二选一。",
)
