"""support: service hours per channel and queue, with phone and chat defaults

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The same defaults support/service.py falls back to: 08:00-22:00 Beijing time, every day.
_EVERY_DAY = {day: ["08:00-22:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def upgrade() -> None:
    table = op.create_table(
        "service_hours",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("always_open", sa.Boolean(), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=False),
        sa.Column("exceptions", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_hours")),
    )
    seeded_at = datetime.now(UTC)
    op.bulk_insert(
        table,
        [
            {
                "name": name,
                "time_zone": "Asia/Shanghai",
                "always_open": False,
                "weekly": _EVERY_DAY,
                "exceptions": [],
                "updated_by": "migration:0006",
                "updated_at": seeded_at,
            }
            for name in ("phone", "chat")
        ],
    )


def downgrade() -> None:
    op.drop_table("service_hours")
