"""audit: hash-chained audit events, their chain head, rate-limit counters

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def _big_id() -> sa.types.TypeEngine:
    return (
        sa.BigInteger().with_variant(sa.BIGINT(), "postgresql").with_variant(sa.INTEGER(), "sqlite")
    )


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", _big_id(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("detail_json", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "rate_limit_counters",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", "window_start", name=op.f("pk_rate_limit_counters")),
    )
    op.create_index(
        "ix_rate_limit_counters_expires_at", "rate_limit_counters", ["expires_at"], unique=False
    )
    _create_audit_guards()


def downgrade() -> None:
    _drop_audit_guards()
    op.drop_index("ix_rate_limit_counters_expires_at", table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")
    op.drop_table("audit_head")
    op.drop_table("audit_events")


# Audit events are append-only and the head only ever moves one step forward, enforced by the
# database itself: changing history takes deliberately dropping these triggers first.
_SQLITE_GUARDS = [
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
       WHEN NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1
       BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward by one'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
       BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END""",
]

_POSTGRES_GUARDS = [
    """CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    """CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1 THEN
           RAISE EXCEPTION 'the audit head only moves forward by one';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER audit_events_immutable BEFORE UPDATE OR DELETE ON audit_events
       FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()""",
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
       FOR EACH ROW EXECUTE FUNCTION audit_head_forward()""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
       FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()""",
]


def _create_audit_guards() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_GUARDS if dialect == "sqlite" else _POSTGRES_GUARDS:
        op.execute(statement)


def _drop_audit_guards() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("events_no_update", "events_no_delete", "head_forward", "head_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_{name}")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_immutable ON audit_events")
    op.execute("DROP TRIGGER IF EXISTS audit_head_forward ON audit_head")
    op.execute("DROP TRIGGER IF EXISTS audit_head_no_delete ON audit_head")
    op.execute("DROP FUNCTION IF EXISTS audit_head_forward()")
    op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
