"""approval rules: the rule, quorum and approvers of each request, its risk, expiry and reminders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Requests made before this revision keep NULL approvers: the code then falls back to the
    # default rule (IAM_BOT_APPROVERS, one approval), which is what applied when they were made.
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("quorum", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("approver_users", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("approver_groups", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("risk", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("break_glass", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reminders_sent", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(batch_op.f("ix_access_requests_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_requests_next_reminder_at"), ["next_reminder_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_requests_next_reminder_at"))
        batch_op.drop_index(batch_op.f("ix_access_requests_expires_at"))
        for column in (
            "reminders_sent",
            "next_reminder_at",
            "expires_at",
            "break_glass",
            "risk",
            "approver_groups",
            "approver_users",
            "quorum",
            "rule_name",
        ):
            batch_op.drop_column(column)
