"""Settings from the environment (prefix WALLETDESK_) or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WALLETDESK_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/walletdesk.db",
        description="SQLAlchemy URL: sqlite:///path/to.db or postgresql+psycopg://user@host/db",
    )
    database_pool_size: int = Field(default=20, description="Connections per process (PostgreSQL)")
    host: str = Field(default="127.0.0.1", description="Address `walletdesk serve` listens on")
    port: int = Field(default=8000, description="Port `walletdesk serve` listens on")
    keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        le=3600,
        description="How long `walletdesk serve` keeps an idle connection open. Keep it longer "
        "than the idle timeout of the proxy or carrier in front (load balancers commonly use "
        "60 s): then they close idle connections, and never send a request down one the server "
        "is closing at that moment (the request would fail and have to be sent again)",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The URL customers reach; links in messages use it, never the request's Host",
    )
    default_language: str = Field(default="zh-CN", description="zh-CN or en")
    timezone: str = Field(
        default="Asia/Shanghai", description="Zone in which daily limits and statements count days"
    )
    admin_token: str = Field(
        default="demo-admin-token",
        description="Bearer token of the operator API (/v1/admin); change it outside a demo",
    )
    secret_key: str = Field(
        default="demo-secret-key-change-me",
        description="Key for fingerprints of card numbers (HMAC); change it outside a demo",
    )
    idempotency_ttl_hours: int = Field(
        default=48, description="How long Idempotency-Key results are kept (at least 24)", ge=24
    )
    idempotency_lock_seconds: int = Field(
        default=60,
        description="After this, a request that never finished (crashed worker) may be retried",
    )
    gateway_sandbox_path: Path = Field(
        default=Path("var/sandbox_gateway.db"),
        description="Where the sandbox card gateway (an outside system) keeps its charges",
    )
    gateway_timeout_hold_minutes: int = Field(
        default=30, description="How long a timed-out top-up may stay pending before it is voided"
    )
    limits_per_transaction: dict[str, str] = Field(
        default={"CNY": "50000", "USD": "10000", "JPY": "1000000", "BTC": "1", "USDT": "10000"},
        description="Largest single outgoing payment, transfer or withdrawal, per currency",
    )
    limits_daily: dict[str, str] = Field(
        default={"CNY": "200000", "USD": "20000", "JPY": "3000000", "BTC": "5", "USDT": "50000"},
        description="Largest total of outgoing money per local day, per currency",
    )
    limits_topup_per_transaction: dict[str, str] = Field(
        default={"CNY": "50000", "USD": "10000", "JPY": "1000000", "BTC": "1", "USDT": "10000"},
        description="Largest single top-up from a card, per currency",
    )
    exchange_rates: dict[str, str] = Field(
        default={
            "USD:CNY": "7.1000",
            "CNY:USD": "0.1390",
            "USD:JPY": "150.00",
            "JPY:USD": "0.0066",
        },
        description='Rates the wallet exchanges at, as {"FROM:TO": "units of TO per unit of FROM"}',
    )
    data_keys: str = Field(
        default="demo:d2FsbGV0ZGVzay1kZW1vLWRhdGEta2V5LTMyYnl0ZXM",
        description="Keys that encrypt personal data at rest, 'id:base64url-32-bytes' comma-separated; "
        "the last one encrypts new data (`walletdesk admin new-data-key` makes one); change it outside a demo",
    )
    otp_ttl_minutes: int = Field(
        default=10, ge=1, le=10, description="How long an SMS/email one-time code stays valid"
    )
    reset_link_ttl_minutes: int = Field(
        default=60, ge=5, le=60, description="How long an emailed password-reset link stays valid"
    )
    session_idle_minutes: int = Field(
        default=15, description="Web (cookie) sessions end after this long without a request"
    )
    session_absolute_hours: int = Field(default=12, description="Web sessions end after this long")
    api_session_idle_minutes: int = Field(
        default=60 * 24 * 7, description="App (bearer) sessions end after this long unused"
    )
    api_session_absolute_hours: int = Field(
        default=24 * 30, description="App (bearer) sessions end after this long regardless"
    )
    login_lock_after: int = Field(
        default=10, description="Failed logins in a row before the account is locked for a while"
    )
    login_lock_minutes: int = Field(
        default=15, description="How long such a lock lasts (it always ends by itself)"
    )
    staff_lockout_failures: int = Field(
        default=10, ge=1, le=10, description="Failed staff sign-ins in a row that lock the account"
    )
    staff_lockout_minutes: int = Field(
        default=30, ge=30, description="How long a staff account stays locked (an admin may unlock)"
    )
    staff_session_idle_minutes: int = Field(
        default=30, description="Staff sessions end after this long without a request"
    )
    staff_session_absolute_hours: int = Field(
        default=12, description="Staff sessions end after this long (one shift)"
    )
    step_up_thresholds: dict[str, str] = Field(
        default={"CNY": "5000", "USD": "700", "JPY": "100000", "BTC": "0.01", "USDT": "700"},
        description="Top-ups, payments, transfers, withdrawals and exchanges from this amount need a second factor",
    )
    contact_change_hold_hours: int = Field(
        default=48,
        ge=0,
        description="After a phone or email change, large outgoing payments wait this long",
    )
    desk_approval_ttl_hours: int = Field(
        default=4, ge=1, description="How long an agent's request waits for a supervisor's approval"
    )
    desk_reset_cooldown_days: int = Field(
        default=7,
        ge=0,
        description="No password reset sent by an agent or the hotline within this many days of "
        "a phone or email change, and no such change within as many days of one",
    )
    group_commit_max_batch: int = Field(
        default=256, description="Most transfers the ledger commits in one database transaction"
    )
    # --- notifications (notify/) ---
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server that sends email")
    smtp_port: int = Field(default=8025, description="Port of that SMTP server")
    smtp_from: str = Field(
        default="walletdesk <no-reply@walletdesk.invalid>",
        description="From address of every email; use a domain you send for",
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS (do so off loopback)"
    )
    smtp_username: str | None = Field(
        default=None, description="SMTP login, if the server wants one"
    )
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    sms_outbox_path: Path = Field(
        default=Path("var/sms.log"),
        description="The development SMS provider appends each message here as a JSON line "
        "(tail -f it to read the codes a phone would get)",
    )
    hotline_number: str = Field(
        default="400-000-0000",
        description="The hotline number that messages tell customers to call",
    )
    run_worker_in_process: bool = Field(
        default=True,
        description="`walletdesk serve` also sends the outbox and runs the periodic jobs itself; "
        "turn off when separate `walletdesk worker` processes do it",
    )
    job_sla_sweep_seconds: float = Field(
        default=60, ge=0, description="The worker marks missed case SLA targets this often (0: off)"
    )
    job_close_resolved_seconds: float = Field(
        default=3600, ge=0, description="The worker closes long-resolved cases this often (0: off)"
    )
    job_dispute_sweep_seconds: float = Field(
        default=300,
        ge=0,
        description="The worker sends disputes whose merchant missed the deadline to review "
        "this often (0: off)",
    )
    job_hotline_route_seconds: float = Field(
        default=1, ge=0, description="The worker moves the call queues this often (0: off)"
    )
    risk_rules_path: Path | None = Field(
        default=None,
        description="An operator's own risk rules file (YAML, like walletdesk/risk/rules.yaml); "
        "unset uses the shipped one",
    )
    # --- disputes (disputes/) ---
    dispute_window_days: int = Field(
        default=120, ge=1, description="How many days after a payment the customer may dispute it"
    )
    dispute_response_days: int = Field(
        default=7, ge=1, description="How long a merchant has to accept or contest a dispute"
    )
    dispute_evidence_max_kb: int = Field(
        default=2048, ge=1, le=10240, description="Largest evidence file a customer may upload"
    )
    dispute_evidence_max_files: int = Field(
        default=5, ge=1, le=20, description="Most evidence files one dispute may hold"
    )
    case_close_after_days: int = Field(
        default=7,
        ge=1,
        description="A resolved case the customer does not reopen closes after this many days",
    )
    complaint_after_days: int = Field(
        default=5,
        ge=1,
        description="A customer may escalate a case to a complaint once it is resolved, or "
        "after it has been open this long",
    )

    # --- support channels (support/email_channel.py, support/chat.py) ---
    support_address: str = Field(
        default="help@walletdesk.localhost",
        description="The support mailbox: mail to it becomes a case; the listener refuses other "
        "recipients",
    )
    support_smtp_host: str = Field(
        default="127.0.0.1", description="Address `walletdesk mail-listener` receives mail on"
    )
    support_smtp_port: int = Field(default=8026, description="Port it receives mail on")
    support_email_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest inbound support email accepted"
    )
    chat_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="How often a chat connection looks in the database for what other server "
        "processes wrote (the same process wakes it at once)",
    )

    # --- security (kit/ratelimit.py) ---
    rate_limits: dict[str, str] = Field(
        default={
            "login.account": "10/15m",
            "login.ip": "100/15m",
            "otp.send": "5/15m",
            "otp.verify": "10/15m",
            "reset.request": "5/1h",
            "reset.ip": "20/1h",
            "register.ip": "20/1h",
            "support.email": "20/1h",  # inbound mail per sender address
            "chat.ticket": "1/2m",  # a chat ticket opens one connection (see support/chat.py)
            # Above the lockout, so a person sees when their lock ends; agents share office IPs.
            "staff_login.account": "20/15m",
            "staff_login.ip": "300/15m",
            # Payment-PIN attempts on the phone per customer: over it, phone self-service locks.
            "hotline.pin": "3/30m",
            # Recent-amount checks at the desk per customer, across all contacts.
            "desk.knowledge": "5/1d",
        },
        description='Attempts allowed per window for each named limit, like {"login.ip": '
        '"100/15m"} (s, m, h, d; "off" turns one off); names left out keep their default',
    )
    # --- the phone hotline (hotline/) ---
    twilio_auth_token: SecretStr = Field(
        default=SecretStr("demo-twilio-auth-token"),
        description="The carrier's auth token: every voice webhook must be signed with it "
        "(X-Twilio-Signature); change it outside a demo",
    )
    twilio_public_url: str | None = Field(
        default=None,
        description="The URL the carrier calls, when a proxy stands in front (https://host); "
        "webhook signatures are checked against it instead of the request's own URL",
    )
    voice_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Voice webhooks run on at most this many threads at once per server process; "
        "the rest wait their turn, first come first served. A webhook is mostly Python, which "
        "runs one thread at a time, so more threads only slow each other down; but a webhook "
        "waiting for a locked row holds up those behind it. Run more server processes for more "
        "at once, or raise this when the database is far away and webhooks mostly wait for it",
    )
    hotline_flow_path: Path | None = Field(
        default=None,
        description="An operator's own IVR call flow (YAML, like walletdesk/hotline/flows/"
        "default.yaml); checked at start-up; unset uses the shipped one",
    )
    softphone_audio_dir: Path | None = Field(
        default=None,
        description="`walletdesk call --speak` writes each prompt here as a WAV file "
        "(NNN-language.wav) instead of playing it: for machines without a sound device",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db: keep rate-limit counters in Redis instead of the "
        "database (optional; needs the `redis` package)",
    )

    # --- hotline queue and callbacks (hotline/queue.py) ---
    hotline_queues_path: Path | None = Field(
        default=None,
        description="An operator's own queue configuration (YAML, like "
        "walletdesk/hotline/queues.yaml); unset uses the shipped one",
    )
    hotline_callback_attempts: int = Field(
        default=3, ge=1, le=10, description="Times a callback dials the customer before giving up"
    )
    hotline_callback_retry_seconds: int = Field(
        default=120, ge=10, description="Wait before the second dial; it doubles for each later one"
    )
    hotline_callback_from: str = Field(
        default="+864000000000", description="The caller ID (E.164) callbacks dial customers from"
    )
    twilio_account_sid: str | None = Field(
        default=None,
        description="Twilio account SID; with the auth token, callbacks dial via Twilio",
    )


DEMO_SECRETS = ("admin_token", "secret_key", "data_keys", "twilio_auth_token")


def demo_secrets_in_use(settings: Settings) -> list[str]:
    """Secret settings still at their published demo values (fine on 127.0.0.1, nowhere else)."""
    defaults = Settings.model_fields
    return [name for name in DEMO_SECRETS if getattr(settings, name) == defaults[name].default]


@lru_cache
def get_settings() -> Settings:
    return Settings()
