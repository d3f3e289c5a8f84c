"""Inbound support email through a real SMTP listener, on SQLite and PostgreSQL.

Each test sends real mail with smtplib to the support listener (aiosmtpd on a free loopback
port) running against the test's database, then reads the cases it filed. Acknowledgements go
out through the real outbox worker to a second SMTP server standing in for the customer's.
"""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from tests.integration.wallet_support import Person

from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.notify import worker
from walletdesk.notify.models import OutboxMessage
from walletdesk.notify.providers import FileSmsSender, Senders, SmtpEmailSender
from walletdesk.support import cases
from walletdesk.support.email_channel import mail_listener
from walletdesk.support.models import Case, CaseEvent, CaseStatus, Contact

SUPPORT = "help@walletdesk.test"
NO_REPLY = "walletdesk <no-reply@walletdesk.test>"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CustomerMailbox:
    """The customer's mail server: a real SMTP server that keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, _class=EmailMessage, policy=policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 OK"


@pytest.fixture
def mail_settings(db: Database) -> Settings:
    return Settings(
        database_url=db.url,
        support_address=SUPPORT,
        smtp_from=NO_REPLY,
        rate_limits={"support.email": "3/1h"},
    )


@pytest.fixture
def support_port(db: Database, mail_settings: Settings) -> Iterator[int]:
    """The support address's listener, as `walletdesk mail-listener` runs it."""
    port = free_port()
    listener = mail_listener(db, mail_settings, "127.0.0.1", port)
    yield port
    listener.stop()


@pytest.fixture
def customer_mailbox() -> Iterator[CustomerMailbox]:
    box = CustomerMailbox()
    box.controller.start()
    yield box
    box.controller.stop()


def send(
    port: int,
    *,
    sender: str,
    subject: str,
    body: str = "",
    html: str | None = None,
    to: str = SUPPORT,
    headers: dict[str, str] | None = None,
    envelope_from: str | None = None,
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    for name, value in (headers or {}).items():
        message[name] = value
    if html is None:
        message.set_content(body)
    else:
        message.set_content(html, subtype="html")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message, from_addr=envelope_from)


def deliver_outbox(db: Database, mailbox: CustomerMailbox, tmp_path: Path) -> None:
    email = SmtpEmailSender("127.0.0.1", mailbox.port, sender=NO_REPLY, timeout=5)
    worker.drain(db, Senders(email, FileSmsSender(tmp_path / "sms.log")))


def all_cases(db: Database) -> list[Case]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(Case).order_by(Case.id)))


def messages_on(db: Database, case: Case) -> list[str | None]:
    with db.unit_of_work() as session:
        events = session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case.id, CaseEvent.kind == "message_in")
            .order_by(CaseEvent.id)
        )
        return [event.body for event in events]


def outbox(db: Database) -> list[OutboxMessage]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_the_same_message_delivered_twice_is_filed_once(
    db: Database, customer: Callable[..., Person], support_port: int
) -> None:
    customer("Li Lei", email="li.lei@example.com", language="en")
    mail = {
        "sender": "Li Lei <li.lei@example.com>",
        "subject": "Charged twice",
        "body": "I was charged twice for one coffee.",
    }
    for _ in range(2):  # the mail server did not hear our 250 and delivers again
        send(support_port, **mail, headers={"Message-ID": "<c0ffee.1@mail.example.com>"})

    (case,) = all_cases(db)
    assert messages_on(db, case) == ["I was charged twice for one coffee."]
    assert [m.event for m in outbox(db)] == ["case_email_received"]  # one acknowledgement

    send(support_port, **mail, headers={"Message-ID": "<c0ffee.2@mail.example.com>"})
    assert len(all_cases(db)) == 2  # a new message with the same words is filed


def test_a_customers_email_opens_a_case_and_a_reply_to_the_acknowledgement_joins_it(
    db: Database,
    customer: Callable[..., Person],
    support_port: int,
    customer_mailbox: CustomerMailbox,
    tmp_path: Path,
) -> None:
    li = customer("Li Lei", email="li.lei@example.com", language="en")
    send(
        support_port,
        sender="Li Lei <Li.Lei@example.com>",
        subject="My top-up is missing",
        body="I topped up 100 yuan yesterday and it is not in my wallet.",
    )

    (case,) = all_cases(db)
    assert (case.customer_id, case.channel, case.type) == (li.id, "email", "other")
    assert case.subject == "My top-up is missing"
    assert messages_on(db, case) == ["I topped up 100 yuan yesterday and it is not in my wallet."]
    with db.unit_of_work() as session:
        (contact,) = session.scalars(select(Contact).where(Contact.case_id == case.id))
        assert (contact.channel, contact.origin, contact.customer_id) == (
            "email",
            "li.lei@example.com",
            li.id,
        )

    deliver_outbox(db, customer_mailbox, tmp_path)
    (acknowledgement,) = customer_mailbox.messages
    assert acknowledgement["To"] == "li.lei@example.com"
    assert (
        acknowledgement["Subject"] == f"[Case {case.number}] We received your email: {case.subject}"
    )

    send(
        support_port,
        sender="li.lei@example.com",
        subject=f"Re: {acknowledgement['Subject']}",
        body="The receipt number is 4411.\n\nOn Thu, walletdesk wrote:\n> Thank you for writing",
    )
    assert [c.id for c in all_cases(db)] == [case.id]
    assert messages_on(db, case)[-1] == "The receipt number is 4411."
    assert len(outbox(db)) == 1  # a follow-up on a case is not acknowledged again


def test_a_chinese_reply_with_only_html_threads_by_the_case_number(
    db: Database, customer: Callable[..., Person], support_port: int
) -> None:
    customer("韩梅梅", email="han@example.cn")
    send(support_port, sender="han@example.cn", subject="付款失败", body="付款一直失败")
    (case,) = all_cases(db)

    send(
        support_port,
        sender="韩梅梅 <han@example.cn>",
        subject=f"回复:[工单 {case.number}] 我们已收到您的邮件",
        html="<html><head><style>p {color: red}</style></head>"
        "<body><p>订单号 <b>8821</b></p><p>谢谢</p></body></html>",
    )
    assert [c.id for c in all_cases(db)] == [case.id]
    assert messages_on(db, case) == ["付款一直失败", "订单号 8821\n谢谢"]


def test_nobody_can_write_on_someone_elses_case_by_quoting_its_number(
    db: Database, customer: Callable[..., Person], support_port: int
) -> None:
    customer("Li Lei", email="li.lei@example.com")
    send(support_port, sender="li.lei@example.com", subject="Card declined", body="Why?")
    (own,) = all_cases(db)

    send(
        support_port,
        sender="mallory@example.net",
        subject=f"Re: [Case {own.number}] Card declined",
        body="Please change this account's phone number to +8613900000000",
    )
    owned, stranger = all_cases(db)
    assert messages_on(db, owned) == ["Why?"]
    assert (stranger.customer_id, stranger.requester_email) == (None, "mallory@example.net")
    assert len(outbox(db)) == 1  # only the customer was acknowledged: unknown senders never are

    # The stranger's own case number does thread their own mail.
    send(support_port, sender="mallory@example.net", subject=f"#{stranger.number}", body="Hello?")
    assert len(all_cases(db)) == 2
    assert messages_on(db, stranger)[-1] == "Hello?"


def test_mail_about_a_closed_case_opens_a_new_case_linked_to_it(
    db: Database, customer: Callable[..., Person], support_port: int
) -> None:
    customer("Li Lei", email="li.lei@example.com")
    send(support_port, sender="li.lei@example.com", subject="Refund", body="Where is it?")
    (closed,) = all_cases(db)
    with db.unit_of_work() as session:
        case = cases.find_case(session, closed.number)
        for status in (CaseStatus.OPEN, CaseStatus.RESOLVED, CaseStatus.CLOSED):
            cases.change_status(session, case, status, "staff:1")

    send(support_port, sender="li.lei@example.com", subject=f"Re: [Case {closed.number}] Refund")
    _, follow_up = all_cases(db)
    assert messages_on(db, closed) == ["Where is it?"]
    with db.unit_of_work() as session:
        links = cases.links_of(session, follow_up)
        assert [(link.kind, link.ref) for link in links] == [("case", closed.number)]
    acknowledgements = [row for row in outbox(db) if row.event == "case_email_received"]
    assert len(acknowledgements) == 2  # the new case is acknowledged with its own number


@pytest.mark.parametrize(
    ("sender", "headers", "envelope_from"),
    [
        ("li.lei@example.com", {"Auto-Submitted": "auto-replied"}, None),
        ("li.lei@example.com", {"Precedence": "bulk"}, None),
        ("li.lei@example.com", {"X-Autoreply": "yes"}, None),
        ("mailer-daemon@example.com", {}, ""),  # a bounce: the null envelope sender
        (SUPPORT, {}, None),  # our own mail coming back
    ],
    ids=["auto-submitted", "precedence-bulk", "x-autoreply", "bounce", "own-address"],
)
def test_automatic_mail_and_our_own_are_accepted_but_file_nothing(
    db: Database,
    customer: Callable[..., Person],
    support_port: int,
    sender: str,
    headers: dict[str, str],
    envelope_from: str | None,
) -> None:
    customer("Li Lei", email="li.lei@example.com")
    send(
        support_port,
        sender=sender,
        subject="Out of office",
        body="I am away until Monday.",
        headers=headers,
        envelope_from=envelope_from,
    )
    assert all_cases(db) == []
    assert outbox(db) == []


def test_a_sender_over_the_limit_is_told_to_retry_later(db: Database, support_port: int) -> None:
    for n in range(3):
        send(support_port, sender="flood@example.net", subject=f"Help {n}")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(support_port, sender="flood@example.net", subject="Help again")
    assert refused.value.smtp_code == 451
    assert b"try again later" in refused.value.smtp_error
    assert len(all_cases(db)) == 3
    send(support_port, sender="someone.else@example.net", subject="Hello")
    assert len(all_cases(db)) == 4


def test_the_listener_takes_mail_only_for_the_support_address(
    db: Database, support_port: int
) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(support_port, sender="li.lei@example.com", subject="Hi", to="ceo@walletdesk.test")
    assert all_cases(db) == []
