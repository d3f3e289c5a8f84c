"""What the agent-desk tests share: staff, contacts verified through the real paths, and
readers for what a customer would receive and what the audit log kept.

A possession code is read where the customer would read it: the outbox message sent to their
registered phone or email.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from walletdesk.audit.models import AuditEvent
from walletdesk.db import Database
from walletdesk.kit import clock
from walletdesk.kit.errors import DomainError
from walletdesk.notify.models import OutboxMessage
from walletdesk.notify.service import open_params
from walletdesk.risk.rules import RiskEvent
from walletdesk.risk.service import evaluate
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.staff.service import create_staff, issue_session
from walletdesk.support import verification
from walletdesk.support.models import Contact
from walletdesk.wallet.models import Customer
from walletdesk.wallet.service import transfers

PASSWORD = "quiet harbour lantern 7"
# Four cards in a day make the risk engine lock (risk rule many_cards).
EXTRA_CARDS = ("5555555555554444", "4000000000009995", "4000000000000002", "378282246310005")


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_staff(
    db: Database,
    username: str,
    role: StaffRole = StaffRole.AGENT,
    *,
    per_action: int = 0,
    per_day: int = 0,
) -> Member:
    with db.unit_of_work() as session:
        staff, _secret = create_staff(
            session,
            username=username,
            display_name=username,
            role=role,
            password=PASSWORD,
            goodwill_per_action=per_action,
            goodwill_per_day=per_day,
        )
        return Member(staff.id, issue_session(session, staff))


def staff_in(session: Any, member: Member) -> StaffUser:
    staff = session.get(StaffUser, member.id)
    assert staff is not None
    return staff


def open_call(db: Database, agent: Member, origin: str | None = None) -> int:
    """A phone contact for `agent`; a registered calling number attaches its customer."""
    with db.unit_of_work() as session:
        contact = verification.open_desk_contact(
            session, staff_in(session, agent), channel="phone", origin=origin
        )
        return contact.id


def send_money(db: Database, books: Any, sender_id: int, to: str, amount: int) -> str:
    """Money the customer sent someone (what a recent-amount check asks for); its number."""
    books.fund(sender_id, amount)
    with db.unit_of_work() as session:
        txn = transfers.send(session, sender_id, to, amount, "CNY")
        assert txn.status == "succeeded", txn.failure_code
        return txn.number


def overlapping(
    db: Database, first: Callable[[Any], Any], second: Callable[[Any], Any]
) -> tuple[Any, Any]:
    """Run `first`, then `second` while first's transaction is still open, each in its own unit
    of work and thread; their outcomes (a result or the DomainError raised). `first` commits
    once `second` is done, or after a second at most: long enough for a `second` that does not
    wait on a lock to finish, the way one waiting for first's row lock never can."""
    first_ran, second_done = threading.Event(), threading.Event()
    outcomes: dict[str, Any] = {}

    def run(name: str, action: Callable[[Any], Any], after_call: Callable[[], None]) -> None:
        try:
            with db.unit_of_work() as session:
                outcomes[name] = action(session)
                after_call()
        except DomainError as error:
            outcomes[name] = error
        finally:
            first_ran.set()
            if name == "second":
                second_done.set()

    def hold_open() -> None:
        first_ran.set()
        second_done.wait(timeout=1)

    def after_first() -> None:
        first_ran.wait()
        run("second", second, lambda: None)

    threads = [
        threading.Thread(target=run, args=("first", first, hold_open)),
        threading.Thread(target=after_first),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes["first"], outcomes["second"]


def attach(db: Database, agent: Member, contact_id: int, login: str) -> bool:
    with db.unit_of_work() as session:
        contact = verification.own_contact(session, staff_in(session, agent), contact_id)
        return verification.attach_customer(session, contact, staff_in(session, agent), login)


# Codes a caller reads back to an agent, and codes sent to a new phone or email being confirmed.
CODE_EVENTS = ("support_verification_code", "one_time_code")


def latest_code(db: Database, customer_id: int) -> tuple[str, str]:
    """(destination, code) of the newest one-time code message to the customer."""
    with db.unit_of_work() as session:
        message = session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.customer_id == customer_id, OutboxMessage.event.in_(CODE_EVENTS))
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        ).scalar_one()
        return message.destination or "", str(open_params(message)["code"])


def verify_strong(db: Database, agent: Member, contact_id: int, channel: str = "sms") -> None:
    """Send a code to the registered phone and read it back, as the caller would."""
    with db.unit_of_work() as session:
        staff = staff_in(session, agent)
        contact = verification.own_contact(session, staff, contact_id)
        verification.send_possession_code(session, contact, staff, channel)
        customer_id = contact.customer_id
    assert customer_id is not None
    _destination, code = latest_code(db, customer_id)
    with db.unit_of_work() as session:
        staff = staff_in(session, agent)
        contact = verification.own_contact(session, staff, contact_id)
        assert verification.check_possession_code(session, contact, staff, code) is None


def contact_level(db: Database, contact_id: int) -> str:
    with db.unit_of_work() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact.verification_level


def messages(db: Database, customer_id: int, event: str) -> list[tuple[str, str | None, dict]]:
    """(channel, destination, params) of each message of `event` queued for the customer."""
    with db.unit_of_work() as session:
        rows = session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.customer_id == customer_id, OutboxMessage.event == event)
            .order_by(OutboxMessage.id)
        ).scalars()
        return [(m.channel, m.destination, open_params(m)) for m in rows]


def audit_events(db: Database, action: str) -> list[tuple[str, str | None, dict]]:
    """(actor, subject, detail) of each audit event named `action`, oldest first."""
    with db.unit_of_work() as session:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).scalars()
        return [(e.actor, e.subject, json.loads(e.detail_json or "{}")) for e in rows]


def status_of(db: Database, customer_id: int) -> str:
    with db.unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.status


def lock_by_risk_engine(db: Database, books: Any, customer_id: int) -> None:
    """Cards added one after another, then the engine's look: it locks and opens an alert."""
    for number in EXTRA_CARDS:
        books.card(customer_id, number)
    with db.unit_of_work() as session:
        evaluate(session, RiskEvent(kind="card_added", customer_id=customer_id, at=clock.now()))
    assert status_of(db, customer_id) == "locked"
