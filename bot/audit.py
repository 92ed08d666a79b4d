"""Audit events: append-only rows written in the same transaction as the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models import AuditEvent

# Keys that must never be written to the audit log, whatever a caller passes.
_FORBIDDEN = frozenset({"password", "secret", "secret_access_key", "token", "ciphertext"})


def record(
    session: Session, *, action: str, actor: str, now: datetime, request_id: int | None = None, **details: Any
) -> AuditEvent:
    leaked = _FORBIDDEN.intersection(k.lower() for k in details)
    if leaked:
        raise ValueError(f"refusing to audit secret fields: {sorted(leaked)}")
    event = AuditEvent(request_id=request_id, actor=actor, action=action, details=details, created_at=now)
    session.add(event)
    return event
