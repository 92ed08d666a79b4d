"""day two: changing a user, and time-bound grants

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

`access_requests.removals` and `access_requests.grant_for`: what a change takes away, and how long
what a request adds lasts. `temporary_grants`: each group or policy granted for a time, until the
revoke request that takes it away has run.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        batch.add_column(sa.Column("removals", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("grant_for", sa.String(length=20), nullable=True))
    op.create_table(
        "temporary_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("requester_id", sa.String(length=32), nullable=False),
        sa.Column("granted_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("revoke_request_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("how_ended", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["access_requests.id"], name=op.f("fk_temporary_grants_request_id_access_requests")),
        sa.ForeignKeyConstraint(["revoke_request_id"], ["access_requests.id"], name=op.f("fk_temporary_grants_revoke_request_id_access_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_temporary_grants")),
    )
    op.create_index(op.f("ix_temporary_grants_request_id"), "temporary_grants", ["request_id"])
    op.create_index(op.f("ix_temporary_grants_user_name"), "temporary_grants", ["user_name"])
    op.create_index(op.f("ix_temporary_grants_ends_at"), "temporary_grants", ["ends_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_temporary_grants_ends_at"), table_name="temporary_grants")
    op.drop_index(op.f("ix_temporary_grants_user_name"), table_name="temporary_grants")
    op.drop_index(op.f("ix_temporary_grants_request_id"), table_name="temporary_grants")
    op.drop_table("temporary_grants")
    with op.batch_alter_table("access_requests") as batch:
        batch.drop_column("grant_for")
        batch.drop_column("removals")
