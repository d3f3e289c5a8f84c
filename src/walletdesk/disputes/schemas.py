"""Dispute API shapes: what customers, merchants and staff send, and what each of them sees.

A merchant sees what it needs to answer (the payment, the reason, the amount, the deadline),
not the customer's own words or files; staff see everything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from walletdesk.disputes.models import DisputeReason, MerchantResponse
from walletdesk.disputes.service import DisputeView, EvidenceInfo
from walletdesk.kit.clock import as_utc
from walletdesk.wallet.schemas import AmountText, Strict, money_fields

DESCRIPTION_MAX_LENGTH = 2000


class DisputeIn(Strict):
    transaction_number: str = Field(min_length=12, max_length=20, examples=["482913005731"])
    reason: DisputeReason
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX_LENGTH)
    amount: AmountText | None = Field(
        default=None, description="Omit to dispute all of the payment not yet refunded"
    )


class EvidenceUpload(BaseModel):
    """What identifies an upload for its Idempotency-Key (the bytes travel as the body)."""

    filename: str
    size: int
    sha256: str


class MerchantResponseIn(Strict):
    decision: MerchantResponse = Field(
        description="accept: refund the customer now; contest: ask staff to review"
    )
    explanation: str = Field(default="", max_length=DESCRIPTION_MAX_LENGTH)

    @model_validator(mode="after")
    def _contest_needs_explanation(self) -> MerchantResponseIn:
        if self.decision == MerchantResponse.CONTEST and not self.explanation:
            raise ValueError("say why you contest the dispute (explanation)")
        return self


class ProvisionalCreditIn(Strict):
    amount: AmountText | None = Field(default=None, description="Omit to hold the disputed amount")


class DecisionIn(Strict):
    outcome: Literal["won", "lost"] = Field(description="won: the customer is refunded")
    reason: str = Field(min_length=1, max_length=DESCRIPTION_MAX_LENGTH)


def dispute_out(view: DisputeView) -> dict[str, Any]:
    """The customer's view of their dispute."""
    dispute = view.dispute
    credit = None
    if view.provisional_state is not None:
        credit = {
            "state": view.provisional_state,
            **money_fields("amount", dispute.provisional_credit, dispute.currency),
        }
    return {
        **merchant_dispute_out(view),
        "case_number": view.case_number,
        "merchant": view.merchant_name,
        "description": dispute.description,
        "provisional_credit": credit,
        "offers": list(view.offers),
        "evidence": [_evidence_out(e) for e in view.evidence],
        "updated_at": _iso(dispute.updated_at),
    }


def merchant_dispute_out(view: DisputeView) -> dict[str, Any]:
    dispute = view.dispute
    response = None
    if dispute.merchant_response is not None:
        response = {
            "decision": dispute.merchant_response,
            "explanation": dispute.merchant_explanation,
            "responded_at": _iso(dispute.merchant_responded_at),
        }
    return {
        "id": dispute.id,
        "transaction_number": view.transaction_number,
        "reason": dispute.reason,
        "status": dispute.status,
        "currency": dispute.currency,
        **money_fields("amount", dispute.amount, dispute.currency),
        "respond_by": _iso(dispute.respond_by),
        "merchant_response": response,
        "outcome_reason": dispute.outcome_reason,
        "refund_number": view.refund_number,
        "created_at": _iso(dispute.created_at),
        "closed_at": _iso(dispute.closed_at),
    }


def desk_dispute_out(view: DisputeView) -> dict[str, Any]:
    dispute = view.dispute
    return {
        **dispute_out(view),
        "customer_id": dispute.customer_id,
        "channel": dispute.channel,
        "filed_by": dispute.filed_by,
        "provisional_granted_by": dispute.provisional_granted_by,
        "decided_by": dispute.decided_by,
    }


def page_out(items: list[dict[str, Any]], next_cursor: int | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


def _evidence_out(evidence: EvidenceInfo) -> dict[str, Any]:
    return {
        "id": evidence.id,
        "filename": evidence.filename,
        "content_type": evidence.content_type,
        "size": evidence.size,
        "created_at": _iso(evidence.created_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None
