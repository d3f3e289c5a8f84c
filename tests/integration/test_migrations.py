"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

A model changed without a new revision would work in tests that create tables from models
and then fail on an operator's upgraded database; this catches it.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from walletdesk.db import Base, Database
from walletdesk.models import import_all_models


def test_migrated_schema_matches_the_models(db: Database) -> None:
    import_all_models()
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
