"""Run Alembic from code: `walletdesk db upgrade`, `make run` and the tests all come here."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def alembic_config(database_url: str, engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "walletdesk:migrations")
    config.attributes["database_url"] = database_url
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(database_url: str, engine: Engine | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url, engine), revision)
