"""What the IVR can do and ask: the actions and conditions a call flow names, bound to the
domain services. Nothing here decides anything the wallet, identity, support or disputes code
already decides; it asks them and puts the answer into words for the caller.

An action gets the call's `Context`, the digits its `input` names (if any) and its `params`, and
returns a result: "success", "failure", or one a flow may route on its own (`wrong`, `locked`,
`expired`, `none`, `not_found`, `not_disputable`). What it found goes into `context.values`, the
placeholders of the prompts that follow.

Verification: the calling number matching the registered phone is the weak `caller_id` level;
keying the payment PIN or a code sent to the registered phone proves possession of a secret or
of the phone, the `strong` level, which self-service asks for. Wrong PINs lock phone
self-service (Settings.rate_limits "hotline.pin", plus `PIN_TRIES` within one call), never the
account: a caller is refused before the PIN check that would trip the payment-PIN lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.disputes import service as disputes
from walletdesk.hotline import calls, queue
from walletdesk.hotline.estimate import announcement_minutes
from walletdesk.hotline.models import Call
from walletdesk.identity import codes
from walletdesk.identity import service as identity
from walletdesk.identity.models import Credential
from walletdesk.kit import clock, ratelimit
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.i18n import choose
from walletdesk.kit.money import Money
from walletdesk.notify.service import notify
from walletdesk.support import service as hours
from walletdesk.support.cases import find_case, links_of
from walletdesk.support.hours import WEEKDAYS, WeeklySchedule, zone_of
from walletdesk.support.models import CaseStatus, VerificationLevel
from walletdesk.support.verification import registered_destination
from walletdesk.wallet.explain import KIND_NAMES, explain
from walletdesk.wallet.models import Customer, TxnStatus
from walletdesk.wallet.service.customers import balances, find_by_contact
from walletdesk.wallet.service.history import HistoryFilter, direction, list_transactions

SUCCESS, FAILURE = "success", "failure"
ACTOR = "hotline"
HOURS = "phone"  # the service hours the hotline keeps
PIN_TRIES = 3  # wrong PINs in one call before self-service locks
CODE_TRIES = 3  # wrong codes in one call before self-service locks
TRANSACTIONS_READ = 3
OTP_PURPOSE = "hotline"


@dataclass
class Context:
    session: Session
    call: Call
    values: dict[str, Any] = field(default_factory=dict)  # the prompts' placeholders
    # Held for the whole webhook: the session keeps a loaded row only while someone refers to
    # it, and without this each action asking for the customer would read the row again.
    _customer: Customer | None = field(default=None, init=False, repr=False)

    @property
    def language(self) -> str:
        return self.call.language or get_settings().default_language

    @property
    def customer(self) -> Customer | None:
        cid = self.call.customer_id
        if cid is None:
            return None
        if self._customer is None or self._customer.id != cid:
            with self.reading():
                self._customer = self.session.get(Customer, cid)
        return self._customer

    def reading(self) -> AbstractContextManager[Session]:
        """For work that needs nothing else this webhook changed written first (the caller's
        rows, the hours): the call's row, changed on every step, is then written once when the
        webhook commits rather than before each query (SQLAlchemy's autoflush)."""
        return self.session.no_autoflush

    def written(self) -> Call:
        """The call, its row and its contact's written first if this is the call's first
        webhook (calls.start leaves them to the end of it): for work that needs their ids."""
        if self.call.id is None:
            self.session.flush()
        return self.call

    def words(self, en: str, zh: str) -> str:
        return choose(self.language, en=en, zh=zh)

    def count(self, name: str) -> int:
        """One more of `name` on this call (misses); the new count."""
        memory = dict(self.call.memory or {})
        memory[name] = int(memory.get(name, 0)) + 1
        self.call.memory = memory
        return memory[name]


Action = Callable[[Context, str | None, Mapping[str, Any]], str]
Condition = Callable[[Context], bool]


# --- who is calling ------------------------------------------------------------------------------


def identify_caller(ctx: Context, _: str | None, __: Mapping[str, Any]) -> str:
    """The customer whose registered phone is calling (E.164); their language, unless chosen."""
    with ctx.reading():
        customer = find_by_contact(ctx.session, ctx.call.from_number)
    if customer is None or "@" in ctx.call.from_number:
        return FAILURE
    ctx.call.customer_id = customer.id
    ctx.call.language = ctx.call.language or customer.language
    calls.note_verification(ctx.call, VerificationLevel.CALLER_ID, "caller_id")
    return SUCCESS


def verify_pin(ctx: Context, pin: str | None, _: Mapping[str, Any]) -> str:
    with ctx.reading():
        return _verify_pin(ctx, pin)


def _verify_pin(ctx: Context, pin: str | None) -> str:
    customer = _required(ctx)
    credential = ctx.session.get(Credential, customer.id)
    try:
        ratelimit.hit(ctx.session, "hotline.pin", f"customer:{customer.id}")
    except DomainError:
        return _lock_self_service(ctx)
    # One more miss would lock the customer's payments: refuse before checking instead.
    if credential is not None and credential.pin_failures >= identity.PIN_MAX_FAILURES - 1:
        return _lock_self_service(ctx)
    error = identity.check_payment_pin(ctx.session, customer.id, pin or "")
    if error is None:
        calls.note_verification(ctx.call, VerificationLevel.STRONG, "payment_pin")
        return SUCCESS
    if error.code == "pin_reset_required":  # no PIN can match it now: not the caller's miss
        return FAILURE
    calls.note_verification(ctx.call, VerificationLevel.STRONG, "payment_pin", passed=False)
    if error.code == "pin_locked" or ctx.count("pin_misses") >= PIN_TRIES:
        return _lock_self_service(ctx)
    return "wrong"


def send_otp(ctx: Context, _: str | None, __: Mapping[str, Any]) -> str:
    """A code to the registered, proven phone: never to a number given on the call."""
    customer = _required(ctx)
    try:
        ratelimit.hit(ctx.session, "otp.send", f"customer:{customer.id}")
    except DomainError:
        return _lock_self_service(ctx)
    try:
        phone = registered_destination(ctx.session, customer, "sms")
    except DomainError:
        return FAILURE
    codes.send(ctx.session, customer.id, _otp_purpose(ctx), "sms", phone)
    ctx.call.memory = {**(ctx.call.memory or {}), "code_sent_at": clock.now().isoformat()}
    return SUCCESS


def verify_otp(ctx: Context, code: str | None, _: Mapping[str, Any]) -> str:
    customer = _required(ctx)
    if codes.check(ctx.session, customer.id, _otp_purpose(ctx), code or ""):
        calls.note_verification(ctx.call, VerificationLevel.STRONG, "code_sms")
        return SUCCESS
    calls.note_verification(ctx.call, VerificationLevel.STRONG, "code", passed=False)
    sent = (ctx.call.memory or {}).get("code_sent_at")
    ttl = timedelta(minutes=get_settings().otp_ttl_minutes)
    if sent and as_utc(datetime.fromisoformat(sent)) + ttl <= clock.now():
        return "expired"
    return _lock_self_service(ctx) if ctx.count("code_misses") >= CODE_TRIES else "wrong"


def _otp_purpose(ctx: Context) -> str:
    # Bound to the call: a code sent during one call proves nothing in another.
    return f"{OTP_PURPOSE}:{ctx.written().id}"


def _lock_self_service(ctx: Context) -> str:
    """Phone self-service stays locked while "hotline.pin" refuses; the customer hears of it once
    per call, by a message to the registered channels."""
    memory = dict(ctx.call.memory or {})
    if not memory.get("locked_notified"):
        assert ctx.call.customer_id is not None
        notify(ctx.session, ctx.call.customer_id, "hotline_self_service_locked")
        memory["locked_notified"] = True
        ctx.call.memory = memory
    calls.note_action(ctx.call, "self_service_locked")
    return "locked"


# --- self-service --------------------------------------------------------------------------------


def balance(ctx: Context, _: str | None, __: Mapping[str, Any]) -> str:
    with ctx.reading():
        wallets = balances(ctx.session, _required(ctx).id)
    if not wallets:
        return FAILURE
    ctx.values["balance"] = ctx.words("; ", "；").join(
        _money(ctx, w.available, w.currency) for w in wallets
    )
    calls.note_action(ctx.call, "balance")
    return SUCCESS


def last_transactions(ctx: Context, _: str | None, __: Mapping[str, Any]) -> str:
    customer = _required(ctx)
    page = list_transactions(ctx.session, customer.id, HistoryFilter(), limit=TRANSACTIONS_READ)
    calls.note_action(ctx.call, "last_transactions")
    if not page.items:
        return "none"
    lines = []
    for txn in page.items:
        en_kind, zh_kind = KIND_NAMES.get(txn.kind, (txn.kind, txn.kind))
        local = as_utc(txn.created_at).astimezone(zone_of(get_settings().timezone))
        incoming = direction(txn, customer.id) == "in"
        amount = _money(ctx, txn.amount, txn.currency)
        lines.append(
            ctx.words(
                f"on {local:%B} {local.day}, {en_kind} {'in' if incoming else 'out'} {amount}, "
                f"{_TXN_STATUS[txn.status][0]}",
                f"{local.month}月{local.day}日，{zh_kind}{'收入' if incoming else '支出'} {amount}，"
                f"{_TXN_STATUS[txn.status][1]}",
            )
        )
    ctx.values["transactions"] = ctx.words("; ", "；").join(lines)
    return SUCCESS


_TXN_STATUS = {
    TxnStatus.SUCCEEDED: ("completed", "已完成"),
    TxnStatus.PENDING: ("still pending", "处理中"),
    TxnStatus.FAILED: ("failed", "未成功"),
}


def explain_last_failure(ctx: Context, _: str | None, __: Mapping[str, Any]) -> str:
    """The same explanation the app and an agent give (wallet.explain)."""
    customer = _required(ctx)
    failed = list_transactions(
        ctx.session, customer.id, HistoryFilter(status=TxnStatus.FAILED), limit=1
    ).items
    calls.note_action(ctx.call, "explain_last_failure")
    if not failed or failed[0].customer_id != customer.id:
        return "none"
    told = explain(failed[0], ctx.language)
    ctx.values["explanation"] = ctx.words(" ", "").join((told.summary, told.next_step))
    return SUCCESS


def send_reset_link(ctx: Context, _: str | None, __: Mapping[str, Any]) -> str:
    """A reset link to the proven email, else a code to the proven phone: never elsewhere."""
    customer = _required(ctx)
    for channel in ("email", "sms"):
        try:
            login = registered_destination(ctx.session, customer, channel)
        except DomainError:
            continue
        try:  # refused within days of a phone or email change (the desk's cooldown)
            identity.forgot_password(ctx.session, login, channel, sent_by="hotline")
        except DomainError:
            return FAILURE
        calls.note_action(ctx.call, "send_reset_link")
        return SUCCESS
    return FAILURE


def freeze_account(ctx: Context, _: str | None, params: Mapping[str, Any]) -> str:
    customer = _required(ctx)
    identity.freeze(ctx.session, customer.id, actor=ACTOR, reason=str(params.get("reason", "")))
    calls.note_action(ctx.call, "freeze_account")
    return SUCCESS


def case_status(ctx: Context, number: str | None, _: Mapping[str, Any]) -> str:
    case = _own_case(ctx, number)
    if case is None:
        return "not_found"
    en, zh = _CASE_STATUS.get(case.status, (case.status, case.status))
    ctx.values["status"] = ctx.words(en, zh)
    calls.note_case(ctx.call, case.number)
    calls.note_action(ctx.call, "case_status")
    return SUCCESS


_CASE_STATUS = {
    CaseStatus.NEW: ("received, waiting for us to start on it", "已受理，等待处理"),
    CaseStatus.OPEN: ("being worked on", "正在处理中"),
    CaseStatus.REOPENED: ("reopened and being worked on", "已重新打开，正在处理中"),
    CaseStatus.WAITING_ON_CUSTOMER: ("waiting for your reply", "等待您的回复"),
    CaseStatus.WAITING_ON_MERCHANT: ("waiting for the merchant", "等待商户回复"),
    CaseStatus.RESOLVED: ("resolved", "已解决"),
    CaseStatus.CLOSED: ("closed", "已关闭"),
}


def dispute_status(ctx: Context, number: str | None, _: Mapping[str, Any]) -> str:
    """The dispute on the case with this number (a dispute is known by its case's number)."""
    case = _own_case(ctx, number)
    refs = (
        [link.ref for link in links_of(ctx.session, case) if link.kind == "dispute"] if case else []
    )
    if case is None or not refs:
        return "not_found"
    view = disputes.dispute_status(ctx.session, case.customer_id or 0, int(refs[0]))
    en, zh = _DISPUTE_STATUS.get(view.dispute.status, (view.dispute.status,) * 2)
    ctx.values["status"] = ctx.words(en, zh)
    calls.note_case(ctx.call, case.number)
    calls.note_action(ctx.call, "dispute_status")
    return SUCCESS


_DISPUTE_STATUS = {
    "awaiting_merchant": ("waiting for the merchant's answer", "等待商户答复"),
    "under_review": ("being reviewed by our team", "正在由我们审核"),
    "won": ("decided in your favour; the money is refunded", "已判定您胜诉，款项已退回"),
    "lost": ("decided in the merchant's favour", "已判定商户胜诉"),
    "withdrawn": ("withdrawn", "已撤回"),
}


def _own_case(ctx: Context, number: str | None) -> Any:
    customer = _required(ctx)
    try:
        case = find_case(ctx.session, number or "")
    except DomainError:
        return None
    return case if case.customer_id == customer.id else None


def file_dispute(ctx: Context, number: str | None, params: Mapping[str, Any]) -> str:
    customer = _required(ctx)
    try:
        dispute = disputes.file_dispute(
            ctx.session,
            customer.id,
            number or "",
            str(params.get("reason", "")),
            ctx.words("Filed by phone.", "通过电话提出。"),
            actor=f"customer:{customer.id}",
            channel="phone",
            contact_id=ctx.written().contact_id,
        )
    except DomainError as error:
        if error.code in ("transaction_not_found", "transaction_number_invalid"):
            return "not_found"
        return "not_disputable"
    view = disputes.dispute_status(ctx.session, customer.id, dispute.id)
    ctx.values["case_number"] = view.case_number
    calls.note_case(ctx.call, view.case_number)
    calls.note_action(ctx.call, "file_dispute")
    return SUCCESS


def service_hours(ctx: Context, _: str | None, __: Mapping[str, Any]) -> str:
    """{hours} in words and, when closed, {opens_at}: when people answer again."""
    schedule = hours.get_schedule(ctx.session, HOURS)
    ctx.values["hours"] = _hours_text(ctx, schedule)
    status = hours.is_open(ctx.session, HOURS)
    if not status.open:
        if status.opens_at is None:
            return FAILURE
        ctx.values["opens_at"] = _moment_text(ctx, status.opens_at, schedule.zone)
        ctx.call.memory = {**(ctx.call.memory or {}), "opens_at": status.opens_at.isoformat()}
    return SUCCESS


_DAYS = {
    "mon": ("Monday", "周一"),
    "tue": ("Tuesday", "周二"),
    "wed": ("Wednesday", "周三"),
    "thu": ("Thursday", "周四"),
    "fri": ("Friday", "周五"),
    "sat": ("Saturday", "周六"),
    "sun": ("Sunday", "周日"),
}


def _hours_text(ctx: Context, schedule: WeeklySchedule) -> str:
    if schedule.always_open:
        return ctx.words("around the clock", "全天 24 小时")
    day_texts = [", ".join(str(i) for i in day) for day in schedule.week]
    closed = ctx.words("closed", "休息")
    if len(set(day_texts)) == 1:
        return (
            ctx.words(f"every day, {day_texts[0]}", f"每天 {day_texts[0]}")
            if day_texts[0]
            else closed
        )
    return ctx.words("; ", "；").join(
        f"{ctx.words(*_DAYS[name])} {text or closed}"
        for name, text in zip(WEEKDAYS, day_texts, strict=True)
    )


def _moment_text(ctx: Context, moment: datetime, zone: str) -> str:
    local = as_utc(moment).astimezone(zone_of(zone))
    today = clock.now().astimezone(zone_of(zone)).date()
    day = (local.date() - today).days
    weekday = _DAYS[WEEKDAYS[local.weekday()]]
    if day == 0:
        return ctx.words(f"today at {local:%H:%M}", f"今天 {local:%H:%M}")
    if day == 1:
        return ctx.words(f"tomorrow at {local:%H:%M}", f"明天 {local:%H:%M}")
    return ctx.words(
        f"on {weekday[0]}, {local:%B} {local.day}, at {local:%H:%M}",
        f"{local.month}月{local.day}日（{weekday[1]}）{local:%H:%M}",
    )


# --- reaching a person ---------------------------------------------------------------------------


def request_callback(ctx: Context, _: str | None, params: Mapping[str, Any]) -> str:
    """In a queue: keep the caller's place and call them back. With `queue` (closed): book a
    callback at the next opening (the service_hours action found it)."""
    if not _callable_back(ctx.call.from_number):
        return FAILURE
    try:
        if "queue" in params:
            opens_at = (ctx.call.memory or {}).get("opens_at")
            if not opens_at:
                return FAILURE
            queue.book_callback(
                ctx.session,
                ctx.call,
                queue=str(params["queue"]),
                at=datetime.fromisoformat(opens_at),
            )
        else:
            queue.request_callback(ctx.session, ctx.call, ctx.call.from_number)
    except DomainError:
        return FAILURE
    calls.note_action(ctx.call, "callback_booked" if "queue" in params else "callback_requested")
    return SUCCESS


def _callable_back(number: str) -> bool:
    return number.startswith("+") and number[1:].isdigit() and 8 <= len(number) <= 16


# --- conditions ----------------------------------------------------------------------------------


def caller_identified(ctx: Context) -> bool:
    return ctx.call.customer_id is not None


def language_known(ctx: Context) -> bool:
    return ctx.call.language is not None


def is_open(ctx: Context) -> bool:
    with ctx.reading():
        return hours.is_open(ctx.session, HOURS).open


def verified(ctx: Context) -> bool:
    return ctx.call.verification == VerificationLevel.STRONG


def pin_set(ctx: Context) -> bool:
    cid = ctx.call.customer_id
    with ctx.reading():
        credential = ctx.session.get(Credential, cid) if cid is not None else None
    return credential is not None and credential.pin_hash is not None


def wait_known(ctx: Context) -> bool:
    """Fills {position} and {minutes}; False when the wait is only known as "more than"."""
    status = queue.wait_status(ctx.session, ctx.call)
    minutes, more_than = announcement_minutes(status.estimate)
    unit = "minute" if minutes == 1 else "minutes"
    ctx.values["position"] = status.position
    ctx.values["minutes"] = ctx.words(en=f"{minutes} {unit}", zh=f"{minutes} 分钟")
    return not more_than


def _required(ctx: Context) -> Customer:
    customer = ctx.customer
    if customer is None:  # the flow asks caller_identified first; a broken flow lands here
        raise DomainError("contact_customer_required")
    return customer


def _money(ctx: Context, minor: int, currency: str) -> str:
    return str(Money(minor, currency))


ACTIONS: Mapping[str, Action] = {
    "identify_caller": identify_caller,
    "verify_pin": verify_pin,
    "send_otp": send_otp,
    "verify_otp": verify_otp,
    "balance": balance,
    "last_transactions": last_transactions,
    "explain_last_failure": explain_last_failure,
    "send_reset_link": send_reset_link,
    "freeze_account": freeze_account,
    "case_status": case_status,
    "dispute_status": dispute_status,
    "file_dispute": file_dispute,
    "service_hours": service_hours,
    "request_callback": request_callback,
}
CONDITIONS: Mapping[str, Condition] = {
    "caller_identified": caller_identified,
    "language_known": language_known,
    "is_open": is_open,
    "verified": verified,
    "pin_set": pin_set,
    "wait_known": wait_known,
}
# Inputs these actions read are secrets: masked in the call's path, never kept in its memory.
SECRET_ACTIONS = frozenset({"verify_pin", "verify_otp"})
