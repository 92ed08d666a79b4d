"""every request is a plan: plans and their documents, decisions by plan digest, jobs of two kinds

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Requests in flight keep working:
- pending ones go back to `submitted` with a queued `plan` job: the worker resolves their plan on its
  next turn and asks the approvers again, by updating the messages they already have. Approvals made
  before the upgrade did not approve a plan and no longer count.
- approved and provisioning ones keep their job (now `apply`); having no approved plan, the worker
  resolves one when it starts them, as provisioning always did before plans existed.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JOB_STATE = sa.Enum("queued", "running", "done", "failed", name="jobstate", native_enum=False, length=16)
_JOB_COLUMNS = ("id", "request_id", "state", "attempts", "next_run_at", "lease_owner", "lease_expires_at", "steps_done", "last_error", "created_at", "updated_at")


def _job_table(name: str, *, with_kind: bool) -> None:
    columns = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
    ]
    if with_kind:
        columns.append(sa.Column("kind", sa.String(length=16), nullable=False))
    columns += [
        sa.Column("state", _JOB_STATE, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("steps_done", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["access_requests.id"], name=op.f(f"fk_{name}_request_id_access_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    ]
    if with_kind:
        columns.append(sa.UniqueConstraint("request_id", "kind", name="uq_jobs_request_id_kind"))
    else:
        columns.append(sa.UniqueConstraint("request_id", name=op.f(f"uq_{name}_request_id")))
    op.create_table(name, *columns)
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_state"), ["state"], unique=False)


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["access_requests.id"], name=op.f("fk_plans_request_id_access_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("request_id", "digest", name="uq_plans_request_id_digest"),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_request_id"), ["request_id"], unique=False)
    op.create_table(
        "policy_documents",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_policy_documents")),
    )
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=32), server_default="create_user", nullable=False))
        batch_op.add_column(sa.Column("auto_approve", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("plan_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approved_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("plan_changes", sa.JSON(), nullable=True))
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_digest", sa.String(length=64), nullable=True))
        batch_op.drop_constraint("uq_decisions_request_id", type_="unique")
        batch_op.create_unique_constraint("uq_decisions_request_approver_plan", ["request_id", "approver_id", "plan_digest"])

    _job_table("jobs", with_kind=True)
    cols = ", ".join(_JOB_COLUMNS)
    op.execute(f"INSERT INTO jobs (kind, {cols}) SELECT 'apply', {cols} FROM provisioning_jobs")
    with op.batch_alter_table("provisioning_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provisioning_jobs_state"))
    op.drop_table("provisioning_jobs")

    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # Ids were copied: move the sequence past them.
        op.execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), COALESCE((SELECT MAX(id) FROM jobs), 0) + 1, false)")
    pending = [row[0] for row in conn.execute(sa.text("SELECT id FROM access_requests WHERE state = 'pending'"))]
    if pending:
        now = datetime.now(timezone.utc)
        op.execute(sa.text("UPDATE access_requests SET state = 'submitted', next_reminder_at = NULL WHERE state = 'pending'"))
        jobs = sa.table(
            "jobs",
            sa.column("request_id", sa.Integer()),
            sa.column("kind", sa.String()),
            sa.column("state", sa.String()),
            sa.column("attempts", sa.Integer()),
            sa.column("next_run_at", sa.DateTime(timezone=True)),
            sa.column("steps_done", sa.JSON()),
            sa.column("created_at", sa.DateTime(timezone=True)),
            sa.column("updated_at", sa.DateTime(timezone=True)),
        )
        op.bulk_insert(
            jobs,
            [
                {"request_id": rid, "kind": "plan", "state": "queued", "attempts": 0, "next_run_at": now,
                 "steps_done": [], "created_at": now, "updated_at": now}
                for rid in pending
            ],
        )


def downgrade() -> None:
    # Requests still being checked were pending before; their plans and plan jobs go.
    op.execute(sa.text("UPDATE access_requests SET state = 'pending' WHERE state = 'submitted'"))
    _job_table("provisioning_jobs", with_kind=False)
    cols = ", ".join(_JOB_COLUMNS)
    op.execute(f"INSERT INTO provisioning_jobs ({cols}) SELECT {cols} FROM jobs WHERE kind = 'apply'")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_state"))
    op.drop_table("jobs")
    # One decision per approver again: the latest one each made.
    op.execute(sa.text("DELETE FROM decisions WHERE id NOT IN (SELECT MAX(id) FROM decisions GROUP BY request_id, approver_id)"))
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_decisions_request_approver_plan", type_="unique")
        batch_op.create_unique_constraint("uq_decisions_request_id", ["request_id", "approver_id"])
        batch_op.drop_column("plan_digest")
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        for column in ("plan_changes", "approved_digest", "plan_digest", "auto_approve", "kind"):
            batch_op.drop_column(column)
    op.drop_table("policy_documents")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_request_id"))
    op.drop_table("plans")
