"""Alembic environment: one set of revisions for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context

from walletdesk.config import get_settings
from walletdesk.db import Base, make_engine
from walletdesk.models import import_all_models

import_all_models()
config = context.config
url = config.attributes.get("database_url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("engine")
    engine = given or make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection, target_metadata=Base.metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        # An engine made here must be closed here: a pooled SQLite connection left open keeps
        # the migration in the WAL file, so a copy of the .db file alone (the test template)
        # had no tables, and the connection leaked for the life of the process.
        if given is None:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
