"""the old keys of rotations, retired on schedule

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

`key_retirements`: one row per completed key rotation: the old key, when it is deactivated and
deleted, and when the owner was told before each and each was done.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_retirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivate_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delete_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivate_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delete_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["access_requests.id"], name=op.f("fk_key_retirements_request_id_access_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_retirements")),
        sa.UniqueConstraint("request_id", name=op.f("uq_key_retirements_request_id")),
    )
    op.create_index(op.f("ix_key_retirements_deactivate_at"), "key_retirements", ["deactivate_at"])
    op.create_index(op.f("ix_key_retirements_delete_at"), "key_retirements", ["delete_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_key_retirements_delete_at"), table_name="key_retirements")
    op.drop_index(op.f("ix_key_retirements_deactivate_at"), table_name="key_retirements")
    op.drop_table("key_retirements")
