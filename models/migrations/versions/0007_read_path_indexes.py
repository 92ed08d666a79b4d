"""indexes for the read paths Slack waits on: a person's latest requests, and the recently decided

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Measured with bench/queries.py on 100,000 requests in PostgreSQL: an approver's Home read the whole
table for "Recently decided" (a partial index on the decided rows fixes it: DESC sorts NULLs first,
so without the WHERE the undecided rows would be walked first), and a busy person's requests were
read in full to keep 15 (each index now ends in the sort order, so each side stops at the limit).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DECIDED = sa.text("decided_by IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_access_requests_requester_id")
        batch_op.drop_index("ix_access_requests_owner_id")
        batch_op.create_index("ix_access_requests_requester_recent", ["requester_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_access_requests_owner_recent", ["owner_id", "created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_access_requests_recently_decided", ["decided_at", "id"], unique=False, postgresql_where=DECIDED, sqlite_where=DECIDED
        )


def downgrade() -> None:
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_access_requests_recently_decided")
        batch_op.drop_index("ix_access_requests_owner_recent")
        batch_op.drop_index("ix_access_requests_requester_recent")
        batch_op.create_index("ix_access_requests_owner_id", ["owner_id"], unique=False)
        batch_op.create_index("ix_access_requests_requester_id", ["requester_id"], unique=False)
