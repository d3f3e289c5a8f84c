"""Customers and merchants: creation, look-up by API credential, wallets and balances."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from walletdesk.kit import clock
from walletdesk.kit.crypto import random_token, token_hash
from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import check_currency
from walletdesk.ledger.models import LedgerAccount
from walletdesk.wallet.models import Customer, CustomerStatus, Merchant, Wallet
from walletdesk.wallet.rules import normalize_email, normalize_phone
from walletdesk.wallet.service.common import ensure_wallet


def new_token(prefix: str) -> str:
    return f"{prefix}_{random_token(24)}"


def create_customer(
    session: Session,
    display_name: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    language: str = "zh-CN",
    currencies: tuple[str, ...] = ("CNY",),
    token: str | None = None,
) -> tuple[Customer, str]:
    """A customer created by an operator, with a wallet per currency and an API token.

    Such a customer has no password or PIN (an integration, a test); people sign up through
    identity.register instead.
    """
    if not phone and not email:
        raise DomainError("contact_required")
    phone = normalize_phone(phone) if phone else None
    email = normalize_email(email) if email else None
    clash = session.execute(
        select(Customer.id).where(
            or_(Customer.phone == phone, Customer.email == email)
            if phone and email
            else (Customer.phone == phone if phone else Customer.email == email)
        )
    ).first()
    if clash:
        raise DomainError("customer_exists")
    customer = Customer(
        display_name=display_name.strip()[:100],
        phone=phone,
        email=email,
        language=language,
        status=CustomerStatus.ACTIVE,
        created_at=clock.now(),
    )
    session.add(customer)
    session.flush()
    for currency in currencies:
        ensure_wallet(session, customer.id, check_currency(currency))
    from walletdesk.identity.service import credential_of, issue_api_session  # identity is above

    # The operator vouches for the contacts: nobody can later "register" them away.
    credential = credential_of(session, customer.id)
    credential.phone_verified_at = customer.created_at if phone else None
    credential.email_verified_at = customer.created_at if email else None
    return customer, issue_api_session(session, customer.id, label="operator", token=token)


def create_merchant(
    session: Session,
    code: str,
    name: str,
    *,
    currencies: tuple[str, ...] = ("CNY",),
    fee_bps: int = 0,
    api_key: str | None = None,
) -> tuple[Merchant, str]:
    code = code.strip().upper()
    if session.execute(select(Merchant.id).where(Merchant.code == code)).first():
        raise DomainError("merchant_exists")
    api_key = api_key or new_token("mk")
    merchant = Merchant(
        code=code,
        name=name,
        currencies=",".join(check_currency(c) for c in currencies),
        fee_bps=fee_bps,
        api_key_hash=token_hash(api_key),
        created_at=clock.now(),
    )
    session.add(merchant)
    session.flush()
    return merchant, api_key


def find_by_contact(session: Session, contact: str) -> Customer | None:
    """The customer registered with this phone number or email; malformed input finds nobody."""
    try:
        if "@" in contact:
            condition = Customer.email == normalize_email(contact)
        else:
            condition = Customer.phone == normalize_phone(contact)
    except DomainError:
        return None
    return session.execute(select(Customer).where(condition)).scalar_one_or_none()


def merchant_by_key(session: Session, api_key: str) -> Merchant | None:
    return session.execute(
        select(Merchant).where(Merchant.api_key_hash == token_hash(api_key))
    ).scalar_one_or_none()


def set_status(
    session: Session, customer_id: int, status: CustomerStatus, reason: str | None
) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise DomainError("not_found")
    customer.status = status
    customer.status_reason = reason
    return customer


@dataclass(frozen=True, slots=True)
class WalletBalance:
    currency: str
    balance: int
    available: int
    incoming_pending: int
    outgoing_pending: int


def balances(session: Session, customer_id: int) -> list[WalletBalance]:
    """The customer's wallets, oldest first, with their ledger accounts' balances as of now."""
    rows = session.execute(
        select(Wallet.currency, LedgerAccount)
        .join(LedgerAccount, LedgerAccount.id == Wallet.ledger_account_id)
        .where(Wallet.customer_id == customer_id)
        .order_by(Wallet.id)
        .execution_options(populate_existing=True)  # the balance now, not as first read
    )
    return [
        WalletBalance(
            currency,
            account.balance,
            account.available,
            account.pending_credits,
            account.pending_debits,
        )
        for currency, account in rows
    ]


def open_wallet(session: Session, customer_id: int, currency: str) -> Wallet:
    return ensure_wallet(session, customer_id, check_currency(currency))
