"""Pure dispute rules: what may be disputed, for how much, and which step may follow which.

No database and no clock of their own: callers pass the time and the figures. Each check raises
the DomainError a customer, merchant or agent would be shown.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath, PureWindowsPath

from walletdesk.disputes import errors as _errors  # noqa: F401  (registers the codes)
from walletdesk.disputes.models import OPEN_STATUSES, DisputeReason, DisputeStatus
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import format_minor
from walletdesk.support.models import CaseType
from walletdesk.wallet.models import TxnKind, TxnStatus

# Only a payment has a merchant to answer for it. Money sent to another person cannot be pulled
# back from them by a dispute (they never agreed to any terms); that is a fraud report for the
# hotline and risk team. Top-ups are disputed with the card's bank, exchanges and withdrawals
# are the customer's own movements.
DISPUTABLE_KINDS = frozenset({TxnKind.PAYMENT})

# Which steps each status allows. A closed dispute allows none.
ACTIONS: dict[str, frozenset[DisputeStatus]] = {
    "add_evidence": frozenset(OPEN_STATUSES),
    "grant_provisional_credit": frozenset(OPEN_STATUSES),
    "accept": frozenset(OPEN_STATUSES),  # a merchant may concede at any point
    "contest": frozenset({DisputeStatus.AWAITING_MERCHANT}),
    "review": frozenset({DisputeStatus.AWAITING_MERCHANT}),
    "decide": frozenset({DisputeStatus.UNDER_REVIEW}),
    "withdraw": frozenset(OPEN_STATUSES),
}

OFFERS_FOR_UNAUTHORISED = ("freeze_account", "replace_card")


def check_disputable(kind: str, status: str, paid_at: datetime, now: datetime, days: int) -> None:
    """A completed payment, made no more than `days` days ago."""
    if kind not in DISPUTABLE_KINDS or status != TxnStatus.SUCCEEDED:
        raise DomainError("not_disputable")
    if as_utc(now) - as_utc(paid_at) > timedelta(days=days):
        raise DomainError("dispute_window_closed", days=days, paid_on=as_utc(paid_at).date())


def disputed_amount(requested: int | None, paid: int, refunded: int, currency: str) -> int:
    """The amount a new dispute covers: what was asked, or all not yet refunded if nothing was."""
    disputable = paid - refunded
    if disputable <= 0:
        raise DomainError("nothing_to_dispute")
    if requested is None:
        return disputable
    if requested <= 0:
        raise DomainError("amount_not_positive")
    if requested > disputable:
        raise DomainError(
            "dispute_amount_too_large",
            disputable=format_minor(disputable, currency),
            currency=currency,
        )
    return requested


def check_action(status: str, action: str) -> None:
    if status in ACTIONS[action]:
        return
    if status not in OPEN_STATUSES:
        raise DomainError("dispute_closed", status=status)
    raise DomainError("dispute_action_not_allowed", status=status, action=action)


def check_contest_in_time(respond_by: datetime, now: datetime) -> None:
    if as_utc(now) > as_utc(respond_by):
        raise DomainError("dispute_response_late", respond_by=as_utc(respond_by).isoformat())


def response_deadline(filed_at: datetime, days: int) -> datetime:
    return filed_at + timedelta(days=days)


def is_overdue(status: str, respond_by: datetime, now: datetime) -> bool:
    """The merchant let the deadline pass without answering."""
    return status == DisputeStatus.AWAITING_MERCHANT and as_utc(now) > as_utc(respond_by)


def check_provisional_credit(
    granted: int, requested: int | None, disputed: int, currency: str
) -> int:
    """The amount to hold for the customer: the disputed amount unless a smaller one is asked."""
    if granted:
        raise DomainError("provisional_credit_exists")
    if requested is None:
        return disputed
    if requested <= 0:
        raise DomainError("amount_not_positive")
    if requested > disputed:
        raise DomainError(
            "provisional_credit_too_large",
            disputed=format_minor(disputed, currency),
            currency=currency,
        )
    return requested


def provisional_state(status: str, provisional_credit: int) -> str | None:
    """What became of a provisional credit: held, released (lost/withdrawn) or replaced by the
    merchant's refund (won)."""
    if not provisional_credit:
        return None
    if status in OPEN_STATUSES:
        return "held"
    return "replaced_by_refund" if status == DisputeStatus.WON else "released"


def offers_for(reason: str) -> tuple[str, ...]:
    """Someone else paid with this account: offer to stop them and replace the card."""
    return OFFERS_FOR_UNAUTHORISED if reason == DisputeReason.UNAUTHORISED else ()


def case_type_for(reason: str) -> CaseType:
    if reason == DisputeReason.UNAUTHORISED:
        return CaseType.UNRECOGNISED_CHARGE
    return CaseType.REFUND


# --- evidence -----------------------------------------------------------------------------------

# Types are recognised by their first bytes, never taken from what the upload claims.
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
_UNSAFE_FILENAME = re.compile(r"[^\w.\- ()]+")
FILENAME_MAX_LENGTH = 120


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    filename: str
    content_type: str
    size: int
    sha256: str


def sniff_type(content: bytes) -> str | None:
    for signature, content_type in _SIGNATURES:
        if content.startswith(signature):
            return content_type
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = all(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return "text/plain" if printable else None


def check_evidence(
    filename: str, content: bytes, *, max_bytes: int, count: int, max_files: int
) -> EvidenceFile:
    """Accept a small picture, PDF or text file while the dispute has room for one more."""
    if count >= max_files:
        raise DomainError("too_much_evidence", max_files=max_files)
    if not content:
        raise DomainError("evidence_empty")
    if len(content) > max_bytes:
        raise DomainError("evidence_too_large", max_kb=max_bytes // 1024)
    content_type = sniff_type(content)
    if content_type is None:
        raise DomainError("evidence_type_not_allowed")
    return EvidenceFile(
        clean_filename(filename), content_type, len(content), hashlib.sha256(content).hexdigest()
    )


def clean_filename(name: str) -> str:
    """The last path part, letters (any script), digits and a little punctuation only."""
    name = unicodedata.normalize("NFC", name)
    base = PureWindowsPath(PurePosixPath(name).name).name
    cleaned = _UNSAFE_FILENAME.sub("_", base).strip(" ._")
    return cleaned[-FILENAME_MAX_LENGTH:] or "evidence"
