"""The request lifecycle: one table of allowed transitions, applied as compare-and-set."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from models import AccessRequest, RequestState

S = RequestState

TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    S.PENDING: frozenset({S.APPROVED, S.DENIED, S.CANCELLED, S.EXPIRED}),
    S.APPROVED: frozenset({S.PROVISIONING, S.FAILED}),
    S.PROVISIONING: frozenset({S.COMPLETED, S.FAILED}),
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
    """Move a request from `src` to `dst` only if it is still in `src`.

    An `UPDATE ... WHERE state = src` is atomic on every backend, so of two clicks, two approvers
    or two replicas exactly one sees rowcount 1. Returns whether this caller won.
    """
    if not allowed(src, dst):
        raise IllegalTransition(f"{src.value} -> {dst.value}")
    result = session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == request_id, AccessRequest.state == src)
        .values(state=dst, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    won = result.rowcount == 1
    if won:
        # Keep an already-loaded instance truthful for the rest of the transaction.
        obj = session.get(AccessRequest, request_id)
        if obj is not None:
            session.refresh(obj)
    return won
