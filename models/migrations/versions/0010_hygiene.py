"""hygiene and day two: scheduled runs, notices sent once, MFA enrolment watch, expiring users

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

`scheduled_runs`: tasks run on a schedule by one replica at a time (the hygiene report, the sweep).
`notices`: keys of notices sent once across replicas (a nudge about one access key).
`mfa_watch`: users the bot created, watched until they have an MFA device (and whether an approved
access key waits for it).
`user_expiries` and `access_requests.user_expires_on`: users with an end date (contractors).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_at", TS, nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_done_at", TS, nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduled_runs")),
    )
    op.create_table(
        "notices",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_notices")),
    )
    op.create_index(op.f("ix_notices_sent_at"), "notices", ["sent_at"])
    op.create_table(
        "mfa_watch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("checked_at", TS, nullable=True),
        sa.Column("enrolled_at", TS, nullable=True),
        sa.Column("owner_reminded_at", TS, nullable=True),
        sa.Column("approvers_told_at", TS, nullable=True),
        sa.Column("gone_at", TS, nullable=True),
        sa.Column("key_held", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("key_released_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["access_requests.id"], name=op.f("fk_mfa_watch_request_id_access_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_watch")),
        sa.UniqueConstraint("request_id", name=op.f("uq_mfa_watch_request_id")),
    )
    op.create_index(op.f("ix_mfa_watch_user_name"), "mfa_watch", ["user_name"])
    op.add_column("access_requests", sa.Column("user_expires_on", sa.String(length=10), nullable=True))
    op.create_table(
        "user_expiries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("delete_at", TS, nullable=False),
        sa.Column("week_reminded_at", TS, nullable=True),
        sa.Column("day_reminded_at", TS, nullable=True),
        sa.Column("disabled_filed_at", TS, nullable=True),
        sa.Column("deleted_filed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["access_requests.id"], name=op.f("fk_user_expiries_request_id_access_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_expiries")),
        sa.UniqueConstraint("request_id", name=op.f("uq_user_expiries_request_id")),
    )
    op.create_index(op.f("ix_user_expiries_user_name"), "user_expiries", ["user_name"])
    op.create_index(op.f("ix_user_expiries_expires_at"), "user_expiries", ["expires_at"])
    op.create_index(op.f("ix_user_expiries_delete_at"), "user_expiries", ["delete_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_user_expiries_delete_at"), table_name="user_expiries")
    op.drop_index(op.f("ix_user_expiries_expires_at"), table_name="user_expiries")
    op.drop_index(op.f("ix_user_expiries_user_name"), table_name="user_expiries")
    op.drop_table("user_expiries")
    with op.batch_alter_table("access_requests") as batch:
        batch.drop_column("user_expires_on")
    op.drop_index(op.f("ix_mfa_watch_user_name"), table_name="mfa_watch")
    op.drop_table("mfa_watch")
    op.drop_index(op.f("ix_notices_sent_at"), table_name="notices")
    op.drop_table("notices")
    op.drop_table("scheduled_runs")
