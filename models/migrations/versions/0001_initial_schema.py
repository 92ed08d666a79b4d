"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('short_id', sa.String(length=12), nullable=False),
    sa.Column('state', sa.Enum('pending', 'approved', 'provisioning', 'completed', 'denied', 'cancelled', 'expired', 'failed', name='requeststate', native_enum=False, length=16), nullable=False),
    sa.Column('requester_id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=False),
    sa.Column('user_name', sa.String(length=64), nullable=False),
    sa.Column('user_name_lower', sa.String(length=64), nullable=False),
    sa.Column('console_access', sa.Boolean(), nullable=False),
    sa.Column('access_key', sa.Boolean(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('policy_arns', sa.JSON(), nullable=False),
    sa.Column('copy_from', sa.String(length=64), nullable=True),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('permissions_boundary', sa.String(length=2048), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('user_arn', sa.String(length=2048), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_requests')),
    sa.UniqueConstraint('short_id', name=op.f('uq_access_requests_short_id'))
    )
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_requests_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_requests_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_requests_state'), ['state'], unique=False)
        batch_op.create_index('ix_access_requests_user_name_lower_state', ['user_name_lower', 'state'], unique=False)

    op.create_table('request_drafts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('requester_id', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_drafts'))
    )
    op.create_table('approval_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=False),
    sa.Column('ts', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['access_requests.id'], name=op.f('fk_approval_messages_request_id_access_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_messages')),
    sa.UniqueConstraint('channel_id', 'ts', name=op.f('uq_approval_messages_channel_id'))
    )
    with op.batch_alter_table('approval_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_messages_request_id'), ['request_id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['access_requests.id'], name=op.f('fk_audit_events_request_id_access_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_request_id'), ['request_id'], unique=False)

    op.create_table('credential_envelopes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reveal_claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revealed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivery_attempted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dm_channel_id', sa.String(length=32), nullable=True),
    sa.Column('dm_ts', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['access_requests.id'], name=op.f('fk_credential_envelopes_request_id_access_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_envelopes')),
    sa.UniqueConstraint('request_id', name=op.f('uq_credential_envelopes_request_id'))
    )
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('approver_id', sa.String(length=32), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['access_requests.id'], name=op.f('fk_decisions_request_id_access_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions')),
    sa.UniqueConstraint('request_id', 'approver_id', name=op.f('uq_decisions_request_id'))
    )
    op.create_table('provisioning_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('queued', 'running', 'done', 'failed', name='jobstate', native_enum=False, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('steps_done', sa.JSON(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['access_requests.id'], name=op.f('fk_provisioning_jobs_request_id_access_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioning_jobs')),
    sa.UniqueConstraint('request_id', name=op.f('uq_provisioning_jobs_request_id'))
    )
    with op.batch_alter_table('provisioning_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provisioning_jobs_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('provisioning_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provisioning_jobs_state'))

    op.drop_table('provisioning_jobs')
    op.drop_table('decisions')
    op.drop_table('credential_envelopes')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_request_id'))

    op.drop_table('audit_events')
    with op.batch_alter_table('approval_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_messages_request_id'))

    op.drop_table('approval_messages')
    op.drop_table('request_drafts')
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_access_requests_user_name_lower_state')
        batch_op.drop_index(batch_op.f('ix_access_requests_state'))
        batch_op.drop_index(batch_op.f('ix_access_requests_requester_id'))
        batch_op.drop_index(batch_op.f('ix_access_requests_owner_id'))

    op.drop_table('access_requests')
