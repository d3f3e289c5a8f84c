"""risk: decisions and alerts

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _big_id() -> sa.types.TypeEngine:
    # BIGINT on PostgreSQL, INTEGER on SQLite (the only type SQLite lets autoincrement).
    return (
        sa.BigInteger().with_variant(sa.BIGINT(), "postgresql").with_variant(sa.INTEGER(), "sqlite")
    )


def upgrade() -> None:
    op.create_table(
        "risk_decisions",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("customer_id", _big_id(), nullable=False),
        sa.Column("event_kind", sa.String(length=24), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("explanation_en", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('allow', 'challenge', 'hold', 'decline', 'lock')",
            name=op.f("ck_risk_decisions_action_known"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_risk_decisions_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
    )
    op.create_index(
        "ix_risk_decisions_customer_id_id", "risk_decisions", ["customer_id", "id"], unique=False
    )
    op.create_table(
        "risk_alerts",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("customer_id", _big_id(), nullable=False),
        sa.Column("decision_id", _big_id(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'resolved')", name=op.f("ck_risk_alerts_status_known")
        ),
        sa.CheckConstraint(
            "status = 'open' OR (resolved_at IS NOT NULL AND resolved_by IS NOT NULL)",
            name=op.f("ck_risk_alerts_resolution_complete"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_risk_alerts_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["risk_decisions.id"],
            name=op.f("fk_risk_alerts_decision_id_risk_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_alerts")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_risk_alerts_decision_id")),
    )
    op.create_index("ix_risk_alerts_status_id", "risk_alerts", ["status", "id"], unique=False)
    # The risk engine reads a customer's movements by time (declared in risk/models.py).
    op.create_index(
        "ix_wallet_transactions_customer_id_created_at",
        "wallet_transactions",
        ["customer_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_wallet_transactions_customer_id_created_at", table_name="wallet_transactions")
    op.drop_index("ix_risk_alerts_status_id", table_name="risk_alerts")
    op.drop_table("risk_alerts")
    op.drop_index("ix_risk_decisions_customer_id_id", table_name="risk_decisions")
    op.drop_table("risk_decisions")
