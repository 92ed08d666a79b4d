"""Typed SQLAlchemy 2.0 models: one table per concept. No Slack, no AWS here."""

from models.base import Base
from models.entities import (
    AccessRequest,
    ApprovalMessage,
    AuditAnchor,
    AuditEvent,
    CredentialEnvelope,
    Decision,
    InboundDelivery,
    Job,
    KeyRetirement,
    MfaWatch,
    Notice,
    OwnerKey,
    Plan,
    PolicyDocument,
    RequestDraft,
    ScheduledRun,
    TemporaryGrant,
    UserExpiry,
)
from models.states import JobKind, JobState, RequestState

__all__ = [
    "AccessRequest",
    "ApprovalMessage",
    "AuditAnchor",
    "AuditEvent",
    "Base",
    "CredentialEnvelope",
    "Decision",
    "InboundDelivery",
    "Job",
    "JobKind",
    "KeyRetirement",
    "JobState",
    "MfaWatch",
    "Notice",
    "OwnerKey",
    "Plan",
    "PolicyDocument",
    "RequestDraft",
    "RequestState",
    "ScheduledRun",
    "TemporaryGrant",
    "UserExpiry",
]
