"""In-app inbox API: list the customer's messages, mark one read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from walletdesk.kit.clock import as_utc
from walletdesk.kit.http import RowId, db_of, run_idempotent
from walletdesk.notify import service
from walletdesk.notify.models import InboxMessage
from walletdesk.wallet.api import CustomerId

router = APIRouter(prefix="/v1", tags=["inbox"])


def message_out(message: InboxMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "event": message.event,
        "title": message.title,
        "body": message.body,
        "created_at": as_utc(message.created_at).isoformat(),
        "read_at": as_utc(message.read_at).isoformat() if message.read_at else None,
    }


@router.get("/inbox")
def list_inbox(
    request: Request,
    customer_id: CustomerId,
    unread_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Newest first, with the count of unread messages (for a badge)."""
    with db_of(request).unit_of_work() as session:
        messages = service.inbox(session, customer_id, unread_only=unread_only, limit=limit)
        return {
            "messages": [message_out(m) for m in messages],
            "unread": service.unread_count(session, customer_id),
        }


@router.post("/inbox/{message_id}/read")
def mark_read(request: Request, message_id: RowId, customer_id: CustomerId) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 200, message_out(service.mark_read(session, customer_id, message_id))

    return run_idempotent(request, f"customer:{customer_id}", None, operation)
