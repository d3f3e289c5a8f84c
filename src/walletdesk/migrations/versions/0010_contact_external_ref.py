"""contacts.external_ref: the channel's own id of an inbound message, so a repeat is dropped

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("external_ref", sa.String(length=255), nullable=True))
    op.create_index("ix_contacts_external_ref", "contacts", ["external_ref"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_contacts_external_ref", table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("external_ref")
