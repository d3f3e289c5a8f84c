"""Delivery channels behind small Protocols: email over SMTP, SMS, and the in-app inbox.

Each sender gets a `key` that is stable for one outbox message across retries (it becomes the
email's Message-ID), so a receiver can drop the duplicate that a crash between "sent" and
"marked sent" may cause. Nothing here logs a message's text or its destination.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from walletdesk.config import Settings
from walletdesk.kit import clock
from walletdesk.notify.models import InboxMessage

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send that did not happen; the worker retries it later."""


class PermanentDeliveryError(DeliveryError):
    """A send that retrying cannot fix (the server refused the address for good)."""


class EmailSender(Protocol):
    def send_email(self, *, to: str, subject: str, body: str, key: str) -> None: ...


class SmsSender(Protocol):
    def send_sms(self, *, to: str, text: str, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Senders:
    """What the worker sends through; in-app messages need no sender (they are rows)."""

    email: EmailSender
    sms: SmsSender

    @classmethod
    def from_settings(cls, settings: Settings) -> Senders:
        return cls(SmtpEmailSender.from_settings(settings), FileSmsSender(settings.sms_outbox_path))


class SmtpEmailSender:
    """Plain smtplib, one connection per message: the outbox already batches and retries."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout
        # The sending domain names us in HELO and Message-ID; asking the resolver for our own
        # FQDN (smtplib's default) can stall for seconds on machines without reverse DNS.
        self.domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmailSender:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=password,
        )

    def send_email(self, *, to: str, subject: str, body: str, key: str) -> None:
        message = self._message(to, subject, body, key)
        try:
            with smtplib.SMTP(
                self.host, self.port, timeout=self.timeout, local_hostname=self.domain
            ) as smtp:
                self._open(smtp)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            if codes and all(code >= 500 for code in codes):
                raise PermanentDeliveryError(f"recipient refused (SMTP {codes[0]})") from None
            raise

    def _open(self, smtp: smtplib.SMTP) -> None:
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if self.username:
            smtp.login(self.username, self.password or "")

    def _message(self, to: str, subject: str, body: str, key: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(clock.now())
        message["Message-ID"] = f"<{key}@{self.domain}>"
        # Non-ASCII text goes base64: a relay without 8BITMIME would mangle raw UTF-8.
        message.set_content(body, cte=None if body.isascii() else "base64")
        return message


class FileSmsSender:
    """The development SMS provider: one JSON line per message, for a developer to `tail -f`.

    The file stands in for the customer's phone, so it holds the text in full (codes too);
    keep it out of production by configuring a real provider there.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send_sms(self, *, to: str, text: str, key: str) -> None:
        line = json.dumps(
            {"at": clock.now().isoformat(), "key": key, "to": to, "text": text},
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write of a whole line in append mode, under a lock: lines never interleave.
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(line + "\n")
        log.debug("sms %s written to the development SMS file", key)


def deliver_inapp(
    session: Session,
    *,
    customer_id: int,
    outbox_id: int,
    event: str,
    title: str,
    body: str,
    created_at: datetime,
) -> InboxMessage:
    """Put a message in the customer's inbox, in the transaction that marks it sent."""
    message = InboxMessage(
        customer_id=customer_id,
        outbox_id=outbox_id,
        event=event,
        title=title,
        body=body,
        created_at=created_at,
    )
    session.add(message)
    return message
