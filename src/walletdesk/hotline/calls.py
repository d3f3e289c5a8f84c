"""The record of each call: a phone contact on the customer's case, from the carrier's first
webhook to its status callback.

A call opens a support contact (channel "phone", origin the calling number). The verification
it reaches is kept on the contact, step by step (support.verification's rule: the level only
rises): the calling number is `caller_id`; a payment PIN or a code sent to the registered phone
is `strong`. When the carrier reports the call over, the contact ends on a case, with a summary
in the caller's language that the customer receives (support.cases.end_contact): the case the
call was about (a dispute filed, a voicemail, a case number keyed in), else a new one whose type
follows what the call did, resolved at once when self-service was all the caller needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.hotline import voice_errors as _errors  # noqa: F401  (registers the codes)
from walletdesk.hotline.models import Call, CallStatus
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.i18n import choose
from walletdesk.support.cases import (
    add_event,
    change_status,
    end_contact,
    find_case,
    open_case,
)
from walletdesk.support.cases import open_contact as open_support_contact
from walletdesk.support.models import CaseStatus, CaseType, Contact, VerificationLevel
from walletdesk.support.verification import step_for as verification_step

# The carrier's final CallStatus -> the call's status.
FINAL_STATUSES = {
    "completed": CallStatus.COMPLETED,
    "no-answer": CallStatus.NO_ANSWER,
    "busy": CallStatus.BUSY,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.ABANDONED,
}
ANSWERED = ("in-progress", "answered")  # a callback's dial picked up
UNANSWERED = ("no-answer", "busy", "failed")  # a callback's dial that reached nobody
MASK = "******"
# Actions after which the caller hangs up on purpose: we call them back (now, or at opening time).
CALLBACK_ACTIONS = ("callback_requested", "callback_booked")


def start(session: Session, *, sid: str, from_number: str, to_number: str, state: str) -> Call:
    """The call with this CallSid: new, with its contact, or the one a retried webhook made.

    A new call and its contact are written when the session next flushes: the first webhook
    fills them in (the caller identified, the flow's first steps), and reads that need nothing
    of them leave them unwritten until the commit, which then writes each row once."""
    existing = find(session, sid, missing_ok=True)
    if existing is not None:
        return existing
    contact = open_support_contact(session, channel="phone", origin=from_number, flush=False)
    call = Call(
        sid=sid,
        from_number=from_number,
        to_number=to_number,
        direction="inbound",
        contact=contact,
        state=state,
        status=CallStatus.IN_FLOW,
        verification=VerificationLevel.NONE,  # set now, not at the flush: the flow reads them
        memory={},
        path=[],
        actions=[],
        started_at=clock.now(),
    )
    session.add(call)
    return call


# Built once: every webhook starts with it.
_LOCKED_BY_SID = select(Call).where(Call.sid == bindparam("sid")).with_for_update()


def find(session: Session, sid: str, *, missing_ok: bool = False) -> Call | None:
    """The call, locked: its webhooks take turns, whichever server process answers them."""
    call = session.execute(_LOCKED_BY_SID, {"sid": sid}).scalar_one_or_none()
    if call is None and not missing_ok:
        raise DomainError("call_not_found", sid=sid)
    return call


def note_verification(call: Call, level: str, method: str, *, passed: bool = True) -> None:
    """A verification step of the call's caller on its contact; the call keeps the level
    reached. It raises the contact's level only while the contact is about that caller."""
    contact = _contact(call)
    if passed and contact.customer_id is None:
        contact.customer_id = call.customer_id
    verification_step(contact, call.customer_id, level, method, by=None, passed=passed)
    call.verification = contact.verification_level


def note_action(call: Call, action: str) -> None:
    call.actions = [*call.actions, action]


def note_case(call: Call, case_number: str) -> None:
    """The case this call is about: its contact ends there."""
    call.memory = {**(call.memory or {}), "case_number": case_number}


def note_step(
    call: Call, state: str, digits: str | None, *, secret: bool, result: str = ""
) -> None:
    entry: dict[str, Any] = {"at": clock.now().isoformat(), "state": state}
    if digits is not None:
        entry["digits"] = MASK if secret and digits else digits
    if result:
        entry["result"] = result
    call.path = [*call.path, entry]


def on_status(session: Session, call: Call, carrier_status: str) -> Call:
    """A status callback. On a callback's dial, an answer puts the customer through to the
    agent and no answer sends the entry back to wait for its next attempt (queue); any final
    status ends the call's record."""
    from walletdesk.hotline import queue  # the queue module uses calls; it sits above

    entry = queue.callback_entry_of(session, call) if call.direction == queue.CALLBACK_LEG else None
    if entry is not None and call.ended_at is None:  # a repeated status callback does nothing
        if carrier_status in ANSWERED and call.status != CallStatus.CONNECTED:
            call.status, call.agent_id = CallStatus.CONNECTED, entry.agent_id
            queue.callback_answered(session, entry)
        elif carrier_status in UNANSWERED:
            queue.callback_failed_attempt(session, entry)
    if carrier_status in FINAL_STATUSES:
        finish(session, call, carrier_status)
    return call


def finish(session: Session, call: Call, carrier_status: str) -> Call:
    """The carrier says the call is over: record how, leave any queue, end the contact."""
    if call.ended_at is not None:
        return call  # a repeated status callback
    from walletdesk.hotline import queue  # the queue module uses calls; it sits above

    waiting = call.status == CallStatus.QUEUED and not _awaits_callback(call)
    call.status = (
        CallStatus.ABANDONED if waiting else FINAL_STATUSES.get(carrier_status, CallStatus.FAILED)
    )
    call.ended_at = clock.now()
    call.outcome = call.outcome or _outcome(call)
    if call.direction != queue.CALLBACK_LEG:  # a callback's dial shares its call's contact
        _end_contact(session, call)
    if waiting:
        queue.abandon(session, call)
    return call


def voicemail(session: Session, call: Call, recording_url: str) -> str:
    """A message left out of hours opens a case; its number, for the caller to hear."""
    language = call.language or get_settings().default_language
    case = open_case(
        session,
        customer_id=call.customer_id,
        type=CaseType.OTHER,
        subject=choose(language, en="Voicemail", zh="语音留言"),
        channel="phone",
        actor="hotline",
    )
    add_event(
        session,
        case,
        "voicemail",
        actor="hotline",
        body=recording_url,
        data={"recording_url": recording_url, "from": call.from_number},
        customer_visible=False,
    )
    note_case(call, case.number)
    note_action(call, "voicemail")
    return case.number


def _outcome(call: Call) -> str:
    if call.status == CallStatus.ABANDONED:
        return "abandoned"
    if call.agent_id is not None:
        return "agent"
    if _awaits_callback(call):
        return "callback"
    return "self_service" if call.actions else "no_action"


def _awaits_callback(call: Call) -> bool:
    return any(action in CALLBACK_ACTIONS for action in call.actions)


def _end_contact(session: Session, call: Call) -> None:
    contact = _contact(call)
    if contact.ended_at is not None:
        return
    language = call.language or get_settings().default_language
    summary, next_steps = summarize(call, language)
    if call.customer_id is not None and contact.customer_id is None:
        contact.customer_id = call.customer_id
    about_case = (call.memory or {}).get("case_number")
    # One moment for a case opened here, its status changes and the contact's end: the
    # timeline keeps their order (by id), and a case only opened is written once.
    ended = clock.now()
    # Held until the contact ends: the session keeps the case only while someone refers to it,
    # and end_contact would otherwise read it again.
    case = None
    if contact.case_id is None and (contact.customer_id is not None or about_case):
        case = _case_for(session, call, summary, ended)
        contact.case_id = case.id
    end_contact(session, contact, summary=summary, next_steps=next_steps, actor="hotline", at=ended)
    del case


def _case_for(session: Session, call: Call, summary: str, at: datetime) -> Any:
    number = (call.memory or {}).get("case_number")
    if number:
        return find_case(session, number)
    case = open_case(
        session,
        customer_id=call.customer_id,
        type=_case_type(call.actions),
        subject=summary[:200],
        channel="phone",
        actor="hotline",
        at=at,
    )
    if call.outcome == "self_service":  # nothing left to do: the caller served themselves
        change_status(session, case, CaseStatus.OPEN, "hotline", at=at)
        change_status(session, case, CaseStatus.RESOLVED, "hotline", at=at)
    return case


def _case_type(actions: list[str]) -> str:
    for action, case_type in _CASE_TYPES:
        if action in actions:
            return case_type
    return CaseType.OTHER


# The first of these a call did says what it was about.
_CASE_TYPES = (
    ("freeze_account", CaseType.ACCOUNT_LOCKED),
    ("self_service_locked", CaseType.ACCOUNT_LOCKED),
    ("explain_last_failure", CaseType.PAYMENT_FAILED),
    ("send_reset_link", CaseType.LOGIN),
)

_SAID = {
    "balance": ("your balance was read out", "为您播报了账户余额"),
    "last_transactions": ("your latest transactions were read out", "为您播报了最近的交易"),
    "explain_last_failure": (
        "we explained why your last payment failed",
        "为您说明了最近一笔付款失败的原因",
    ),
    "send_reset_link": (
        "a password reset was sent to your registered phone or email",
        "已向您登记的手机或邮箱发送重置密码信息",
    ),
    "freeze_account": ("your account was frozen at your request", "已按您的要求冻结账户"),
    "case_status": ("we read out the status of your case", "为您播报了服务单进度"),
    "dispute_status": ("we read out the status of your dispute", "为您播报了争议进度"),
    "file_dispute": ("your dispute was filed", "已为您提交争议"),
    "self_service_locked": (
        "phone self-service was locked after wrong PINs or codes",
        "因多次输入错误，电话自助服务已暂时锁定",
    ),
    "callback_requested": (
        "you asked us to call you back, keeping your place in line",
        "您选择了保留排队位置并等待回拨",
    ),
    "callback_booked": ("a callback was booked for when we open", "已预约开门后回拨"),
    "voicemail": ("you left a message", "您留下了语音留言"),
}

_NEXT = {
    "callback": (
        "We will call you back on the number you called from.",
        "我们会回拨您来电的号码。",
    ),
    "agent": ("Our agent will follow up on anything left open.", "客服会跟进未完成的事项。"),
    "abandoned": (
        "You hung up before an agent answered; call again any time.",
        "您在接通人工服务前挂断了，欢迎随时再次来电。",
    ),
}


def summarize(call: Call, language: str) -> tuple[str, str]:
    """What the call did and what happens next, in the caller's language."""
    done = [choose(language, en=_SAID[a][0], zh=_SAID[a][1]) for a in call.actions if a in _SAID]
    if call.agent_id is not None:
        done.append(choose(language, en="you spoke with an agent", zh="您与客服进行了通话"))
    if done:
        head = choose(language, en="Phone call: ", zh="电话服务：")
        summary = head + choose(language, en="; ", zh="；").join(dict.fromkeys(done))
    else:
        summary = choose(language, en="Phone call to the hotline.", zh="致电客服热线。")
    en, zh = _NEXT.get(_outcome(call), ("Nothing more is needed.", "无需其他操作。"))
    return summary, choose(language, en=en, zh=zh)


def _contact(call: Call) -> Contact:
    assert call.contact is not None  # every call opens its contact in `start`
    return call.contact
