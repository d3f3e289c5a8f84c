"""Cards: only the gateway's token, the brand and the last four digits are kept."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.kit.crypto import keyed_digest
from walletdesk.kit.errors import DomainError
from walletdesk.wallet.gateway import CardGateway
from walletdesk.wallet.models import Card
from walletdesk.wallet.rules import check_card


def card_fingerprint(number: str) -> str:
    """Recognises the same card added again without keeping its number (keyed HMAC)."""
    return keyed_digest(f"card:{number}")


def add_card(
    session: Session,
    gateway: CardGateway,
    customer_id: int,
    number: str,
    exp_month: int,
    exp_year: int,
    cvc: str,
) -> Card:
    """Tokenise the card at the gateway; adding the same card again returns the existing one."""
    digits = check_card(number, exp_month, exp_year, clock.now().date())
    if not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise DomainError("card_number_invalid")
    fingerprint = card_fingerprint(digits)
    existing = session.execute(
        select(Card).where(
            Card.customer_id == customer_id,
            Card.fingerprint == fingerprint,
            Card.removed_at.is_(None),
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    tokenized = gateway.tokenize(digits, exp_month, exp_year, cvc)
    card = Card(
        customer_id=customer_id,
        gateway_token=tokenized.token,
        brand=tokenized.brand,
        last4=tokenized.last4,
        exp_month=exp_month,
        exp_year=exp_year if exp_year >= 100 else exp_year + 2000,
        fingerprint=fingerprint,
        created_at=clock.now(),
    )
    session.add(card)
    session.flush()
    return card


def list_cards(session: Session, customer_id: int) -> list[Card]:
    return list(
        session.execute(
            select(Card)
            .where(Card.customer_id == customer_id, Card.removed_at.is_(None))
            .order_by(Card.id)
        ).scalars()
    )


def remove_card(session: Session, customer_id: int, card_id: int) -> Card:
    card = session.get(Card, card_id)
    if card is None or card.customer_id != customer_id or card.removed_at is not None:
        raise DomainError("card_not_found")
    card.removed_at = clock.now()
    return card
