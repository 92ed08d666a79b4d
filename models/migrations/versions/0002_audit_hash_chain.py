"""hash-chain the audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from __future__ import annotations

import hashlib
import json
from datetime import timezone

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _digest(prev: str, row: sa.Row) -> str:
    # Same canonical form as bot.audit.trail.event_hash, frozen here so this migration never changes.
    created = row.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    body = json.dumps(
        {
            "prev": prev,
            "request_id": row.request_id,
            "actor": row.actor,
            "action": row.action,
            "details": row.details if isinstance(row.details, dict) else json.loads(row.details or "{}"),
            "created_at": created.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=False, server_default=""))
    # Chain the events that already exist, in order.
    conn = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer),
        sa.column("request_id", sa.Integer),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("details", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    prev = ""
    for row in conn.execute(sa.select(events).order_by(events.c.id)).fetchall():
        digest = _digest(prev, row)
        conn.execute(sa.update(events).where(events.c.id == row.id).values(prev_hash=prev, hash=digest))
        prev = digest


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
