"""Audit events: append-only, hash-chained rows written in the same transaction as their change."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models import AuditEvent

log = logging.getLogger("bot.audit")  # the name operators filter on (README, "Logs")

# Keys that must never be written to the audit log, whatever a caller passes.
_FORBIDDEN = frozenset({"password", "secret", "secret_access_key", "token", "ciphertext"})
_PG_AUDIT_LOCK = 4242002


def event_hash(*, prev: str, request_id: int | None, actor: str, action: str, details: dict[str, Any], created_at: datetime) -> str:
    """SHA-256 over a canonical JSON of the event and the previous event's hash."""
    body = json.dumps(
        {
            "prev": prev,
            "request_id": request_id,
            "actor": actor,
            "action": action,
            "details": details,
            "created_at": created_at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    session: Session, *, action: str, actor: str, now: datetime, request_id: int | None = None, **details: Any
) -> AuditEvent:
    leaked = _FORBIDDEN.intersection(k.lower() for k in details)
    if leaked:
        raise ValueError(f"refusing to audit secret fields: {sorted(leaked)}")
    details = json.loads(json.dumps(details, default=str))  # exactly what the JSON column will return
    if session.get_bind().dialect.name == "postgresql":
        # One appender at a time, until commit, so the chain never forks (SQLite's
        # BEGIN IMMEDIATE already serialises writers).
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    session.flush()  # earlier events of this transaction are part of the chain too
    prev = session.scalars(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first() or ""
    event = AuditEvent(
        request_id=request_id,
        actor=actor,
        action=action,
        details=details,
        created_at=now,
        prev_hash=prev,
        hash=event_hash(prev=prev, request_id=request_id, actor=actor, action=action, details=details, created_at=now),
    )
    session.add(event)
    session.flush()
    # One log line per event (details stay in the audit log: the line needs only what and who).
    if request_id is None:
        log.info("event %s by %s", action, actor)
    else:
        log.info("event %s by %s (request row %s)", action, actor, request_id)
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    broken_at: int | None = None
    why: str = ""


def verify(session: Session) -> VerifyResult:
    """Walk the chain in id order; report the first event whose link or content does not hold."""
    prev = ""
    count = 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(500):
        if event.prev_hash != prev:
            return VerifyResult(False, count, event.id, "its link to the previous event is broken (an event before it was deleted or reordered)")
        expected = event_hash(
            prev=prev,
            request_id=event.request_id,
            actor=event.actor,
            action=event.action,
            details=event.details,
            created_at=event.created_at,
        )
        if event.hash != expected:
            return VerifyResult(False, count, event.id, "its content does not match its hash (the event was edited)")
        prev = event.hash
        count += 1
    return VerifyResult(True, count)


EXPORT_FIELDS = ("id", "created_at", "request_id", "actor", "action", "details", "prev_hash", "hash")


def export_rows(session: Session, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    for event in session.scalars(stmt).yield_per(500):
        yield {
            "id": event.id,
            "created_at": event.created_at.isoformat(timespec="microseconds"),
            "request_id": event.request_id,
            "actor": event.actor,
            "action": event.action,
            "details": event.details,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }


def export_text(session: Session, *, since: datetime | None, fmt: str) -> str:
    rows = export_rows(session, since=since)
    if fmt == "jsonl":
        return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "details": json.dumps(r["details"], sort_keys=True, ensure_ascii=False)})
        return out.getvalue()
    raise ValueError(f"unknown format {fmt!r}; use csv or jsonl")
