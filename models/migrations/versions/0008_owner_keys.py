"""owners' public keys, and credentials delivered as a file encrypted to them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

`owner_keys`: one public key per Slack user (an age recipient or an SSH public key: not a secret).
`credential_envelopes` learns how its credentials are delivered (`delivery_method`: reveal | file |
held), the key they are encrypted to (`recipient`, fixed once chosen, so a retry encrypts to the same
key) and the Slack file id of an upload in progress (`file_id`), by which an upload whose outcome was
lost is found again instead of being made twice.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owner_keys",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_owner_keys")),
    )
    with op.batch_alter_table("credential_envelopes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_method", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("recipient", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("file_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credential_envelopes", schema=None) as batch_op:
        batch_op.drop_column("file_id")
        batch_op.drop_column("recipient")
        batch_op.drop_column("delivery_method")
    op.drop_table("owner_keys")
