"""keyed, anchored audit chain: a key id per audit event, and the anchors posted outside the database

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Events already written keep their SHA-256 links (`key_id` NULL) and stay verifiable as they are;
from the first event written with IAM_BOT_AUDIT_KEY on, every link is an HMAC (bot.audit.keys), and
no unkeyed event may follow a keyed one. Nothing is re-signed here: a migration has no key.

Downgrade drops the anchors and the key ids; the keyed events stay as they are, and an older
iam-bot's `audit verify` reports the first of them as edited (its link is an HMAC, not a SHA-256).
The chain is not recomputed: that would launder any tampering.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("head_id", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_anchors")),
    )


def downgrade() -> None:
    op.drop_table("audit_anchors")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("key_id")
