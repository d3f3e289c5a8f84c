"""Demo data for disputes: one already filed and waiting on the merchant.

张伟's GameZone charge is left alone: it is the charge the README invites you to dispute. What
is filed here is his Lucky Coffee payment (two lattes, one never made): the shop refunded
10.00 of the 19.00 the missing latte cost, and he disputes the other 9.00.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.disputes.models import Dispute, DisputeReason
from walletdesk.disputes.service import file_dispute
from walletdesk.wallet.models import TxnStatus
from walletdesk.wallet.service.common import find_attempt

COFFEE_PAYMENT_KEY = "demo:zhang-coffee"  # the request key walletdesk.demo pays it with
STILL_OWED = 900


def seed_demo(session: Session, customer_ids: Mapping[str, int]) -> Dispute | None:
    """File the demo dispute once (None when the demo history lacks the coffee payment)."""
    payment = find_attempt(session, COFFEE_PAYMENT_KEY)
    if payment is None or payment.status != TxnStatus.SUCCEEDED:
        return None
    existing = session.execute(
        select(Dispute).where(Dispute.transaction_id == payment.id).order_by(Dispute.id)
    ).scalar()
    if existing is not None:
        return existing
    customer_id = customer_ids["zhangwei"]
    return file_dispute(
        session,
        customer_id,
        payment.number,
        DisputeReason.AMOUNT_WRONG,
        "点了两杯拿铁，只做了一杯。一杯 19 元，商家只退了 10 元，还差 9 元。",
        STILL_OWED,
        actor=f"customer:{customer_id}",
    )
