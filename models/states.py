from __future__ import annotations

import enum


class RequestState(str, enum.Enum):
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


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
