"""Settings from the environment (prefix WALLETDESK_) or a .env file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    group_commit_max_batch: int = Field(
        default=256, description="Most transfers the ledger commits in one database transaction"
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
