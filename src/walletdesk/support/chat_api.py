"""Web chat endpoints: a ticket over HTTP, then one WebSocket per customer or agent.

Get a ticket with the usual bearer token (POST /v1/support/chat/tickets for a customer,
POST /v1/desk/chat/tickets for an agent or supervisor), then connect within 60 s with
`?ticket=`. Ticket requests take no Idempotency-Key: the answer is a credential, which must not
be stored for replay, and asking again only gives another ticket.

Frames are JSON objects with a "type". A customer sends
  {"type": "message", "text": ...}        say something (once connected during hours)
  {"type": "leave_message", "text": ...}  leave a message on a case instead; the chat ends
  {"type": "end"}                          end the chat (closing the socket does too)
and receives
  closed {message, opens_at, can_leave_message}   out of hours
  waiting {message, waiting, position, agents_available, can_leave_message}
  joined {agent, message} · requeued {message} · message {id, from, text, at}
  message_left {case_number, message} · ended {case_number, message} · error {code, message}
An agent sends
  {"type": "available"} / {"type": "away"}
  {"type": "accept", "chat_id": n}
  {"type": "message", "chat_id": n, "text": ...}
  {"type": "end", "chat_id": n, "summary": ..., "next_steps": ... (optional)}
and receives
  queue {waiting: [{chat_id, since, language, first_message}], agents_available, available}
  accepted {chat_id, case_number, language} · joined {chat_id, agent} · requeued {chat_id}
  message {chat_id, id, from, text, at} · ended {chat_id, case_number} · error {code, message}
"available"/"away" set the agent's shared presence (the hotline's, seen by every process).
Closing an agent's socket puts their chats back in line for the next agent, and sets an agent
who made themselves available on it away.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, Query, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.kit.clock import as_utc
from walletdesk.kit.errors import DomainError
from walletdesk.kit.i18n import pick_language
from walletdesk.staff.api import require_staff
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support import chat
from walletdesk.support.chat import ChatEntry, ChatHub, ChatView, text
from walletdesk.wallet.api import CustomerId

router = APIRouter(tags=["support"])

DeskAgent = Annotated[StaffUser, Depends(require_staff(StaffRole.AGENT, StaffRole.SUPERVISOR))]
Ticket = Annotated[str, Query(max_length=200)]
REFUSED = 4401  # a close code of the application range: the ticket was not good
T = TypeVar("T")
Standing = tuple[int, int, int]  # (waiting, position, agents available) a customer was told


@router.post("/v1/support/chat/tickets", status_code=201)
def customer_ticket(customer_id: CustomerId) -> dict[str, Any]:
    """A ticket for WS /v1/support/chat?ticket=…: one connection, within 60 s."""
    return {"ticket": chat.issue_ticket("customer", customer_id), "expires_in": chat.TICKET_SECONDS}


@router.post("/v1/desk/chat/tickets", status_code=201)
def agent_ticket(staff: DeskAgent) -> dict[str, Any]:
    """A ticket for WS /v1/desk/chat?ticket=…: one connection, within 60 s."""
    return {"ticket": chat.issue_ticket("staff", staff.id), "expires_in": chat.TICKET_SECONDS}


@router.websocket("/v1/support/chat")
async def customer_chat(websocket: WebSocket, ticket: Ticket = "") -> None:
    await _CustomerSocket(websocket).run(ticket)


@router.websocket("/v1/desk/chat")
async def agent_chat(websocket: WebSocket, ticket: Ticket = "") -> None:
    await _AgentSocket(websocket).run(ticket)


def hub_of(websocket: WebSocket) -> ChatHub:
    state = websocket.app.state
    if getattr(state, "chat_hub", None) is None:
        state.chat_hub = ChatHub()
    return state.chat_hub


class _Socket:
    """What both sides share: the ticket, database calls off the event loop, one writer at a
    time, and a read loop and a push loop running until either is done."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.db: Database = websocket.app.state.db
        self.settings: Settings = websocket.app.state.settings
        self.hub = hub_of(websocket)
        self.bell = asyncio.Event()
        self.language = pick_language(
            websocket.headers.get("accept-language"), self.settings.default_language
        )
        self._writing = asyncio.Lock()
        self._closed = False

    async def authenticate(self, ticket: str, kind: str) -> int | None:
        await self.websocket.accept()
        try:
            return await run_in_threadpool(chat.redeem_ticket, self.db, ticket, kind)
        except DomainError as error:
            await self.send_error(error)
            await self.close(REFUSED)
            return None

    async def in_db(self, work: Callable[..., T], *args: Any) -> T:
        """`work(session, *args)` in a unit of work of its own, on a worker thread."""

        def run() -> T:
            with self.db.unit_of_work() as session:
                return work(session, *args)

        return await run_in_threadpool(run)

    async def send(self, kind: str, **fields: Any) -> None:
        async with self._writing:
            if not self._closed:
                await self.websocket.send_json({"type": kind, **fields})

    async def send_error(self, error: DomainError) -> None:
        await self.send("error", code=error.code, message=error.message(self.language))

    async def close(self, code: int = 1000) -> None:
        async with self._writing:
            if not self._closed:
                self._closed = True
                await self.websocket.close(code)

    def listen(self, *topics: str) -> None:
        for topic in topics:
            self.hub.subscribe(topic, self.bell)

    async def next_change(self) -> None:
        """Until this process rings, or it is time to look for other processes' changes."""
        with anyio.move_on_after(self.settings.chat_poll_seconds):
            await self.bell.wait()

    async def serve(self, *loops: Callable[[], Awaitable[None]]) -> None:
        """Run the loops until the first of them is done or the connection drops."""
        try:
            async with anyio.create_task_group() as group:
                for loop in loops:
                    group.start_soon(self._until_done, loop, group.cancel_scope)
        finally:
            self.hub.unsubscribe(self.bell)

    @staticmethod
    async def _until_done(loop: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
        try:
            await loop()
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass  # the other side left: nothing more to read or push
        finally:
            scope.cancel()

    async def read_loop(self) -> None:
        while not self._closed:
            try:
                frame = json.loads(await self.websocket.receive_text())
            except ValueError:
                await self.send_error(DomainError("invalid_request"))
                continue
            try:
                await self.handle(frame if isinstance(frame, dict) else {})
            except DomainError as error:
                await self.send_error(error)

    async def handle(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError


class _CustomerSocket(_Socket):
    customer_id: int
    chat_id: int | None

    async def run(self, ticket: str) -> None:
        customer_id = await self.authenticate(ticket, "customer")
        if customer_id is None:
            return
        self.customer_id = customer_id
        opening = await self.in_db(chat.connect_customer, customer_id)
        self.language, self.chat_id = opening.language, opening.chat_id
        if opening.chat_id is None:
            opens_at = as_utc(opening.opens_at).isoformat() if opening.opens_at else None
            await self.send(
                "closed",
                message=opening.closed_text(),
                opens_at=opens_at,
                can_leave_message=True,
            )
            await self.serve(self.read_loop)
            return
        chat_id = opening.chat_id
        self.listen(ChatHub.chat_topic(chat_id), ChatHub.QUEUE)
        self.hub.ring(ChatHub.QUEUE)  # agents see a new chat waiting
        try:
            await self.serve(self.read_loop, lambda: self.push_loop(chat_id))
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled connection still ends its chat
                await self.leave(chat_id)

    async def leave(self, chat_id: int) -> None:
        """The customer is gone: their chat ends, if nobody ended it yet."""
        if await self.in_db(chat.end_by_customer, self.customer_id, chat_id) is not None:
            self.hub.ring(ChatHub.chat_topic(chat_id), ChatHub.QUEUE)

    async def handle(self, frame: dict[str, Any]) -> None:
        kind, chat_id, customer_id = frame.get("type"), self.chat_id, self.customer_id
        if kind == "leave_message":
            body = _text(frame, "text")
            case = await self.in_db(chat.leave_message, customer_id, body, chat_id)
            if chat_id is None:  # out of hours: nobody else to tell, and nothing to wait for
                await self.send_message_left(case.number)
                await self.close()
            else:  # the push loop tells the customer, in order after anything said before
                self.hub.ring(ChatHub.chat_topic(chat_id), ChatHub.QUEUE)
        elif chat_id is None:
            raise DomainError("chat_closed")
        elif kind == "message":
            body = _text(frame, "text")
            await self.in_db(chat.customer_says, customer_id, chat_id, body)
            self.hub.ring(ChatHub.chat_topic(chat_id))
        elif kind == "end":
            await self.in_db(chat.end_by_customer, customer_id, chat_id)
            self.hub.ring(ChatHub.chat_topic(chat_id), ChatHub.QUEUE)
        else:
            raise DomainError("invalid_request")

    async def send_message_left(self, case_number: str) -> None:
        message = text("message_left", self.language, case_number=case_number)
        await self.send("message_left", case_number=case_number, message=message)

    async def push_loop(self, chat_id: int) -> None:
        cursor, told_waiting = 0, None
        while True:
            self.bell.clear()
            view = await self.in_db(chat.chat_view, chat_id, cursor)
            for entry in view.entries:
                await self.push_entry(entry)
                cursor = entry.id
                if entry.kind not in ("message_in", "message_out"):
                    told_waiting = None  # an agent came or went: where they stand is news again
            if view.ended:
                if view.message_left and view.case_number:
                    await self.send_message_left(view.case_number)
                else:
                    await self.send(
                        "ended", case_number=view.case_number, message=chat.ended_text(view)
                    )
                await self.close()
                return
            told_waiting = await self.push_waiting(view, told_waiting)
            await self.next_change()

    async def push_entry(self, entry: ChatEntry) -> None:
        if entry.kind == "chat_joined":
            agent = entry.body or ""
            await self.send(
                "joined", agent=agent, message=text("joined", self.language, agent=agent)
            )
        elif entry.kind == "chat_requeued":
            await self.send("requeued", message=text("requeued", self.language))
        else:
            await self.send("message", **_message_fields(entry))

    async def push_waiting(self, view: ChatView, told: Standing | None) -> Standing | None:
        """Tell a waiting customer where they stand, when that changed; what they were told."""
        if view.agent_id is not None or view.position is None:
            return None
        now = (view.waiting, view.position, view.agents_free)
        if now != told:
            await self.send(
                "waiting",
                message=chat.waiting_text(view),
                waiting=view.waiting,
                position=view.position,
                agents_available=view.agents_free,
                can_leave_message=True,
            )
        return now


class _AgentSocket(_Socket):
    staff: StaffUser
    made_available = False  # this socket last said "available"

    def __init__(self, websocket: WebSocket) -> None:
        super().__init__(websocket)
        # The agent's chats and the last entry shown of each; a chat is put here the moment
        # it is accepted, so that its end is shown even if it ends before the next look.
        self.cursors: dict[int, int] = {}
        self.announced: set[int] = set()

    async def run(self, ticket: str) -> None:
        staff_id = await self.authenticate(ticket, "staff")
        if staff_id is None:
            return
        try:
            self.staff = await self.in_db(chat.desk_agent, staff_id)
        except DomainError as error:
            await self.send_error(error)
            await self.close(REFUSED)
            return
        self.listen(ChatHub.QUEUE)
        try:
            await self.serve(self.read_loop, self.push_loop)
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled connection still lets go
                await self.let_go()

    async def let_go(self) -> None:
        """The agent is gone: their chats wait for the next agent."""
        released = await self.in_db(chat.agent_left, self.staff, self.made_available)
        self.hub.ring(ChatHub.QUEUE, *(ChatHub.chat_topic(c) for c in released))

    async def handle(self, frame: dict[str, Any]) -> None:
        kind, staff = frame.get("type"), self.staff
        if kind in ("available", "away"):
            await self.in_db(chat.set_available, staff, kind == "available")
            self.made_available = kind == "available"
            self.hub.ring(ChatHub.QUEUE)  # this agent's state, and waiting customers' counts
            return
        chat_id = _chat_id(frame)
        if kind == "accept":
            await self.in_db(chat.accept, staff, chat_id)
            self.cursors.setdefault(chat_id, 0)
            self.listen(ChatHub.chat_topic(chat_id))
            self.hub.ring(ChatHub.chat_topic(chat_id), ChatHub.QUEUE)
        elif kind == "message":
            body = _text(frame, "text")
            await self.in_db(chat.agent_says, staff, chat_id, body)
            self.hub.ring(ChatHub.chat_topic(chat_id))
        elif kind == "end":
            summary, next_steps = _text(frame, "summary"), frame.get("next_steps")
            steps = str(next_steps).strip() or None if next_steps is not None else None
            await self.in_db(chat.end_by_agent, staff, chat_id, summary, steps)
            self.hub.ring(ChatHub.chat_topic(chat_id), ChatHub.QUEUE)
        else:
            raise DomainError("invalid_request")

    async def push_loop(self) -> None:
        shown_queue: Any = None
        while True:
            self.bell.clear()
            desk = await self.in_db(chat.desk_view, self.staff.id, dict(self.cursors))
            shown_queue = await self.push_queue(desk, shown_queue)
            for view in desk.chats:
                await self.push_chat(view)
            await self.next_change()

    async def push_queue(self, desk: chat.DeskView, shown: Any) -> Any:
        queue = [
            {
                "chat_id": w.chat_id,
                "since": w.since.isoformat(),
                "language": w.language,
                "first_message": w.first_message,
            }
            for w in desk.waiting
        ]
        now = (queue, desk.agents_free, desk.available)
        if now != shown:
            await self.send("queue", waiting=queue, agents_available=now[1], available=now[2])
        return now

    async def push_chat(self, view: ChatView) -> None:
        if view.chat_id not in self.announced:
            self.announced.add(view.chat_id)
            self.listen(ChatHub.chat_topic(view.chat_id))
            await self.send(
                "accepted",
                chat_id=view.chat_id,
                case_number=view.case_number,
                language=view.language,
            )
        for entry in view.entries:
            if entry.kind == "chat_joined":
                await self.send("joined", chat_id=view.chat_id, agent=entry.body)
            elif entry.kind == "chat_requeued":
                await self.send("requeued", chat_id=view.chat_id)
            else:
                await self.send("message", chat_id=view.chat_id, **_message_fields(entry))
            self.cursors[view.chat_id] = entry.id
        if view.ended or view.agent_id != self.staff.id:
            if view.ended:
                await self.send("ended", chat_id=view.chat_id, case_number=view.case_number)
            self.cursors.pop(view.chat_id, None)
            self.announced.discard(view.chat_id)
            self.hub.unsubscribe(self.bell, ChatHub.chat_topic(view.chat_id))


def _message_fields(entry: ChatEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "from": "customer" if entry.kind == "message_in" else "agent",
        "text": entry.body,
        "at": entry.at.isoformat(),
    }


def _text(frame: dict[str, Any], name: str) -> str:
    value = frame.get(name)
    if not isinstance(value, str):
        raise DomainError("chat_message_invalid", limit=chat.MESSAGE_LIMIT)
    return value


def _chat_id(frame: dict[str, Any]) -> int:
    value = frame.get("chat_id")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DomainError("invalid_request")
    return value
