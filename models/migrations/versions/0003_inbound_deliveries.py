"""remember Slack deliveries already received, to drop retries and duplicates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_deliveries",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_inbound_deliveries")),
    )
    op.create_index(op.f("ix_inbound_deliveries_received_at"), "inbound_deliveries", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_deliveries_received_at"), table_name="inbound_deliveries")
    op.drop_table("inbound_deliveries")
