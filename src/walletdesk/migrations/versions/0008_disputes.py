"""disputes and their evidence files

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = (
    sa.BigInteger().with_variant(sa.BIGINT(), "postgresql").with_variant(sa.INTEGER(), "sqlite")
)
# A payment is disputed once: withdrawn disputes aside, at most one row per payment.
NOT_WITHDRAWN = sa.text("status <> 'withdrawn'")


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("transaction_id", BIG_ID, nullable=False),
        sa.Column("customer_id", BIG_ID, nullable=False),
        sa.Column("merchant_id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("filed_by", sa.String(length=64), nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merchant_response", sa.String(length=8), nullable=True),
        sa.Column("merchant_explanation", sa.Text(), nullable=True),
        sa.Column("merchant_responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provisional_credit", sa.BigInteger(), nullable=False),
        sa.Column("provisional_granted_by", sa.String(length=64), nullable=True),
        sa.Column("refund_transaction_id", BIG_ID, nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_disputes_amount_positive")),
        sa.CheckConstraint(
            "provisional_credit >= 0 AND provisional_credit <= amount",
            name=op.f("ck_disputes_provisional_cap"),
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_disputes_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_disputes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_disputes_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["refund_transaction_id"],
            ["wallet_transactions.id"],
            name=op.f("fk_disputes_refund_transaction_id_wallet_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["wallet_transactions.id"],
            name=op.f("fk_disputes_transaction_id_wallet_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
    )
    op.create_index("ix_disputes_customer_id_id", "disputes", ["customer_id", "id"])
    op.create_index("ix_disputes_merchant_id_id", "disputes", ["merchant_id", "id"])
    op.create_index("ix_disputes_status_respond_by", "disputes", ["status", "respond_by"])
    op.create_index(
        "uq_disputes_transaction_once",
        "disputes",
        ["transaction_id"],
        unique=True,
        sqlite_where=NOT_WITHDRAWN,
        postgresql_where=NOT_WITHDRAWN,
    )
    op.create_table(
        "dispute_evidence",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("dispute_id", BIG_ID, nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("size > 0", name=op.f("ck_dispute_evidence_size_positive")),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_dispute_evidence_dispute_id_disputes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_evidence")),
    )
    op.create_index("ix_dispute_evidence_dispute_id", "dispute_evidence", ["dispute_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_dispute_evidence_dispute_id", table_name="dispute_evidence")
    op.drop_table("dispute_evidence")
    op.drop_index("uq_disputes_transaction_once", table_name="disputes")
    op.drop_index("ix_disputes_status_respond_by", table_name="disputes")
    op.drop_index("ix_disputes_merchant_id_id", table_name="disputes")
    op.drop_index("ix_disputes_customer_id_id", table_name="disputes")
    op.drop_table("disputes")
