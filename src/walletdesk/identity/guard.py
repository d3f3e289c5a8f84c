"""What must hold before money leaves a wallet or a card is added, checked before the operation.

In order: a verified phone or email, a verified device, the payment PIN, the hold on large
outgoing payments after a phone or email change, the risk engine's decision, and a step-up
second factor for large amounts, a device's first payment, adding a card, or when the risk
engine asks. Each refusal is returned after its bookkeeping (a PIN miss,
a risk decision, a new challenge) so the caller commits it first.

Customers without interactive credentials (created by an operator for an integration) have
no password, PIN or device to check; only the risk engine applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from walletdesk.config import get_settings
from walletdesk.identity import service as identity
from walletdesk.identity import sessions
from walletdesk.identity.models import AuthSession, Credential, Device
from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError, define
from walletdesk.wallet.service.common import large_amount

define(
    "risk_declined",
    403,
    en="We stopped this for your safety. Call us if it was you.",
    zh="为保护您的资金安全，我们拦截了此操作。如确为本人操作，请致电客服。",
)
define(
    "held_for_review",
    403,
    en="We paused this for a security review; we will contact you. You can also call us.",
    zh="此操作已暂停，等待安全审核；我们会联系您，您也可以致电客服。",
)
define(
    "held_after_contact_change",
    403,
    en="Your phone number or email changed recently, so large payments are held until {until} "
    "to protect you from someone who took over your number. Smaller amounts work as usual.",
    zh="您的手机号或邮箱近期已变更，为防止他人冒用，大额付款将暂停至 {until}。小额付款不受影响。",
)

# Where money can leave for someone else: what a person who took over a number would use.
HELD_KINDS = frozenset({"payment", "transfer", "withdrawal"})


@dataclass(frozen=True, slots=True)
class Movement:
    kind: str  # topup, payment, transfer, withdrawal, exchange, card_added
    amount: int | None
    currency: str | None
    request_digest: str
    recipient: str | None = None  # a transfer's phone number or email, as typed
    card_fingerprint: str | None = None


def check(
    session: Session, auth: AuthSession, movement: Movement, pin: str | None
) -> DomainError | None:
    credential = session.get(Credential, auth.customer_id)
    # Interactive means the customer can sign in (has a password). A bare Credential row is not
    # enough: one is created as a side effect for operator-made customers too (a risk step-up
    # challenge, a failed login attempt on their number), and treating that as interactive
    # refused every later payment of theirs with contact_not_verified, for good.
    interactive = credential is not None and credential.password_hash is not None
    if interactive:
        assert credential is not None
        if credential.phone_verified_at is None and credential.email_verified_at is None:
            return DomainError("contact_not_verified")
        if not sessions.device_verified(session, auth):
            return DomainError("device_not_verified")
    # A PIN, once set (through the app or by an operator-made customer), is always asked.
    has_pin = credential is not None and credential.pin_hash is not None
    needs_pin = (interactive or has_pin) and movement.kind != "card_added"
    if needs_pin and (refusal := identity.check_payment_pin(session, auth.customer_id, pin)):
        return refusal
    if refusal := _held_after_contact_change(credential, movement):
        return refusal
    action = _assess(session, auth, movement, credential)
    if refusal := _refusal(action):
        return refusal
    if not interactive and action != "challenge":
        return None
    reason = _step_up_reason(session, auth, movement, action)
    if reason is None or identity.passed_challenge(session, auth, movement.request_digest):
        _first_payment_done(session, auth)
        return None
    pending = identity.challenge(
        session, auth, purpose=movement.kind, reason=reason, request_digest=movement.request_digest
    )
    return DomainError("verification_required", challenge_id=pending.id, reason=reason)


def check_credential_change(session: Session, auth: AuthSession) -> DomainError | str | None:
    """The risk engine's view of a password, PIN, phone or email change: a refusal, "challenge",
    or None when nothing stands in the way."""
    credential = session.get(Credential, auth.customer_id)
    movement = Movement("credential_change", None, None, "")
    action = _assess(session, auth, movement, credential)
    if refusal := _refusal(action):
        return refusal
    return "challenge" if action == "challenge" else None


def _held_after_contact_change(
    credential: Credential | None, movement: Movement
) -> DomainError | None:
    """A large outgoing movement within the hold after a phone or email change (SIM swap)."""
    changed = credential.contact_changed_at if credential is not None else None
    if changed is None or movement.kind not in HELD_KINDS or movement.currency is None:
        return None
    threshold = large_amount(movement.currency)
    if threshold is None or movement.amount is None or movement.amount < threshold:
        return None
    settings = get_settings()
    until = as_utc(changed) + timedelta(hours=settings.contact_change_hold_hours)
    if clock.now() >= until:
        return None
    return DomainError("held_after_contact_change", until=_local(until, settings.timezone))


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes")


def _refusal(action: str) -> DomainError | None:
    return {
        "lock": DomainError("account_locked"),
        "decline": DomainError("risk_declined"),
        "hold": DomainError("held_for_review"),
    }.get(action)


def _step_up_reason(
    session: Session, auth: AuthSession, movement: Movement, action: str
) -> str | None:
    if action == "challenge":
        return "risk"
    if movement.kind == "card_added":
        return "add_card"
    threshold = large_amount(movement.currency) if movement.currency else None
    if threshold is not None and movement.amount is not None and movement.amount >= threshold:
        return "large_amount"
    device = session.get(Device, auth.device_id) if auth.device_id else None
    if device is not None and device.first_payment_at is None:
        return "new_device"
    return None


def _first_payment_done(session: Session, auth: AuthSession) -> None:
    device = session.get(Device, auth.device_id) if auth.device_id else None
    if device is not None and device.first_payment_at is None:
        device.first_payment_at = clock.now()


def _recipient_id(session: Session, contact: str | None) -> int | None:
    from walletdesk.wallet.service.customers import find_by_contact

    recipient = find_by_contact(session, contact) if contact else None
    return recipient.id if recipient else None


def _assess(
    session: Session, auth: AuthSession, movement: Movement, credential: Credential | None
) -> str:
    from walletdesk.risk.rules import RiskEvent
    from walletdesk.risk.service import evaluate
    from walletdesk.wallet.service.common import limit_in_minor

    device = session.get(Device, auth.device_id) if auth.device_id else None
    limit = (
        limit_in_minor(get_settings().limits_per_transaction, movement.currency)
        if movement.currency
        else None
    )
    event = RiskEvent(
        kind=movement.kind,
        customer_id=auth.customer_id,
        at=clock.now(),
        amount=movement.amount,
        currency=movement.currency,
        new_device=device is not None and device.first_payment_at is None,
        recipient_id=_recipient_id(session, movement.recipient),
        card_fingerprint=movement.card_fingerprint,
        failed_logins_before=0,
        password_reset_at=credential.last_password_reset_at if credential else None,
        per_transaction_limit=limit,
    )
    return evaluate(session, event, subject=None).action
