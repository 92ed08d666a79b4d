"""many accounts: the AWS account a request acts in

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

`access_requests.account`: the name the account has in IAM_BOT_ACCOUNTS (or AWS Organizations), or ""
for the bot's own account, the only one before. A user is known by its account and its name.
`access_requests.bundle`: one ask for several accounts is a request per account, each carrying the
first one's short id; they are judged together (the strictest rule) and approved with one click.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        batch.add_column(sa.Column("account", sa.String(length=40), nullable=False, server_default=""))
        batch.add_column(sa.Column("bundle", sa.String(length=12), nullable=True))
    op.create_index(op.f("ix_access_requests_bundle"), "access_requests", ["bundle"])


def downgrade() -> None:
    op.drop_index(op.f("ix_access_requests_bundle"), table_name="access_requests")
    with op.batch_alter_table("access_requests") as batch:
        batch.drop_column("bundle")
        batch.drop_column("account")
