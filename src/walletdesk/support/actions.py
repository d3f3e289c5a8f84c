"""What an agent may do for a caller, each guarded on the server by `authorize`.

Every action needs a minimum verification level on the contact (the table below); unlocking
an account and changing its phone or email also need a supervisor's approval (dual control),
and so does a goodwill credit above the agent's limits. A password reset and a contact change
never happen in the same contact: together they are how a stolen phone number becomes a stolen
account. Resets and codes only ever go to the customer's registered phone or email; no
function here takes a destination.

Each action leaves an AgentAction row, an audit event (who, which contact, at what level,
the account status before and after, the approval), a line on the case timeline when the
contact has a case, and, except for looking, a message to the customer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletdesk.audit.models import AuditEvent
from walletdesk.audit.service import record
from walletdesk.config import get_settings
from walletdesk.identity import service as identity
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.kit.i18n import choose
from walletdesk.kit.money import Money, check_currency
from walletdesk.ledger import service as ledger
from walletdesk.ledger.models import AccountKind
from walletdesk.notify.models import OutboxMessage
from walletdesk.notify.service import notify, open_params
from walletdesk.notify.templates import language_of
from walletdesk.risk import service as risk
from walletdesk.risk.models import AlertStatus, RiskAlert, RiskDecision
from walletdesk.staff.models import StaffUser
from walletdesk.support import approvals, verification
from walletdesk.support.case_rules import FINISHED
from walletdesk.support.cases import add_event
from walletdesk.support.models import (
    AgentAction,
    Approval,
    ApprovalStatus,
    Case,
    CaseType,
    Contact,
    VerificationLevel,
)
from walletdesk.support.verification import (
    at_least,
    customer_of,
    desk_level,
    own_contact,
    registered_destination,
)
from walletdesk.wallet.explain import Explanation, explain
from walletdesk.wallet.models import (
    Customer,
    CustomerStatus,
    TxnKind,
    TxnStatus,
    WalletTransaction,
)
from walletdesk.wallet.rules import mask_recipient, normalize_email, normalize_phone
from walletdesk.wallet.service import history
from walletdesk.wallet.service.common import ensure_wallet, get_customer, new_transaction, succeed
from walletdesk.wallet.service.customers import WalletBalance, balances, set_status

_NONE, _KNOWLEDGE, _STRONG = (
    VerificationLevel.NONE,
    VerificationLevel.KNOWLEDGE,
    VerificationLevel.STRONG,
)

MINIMUM_LEVEL: dict[str, VerificationLevel] = {
    "view_account": _KNOWLEDGE,  # balance, history, cases, alerts
    "explain": _KNOWLEDGE,  # why a transaction failed
    "file_dispute": _KNOWLEDGE,
    "send_password_reset": _STRONG,
    "freeze": _NONE,  # it only protects
    "unlock": _STRONG,  # and a supervisor's approval
    "change_phone": _STRONG,  # and a supervisor's approval
    "change_email": _STRONG,  # and a supervisor's approval
    "goodwill": _STRONG,  # and a supervisor's approval above the agent's limits
}
_CONTACT_CHANGES = frozenset({"change_phone", "change_email"})
# Never in one contact: each refuses the other, whichever came first.
CONFLICTS: dict[str, frozenset[str]] = {
    "send_password_reset": _CONTACT_CHANGES,
    "change_phone": frozenset({"send_password_reset"}),
    "change_email": frozenset({"send_password_reset"}),
}
# Looking is audited, but the customer is not messaged each time an agent reads their account.
SILENT = frozenset({"view_account", "explain"})
RECENT_TRANSACTIONS = 10
# A reset sent on someone's behalf, as identity.forgot_password audits it.
RESET_SENT = "password.reset_requested"
GOODWILL_ACCOUNT = AccountKind.GOODWILL

# What the customer is told was done ("During your contact ... our agent {done}.").
DONE_TEXTS: dict[str, tuple[str, str]] = {
    "send_password_reset": (
        "sent a password reset to your registered {channel}",
        "向您登记的{channel}发送了密码重置信息",
    ),
    "freeze": (
        "froze your account: no money can leave it until it is unlocked",
        "冻结了您的账户，解锁前资金无法转出",
    ),
    "unlock": (
        "unlocked your account, with a supervisor's approval",
        "经主管批准，解锁了您的账户",
    ),
    "change_phone": (
        "started changing your phone number to {new}, with a supervisor's approval; it "
        "changes once the code sent there is entered",
        "经主管批准，开始将您的手机号更换为 {new}，输入发送到新号码的验证码后生效",
    ),
    "change_email": (
        "started changing your email address to {new}, with a supervisor's approval; it "
        "changes once the code sent there is entered",
        "经主管批准，开始将您的邮箱更换为 {new}，输入发送到新邮箱的验证码后生效",
    ),
    "goodwill": (
        "credited {amount} to your wallet as a goodwill gesture",
        "向您的钱包存入补偿金 {amount}",
    ),
}
CHANNEL_NAMES = {"sms": ("phone", "手机"), "email": ("email", "邮箱")}


# --- rules (pure) -------------------------------------------------------------------------------


def missing_level(current: str, action: str) -> VerificationLevel | None:
    """The level `action` needs, if the contact has not reached it yet."""
    required = MINIMUM_LEVEL[action]
    return None if at_least(current, required) else required


def conflicting(action: str, earlier: Iterable[str]) -> str | None:
    """An action already taken or asked for in this contact that rules `action` out."""
    return next((e for e in sorted(earlier) if e in CONFLICTS.get(action, ())), None)


def goodwill_within_limits(amount: int, currency: str, staff: StaffUser, used_today: int) -> bool:
    """Within the agent's own per-action and daily goodwill limits (in their limits currency)."""
    return (
        currency == staff.limits_currency
        and amount <= staff.goodwill_per_action
        and used_today + amount <= staff.goodwill_per_day
    )


# --- the guard ----------------------------------------------------------------------------------


def authorize(session: Session, staff: StaffUser, contact_id: int, action: str) -> Contact:
    """The contact, if `staff` may take `action` on it now; the one check every action runs.

    The contact must be this agent's (or unassigned: it becomes theirs) and still open, have
    a customer attached, be verified to the action's level, and hold no conflicting action.
    """
    contact = own_contact(session, staff, contact_id)
    customer_of(contact)
    level = desk_level(contact)
    if required := missing_level(level, action):
        raise DomainError(
            "contact_verification_insufficient", required=str(required), current=level
        )
    if earlier := conflicting(action, taken_in(session, contact.id)):
        raise DomainError("action_conflicts_in_contact", action=action, earlier=earlier)
    return contact


def taken_in(session: Session, contact_id: int) -> set[str]:
    """Actions done in the contact, and those asked for (whatever the supervisor decided)."""
    done = session.execute(
        select(AgentAction.action).where(AgentAction.contact_id == contact_id)
    ).scalars()
    asked = session.execute(
        select(Approval.action).where(Approval.contact_id == contact_id)
    ).scalars()
    return {*done, *asked}


def record_action(
    session: Session,
    staff_id: int,
    contact: Contact,
    action: str,
    *,
    actor: str,
    before: str | None = None,
    after: str | None = None,
    approval_id: int | None = None,
    amount: int | None = None,
    currency: str | None = None,
    done: dict[str, Any] | None = None,
    **detail: Any,
) -> AgentAction:
    """The AgentAction row, the audit event, the case timeline line and the customer's message.

    `done` fills the customer's message (DONE_TEXTS); silent actions send none.
    """
    customer_id = customer_of(contact)
    level = desk_level(contact)  # the level the action was allowed at
    row = AgentAction(
        staff_id=staff_id,
        customer_id=customer_id,
        contact_id=contact.id,
        action=action,
        verification_level=level,
        amount=amount,
        currency=currency,
        approval_id=approval_id,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action=f"desk.{action}",
        subject=f"customer:{customer_id}",
        detail={
            "contact_id": contact.id,
            "verification_level": level,
            "status_before": before,
            "status_after": after,
            "approval_id": approval_id,
            "requested_by": f"staff:{staff_id}",
            **({"amount": amount, "currency": currency} if amount is not None else {}),
            **detail,
        },
    )
    text = None if action in SILENT else _done_text(session, customer_id, action, done or {})
    case = session.get(Case, contact.case_id) if contact.case_id else None
    if case is not None:
        add_event(
            session,
            case,
            "action",
            actor=actor,
            body=text,
            data={"action": action, "verification_level": level},
            contact_id=contact.id,
            customer_visible=text is not None,
        )
    if text is not None:
        notify(session, customer_id, "agent_action", {"done": text})
    return row


def _done_text(session: Session, customer_id: int, action: str, params: dict[str, Any]) -> str:
    """What was done, in the customer's own language (messages and their case timeline)."""
    language = language_of(get_customer(session, customer_id).language)
    en, zh = DONE_TEXTS[action]
    localized = {
        k: choose(language, en=v[0], zh=v[1]) if isinstance(v, tuple) else v
        for k, v in params.items()
    }
    return choose(language, en=en, zh=zh).format(**localized)


# --- looking ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountView:
    customer: Customer
    balances: list[WalletBalance]
    # The latest transactions, failed attempts included (wallet.explain says why each failed).
    recent: list[WalletTransaction]
    open_cases: list[Case]
    # Open risk alerts with the engine's reasons, in the agent's language.
    open_alerts: list[tuple[RiskAlert, str]]


def view_account(session: Session, staff: StaffUser, contact_id: int, language: str) -> AccountView:
    contact = authorize(session, staff, contact_id, "view_account")
    customer_id = customer_of(contact)
    page = history.list_transactions(
        session, customer_id, history.HistoryFilter(), limit=RECENT_TRANSACTIONS
    )
    view = AccountView(
        customer=get_customer(session, customer_id),
        balances=balances(session, customer_id),
        recent=page.items,
        open_cases=_open_cases(session, customer_id),
        open_alerts=_open_alerts(session, customer_id, language),
    )
    record_action(session, staff.id, contact, "view_account", actor=staff.actor)
    return view


def _open_cases(session: Session, customer_id: int) -> list[Case]:
    return list(
        session.execute(
            select(Case)
            .where(
                Case.customer_id == customer_id,
                Case.status.not_in(sorted(FINISHED)),
            )
            .order_by(Case.id.desc())
        ).scalars()
    )


def _open_alerts(session: Session, customer_id: int, language: str) -> list[tuple[RiskAlert, str]]:
    rows = session.execute(
        select(RiskAlert, RiskDecision.explanation_en, RiskDecision.explanation_zh)
        .join(RiskDecision, RiskDecision.id == RiskAlert.decision_id)
        .where(RiskAlert.customer_id == customer_id, RiskAlert.status == AlertStatus.OPEN)
        .order_by(RiskAlert.id)
    ).all()
    return [(alert, choose(language, en=en, zh=zh)) for alert, en, zh in rows]


@dataclass(frozen=True, slots=True)
class AgentExplanation:
    explanation: Explanation
    risk: str | None  # why the risk engine last stepped in, if it ever did
    account_status: str
    status_reason: str | None


def explain_for_agent(
    session: Session, staff: StaffUser, contact_id: int, txn_number: str, language: str
) -> AgentExplanation:
    """The same explanation the customer and the IVR get, with the account's state beside it."""
    contact = authorize(session, staff, contact_id, "explain")
    customer_id = customer_of(contact)
    txn = history.get_by_number(session, customer_id, txn_number)
    customer = get_customer(session, customer_id)
    answer = AgentExplanation(
        explanation=explain(txn, language),
        risk=risk.latest_explanation(session, customer_id, language),
        account_status=customer.status,
        status_reason=customer.status_reason,
    )
    record_action(session, staff.id, contact, "explain", actor=staff.actor, number=txn.number)
    return answer


# --- acting -------------------------------------------------------------------------------------


def send_password_reset(
    session: Session, staff: StaffUser, contact_id: int, *, channel: str
) -> None:
    """A reset link (email) or code (sms) to the registered, proven address; the agent sees
    neither, and there is no way to name another destination."""
    contact = authorize(session, staff, contact_id, "send_password_reset")
    customer = get_customer(session, customer_of(contact))
    registered = registered_destination(session, customer, channel)
    if _contact_change_pending(session, customer.id):
        raise DomainError("reset_contact_change_cooldown", days=_cooldown_days())
    identity.forgot_password(session, registered, channel, sent_by=staff.actor)
    record_action(
        session,
        staff.id,
        contact,
        "send_password_reset",
        actor=staff.actor,
        channel=channel,
        done={"channel": CHANNEL_NAMES[channel]},
    )


def freeze(session: Session, staff: StaffUser, contact_id: int, *, reason: str) -> Customer:
    """Stop all outgoing money at once, whoever asks: it only protects."""
    contact = authorize(session, staff, contact_id, "freeze")
    customer = get_customer(session, customer_of(contact))
    before = customer.status
    identity.freeze(
        session,
        customer.id,
        actor=staff.actor,
        reason=f"frozen by customer service: {reason}"[:200],
    )
    record_action(
        session,
        staff.id,
        contact,
        "freeze",
        actor=staff.actor,
        before=before,
        after=customer.status,
    )
    return customer


def request_unlock(session: Session, staff: StaffUser, contact_id: int, *, reason: str) -> Approval:
    """Ask a supervisor to unlock a risk-locked or frozen account; it happens on approval."""
    contact = authorize(session, staff, contact_id, "unlock")
    _locked_customer(session, customer_of(contact))
    return approvals.request(session, staff, contact, "unlock", {}, reason)


def request_contact_change(
    session: Session,
    staff: StaffUser,
    contact_id: int,
    *,
    phone: str | None = None,
    email: str | None = None,
    reason: str,
) -> Approval:
    """Ask a supervisor to start a phone or email change; on approval a code goes to the new
    one, and the change happens when the customer enters it."""
    if bool(phone) == bool(email):
        raise DomainError("contact_required")
    action = "change_phone" if phone else "change_email"
    contact = authorize(session, staff, contact_id, action)
    _refuse_after_assisted_reset(session, customer_of(contact))
    params = {"phone": normalize_phone(phone)} if phone else {"email": normalize_email(email or "")}
    return approvals.request(session, staff, contact, action, params, reason)


def _cooldown_days() -> int:
    return get_settings().desk_reset_cooldown_days


def _contact_change_pending(session: Session, customer_id: int) -> bool:
    return (
        session.execute(
            select(Approval.id)
            .where(
                Approval.customer_id == customer_id,
                Approval.action.in_(sorted(_CONTACT_CHANGES)),
                Approval.status == ApprovalStatus.PENDING,
            )
            .limit(1)
        ).first()
        is not None
    )


def _refuse_after_assisted_reset(session: Session, customer_id: int) -> None:
    """A reset an agent or the hotline sent, then a new phone or email through another contact,
    is the same takeover the one-contact rule stops: keep them days apart."""
    since = clock.now() - timedelta(days=_cooldown_days())
    recent = session.execute(
        select(AuditEvent.seq)
        .where(
            AuditEvent.action == RESET_SENT,
            AuditEvent.subject == f"customer:{customer_id}",
            AuditEvent.actor != identity.SELF_SERVICE,
            AuditEvent.occurred_at >= since,
        )
        .limit(1)
    ).first()
    if recent is not None:
        raise DomainError("reset_contact_change_cooldown", days=_cooldown_days())


def confirm_contact_change(
    session: Session, staff: StaffUser, contact_id: int, *, what: str, code: str
) -> Customer | DomainError:
    """The customer reads back the code sent to the new phone or email (they may also enter it
    in the app themselves). A wrong code is returned after its count, to be committed."""
    contact = authorize(session, staff, contact_id, f"change_{what}")
    outcome = identity.confirm_contact_change(session, customer_of(contact), what, code)
    passed = not isinstance(outcome, DomainError)
    record(
        session,
        actor=staff.actor,
        action="desk.contact_change_confirmed" if passed else "desk.contact_change_code_missed",
        subject=f"customer:{contact.customer_id}",
        detail={"contact_id": contact.id, "what": what},
    )
    return outcome


def goodwill(
    session: Session,
    staff: StaffUser,
    contact_id: int,
    *,
    amount: int,
    currency: str,
    reason: str,
) -> WalletTransaction | Approval:
    """Credit the customer now when within the agent's limits, else ask a supervisor."""
    check_currency(currency)
    if amount <= 0:
        raise DomainError("amount_not_positive")
    contact = authorize(session, staff, contact_id, "goodwill")
    # One agent's credits take turns, or two at once would each see the day's room unused.
    session.execute(select(StaffUser.id).where(StaffUser.id == staff.id).with_for_update())
    if not goodwill_within_limits(amount, currency, staff, goodwill_used_today(session, staff)):
        params = {"amount": amount, "currency": currency, "reason": reason}
        return approvals.request(session, staff, contact, "goodwill", params, reason)
    return _credit_goodwill(session, staff.id, contact, amount, currency, reason, actor=staff.actor)


def goodwill_used_today(session: Session, staff: StaffUser) -> int:
    """Goodwill the agent credited on their own authority since local midnight; credits a
    supervisor approved do not use up the agent's own daily limit."""
    zone = ZoneInfo(get_settings().timezone)
    since = clock.start_of_local_day(clock.now(), zone)
    total = session.execute(
        select(func.coalesce(func.sum(AgentAction.amount), 0)).where(
            AgentAction.staff_id == staff.id,
            AgentAction.action == "goodwill",
            AgentAction.approval_id.is_(None),
            AgentAction.currency == staff.limits_currency,
            AgentAction.created_at >= since,
        )
    ).scalar_one()
    return int(total)


def _credit_goodwill(
    session: Session,
    staff_id: int,
    contact: Contact,
    amount: int,
    currency: str,
    reason: str,
    *,
    actor: str,
    approval_id: int | None = None,
) -> WalletTransaction:
    """From the platform's goodwill expense account to the wallet, through the ledger; the
    customer sees it in their history."""
    customer_id = customer_of(contact)
    wallet = ensure_wallet(session, customer_id, currency)
    txn = new_transaction(
        session,
        kind=TxnKind.GOODWILL,
        status=TxnStatus.PENDING,
        customer_id=customer_id,
        amount=amount,
        currency=currency,
        description=reason[:200],
        counterparty_label="walletdesk",
    )
    source = ledger.system_account(session, GOODWILL_ACCOUNT, currency)
    credit = ledger.TransferRequest(
        txn.ledger_id, source.id, wallet.ledger_account_id, amount, currency, "goodwill"
    )
    outcome = ledger.post(session, [credit])[0]
    if not outcome.ok:
        raise RuntimeError(f"goodwill {txn.number}: the ledger refused: {outcome.result}")
    record_action(
        session,
        staff_id,
        contact,
        "goodwill",
        actor=actor,
        approval_id=approval_id,
        amount=amount,
        currency=currency,
        number=txn.number,
        done={"amount": str(Money(amount, currency))},
    )
    return succeed(txn)


# --- carrying out what a supervisor approved ---------------------------------------------------


def carry_out(session: Session, approval: Approval, supervisor: StaffUser) -> None:
    """Do what `approval` asked for, in the approving unit of work."""
    contact = session.get(Contact, approval.contact_id)
    assert contact is not None
    if contact.customer_id != approval.customer_id:
        # The agent moved the contact to someone else: what was verified was the other one.
        raise DomainError("approval_customer_changed")
    params = approvals.params_of(approval)
    if earlier := conflicting(approval.action, taken_in(session, contact.id) - {approval.action}):
        raise DomainError("action_conflicts_in_contact", action=approval.action, earlier=earlier)
    common = {"actor": supervisor.actor, "approval_id": approval.id}
    if approval.action == "unlock":
        _unlock(session, approval, contact, supervisor)
    elif approval.action in _CONTACT_CHANGES:
        _refuse_after_assisted_reset(session, approval.customer_id)
        identity.start_contact_change(
            session, approval.customer_id, phone=params.get("phone"), email=params.get("email")
        )
        new = params.get("phone") or params.get("email") or ""
        record_action(
            session,
            approval.requested_by,
            contact,
            approval.action,
            **common,
            done={"new": mask_recipient(new)},
        )
    elif approval.action == "goodwill":
        _credit_goodwill(
            session,
            approval.requested_by,
            contact,
            params["amount"],
            params["currency"],
            params["reason"],
            **common,
        )
    else:  # pragma: no cover - approvals are only made by the functions above
        raise ValueError(f"no way to carry out {approval.action!r}")


def _locked_customer(session: Session, customer_id: int) -> Customer:
    customer = get_customer(session, customer_id)
    if customer.status not in (CustomerStatus.LOCKED, CustomerStatus.FROZEN):
        raise DomainError("account_not_locked")
    return customer


def _unlock(session: Session, approval: Approval, contact: Contact, supervisor: StaffUser) -> None:
    """Lift a freeze or a risk lock; the risk engine's open alerts are resolved with a note.

    identity.unfreeze does not fit: it asks for the customer's own password, while here the
    caller proved possession of their phone or email and a supervisor agreed.
    """
    customer = _locked_customer(session, approval.customer_id)
    before = customer.status
    note = f"Unlocked by customer service after strong verification; approval {approval.id}."
    for alert in _open_alert_rows(session, customer.id):
        risk.resolve_alert(session, alert.id, by=supervisor.actor, resolution=note, unlock=True)
    if customer.status != CustomerStatus.ACTIVE:
        set_status(session, customer.id, CustomerStatus.ACTIVE, None)
    record_action(
        session,
        approval.requested_by,
        contact,
        "unlock",
        actor=supervisor.actor,
        approval_id=approval.id,
        before=before,
        after=customer.status,
    )


def _open_alert_rows(session: Session, customer_id: int) -> list[RiskAlert]:
    return list(
        session.execute(
            select(RiskAlert).where(
                RiskAlert.customer_id == customer_id, RiskAlert.status == AlertStatus.OPEN
            )
        ).scalars()
    )


# --- demo ---------------------------------------------------------------------------------------

DEMO_UNLOCK_REASON = (
    "李娜 says the four new cards are hers (her bank replaced them); verified by an SMS code "
    "read back on the call."
)


def seed_demo(session: Session, staff_ids: dict[str, int], customer_ids: dict[str, int]) -> None:
    """A pending unlock for 李娜 (risk-locked), asked by agent.li on a call where she read back
    an SMS code: something for a supervisor to approve. Safe to run again."""
    customer = get_customer(session, customer_ids["lina"])
    agent = session.get(StaffUser, staff_ids["agent.li"])
    waiting = session.execute(
        select(Approval.id).where(
            Approval.customer_id == customer.id,
            Approval.action == "unlock",
            Approval.status == ApprovalStatus.PENDING,
        )
    ).first()
    if agent is None or customer.status != CustomerStatus.LOCKED or waiting is not None:
        return
    contact = verification.open_desk_contact(session, agent, channel="phone", origin=customer.phone)
    verification.send_possession_code(session, contact, agent, "sms")
    sent = session.execute(
        select(OutboxMessage)
        .where(
            OutboxMessage.customer_id == customer.id,
            OutboxMessage.event == "support_verification_code",
        )
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    ).scalar_one()
    verification.check_possession_code(session, contact, agent, open_params(sent)["code"])
    request_unlock(session, agent, contact.id, reason=DEMO_UNLOCK_REASON)
    verification.end_desk_contact(
        session,
        agent,
        contact.id,
        summary="李娜 asked us to unlock her account after the risk engine locked it.",
        next_steps="A supervisor reviews the unlock; you will get a message when it is done.",
        case_type=CaseType.ACCOUNT_LOCKED,
    )
