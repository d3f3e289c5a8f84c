"""notify: the outbox of messages to send, and the customers' in-app inbox

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _big_id() -> sa.types.TypeEngine:
    # Matches db.BigId: BIGINT on PostgreSQL, INTEGER (the autoincrementing kind) on SQLite.
    return (
        sa.BigInteger().with_variant(sa.BIGINT(), "postgresql").with_variant(sa.INTEGER(), "sqlite")
    )


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("customer_id", _big_id(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("destination", sa.String(length=254), nullable=True),
        sa.Column("params_sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_outbox_messages_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    op.create_index(
        "ix_outbox_messages_status_next_attempt_at",
        "outbox_messages",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_outbox_messages_customer_id_id", "outbox_messages", ["customer_id", "id"])
    op.create_table(
        "inbox_messages",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("customer_id", _big_id(), nullable=False),
        sa.Column("outbox_id", _big_id(), nullable=True),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_inbox_messages_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox_messages.id"],
            name=op.f("fk_inbox_messages_outbox_id_outbox_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_messages")),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_inbox_messages_outbox_id")),
    )
    op.create_index("ix_inbox_messages_customer_id_id", "inbox_messages", ["customer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_messages_customer_id_id", table_name="inbox_messages")
    op.drop_table("inbox_messages")
    op.drop_index("ix_outbox_messages_customer_id_id", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_status_next_attempt_at", table_name="outbox_messages")
    op.drop_table("outbox_messages")
