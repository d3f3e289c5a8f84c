"""Notifications end to end on SQLite and PostgreSQL: outbox, worker, real SMTP, SMS file, inbox.

Email goes through a real SMTP server (aiosmtpd) on a free loopback port, and the tests read
what it received; SMS go to the development provider's file.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from walletdesk.config import Settings, get_settings
from walletdesk.db import Database, is_sqlite
from walletdesk.jobs import Job, JobRunner, default_jobs
from walletdesk.kit import clock
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.errors import DomainError
from walletdesk.notify import service as notify_service
from walletdesk.notify import worker
from walletdesk.notify.api import router as inbox_router
from walletdesk.notify.models import InboxMessage, OutboxMessage
from walletdesk.notify.providers import FileSmsSender, Senders, SmtpEmailSender
from walletdesk.notify.service import inbox, mark_read, notify
from walletdesk.support import cases
from walletdesk.support.models import Case
from walletdesk.wallet.models import Customer

PHONE, EMAIL = "+8613800000001", "li.lei@example.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """A real SMTP server on a loopback port that keeps every message it accepts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.refuse_recipients = False
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_recipients:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
        self.arrived.set()
        return "250 Message accepted"

    def start(self) -> None:
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, server_hostname="mail.test"
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    box.start()
    yield box
    box.stop()


@pytest.fixture
def mailbox_down() -> Iterator[Mailbox]:
    """A mailbox whose server is not running yet: sends to its port are refused."""
    box = Mailbox(free_port())
    yield box
    box.stop()


def senders_for(box: Mailbox, sms_file: Path) -> Senders:
    email = SmtpEmailSender(
        "127.0.0.1", box.port, sender="walletdesk <no-reply@walletdesk.test>", timeout=5
    )
    return Senders(email, FileSmsSender(sms_file))


@pytest.fixture
def sms_file(tmp_path: Path) -> Path:
    return tmp_path / "sms.log"


@pytest.fixture
def senders(mailbox: Mailbox, sms_file: Path) -> Senders:
    return senders_for(mailbox, sms_file)


def add_customer(
    db: Database, *, language: str = "zh-CN", phone: str | None = PHONE, email: str | None = EMAIL
) -> int:
    with db.unit_of_work() as session:
        customer = Customer(
            display_name="Li Lei", phone=phone, email=email, language=language,
            created_at=clock.now(),
        )  # fmt: skip
        session.add(customer)
        session.flush()
        return customer.id


def sms_lines(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def outbox_rows(db: Database) -> list[OutboxMessage]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def raw_outbox(db: Database) -> str:
    """Every stored value of every outbox row, as the database hands it out."""
    with db.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM outbox_messages")).all()
    return "\n".join(repr(value) for row in rows for value in row)


# --- the transaction decides ---------------------------------------------------------------------


def test_a_rolled_back_change_sends_nothing(
    db: Database, mailbox: Mailbox, senders: Senders, sms_file: Path
) -> None:
    customer_id = add_customer(db)
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        assert len(notify(session, customer_id, "password_changed")) == 3
        raise RuntimeError("the password change failed after all")
    assert worker.deliver_due(db, senders) == 0
    assert outbox_rows(db) == []
    assert mailbox.messages == [] and sms_lines(sms_file) == []
    with db.unit_of_work() as session:
        assert inbox(session, customer_id) == []


def test_a_committed_change_reaches_email_sms_and_inbox_in_the_customers_language(
    db: Database, mailbox: Mailbox, senders: Senders, sms_file: Path
) -> None:
    customer_id = add_customer(db, language="zh-CN")
    with db.unit_of_work() as session:
        ids = notify(session, customer_id, "account_locked", {"reason": "failed_logins"})
    assert len(ids) == 3

    assert worker.deliver_due(db, senders) == 3

    [mail] = mailbox.messages
    assert mail["To"] == EMAIL
    assert mail["Subject"] == "您的 walletdesk 账户已被锁定"
    body = mail.get_content()
    assert "登录密码连续输错次数过多" in body and get_settings().hotline_number in body
    [sms] = sms_lines(sms_file)
    assert sms["to"] == PHONE and sms["text"].startswith("【walletdesk】")
    assert "登录密码连续输错次数过多" in sms["text"]
    with db.unit_of_work() as session:
        [message] = inbox(session, customer_id)
        assert message.title == "您的 walletdesk 账户已被锁定" and message.read_at is None
    assert {(row.status, row.attempts) for row in outbox_rows(db)} == {("sent", 1)}

    assert worker.deliver_due(db, senders) == 0  # nothing goes out twice
    assert len(mailbox.messages) == 1 and len(sms_lines(sms_file)) == 1


def test_an_english_customer_gets_english_and_a_code_goes_where_it_is_told(
    db: Database, mailbox: Mailbox, senders: Senders, sms_file: Path
) -> None:
    customer_id = add_customer(db, language="en", email=None)
    new_phone = "+8613900000002"
    login = {"code": "118604", "minutes": 10, "purpose": "login"}
    change = {"code": "604118", "minutes": 10, "purpose": "change_phone"}
    with db.unit_of_work() as session:
        # No email on file, and a code never goes to the inbox: only the SMS.
        assert len(notify(session, customer_id, "one_time_code", login)) == 1
        ids = notify(session, customer_id, "one_time_code", change, channels=("sms",), to=new_phone)
        assert len(ids) == 1
        with pytest.raises(ValueError, match="single"):
            notify(session, customer_id, "one_time_code", change, to=new_phone)
    assert worker.deliver_due(db, senders) == 2
    own, new = sms_lines(sms_file)
    assert own["to"] == PHONE and "Your code to sign in is 118604" in own["text"]
    assert new["to"] == new_phone
    assert new["text"].startswith("[walletdesk] Your code to change your phone number is 604118")
    assert mailbox.messages == []
    with db.unit_of_work() as session:
        assert inbox(session, customer_id) == []


def test_an_unknown_event_or_channel_is_a_programming_error(db: Database) -> None:
    customer_id = add_customer(db)
    with db.unit_of_work() as session:
        with pytest.raises(ValueError, match="unknown notification event"):
            notify(session, customer_id, "free_money")
        with pytest.raises(ValueError, match="channels"):
            notify(session, customer_id, "pin_changed", channels=("pigeon",))
        with pytest.raises(ValueError, match="needs params: reason"):
            notify(session, customer_id, "account_locked")


# --- failures and retries ----------------------------------------------------------------------


def test_smtp_down_is_retried_with_backoff_and_then_delivered(
    db: Database, frozen_clock: FrozenClock, mailbox_down: Mailbox, sms_file: Path
) -> None:
    senders = senders_for(mailbox_down, sms_file)
    customer_id = add_customer(db, language="en")
    with db.unit_of_work() as session:
        notify(session, customer_id, "pin_changed", channels=("email",))
    started = frozen_clock.now()

    assert worker.deliver_due(db, senders) == 0
    [row] = outbox_rows(db)
    assert (row.status, row.attempts) == ("pending", 1)
    assert clock.as_utc(row.next_attempt_at) == started + worker.backoff(1)
    assert row.last_error is not None and row.last_error.startswith("ConnectionRefusedError")

    frozen_clock.advance(worker.backoff(1) / 2)
    assert worker.deliver_due(db, senders) == 0  # not due yet: no hammering a dead server
    assert outbox_rows(db)[0].attempts == 1

    frozen_clock.advance(worker.backoff(1) / 2)
    assert worker.deliver_due(db, senders) == 0  # still down: the wait doubles
    [row] = outbox_rows(db)
    assert row.attempts == 2
    assert clock.as_utc(row.next_attempt_at) == frozen_clock.now() + worker.backoff(2)

    mailbox_down.start()
    frozen_clock.advance(worker.backoff(2))
    assert worker.deliver_due(db, senders) == 1
    [mail] = mailbox_down.messages
    assert mail["Subject"] == "Your walletdesk payment PIN was changed"
    [row] = outbox_rows(db)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


def test_after_the_last_attempt_a_message_is_marked_failed_not_dropped(
    db: Database, frozen_clock: FrozenClock, mailbox_down: Mailbox, sms_file: Path
) -> None:
    senders = senders_for(mailbox_down, sms_file)
    customer_id = add_customer(db)
    with db.unit_of_work() as session:
        notify(session, customer_id, "account_frozen", channels=("email",))
    for attempt in range(1, worker.MAX_ATTEMPTS + 1):
        assert worker.deliver_due(db, senders) == 0
        frozen_clock.advance(worker.backoff(attempt))
    [row] = outbox_rows(db)
    assert (row.status, row.attempts) == ("failed", worker.MAX_ATTEMPTS)
    assert row.last_error and row.last_error.startswith("ConnectionRefusedError")


def test_an_address_the_server_refuses_for_good_fails_at_once(
    db: Database, mailbox: Mailbox, senders: Senders
) -> None:
    mailbox.refuse_recipients = True
    customer_id = add_customer(db)
    with db.unit_of_work() as session:
        notify(session, customer_id, "account_unfrozen", channels=("email",))
    assert worker.deliver_due(db, senders) == 0
    [row] = outbox_rows(db)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "PermanentDeliveryError"


def test_a_worker_that_dies_after_claiming_leaves_the_message_to_another(
    db: Database, frozen_clock: FrozenClock, mailbox: Mailbox, senders: Senders
) -> None:
    customer_id = add_customer(db)
    with db.unit_of_work() as session:
        notify(session, customer_id, "password_changed", channels=("email",))
    assert len(worker._claim(db, 10)) == 1  # claimed, then the process was killed
    assert worker.deliver_due(db, senders) == 0  # leased: nobody else sends it meanwhile
    frozen_clock.advance(worker.LEASE)
    assert worker.deliver_due(db, senders) == 1
    assert len(mailbox.messages) == 1


# --- secrets -------------------------------------------------------------------------------------


def test_codes_and_reset_links_are_never_stored_or_logged_in_clear(
    db: Database,
    caplog: pytest.LogCaptureFixture,
    frozen_clock: FrozenClock,
    mailbox_down: Mailbox,
    sms_file: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="walletdesk")
    senders = senders_for(mailbox_down, sms_file)
    code, token = "739204", "Zr8kQ2mV7pLx4nW1sT6yB3cD9fH0jK5a"
    link = f"https://wallet.example/reset-password#token={token}"
    customer_id = add_customer(db, language="en")
    with db.unit_of_work() as session:
        notify(
            session, customer_id, "one_time_code", {"code": code, "minutes": 10, "purpose": "login"}
        )
        reset = {"link": link, "minutes": 60}
        notify(session, customer_id, "password_reset_link", reset, channels=("email",))
    stored = raw_outbox(db)
    assert code not in stored and token not in stored

    assert worker.deliver_due(db, senders) == 1  # the SMS; the SMTP server is down
    mailbox_down.start()
    frozen_clock.advance(worker.backoff(1))
    assert worker.deliver_due(db, senders) == 2  # both emails, on retry

    # They did go out in full, to the customer...
    bodies = " ".join(m.get_content() for m in mailbox_down.messages)
    assert code in bodies and link in bodies
    assert code in sms_lines(sms_file)[0]["text"]
    # ...and nowhere else: not in the table after sending and failing, not in any log line.
    stored = raw_outbox(db)
    assert code not in stored and token not in stored
    assert "ConnectionRefusedError" in caplog.text  # the failure was logged, without secrets
    assert code not in caplog.text and token not in caplog.text
    assert EMAIL not in caplog.text and PHONE not in caplog.text


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_workers_never_send_the_same_message_twice(
    db: Database, mailbox: Mailbox, senders: Senders
) -> None:
    customer_id = add_customer(db)
    total = 60
    with db.unit_of_work() as session:
        for _ in range(total):
            notify(session, customer_id, "pin_changed", channels=("email",))
    start = threading.Barrier(8)
    counts: list[int] = []

    def work() -> None:
        start.wait()
        sent = 0
        while (batch := worker.deliver_due(db, senders, batch=3)) > 0:
            sent += batch
        counts.append(sent)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    ids = [m["Message-ID"] for m in mailbox.messages]
    assert len(ids) == total and len(set(ids)) == total
    assert sum(counts) == total and sum(1 for c in counts if c) >= 2  # the work was shared
    assert {row.status for row in outbox_rows(db)} == {"sent"}


def test_a_claim_skips_rows_another_worker_is_claiming(
    db: Database, mailbox: Mailbox, senders: Senders
) -> None:
    if is_sqlite(db.engine):
        pytest.skip("SQLite has a single writer: two claims never overlap")
    customer_id = add_customer(db)
    with db.unit_of_work() as session:
        ids = [notify(session, customer_id, "pin_changed", channels=("email",))[0] for _ in "abcd"]
    locker = db.sessions()
    try:
        # Another worker mid-claim holds row locks on the first two messages.
        locker.execute(
            select(OutboxMessage.id).where(OutboxMessage.id.in_(ids[:2])).with_for_update()
        ).all()
        result: list[int] = []
        other = threading.Thread(target=lambda: result.append(worker.deliver_due(db, senders)))
        other.start()
        other.join(timeout=30)
        assert not other.is_alive(), "the claim waited for locked rows instead of skipping them"
        assert result == [2]
    finally:
        locker.rollback()
        locker.close()
    assert worker.deliver_due(db, senders) == 2
    assert len({m["Message-ID"] for m in mailbox.messages}) == 4


def test_the_background_worker_delivers_after_commit_and_stops(
    db: Database, mailbox: Mailbox, senders: Senders
) -> None:
    customer_id = add_customer(db)
    background = worker.BackgroundWorker(db, senders, poll_seconds=0.05).start()
    try:
        with db.unit_of_work() as session:
            notify(session, customer_id, "password_changed", channels=("email",))
        assert mailbox.arrived.wait(timeout=20)
    finally:
        background.stop()
    assert not background.thread.is_alive()
    assert len(mailbox.messages) == 1


def test_the_workers_tick_marks_a_late_case_and_sends_despite_a_failing_job(
    db: Database, frozen_clock: FrozenClock, mailbox: Mailbox, senders: Senders
) -> None:
    customer_id = add_customer(db)
    with db.unit_of_work() as session:
        case = cases.open_case(
            session,
            customer_id=customer_id,
            type="payment_failed",
            subject="付款失败",
            channel="phone",
            actor="system",
        )
        notify(session, customer_id, "password_changed", channels=("email",))

    def broken(session: object) -> None:
        raise RuntimeError("a bug in some other job")

    jobs = [Job("broken", timedelta(seconds=1), broken), *default_jobs(Settings())]
    frozen_clock.advance(timedelta(days=30))  # far past every first-response target
    assert worker.tick(db, senders, JobRunner(db, jobs)) >= 1

    with db.unit_of_work() as session:
        marked = session.get(Case, case.id)
        assert marked is not None and marked.first_response_breached_at is not None
    subjects = [str(message["Subject"]) for message in mailbox.messages]
    assert any("密码" in subject for subject in subjects), subjects


def test_in_process_worker_follows_the_setting(db: Database, senders: Senders) -> None:
    assert worker.start_in_process(db, Settings(run_worker_in_process=False), senders) is None
    started = worker.start_in_process(db, Settings(run_worker_in_process=True), senders)
    assert started is not None
    started.stop()
    assert not started.thread.is_alive()


# --- the inbox -----------------------------------------------------------------------------------


def deliver_inapp(db: Database, customer_id: int, event: str, params: dict[str, Any]) -> None:
    with db.unit_of_work() as session:
        notify(session, customer_id, event, params, channels=("inapp",))
    assert worker.deliver_due(db, Senders(None, None)) == 1  # type: ignore[arg-type]


def test_inbox_lists_newest_first_and_marks_read_only_the_owners_messages(db: Database) -> None:
    alice, bob = add_customer(db, language="en"), add_customer(db, phone=None, email=None)
    deliver_inapp(db, alice, "pin_changed", {})
    deliver_inapp(db, alice, "contact_changed", {"what": "email"})
    with db.unit_of_work() as session:
        first, second = inbox(session, alice)
        assert first.title == "Your walletdesk email address was changed"
        assert second.title == "Your walletdesk payment PIN was changed"
        mark_read(session, alice, second.id)
        with pytest.raises(DomainError) as caught:
            mark_read(session, bob, first.id)
        assert caught.value.code == "not_found"
    with db.unit_of_work() as session:
        assert [m.id for m in inbox(session, alice, unread_only=True)] == [first.id]
        assert notify_service.unread_count(session, alice) == 1
        assert session.scalar(select(func.count()).select_from(InboxMessage)) == 2


def test_inbox_api_lists_and_marks_read(db: Database, tmp_path: Path) -> None:
    from walletdesk.app import create_app
    from walletdesk.identity import sessions

    customer_id = add_customer(db, language="en")
    deliver_inapp(db, customer_id, "account_frozen", {})
    with db.unit_of_work() as session:
        _, token = sessions.start(session, customer_id, device_id=None)
    settings = Settings(gateway_sandbox_path=tmp_path / "gateway.db", run_worker_in_process=False)
    app = create_app(settings, db)
    if not any(getattr(r, "path", "") == "/v1/inbox" for r in app.routes):
        app.include_router(inbox_router)  # until app.py includes it
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {token}"}

    listed = client.get("/v1/inbox", headers=auth)
    assert listed.status_code == 200
    [message] = listed.json()["messages"]
    assert message["title"] == "Your walletdesk account is frozen" and message["read_at"] is None
    assert listed.json()["unread"] == 1

    url = f"/v1/inbox/{message['id']}/read"
    assert client.post(url, headers=auth).status_code == 400  # Idempotency-Key required
    read = client.post(url, headers={**auth, "Idempotency-Key": "read-1"})
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert client.get("/v1/inbox?unread_only=true", headers=auth).json()["messages"] == []
    assert client.get("/v1/inbox").status_code == 401
