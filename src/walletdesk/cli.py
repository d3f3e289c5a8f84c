"""The `walletdesk` command: serve, demo, db, admin."""

from __future__ import annotations

import ipaddress
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from walletdesk import demo as demo_data
from walletdesk import migrate
from walletdesk.audit.cli import audit_app
from walletdesk.config import demo_secrets_in_use, get_settings
from walletdesk.db import Database
from walletdesk.disputes.cli import disputes_app
from walletdesk.hotline.queue_cli import hotline_app
from walletdesk.hotline.softphone import call_command
from walletdesk.idempotency import service as idempotency
from walletdesk.identity.service import pins_to_move, reseal_personal_data
from walletdesk.kit import crypto, ratelimit
from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import format_minor, parse_amount
from walletdesk.ledger import service as ledger
from walletdesk.notify.cli import worker_command
from walletdesk.risk import service as risk
from walletdesk.staff.cli import staff_app
from walletdesk.staff.service import DEMO_STAFF, DEMO_TOTP_SECRET
from walletdesk.staff.service import reseal_secrets as reseal_staff_secrets
from walletdesk.support.case_cli import desk_app
from walletdesk.support.cli import hours_app
from walletdesk.support.email_channel import mail_listener as support_mail_listener
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.models import Customer
from walletdesk.wallet.service import cards, customers, topups, withdrawals
from walletdesk.wallet.service.customers import find_by_contact

app = typer.Typer(help="walletdesk: a digital wallet with its own customer-service hotline.")
db_app = typer.Typer(help="Database: migrate, check the books, tidy up.")
admin_app = typer.Typer(
    help="Operator commands: customers, merchants, sandbox top-ups, settlement."
)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(hours_app, name="hours")
app.add_typer(disputes_app, name="disputes")
app.add_typer(desk_app, name="desk")
app.add_typer(staff_app, name="staff")
app.add_typer(hotline_app, name="hotline")
app.command("worker")(worker_command)
app.command("call")(call_command)
app.add_typer(admin_app, name="admin")
console = Console()


def _database() -> Database:
    settings = get_settings()
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    return Database(settings.database_url)


def _gateway() -> SandboxGateway:
    return SandboxGateway(get_settings().gateway_sandbox_path)


def _fail(error: DomainError) -> None:
    console.print(f"[red]{error.code}[/red]: {error.message('en')}")
    raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only)")] = 1,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate (chain) to serve HTTPS with; needs --tls-key",
            envvar="WALLETDESK_TLS_CERT",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            help="PEM private key of that certificate",
            envvar="WALLETDESK_TLS_KEY",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Start the HTTP server (HTTPS with --tls-cert and --tls-key)."""
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give both --tls-cert and --tls-key, or neither")
    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    if demo := demo_secrets_in_use(settings):
        names = ", ".join(f"WALLETDESK_{n.upper()}" for n in demo)
        if not _is_loopback(host):
            # Published secrets sign webhooks, open data and log staff in: never on a network.
            console.print(f"[red]refusing to listen on {host}: demo secrets in use ({names})[/red]")
            raise typer.Exit(2)
        console.print(
            f"[yellow]demo secrets in use ({names}): set your own outside a demo[/yellow]"
        )
    base = f"{'https' if tls_cert else 'http'}://{host}:{port}"
    console.print(
        f"walletdesk on [bold]{base}[/bold]  (API docs: {base}/docs, health: {base}/health)"
    )
    uvicorn.run(
        "walletdesk.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        timeout_keep_alive=settings.keep_alive_seconds,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )


@app.command()
def demo() -> None:
    """Migrate the database and load the demo data (safe to run again)."""
    settings = get_settings()
    db = _database()
    migrate.upgrade(settings.database_url, db.engine)
    ids = demo_data.load(db, _gateway())
    demo_data.load_desk(db, ids)
    table = Table(title="Demo logins (API bearer tokens)")
    for column in ("who", "phone", "token", "what to look at"):
        table.add_column(column)
    for person in demo_data.PEOPLE:
        table.add_row(person.name, person.phone, person.token, person.note)
    console.print(table)
    merchants = Table(title="Demo merchants (API keys for refunds)")
    for column in ("code", "name", "key"):
        merchants.add_column(column)
    for code, name, _, _, key in demo_data.MERCHANTS:
        merchants.add_row(code, name, key)
    console.print(merchants)
    staff = Table(title="Demo staff (bearer tokens; passwords are <username>-demo-passphrase)")
    for column in ("username", "name", "role", "token"):
        staff.add_column(column)
    for member in DEMO_STAFF:
        staff.add_row(member.username, member.display_name, member.role, member.token)
    console.print(staff)
    console.print(f"Staff TOTP secret (all demo staff): [bold]{DEMO_TOTP_SECRET}[/bold]")
    console.print(f"Operator token: [bold]{settings.admin_token}[/bold]")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@app.command("mail-listener")
def mail_listener(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default: WALLETDESK_SUPPORT_SMTP_HOST)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (default: WALLETDESK_SUPPORT_SMTP_PORT)")
    ] = None,
) -> None:
    """Receive mail for the support address: each message opens a case or joins its thread."""
    settings = get_settings()
    host, port = host or settings.support_smtp_host, port or settings.support_smtp_port
    db = _database()
    listener = support_mail_listener(db, settings, host, port)
    console.print(f"receiving mail for {settings.support_address} on {host}:{port}; Ctrl-C to stop")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    listener.stop()
    db.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations."""
    migrate.upgrade(get_settings().database_url, _database().engine)
    console.print("database is up to date")


@db_app.command("verify")
def db_verify() -> None:
    """Check the books: money conserved per currency, balances equal their entries."""
    with _database().unit_of_work() as session:
        problems = ledger.verify(session)
    for problem in problems:
        console.print(f"[red]{problem.what}[/red] {problem.detail}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]the books balance[/green]")


@db_app.command("purge")
def db_purge() -> None:
    """Drop idempotency keys and rate-limit counters past their time to live."""
    with _database().unit_of_work() as session:
        keys = idempotency.purge_expired(session)
        counters = ratelimit.purge_expired(session)
    console.print(f"purged {keys} expired idempotency keys and {counters} rate-limit counters")


@admin_app.command("new-data-key")
def new_data_key() -> None:
    """Print a fresh data key: append "id:key" to WALLETDESK_DATA_KEYS, then reseal-data."""
    console.print(crypto.new_data_key())


@admin_app.command("reseal-data")
def reseal_data() -> None:
    """Re-encrypt personal data under the newest data key (after adding one)."""
    with _database().unit_of_work() as session:
        changed = reseal_personal_data(session) + reseal_staff_secrets(session)
        pins = pins_to_move(session)
    console.print(f"re-encrypted {changed} values under the newest key")
    if pins.under_older_keys:
        console.print(
            f"{pins.under_older_keys} payment PINs are still under older keys: each moves when "
            "its customer next uses it; keep the older keys until this is 0"
        )
    if pins.argon2id:
        console.print(
            f"{pins.argon2id} payment PINs are argon2id hashes from before keyed PINs: each is "
            "kept keyed when its customer next uses it (they need no data key)"
        )


@admin_app.command("risk-alerts")
def risk_alerts() -> None:
    """Open risk alerts (holds and locks) waiting for an analyst, oldest first."""
    table = Table(title="Open risk alerts")
    for column in ("alert", "customer", "raised", "why"):
        table.add_column(column)
    with _database().unit_of_work() as session:
        for alert in risk.open_alerts(session):
            why = risk.latest_explanation(session, alert.customer_id, "en") or ""
            table.add_row(str(alert.id), str(alert.customer_id), alert.created_at.isoformat(), why)
    console.print(table)


@admin_app.command("resolve-alert")
def resolve_alert(
    alert_id: int,
    resolution: Annotated[str, typer.Option(help="What was found and done")],
    by: Annotated[str, typer.Option(help="Who resolves it (recorded in the audit log)")],
    unlock: Annotated[bool, typer.Option("--unlock", help="Unlock the customer too")] = False,
) -> None:
    """Close a risk alert after review; audited."""
    try:
        with _database().unit_of_work() as session:
            risk.resolve_alert(session, alert_id, by=by, resolution=resolution, unlock=unlock)
    except DomainError as error:
        _fail(error)
    console.print(f"alert {alert_id} resolved" + (" and the customer unlocked" if unlock else ""))


@admin_app.command("create-customer")
def create_customer(
    name: str,
    phone: Annotated[str | None, typer.Option(help="E.164 or a Chinese mobile number")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    currency: Annotated[list[str] | None, typer.Option(help="Wallet currencies")] = None,
    language: Annotated[str, typer.Option(help="zh-CN or en")] = "zh-CN",
) -> None:
    """Create a customer with wallets; prints their API token (shown once)."""
    try:
        with _database().unit_of_work() as session:
            customer, token = customers.create_customer(
                session,
                name,
                phone=phone,
                email=email,
                language=language,
                currencies=tuple(currency or ["CNY"]),
            )
            customer_id = customer.id
    except DomainError as error:
        _fail(error)
    console.print(f"customer {customer_id} created; API token: [bold]{token}[/bold]")


@admin_app.command("create-merchant")
def create_merchant(
    code: str,
    name: str,
    currency: Annotated[list[str] | None, typer.Option(help="Accepted currencies")] = None,
    fee_bps: Annotated[int, typer.Option(help="Platform fee in basis points")] = 0,
) -> None:
    """Create a merchant; prints its API key for refunds (shown once)."""
    try:
        with _database().unit_of_work() as session:
            merchant, key = customers.create_merchant(
                session, code, name, currencies=tuple(currency or ["CNY"]), fee_bps=fee_bps
            )
            merchant_code = merchant.code
    except DomainError as error:
        _fail(error)
    console.print(f"merchant {merchant_code} created; API key: [bold]{key}[/bold]")


@admin_app.command("topup")
def sandbox_topup(
    phone: Annotated[str, typer.Option(help="The customer's phone number")],
    amount: Annotated[str, typer.Option(help='Amount, like "100.00"')],
    currency: Annotated[str, typer.Option()] = "CNY",
    card: Annotated[str, typer.Option(help="A sandbox test card number")] = "4242424242424242",
) -> None:
    """Top up a customer's wallet from a sandbox test card."""
    db, gateway = _database(), _gateway()
    try:
        minor = parse_amount(amount, currency)
        with db.unit_of_work() as session:
            customer = _customer_by_phone(session, phone)
            card_id = cards.add_card(session, gateway, customer.id, card, 12, 2030, "123").id
        with db.unit_of_work() as session:
            txn = topups.top_up(db, session, gateway, customer.id, card_id, minor, currency)
            number, status, code = txn.number, txn.status, txn.failure_code
    except DomainError as error:
        _fail(error)
    console.print(f"top-up {number}: {status}" + (f" ({code})" if code else ""))


@admin_app.command("reconcile")
def reconcile() -> None:
    """Settle top-ups the card gateway never answered."""
    db = _database()
    with db.unit_of_work() as session:
        settled = topups.reconcile(session, _gateway())
        lines = [
            f"{t.number} {t.status} {format_minor(t.amount, t.currency)} {t.currency}"
            for t in settled
        ]
    console.print("\n".join(lines) or "nothing to reconcile")


@admin_app.command("settle")
def settle(
    number: str,
    returned: Annotated[bool, typer.Option("--returned", help="The bank returned it")] = False,
) -> None:
    """Mark a pending withdrawal as paid out by the bank (or returned)."""
    try:
        with _database().unit_of_work() as session:
            txn = withdrawals.settle(session, number, returned=returned)
            status = txn.status
    except DomainError as error:
        _fail(error)
    console.print(f"withdrawal {number}: {status}")


def _customer_by_phone(session: Session, phone: str) -> Customer:
    customer = find_by_contact(session, phone)
    if customer is None:
        raise DomainError("invalid_recipient")
    return customer


if __name__ == "__main__":
    app()
