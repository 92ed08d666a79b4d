"""The request lifecycle: one table of allowed transitions, applied as compare-and-set."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.common.sql import compare_and_set
from models import AccessRequest, RequestState

S = RequestState

TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    # Being resolved into a plan and judged: then asked, approved by its rule, denied by a guardrail,
    # withdrawn, or failed (the request names something IAM does not have).
    S.SUBMITTED: frozenset({S.PENDING, S.APPROVED, S.DENIED, S.CANCELLED, S.FAILED}),
    S.PENDING: frozenset({S.APPROVED, S.DENIED, S.CANCELLED, S.EXPIRED}),
    S.APPROVED: frozenset({S.PROVISIONING, S.FAILED}),
    # Back to SUBMITTED when IAM drifted from the approved plan: made again and asked again.
    S.PROVISIONING: frozenset({S.COMPLETED, S.FAILED, S.SUBMITTED}),
    S.COMPLETED: frozenset(),
    S.DENIED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.FAILED: frozenset(),
}


class IllegalTransition(ValueError):
    pass


def allowed(src: RequestState, dst: RequestState) -> bool:
    return dst in TRANSITIONS[src]


def transition(
    session: Session, *, request_id: int, src: RequestState, dst: RequestState, now: datetime, **values: Any
) -> bool:
    """Move a request from `src` to `dst` only if it is still in `src`: of two clicks, two approvers
    or two replicas exactly one wins. Returns whether this caller won."""
    if not allowed(src, dst):
        raise IllegalTransition(f"{src.value} -> {dst.value}")
    won = compare_and_set(
        session,
        AccessRequest,
        where=[AccessRequest.id == request_id, AccessRequest.state == src],
        values={"state": dst, "updated_at": now, **values},
    )
    if won:
        # Keep an already-loaded instance truthful for the rest of the transaction.
        obj = session.get(AccessRequest, request_id)
        if obj is not None:
            session.refresh(obj)
    return won
