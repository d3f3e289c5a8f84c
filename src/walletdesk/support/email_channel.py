"""Inbound email: mail to the support address becomes a contact on a new or existing case.

`receive_email` is the whole of it and works on any raw message; `SupportMailHandler` is the
aiosmtpd handler that feeds it from a real SMTP listener (`walletdesk mail-listener`).

Threading: a case number in the subject ("[Case 1234567890]", "[工单 1234567890]",
"Re: ... #1234567890") adds the message to that case, but only when the sender is that case's
customer or its requester; anyone else quoting a number gets a case of their own, so nobody
can write on someone else's case. A closed case stays closed: the message opens a new case
linked to it; a case waiting on the customer is open again. An email's From can be forged, so a message never verifies anyone (agents verify
before they act) and acknowledgements only ever go to a customer's registered address.

Who gets an acknowledgement: a customer whose registered email sent the message, when it
opened a case. Mail from an address no customer has registered gets none: the outbox only
writes to customers, and answering unknown senders automatically would send our mail to
whoever a spammer's forged From names. Their case keeps `requester_email` for an agent.

Loops and floods: auto-replies, bounces, list mail and our own mail are dropped; each sender
is rate-limited ("support.email").

Repeats: a mail server that did not hear our answer delivers the same message again. Each email
contact keeps its sender and Message-ID, hashed (Contact.external_ref, unique): a message seen
before is not filed again, and a repeat racing its first delivery fails on the unique index
with a temporary error, so the server retries and then finds it filed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.config import Settings, get_settings
from walletdesk.db import Database
from walletdesk.kit import ids, ratelimit
from walletdesk.kit.errors import DomainError
from walletdesk.notify.service import notify
from walletdesk.support import cases
from walletdesk.support import channel_errors as _errors  # noqa: F401  (registers the codes)
from walletdesk.support.models import Case, CaseStatus, CaseType, Contact
from walletdesk.wallet.models import Customer
from walletdesk.wallet.service.customers import find_by_contact

log = logging.getLogger(__name__)

CHANNEL = "email"
MAX_TEXT_CHARS = 20_000  # what the timeline keeps of one message
SUBJECT_CHARS = 200  # Case.subject
_NUMBER = rf"(\d{{{cases.CASE_NUMBER_LENGTH}}})"
_CASE_REF = re.compile(rf"\[\s*(?:case|工单)\s*#?\s*{_NUMBER}\s*\]|#{_NUMBER}(?!\d)", re.IGNORECASE)
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
# Where a reply's quoted history starts: "On ... wrote:", "在 ... 写道：", Outlook's separator.
_QUOTE_START = re.compile(
    r"^(?:On .{1,200} wrote:|在.{1,200}写道[::]|-{2,}\s*Original Message\s*-{2,})\s*$",
    re.IGNORECASE,
)


def receive_email(
    session: Session, raw: bytes, envelope_from: str | None, *, settings: Settings | None = None
) -> Case | None:
    """File one inbound message; the case it went on (for a repeat, the case the first delivery
    went on), or None when it was dropped as automatic.

    Raises DomainError("rate_limited") when the sender has written too often.
    """
    settings = settings or get_settings()
    message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
    sender = sender_of(message, envelope_from)
    if sender is None or is_automatic(message, envelope_from) or _is_ours(sender, settings):
        return None
    ref = message_ref(message, sender)
    filed = _filed_before(session, ref) if ref is not None else None
    if filed is not None:
        log.info("a repeated delivery of a message on case %s was dropped", filed.number)
        return filed
    ratelimit.hit(session, "support.email", sender, settings=settings)
    subject = _header(message, "subject")[:SUBJECT_CHARS]
    customer = find_by_contact(session, sender)
    actor = _actor(sender, customer)
    quoted = _thread(session, subject, sender, customer)
    if quoted is None:
        case = _open_case(session, subject, sender, customer)
    else:
        case = cases.case_for_new_contact(session, quoted, channel=CHANNEL, actor=actor)
    _file_message(session, case, message, subject, sender, customer, ref)
    if case.status == CaseStatus.WAITING_ON_CUSTOMER:
        cases.change_status(session, case, CaseStatus.OPEN, actor)
    if case is not quoted and customer is not None:
        notify(
            session,
            customer.id,
            "case_email_received",
            {"case_number": case.number, "subject": case.subject},
            channels=("email",),
        )
    return case


# --- reading a message ---------------------------------------------------------------------------


def sender_of(message: Message, envelope_from: str | None) -> str | None:
    """The From address (what the person wrote from), else the envelope's; lower case."""
    for candidate in (_header(message, "from"), envelope_from or ""):
        address = parseaddr(candidate)[1].strip().lower()
        if "@" in address:
            return address
    return None


def is_automatic(message: Message, envelope_from: str | None) -> bool:
    """Bounces, auto-replies and list mail (RFC 3834 and the common vendor headers)."""
    if envelope_from is not None and envelope_from.strip("<> ") == "":
        return True  # the null sender: a delivery report
    auto_submitted = _header(message, "auto-submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if _header(message, "precedence").lower() in _BULK_PRECEDENCE:
        return True
    if any(_header(message, name) for name in ("x-autoreply", "x-autorespond", "list-id")):
        return True
    return message.get_content_type() == "multipart/report"


def message_ref(message: Message, sender: str) -> str | None:
    """What marks a repeat of this message: its sender and Message-ID, hashed (None without one)."""
    message_id = _header(message, "message-id")
    if not message_id:
        return None
    return "email:" + hashlib.sha256(f"{sender}\n{message_id}".encode()).hexdigest()


def case_numbers_in(subject: str) -> list[str]:
    """Valid case numbers referred to in a subject, in order."""
    found = (a or b for a, b in _CASE_REF.findall(subject))
    return [n for n in dict.fromkeys(found) if ids.is_valid_number(n, cases.CASE_NUMBER_LENGTH)]


def text_of(message: EmailMessage) -> str:
    """The message's words: its text/plain part, else its HTML without tags; quotes cut."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = html_to_text(content)
    return without_quotes(content).strip()[:MAX_TEXT_CHARS]


def without_quotes(text: str) -> str:
    """Drop the quoted history mail clients append to a reply."""
    kept: list[str] = []
    for line in text.splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line.rstrip())
    return "\n".join(kept)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head"})
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _is_ours(sender: str, settings: Settings) -> bool:
    ours = {parseaddr(a)[1].lower() for a in (settings.support_address, settings.smtp_from)}
    return sender in ours


# --- filing it -----------------------------------------------------------------------------------


def _filed_before(session: Session, ref: str) -> Case | None:
    query = select(Case).join(Contact, Contact.case_id == Case.id)
    return session.scalars(query.where(Contact.external_ref == ref)).first()


def _thread(session: Session, subject: str, sender: str, customer: Customer | None) -> Case | None:
    """The case the subject names, if the sender is its customer or requester."""
    for number in case_numbers_in(subject):
        try:
            case = cases.find_case(session, number, for_update=True)
        except DomainError:
            continue
        if _may_write_on(case, sender, customer):
            return case
    return None


def _may_write_on(case: Case, sender: str, customer: Customer | None) -> bool:
    if case.customer_id is not None:
        return customer is not None and customer.id == case.customer_id
    return case.requester_email == sender


def _open_case(session: Session, subject: str, sender: str, customer: Customer | None) -> Case:
    return cases.open_case(
        session,
        customer_id=customer.id if customer else None,
        requester_email=None if customer else sender,
        type=CaseType.OTHER,
        subject=subject or "(no subject)",
        channel=CHANNEL,
        actor=_actor(sender, customer),
    )


def _file_message(
    session: Session,
    case: Case,
    message: EmailMessage,
    subject: str,
    sender: str,
    customer: Customer | None,
    ref: str | None,
) -> None:
    """One email contact (over as soon as it arrives) and its message on the timeline."""
    contact = cases.open_contact(
        session,
        channel=CHANNEL,
        customer_id=customer.id if customer else None,
        case=case,
        origin=sender,
    )
    contact.ended_at = contact.started_at  # a message has no duration and no summary to send
    contact.external_ref = ref
    cases.add_event(
        session,
        case,
        "message_in",
        actor=_actor(sender, customer),
        body=text_of(message),
        data={
            "channel": CHANNEL,
            "subject": subject,
            "message_id": _header(message, "message-id")[:200],
        },
        contact_id=contact.id,
    )


def _actor(sender: str, customer: Customer | None) -> str:
    return f"customer:{customer.id}" if customer else f"email:{sender}"[:64]


# --- the SMTP listener ---------------------------------------------------------------------------


class SupportMailHandler:
    """aiosmtpd handler: accept mail for the support address and file each message.

    Filing runs on a worker thread (the database calls block) in its own unit of work. A sender
    over their rate limit gets a temporary failure, so a real mail server retries later; a
    dropped automatic message is accepted, so nobody's server bounces it back to us.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self.address = parseaddr(settings.support_address)[1].lower()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.strip().lower() != self.address:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            case = await asyncio.to_thread(self._file, envelope.content, envelope.mail_from)
        except DomainError as error:
            if error.code == "rate_limited":
                return "451 4.7.1 Too many messages from this sender; try again later"
            raise
        except Exception:
            log.exception("inbound support mail could not be filed")
            return "451 4.3.0 Could not file the message; try again later"
        return "250 OK" if case is None else f"250 OK case {case.number}"

    def _file(self, raw: bytes, mail_from: str | None) -> Case | None:
        with self.db.unit_of_work() as session:
            return receive_email(session, raw, mail_from, settings=self.settings)


def mail_listener(db: Database, settings: Settings, host: str, port: int) -> Controller:
    """A started SMTP listener for the support address; call `.stop()` to end it."""
    controller = Controller(
        SupportMailHandler(db, settings),
        hostname=host,
        port=port,
        server_hostname=parseaddr(settings.support_address)[1].rpartition("@")[2] or "localhost",
        data_size_limit=settings.support_email_max_bytes,
    )
    controller.start()
    return controller
