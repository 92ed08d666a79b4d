from __future__ import annotations

import enum


class RequestState(str, enum.Enum):
    SUBMITTED = "submitted"  # being resolved into a plan and judged; not yet offered to approvers
    PENDING = "pending"
    APPROVED = "approved"
    PROVISIONING = "provisioning"
    COMPLETED = "completed"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {RequestState.COMPLETED, RequestState.DENIED, RequestState.CANCELLED, RequestState.EXPIRED, RequestState.FAILED}
)


class JobKind(str, enum.Enum):
    PLAN = "plan"
    APPLY = "apply"


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
