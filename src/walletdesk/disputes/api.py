"""Dispute REST API for customers (/v1/disputes), merchants (/v1/merchant/disputes) and the
support desk (/v1/desk/disputes, and filing for a verified caller on a contact).

Evidence is uploaded as the raw request body (Content-Type as the file's, `?filename=`): the
file's type is recognised from its bytes, and a body over the size limit is refused while it is
still arriving.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from walletdesk.audit.service import record
from walletdesk.disputes import schemas, service
from walletdesk.disputes.models import DisputeStatus
from walletdesk.identity.api import CallerDep
from walletdesk.kit.errors import DomainError
from walletdesk.kit.http import MAX_ID, RowId, db_of, run_idempotent, settings_of
from walletdesk.staff.api import require_staff
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.support.actions import authorize
from walletdesk.wallet.api import CustomerId, MerchantId, amount_of
from walletdesk.wallet.service import history

router = APIRouter(prefix="/v1/disputes", tags=["disputes"])
merchant_router = APIRouter(prefix="/v1/merchant/disputes", tags=["merchant"])
desk_router = APIRouter(prefix="/v1/desk", tags=["desk"])

# Agents file for callers, grant provisional credit and read the evidence; deciding who gets
# the merchant's money is a supervisor's call (the agent who took the complaint does not also
# judge it).
Desk = Annotated[StaffUser, Depends(require_staff(StaffRole.AGENT, StaffRole.SUPERVISOR))]
Supervisor = Annotated[StaffUser, Depends(require_staff(StaffRole.SUPERVISOR))]
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID, description="next_cursor of the last page")]
Limit = Annotated[int, Query(ge=1, le=100)]
StatusFilter = Annotated[DisputeStatus | None, Query()]


# --- customers ----------------------------------------------------------------------------------


@router.post("", status_code=201)
def file_dispute(request: Request, body: schemas.DisputeIn, customer_id: CustomerId) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        return 201, schemas.dispute_out(
            _file(session, customer_id, body, actor=f"customer:{customer_id}")
        )

    return run_idempotent(request, f"customer:{customer_id}", body, operation)


@router.get("")
def list_disputes(
    request: Request, customer_id: CustomerId, cursor: Cursor = None, limit: Limit = 20
) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        page = service.customer_disputes(session, customer_id, before_id=cursor, limit=limit)
        return schemas.page_out([schemas.dispute_out(v) for v in page.items], page.next_cursor)


@router.get("/{dispute_id}")
def get_dispute(request: Request, dispute_id: RowId, customer_id: CustomerId) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        return schemas.dispute_out(service.dispute_status(session, customer_id, dispute_id))


async def evidence_body(request: Request) -> bytes:
    """The uploaded file, refused as soon as it outgrows the limit (never held whole)."""
    limit = settings_of(request).dispute_evidence_max_kb * 1024
    too_large = DomainError("evidence_too_large", max_kb=limit // 1024)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    content = bytearray()
    async for chunk in request.stream():
        content += chunk
        if len(content) > limit:
            raise too_large
    return bytes(content)


@router.post("/{dispute_id}/evidence", status_code=201)
def add_evidence(
    request: Request,
    dispute_id: RowId,
    customer_id: CustomerId,
    content: Annotated[bytes, Depends(evidence_body)],
    filename: Annotated[str, Query(min_length=1, max_length=200)] = "evidence",
) -> Response:
    upload = schemas.EvidenceUpload(
        filename=filename, size=len(content), sha256=hashlib.sha256(content).hexdigest()
    )

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        service.add_evidence(session, customer_id, dispute_id, filename, content)
        return 201, schemas.dispute_out(service.dispute_status(session, customer_id, dispute_id))

    return run_idempotent(request, f"customer:{customer_id}", upload, operation)


@router.post("/{dispute_id}/withdraw")
def withdraw(request: Request, dispute_id: RowId, customer_id: CustomerId) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        service.withdraw(session, customer_id, dispute_id, actor=f"customer:{customer_id}")
        return 200, schemas.dispute_out(service.dispute_status(session, customer_id, dispute_id))

    return run_idempotent(request, f"customer:{customer_id}", None, operation)


@router.post("/{dispute_id}/freeze-account")
def freeze_account(request: Request, dispute_id: RowId, caller: CallerDep) -> Response:
    """Take up the offer made with an unauthorised-charge dispute: nothing more can leave."""
    customer_id = caller.customer_id

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        service.freeze_for_dispute(session, customer_id, dispute_id, keep_session=caller.session_id)
        return 200, {"status": "frozen"}

    return run_idempotent(request, f"customer:{customer_id}", None, operation)


# --- merchants ----------------------------------------------------------------------------------


@merchant_router.get("")
def merchant_disputes(
    request: Request,
    merchant_id: MerchantId,
    status: StatusFilter = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        page = service.merchant_disputes(
            session, merchant_id, status=status, before_id=cursor, limit=limit
        )
        return schemas.page_out(
            [schemas.merchant_dispute_out(v) for v in page.items], page.next_cursor
        )


@merchant_router.post("/{dispute_id}/response")
def respond(
    request: Request, dispute_id: RowId, body: schemas.MerchantResponseIn, merchant_id: MerchantId
) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        service.respond(session, merchant_id, dispute_id, body.decision, body.explanation)
        return 200, schemas.merchant_dispute_out(service.desk_dispute(session, dispute_id))

    return run_idempotent(request, f"merchant:{merchant_id}", body, operation)


# --- the support desk ---------------------------------------------------------------------------


@desk_router.get("/disputes")
def desk_disputes(
    request: Request,
    staff: Desk,
    status: StatusFilter = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        page = service.desk_disputes(session, status=status, before_id=cursor, limit=limit)
        return schemas.page_out([schemas.desk_dispute_out(v) for v in page.items], page.next_cursor)


@desk_router.get("/disputes/{dispute_id}")
def desk_dispute(request: Request, dispute_id: RowId, staff: Desk) -> dict[str, Any]:
    with db_of(request).unit_of_work() as session:
        view = service.desk_dispute(session, dispute_id)
        # Staff reading a customer's dispute leaves a trace, like every other look at an account.
        record(
            session,
            actor=staff.actor,
            action="desk.dispute_viewed",
            subject=f"dispute:{dispute_id}",
        )
        return schemas.desk_dispute_out(view)


@desk_router.get("/disputes/{dispute_id}/evidence/{evidence_id}", response_class=Response)
def evidence_file(request: Request, dispute_id: RowId, evidence_id: RowId, staff: Desk) -> Response:
    with db_of(request).unit_of_work() as session:
        evidence = service.evidence_file(session, dispute_id, evidence_id)
        record(
            session,
            actor=staff.actor,
            action="desk.evidence_downloaded",
            subject=f"dispute:{dispute_id}",
            detail={"evidence_id": evidence.id},
        )
        return Response(
            evidence.content,
            media_type=evidence.content_type,
            headers={"Content-Disposition": f'attachment; filename="evidence-{evidence.id}"'},
        )


@desk_router.post("/disputes/{dispute_id}/provisional-credit")
def provisional_credit(
    request: Request, dispute_id: RowId, body: schemas.ProvisionalCreditIn, staff: Desk
) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        view = service.desk_dispute(session, dispute_id)
        amount = None if body.amount is None else amount_of(body.amount, view.dispute.currency)
        service.grant_provisional_credit(session, dispute_id, amount, actor=staff.actor)
        return 200, schemas.desk_dispute_out(service.desk_dispute(session, dispute_id))

    return run_idempotent(request, staff.actor, body, operation)


@desk_router.post("/disputes/{dispute_id}/decision")
def decide(
    request: Request, dispute_id: RowId, body: schemas.DecisionIn, staff: Supervisor
) -> Response:
    def operation(session: Session, _key: str) -> tuple[int, Any]:
        service.decide(session, dispute_id, body.outcome, body.reason, actor=staff.actor)
        return 200, schemas.desk_dispute_out(service.desk_dispute(session, dispute_id))

    return run_idempotent(request, staff.actor, body, operation)


@desk_router.post("/contacts/{contact_id}/disputes", status_code=201)
def file_for_caller(
    request: Request, contact_id: RowId, body: schemas.DisputeIn, staff: Desk
) -> Response:
    """File a dispute for the caller on this contact, once verified to the level it needs."""

    def operation(session: Session, _key: str) -> tuple[int, Any]:
        contact = authorize(session, staff, contact_id, "file_dispute")
        assert contact.customer_id is not None  # authorize admits only a known customer
        view = _file(
            session,
            contact.customer_id,
            body,
            actor=staff.actor,
            channel=contact.channel,
            contact_id=contact.id,
        )
        return 201, schemas.desk_dispute_out(view)

    return run_idempotent(request, staff.actor, body, operation)


def _file(
    session: Session,
    customer_id: int,
    body: schemas.DisputeIn,
    *,
    actor: str,
    channel: str = "in_app",
    contact_id: int | None = None,
) -> service.DisputeView:
    """Read the amount in the payment's currency, file, and answer with the dispute's view."""
    amount = None
    if body.amount is not None:
        payment = history.get_by_number(session, customer_id, body.transaction_number)
        amount = amount_of(body.amount, payment.currency)
    dispute = service.file_dispute(
        session,
        customer_id,
        body.transaction_number,
        body.reason,
        body.description,
        amount,
        actor=actor,
        channel=channel,
        contact_id=contact_id,
    )
    return service.dispute_status(session, customer_id, dispute.id)
