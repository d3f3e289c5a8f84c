"""Web chat: a customer chats with an agent; when nobody can answer, the chat says so honestly.

The database holds the truth, so any number of server processes can serve chats. A chat is a
Contact on channel "chat": waiting while it has no agent, in progress once an agent accepted
it, over once it has ended. Its case (channel "chat") is opened by the first thing said, or by
the agent accepting, so a customer who looks in and leaves opens none. What is said is on the
case's timeline (message_in, message_out), as are the agent joining (chat_joined) and an agent
dropping out (chat_requeued, the chat waits again). Ending a chat ends its contact with a
summary, which sends the customer their record (cases.end_contact).

Out of hours or while the customer waits, they may leave a message instead: it opens the case
and ends the chat, and an agent answers on the case.

Sockets never read each other's memory. `ChatHub` only wakes the sockets of this process when
something changes; every socket also polls the database every `chat_poll_seconds`, which
carries changes made by other processes. (Redis pub/sub could replace the polling; it is not
needed for correctness.) An agent's availability is the hotline's shared presence
(AgentPresence): one state per agent for chats and calls alike, so a customer on any process
is told of agents free on every process. An agent who says "available" in the chat desk may
also be offered calls; one who closes the desk they made themselves available in is away.

Browsers cannot set headers on a WebSocket, so a socket authenticates with a ticket from a
normal authenticated POST: signed with the server's key, naming its holder, good for
TICKET_SECONDS and for one connection (a "chat.ticket" rate limit of 1 per ticket, which stores
only a keyed hash of it and is shared by every process).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.db import Database
from walletdesk.hotline.models import AgentPresence, AgentState
from walletdesk.hotline.queue import presence_of, set_presence
from walletdesk.kit import clock, ratelimit
from walletdesk.kit.clock import as_utc
from walletdesk.kit.crypto import keyed_digest, random_token, same
from walletdesk.kit.errors import DomainError
from walletdesk.notify.templates import language_of
from walletdesk.staff.models import StaffUser
from walletdesk.support import cases
from walletdesk.support import channel_errors as _errors  # noqa: F401  (registers the codes)
from walletdesk.support.models import Case, CaseEvent, CaseStatus, CaseType, Contact
from walletdesk.support.service import get_schedule, is_open
from walletdesk.wallet.models import Customer

CHANNEL = "chat"
TICKET_SECONDS = 60
MESSAGE_LIMIT = 4000
SUBJECT_CHARS = 200  # Case.subject
QUOTE_CHARS = 120  # of the first message, in an automatic summary
WAITING_SHOWN = 50
# Timeline entries a chat's participants are shown, in order.
SHOWN_KINDS = ("chat_joined", "message_in", "message_out", "chat_requeued")

# Words for the customer, (en, zh), filled with str.format.
TEXTS: dict[str, tuple[str, str]] = {
    "closed": (
        "Our chat is closed now. We open again on {when} ({zone} time). You can leave a message "
        "here and we will answer it on a case.",
        "在线客服现在不在服务时间，将于 {when}（{zone} 时间）恢复服务。您可以在这里留言，"
        "我们会通过工单回复您。",
    ),
    "closed_indefinitely": (
        "Our chat is closed, and no opening time is set yet. You can leave a message here and "
        "we will answer it on a case.",
        "在线客服暂停服务，尚未确定恢复时间。您可以在这里留言，我们会通过工单回复您。",
    ),
    "no_agent": (
        "No agent is free right now. {waiting} waiting, you are number {position}. Stay here "
        "and an agent will join you, or leave a message and we will answer it on a case.",
        "目前没有空闲的客服。共 {waiting} 位在等待，您排在第 {position} 位。您可以继续等待，"
        "也可以留言，我们会通过工单回复您。",
    ),
    "queued": (
        "An agent will be with you shortly. {waiting} waiting, you are number {position}. You "
        "can also leave a message and we will answer it on a case.",
        "客服马上为您服务。共 {waiting} 位在等待，您排在第 {position} 位。您也可以留言，"
        "我们会通过工单回复您。",
    ),
    "joined": ("{agent} joined the chat.", "客服 {agent} 已接入。"),
    "requeued": (
        "Your agent was disconnected; you are back in line.",
        "客服连接已断开，已为您重新排队。",
    ),
    "message_left": (
        "Thank you. Your message is on case {case_number}; we will answer it there, and you "
        "will find the answer in your inbox and by email.",
        "感谢留言。您的留言已记录在工单 {case_number}，我们会在工单中回复，回复也会发送到"
        "您的 App 消息和邮箱。",
    ),
    "ended": (
        "The chat has ended. We sent you its record (case {case_number}).",
        "会话已结束，服务记录已发送给您（工单号 {case_number}）。",
    ),
    "ended_empty": ("The chat has ended.", "会话已结束。"),
    "left_summary": (
        "You left us a message in the web chat: “{quote}”",
        "您在在线客服留言：“{quote}”",
    ),
    "left_next": (
        "An agent will answer on this case; the answer comes to your inbox and by email.",
        "客服会在此工单中回复您，回复会发送到您的 App 消息和邮箱。",
    ),
    "chat_summary": (
        "You chatted with {agent} in the web chat, starting with: “{quote}”",
        "您通过在线客服与 {agent} 沟通，您的问题：“{quote}”",
    ),
    "chat_summary_unanswered": (
        "You left the web chat before an agent joined. You wrote: “{quote}”",
        "您在客服接入前离开了在线客服。您写道：“{quote}”",
    ),
    "left_empty": (
        "You left the web chat before anything was said.",
        "您在发言前离开了在线客服。",
    ),
    "chat_next": (
        "If anything is still open, write on case {case_number} in the app, or chat with us "
        "again and give the case number.",
        "如问题仍未解决，请在 App 中工单 {case_number} 下留言，或再次联系在线客服并提供工单号。",
    ),
    "new_chat_subject": ("Web chat", "在线客服会话"),
}


def text(name: str, language: str, **values: Any) -> str:
    en, zh = TEXTS[name]
    return (zh if language == "zh-CN" else en).format(**values)


# --- tickets -------------------------------------------------------------------------------------


def issue_ticket(kind: str, holder_id: int) -> str:
    """A ticket for one socket of `kind` ("customer" or "staff") `holder_id`."""
    expires = int((clock.now() + timedelta(seconds=TICKET_SECONDS)).timestamp())
    claims = f"{kind}.{holder_id}.{expires}.{random_token(16)}"
    return f"{claims}.{_ticket_mac(claims)}"


def redeem_ticket(db: Database, ticket: str, kind: str) -> int:
    """The holder's id, once: the use is committed at once, whatever happens next."""
    claims, _, mac = ticket.rpartition(".")
    parts = claims.split(".")
    if len(parts) != 4 or not same(mac, _ticket_mac(claims)) or parts[0] != kind:
        raise DomainError("chat_ticket_invalid")
    _, holder_id, expires, nonce = parts
    if int(expires) <= clock.now().timestamp():
        raise DomainError("chat_ticket_invalid")
    try:
        ratelimit.hit(db, "chat.ticket", nonce)
    except DomainError:
        raise DomainError("chat_ticket_invalid") from None
    return int(holder_id)


def _ticket_mac(claims: str) -> str:
    return keyed_digest(f"chat-ticket:{claims}")


# --- what each side is shown ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opening:
    """What a customer finds on connecting: a chat to wait in, or closed until `opens_at`."""

    language: str
    chat_id: int | None
    opens_at: datetime | None = None
    zone: str | None = None

    def closed_text(self) -> str:
        if self.opens_at is None:
            return text("closed_indefinitely", self.language)
        assert self.zone is not None
        local = self.opens_at.astimezone(ZoneInfo(self.zone))
        if self.language == "zh-CN":
            when = f"{local.month}月{local.day}日 {local:%H:%M}"
        else:
            when = f"{local:%a %d %b %H:%M}"
        return text("closed", self.language, when=when, zone=self.zone)


@dataclass(frozen=True, slots=True)
class ChatEntry:
    id: int
    kind: str
    body: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ChatView:
    """One chat as it stands, with its timeline entries after a cursor."""

    chat_id: int
    language: str
    agent_id: int | None
    case_number: str | None
    ended: bool
    message_left: bool  # it ended with the customer leaving a message
    position: int | None  # in line, while waiting
    waiting: int  # chats waiting in all
    agents_free: int  # on every process
    entries: list[ChatEntry]


@dataclass(frozen=True, slots=True)
class WaitingChat:
    chat_id: int
    since: datetime
    language: str
    first_message: str | None


def waiting_text(view: ChatView) -> str:
    name = "queued" if view.agents_free else "no_agent"
    return text(name, view.language, waiting=view.waiting, position=view.position)


def ended_text(view: ChatView) -> str:
    if view.case_number is None:
        return text("ended_empty", view.language)
    return text("ended", view.language, case_number=view.case_number)


def chat_view(session: Session, chat_id: int, after: int = 0) -> ChatView:
    contact = _chat(session, chat_id)
    case = session.get(Case, contact.case_id) if contact.case_id else None
    entries: list[ChatEntry] = []
    if case is not None:
        rows = session.scalars(
            select(CaseEvent)
            .where(
                CaseEvent.contact_id == contact.id,
                CaseEvent.kind.in_(SHOWN_KINDS),
                CaseEvent.id > after,
            )
            .order_by(CaseEvent.id)
        )
        entries = [ChatEntry(e.id, e.kind, e.body, as_utc(e.created_at)) for e in rows]
    waiting = session.scalar(select(func.count()).where(_waiting())) or 0
    last_said = _said(session, contact, latest=True) if contact.ended_at else None
    position = None
    if contact.agent_id is None and contact.ended_at is None:
        position = session.scalar(select(func.count()).where(_waiting(), Contact.id <= contact.id))
    return ChatView(
        chat_id=contact.id,
        language=_language(session, contact.customer_id),
        agent_id=contact.agent_id,
        case_number=case.number if case else None,
        ended=contact.ended_at is not None,
        message_left=last_said is not None and bool(last_said.data.get("left_message")),
        position=position,
        waiting=waiting,
        agents_free=agents_free(session),
        entries=entries,
    )


def waiting_chats(session: Session) -> list[WaitingChat]:
    """The chats no agent has taken yet, longest waiting first."""
    contacts = session.scalars(
        select(Contact).where(_waiting()).order_by(Contact.id).limit(WAITING_SHOWN)
    )
    return [
        WaitingChat(
            chat_id=contact.id,
            since=as_utc(contact.started_at),
            language=_language(session, contact.customer_id),
            first_message=first.body if (first := _said(session, contact)) else None,
        )
        for contact in list(contacts)
    ]


@dataclass(frozen=True, slots=True)
class DeskView:
    waiting: list[WaitingChat]
    chats: list[ChatView]  # the agent's, each with its entries after the agent's cursor
    agents_free: int
    available: bool  # this agent


def desk_view(session: Session, staff_id: int, cursors: dict[int, int]) -> DeskView:
    """The waiting line, and the agent's chats (those in progress and those the agent was shown
    until now, which may have ended since), with what was said after `cursors` (chat -> entry)."""
    chat_ids = sorted(set(agents_chats(session, staff_id)) | set(cursors))
    views = [chat_view(session, chat_id, cursors.get(chat_id, 0)) for chat_id in chat_ids]
    presence = session.get(AgentPresence, staff_id)
    available = presence is not None and presence.state == AgentState.AVAILABLE
    return DeskView(waiting_chats(session), views, agents_free(session), available)


def agents_free(session: Session) -> int:
    """Agents available on any process, not held by a call offered to them."""
    return (
        session.scalar(
            select(func.count())
            .select_from(AgentPresence)
            .join(StaffUser, StaffUser.id == AgentPresence.staff_id)
            .where(
                AgentPresence.state == AgentState.AVAILABLE,
                AgentPresence.current_entry_id.is_(None),
                StaffUser.disabled_at.is_(None),
            )
        )
        or 0
    )


def agents_chats(session: Session, staff_id: int) -> list[int]:
    """The chats this agent is in now."""
    query = select(Contact.id).where(
        Contact.channel == CHANNEL, Contact.agent_id == staff_id, Contact.ended_at.is_(None)
    )
    return list(session.scalars(query.order_by(Contact.id)))


def desk_agent(session: Session, staff_id: int) -> StaffUser:
    """The staff member a desk ticket names, if their account still works."""
    staff = session.get(StaffUser, staff_id)
    if staff is None or staff.disabled_at is not None:
        raise DomainError("chat_ticket_invalid")
    return staff


def agent_name(session: Session, staff_id: int | None) -> str | None:
    staff = session.get(StaffUser, staff_id) if staff_id is not None else None
    return staff.display_name if staff else None


# --- the customer's side -------------------------------------------------------------------------


def connect_customer(session: Session, customer_id: int) -> Opening:
    """Their chat to wait in (the one they already have open, if any), or why there is none."""
    language = _language(session, customer_id)
    hours = is_open(session, CHANNEL)
    if not hours.open:
        zone = get_schedule(session, CHANNEL).zone
        return Opening(language, None, opens_at=hours.opens_at, zone=zone)
    contact = session.scalars(
        select(Contact).where(
            Contact.channel == CHANNEL,
            Contact.customer_id == customer_id,
            Contact.ended_at.is_(None),
        )
    ).first()
    if contact is None:
        contact = cases.open_contact(
            session, channel=CHANNEL, customer_id=customer_id, origin="web"
        )
    return Opening(language, contact.id)


def customer_says(session: Session, customer_id: int, chat_id: int, body: str) -> CaseEvent:
    body = _checked(body)
    contact = _live_chat(session, chat_id, customer_id=customer_id)
    case = _case_of(session, contact, subject=body)
    return cases.add_event(
        session,
        case,
        "message_in",
        actor=f"customer:{customer_id}",
        body=body,
        data={"channel": CHANNEL},
        contact_id=contact.id,
    )


def leave_message(
    session: Session, customer_id: int, body: str, chat_id: int | None = None
) -> Case:
    """The customer's message on a case of its own; the chat (if any) ends with it."""
    body = _checked(body)
    if chat_id is None:
        contact = cases.open_contact(
            session, channel=CHANNEL, customer_id=customer_id, origin="web"
        )
    else:
        contact = _live_chat(session, chat_id, customer_id=customer_id)
    case = _case_of(session, contact, subject=body)
    actor = f"customer:{customer_id}"
    cases.add_event(
        session,
        case,
        "message_in",
        actor=actor,
        body=body,
        data={"channel": CHANNEL, "left_message": True},
        contact_id=contact.id,
    )
    language = _language(session, customer_id)
    cases.end_contact(
        session,
        contact,
        summary=text("left_summary", language, quote=_quote(body)),
        next_steps=text("left_next", language),
        actor=actor,
    )
    return case


# --- the agent's side ----------------------------------------------------------------------------


def set_available(session: Session, staff: StaffUser, available: bool) -> None:
    """The agent's shared presence: available (for chats and calls) or away."""
    set_presence(session, staff, AgentState.AVAILABLE if available else AgentState.AWAY)


def agent_left(session: Session, staff: StaffUser, made_available: bool) -> list[int]:
    """An agent's desk socket closed: their chats wait for the next agent, and if that socket
    made them available and they still are, they are away; the chats released."""
    if made_available and presence_of(session, staff.id).state == AgentState.AVAILABLE:
        set_presence(session, staff, AgentState.AWAY)
    return release_all(session, staff.id)


def accept(session: Session, staff: StaffUser, chat_id: int) -> Contact:
    """Take a waiting chat; the first agent to try gets it, any other gets chat_taken."""
    taken = session.execute(
        update(Contact)
        .where(Contact.id == chat_id, _waiting())
        .values(agent_id=staff.id)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise DomainError("chat_taken", chat_id=chat_id)
    contact = _chat(session, chat_id, refresh=True)
    language = _language(session, contact.customer_id)
    case = _case_of(session, contact, subject=text("new_chat_subject", language))
    if case.status == CaseStatus.NEW:
        cases.change_status(session, case, CaseStatus.OPEN, staff.actor)
    if case.owner_id is None:
        cases.assign(session, case, staff.id, staff.actor)
    cases.add_event(
        session, case, "chat_joined", actor=staff.actor, body=staff.display_name, contact_id=chat_id
    )
    record(
        session,
        actor=staff.actor,
        action="chat.accepted",
        subject=f"case:{case.number}",
        detail={"contact_id": chat_id},
    )
    return contact


def agent_says(session: Session, staff: StaffUser, chat_id: int, body: str) -> CaseEvent:
    body = _checked(body)
    contact = _agents_chat(session, staff, chat_id)
    return cases.add_event(
        session,
        _case_taken(session, contact),
        "message_out",
        actor=staff.actor,
        body=body,
        data={"channel": CHANNEL},
        contact_id=contact.id,
    )


def release_all(session: Session, staff_id: int) -> list[int]:
    """An agent who dropped out: each of their chats waits for the next agent."""
    released = []
    for chat_id in agents_chats(session, staff_id):
        contact = _chat(session, chat_id, for_update=True)
        if contact.ended_at is None and contact.agent_id == staff_id:
            contact.agent_id = None
            cases.add_event(
                session,
                _case_taken(session, contact),
                "chat_requeued",
                actor=f"staff:{staff_id}",
                contact_id=chat_id,
            )
            released.append(chat_id)
    return released


# --- ending --------------------------------------------------------------------------------------


def end_by_agent(
    session: Session, staff: StaffUser, chat_id: int, summary: str, next_steps: str | None
) -> Contact:
    """The agent closes the chat with their summary; the customer gets it as their record."""
    contact = _agents_chat(session, staff, chat_id, for_update=True)
    case = _case_taken(session, contact)
    language = _language(session, contact.customer_id)
    cases.end_contact(
        session,
        contact,
        summary=_checked(summary),
        next_steps=next_steps or text("chat_next", language, case_number=case.number),
        actor=staff.actor,
    )
    record(
        session,
        actor=staff.actor,
        action="chat.ended",
        subject=f"case:{case.number}",
        detail={"contact_id": chat_id},
    )
    return contact


def end_by_customer(session: Session, customer_id: int, chat_id: int) -> Contact | None:
    """The customer left: the chat ends with a summary written for them (None if already over).

    A chat in which nothing was said and nobody joined has no case, and no record to send.
    """
    contact = _chat(session, chat_id, for_update=True)
    if contact.customer_id != customer_id or contact.ended_at is not None:
        return None
    language = _language(session, customer_id)
    first = _said(session, contact)
    agent = agent_name(session, contact.agent_id) or _agent_who_joined(session, contact)
    quote = _quote(first.body or "") if first else ""
    if first is None and agent is None:
        summary = text("left_empty", language)
    elif agent is None:
        summary = text("chat_summary_unanswered", language, quote=quote)
    else:
        summary = text("chat_summary", language, agent=agent, quote=quote)
    case = session.get(Case, contact.case_id) if contact.case_id else None
    next_steps = text("chat_next", language, case_number=case.number) if case else ""
    return cases.end_contact(
        session, contact, summary=summary, next_steps=next_steps, actor=f"customer:{customer_id}"
    )


# --- in this process -----------------------------------------------------------------------------


class ChatHub:
    """This process's chat sockets: which to wake when something changes. Used from the event
    loop only; the database holds everything else."""

    QUEUE = "queue"  # the waiting line: agents' lists and waiting customers' positions

    def __init__(self) -> None:
        self._bells: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    @staticmethod
    def chat_topic(chat_id: int) -> str:
        return f"chat:{chat_id}"

    def subscribe(self, topic: str, bell: asyncio.Event) -> None:
        self._bells[topic].add(bell)

    def unsubscribe(self, bell: asyncio.Event, topic: str | None = None) -> None:
        """Stop ringing `bell` for `topic`, or for every topic."""
        for name in [topic] if topic is not None else list(self._bells):
            bells = self._bells.get(name, set())
            bells.discard(bell)
            if not bells:
                self._bells.pop(name, None)

    def ring(self, *topics: str) -> None:
        for topic in topics:
            for bell in self._bells.get(topic, ()):
                bell.set()


# --- helpers -------------------------------------------------------------------------------------


def _waiting() -> Any:
    return (Contact.channel == CHANNEL) & Contact.agent_id.is_(None) & Contact.ended_at.is_(None)


def _chat(
    session: Session, chat_id: int, *, for_update: bool = False, refresh: bool = False
) -> Contact:
    query = select(Contact).where(Contact.id == chat_id, Contact.channel == CHANNEL)
    if for_update:
        query = query.with_for_update()
    if refresh or for_update:
        query = query.execution_options(populate_existing=True)
    contact = session.scalars(query).one_or_none()
    if contact is None:
        raise DomainError("chat_not_found", chat_id=chat_id)
    return contact


def _live_chat(session: Session, chat_id: int, *, customer_id: int) -> Contact:
    contact = _chat(session, chat_id)
    if contact.customer_id != customer_id or contact.ended_at is not None:
        raise DomainError("chat_not_found", chat_id=chat_id)
    return contact


def _agents_chat(
    session: Session, staff: StaffUser, chat_id: int, *, for_update: bool = False
) -> Contact:
    contact = _chat(session, chat_id, for_update=for_update)
    if contact.ended_at is not None:
        raise DomainError("chat_not_found", chat_id=chat_id)
    if contact.agent_id != staff.id:
        raise DomainError("chat_not_yours", chat_id=chat_id)
    return contact


def _case_taken(session: Session, contact: Contact) -> Case:
    """The case of a chat an agent took (accepting opens it)."""
    case = session.get(Case, contact.case_id) if contact.case_id else None
    assert case is not None, "an accepted chat always has its case"
    return case


def _case_of(session: Session, contact: Contact, *, subject: str) -> Case:
    """The chat's case, opened now if this is the first thing that needs it."""
    if contact.case_id is not None:
        case = session.get(Case, contact.case_id)
        assert case is not None
        return case
    case = cases.open_case(
        session,
        customer_id=contact.customer_id,
        type=CaseType.OTHER,
        subject=" ".join(subject.split())[:SUBJECT_CHARS] or "Web chat",
        channel=CHANNEL,
        actor=f"customer:{contact.customer_id}",
    )
    contact.case_id = case.id
    session.flush()
    return case


def _said(session: Session, contact: Contact, *, latest: bool = False) -> CaseEvent | None:
    """The customer's first (or latest) message in the chat."""
    if contact.case_id is None:
        return None
    order = CaseEvent.id.desc() if latest else CaseEvent.id
    return session.scalars(
        select(CaseEvent)
        .where(CaseEvent.contact_id == contact.id, CaseEvent.kind == "message_in")
        .order_by(order)
        .limit(1)
    ).first()


def _agent_who_joined(session: Session, contact: Contact) -> str | None:
    """Who last took the chat, for a summary after they dropped out."""
    if contact.case_id is None:
        return None
    return session.scalar(
        select(CaseEvent.body)
        .where(CaseEvent.contact_id == contact.id, CaseEvent.kind == "chat_joined")
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )


def _language(session: Session, customer_id: int | None) -> str:
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    return language_of(customer.language if customer else None)


def _checked(body: str) -> str:
    body = body.strip()
    if not 0 < len(body) <= MESSAGE_LIMIT:
        raise DomainError("chat_message_invalid", limit=MESSAGE_LIMIT)
    return body


def _quote(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= QUOTE_CHARS else flat[: QUOTE_CHARS - 1] + "…"
