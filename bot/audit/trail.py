"""Audit events: append-only, chained rows written in the same transaction as their change.

Each event carries the digest of the one before and its own: an HMAC-SHA256 under the audit key
(bot.audit.keys, IAM_BOT_AUDIT_KEY, kept outside the database), so whoever can write the table but
lacks the key cannot rewrite the chain. Events written before the key existed keep their plain
SHA-256 (`key_id` NULL); none may follow a keyed event. Truncation (cutting the newest events) is
shown by anchors (bot.audit.anchor): the head's digest and the count, kept outside the database.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.audit import anchor as anchors
from bot.audit.anchor import Anchor
from bot.audit.keys import AuditKeys
from bot.common.spreadsheet import csv_row, safe_cell
from models import AuditEvent

log = logging.getLogger("bot.audit")  # the name operators filter on (README, "Logs")

# Keys that must never be written to the audit log, whatever a caller passes.
_FORBIDDEN = frozenset({"password", "secret", "secret_access_key", "token", "ciphertext"})
_PG_AUDIT_LOCK = 4242002
# Where a session finds the audit keys: bot.runtime.db.make_sessionmaker(engine, audit_keys=...) puts them there.
KEYS_INFO = "iam_bot_audit_keys"


def session_info(keys: AuditKeys | None) -> dict[str, Any]:
    return {KEYS_INFO: keys} if keys is not None else {}


def _body(*, prev: str, request_id: int | None, actor: str, action: str, details: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    return {
        "prev": prev,
        "request_id": request_id,
        "actor": actor,
        "action": action,
        "details": details,
        "created_at": created_at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
    }


def event_hash(*, prev: str, request_id: int | None, actor: str, action: str, details: dict[str, Any], created_at: datetime) -> str:
    """SHA-256 over a canonical JSON of the event and the previous event's hash (events before the audit key)."""
    body = json.dumps(
        _body(prev=prev, request_id=request_id, actor=actor, action=action, details=details, created_at=created_at),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def keyed_body(*, key_id: str, **event: Any) -> dict[str, Any]:
    """What the HMAC covers: the same canonical event and link, and which key signs it."""
    return {**_body(**event), "key": key_id}


def lock_chain(session: Session) -> None:
    """One appender at a time, until commit, so the chain never forks (SQLite's BEGIN IMMEDIATE
    already serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})


def record(
    session: Session, *, action: str, actor: str, now: datetime, request_id: int | None = None, **details: Any
) -> AuditEvent:
    leaked = _FORBIDDEN.intersection(k.lower() for k in details)
    if leaked:
        raise ValueError(f"refusing to audit secret fields: {sorted(leaked)}")
    details = json.loads(json.dumps(details, default=str))  # exactly what the JSON column will return
    lock_chain(session)
    session.flush()  # earlier events of this transaction are part of the chain too
    head = session.execute(select(AuditEvent.hash, AuditEvent.key_id).order_by(AuditEvent.id.desc()).limit(1)).first()
    prev = head.hash if head is not None else ""
    keys: AuditKeys | None = session.info.get(KEYS_INFO)
    fields: dict[str, Any] = dict(prev=prev, request_id=request_id, actor=actor, action=action, details=details, created_at=now)
    key_id: str | None
    if keys is not None:
        key_id = keys.signing_id
        digest = keys.mac(key_id, keyed_body(key_id=key_id, **fields))
    elif head is not None and head.key_id is not None:
        # Never a silent downgrade: an unkeyed event after a keyed one would break the chain.
        raise RuntimeError("the audit chain is keyed: open the session from make_sessionmaker(engine, audit_keys=...)")
    else:
        key_id, digest = None, event_hash(**fields)
    event = AuditEvent(
        request_id=request_id,
        actor=actor,
        action=action,
        details=details,
        created_at=now,
        prev_hash=prev,
        hash=digest,
        key_id=key_id,
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
    """`ok`: every link holds and every anchor matches. Else `truncated` (the log has fewer events than
    an anchor says), or broken at event `broken_at` (None: an anchor row, not an event) for `why`."""

    ok: bool
    count: int
    broken_at: int | None = None
    why: str = ""
    truncated: bool = False
    head_id: int | None = field(default=None, compare=False)
    head_hash: str = field(default="", compare=False)
    unkeyed: int = field(default=0, compare=False)  # events before the audit key, SHA-256 only
    anchor: Anchor | None = field(default=None, compare=False)  # the furthest anchor checked


def verify(session: Session, keys: AuditKeys | None = None, *, anchors_given: Sequence[Anchor] = (), use_recorded: bool = True) -> VerifyResult:
    """Walk the chain in id order; report the first event whose link, HMAC (or, before the key, hash)
    or anchor does not hold, then any anchor the log falls short of (truncation).

    Anchors are those given (copied from the audit channel or an export) and, with `use_recorded`,
    those recorded in the database whose MAC holds; a recorded anchor whose MAC fails is reported.
    """
    recorded, forged = anchors.recorded(session, keys) if use_recorded else ([], [])
    by_count: dict[int, list[Anchor]] = {}
    for a in (*anchors_given, *recorded):
        by_count.setdefault(a.count, []).append(a)
    furthest = max((*anchors_given, *recorded), key=lambda a: (a.count, a.source == "given"), default=None)
    prev = ""
    count = unkeyed = 0
    keyed_seen = False
    head_id: int | None = None

    def broken(event_id: int | None, why: str) -> VerifyResult:
        return VerifyResult(False, count, event_id, why, head_id=head_id, head_hash=prev, unkeyed=unkeyed, anchor=furthest)

    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(500):
        if event.prev_hash != prev:
            return broken(event.id, "its link to the previous event is broken (an event before it was deleted or reordered)")
        fields = dict(prev=prev, request_id=event.request_id, actor=event.actor, action=event.action, details=event.details, created_at=event.created_at)
        if event.key_id is None:
            if keyed_seen:
                return broken(event.id, "it is not keyed but an earlier event is (it was written or rewritten without the audit key)")
            if event.hash != event_hash(**fields):
                return broken(event.id, "its content does not match its hash (the event was edited)")
            unkeyed += 1
        else:
            keyed_seen = True
            if keys is None or not keys.knows(event.key_id):
                return broken(
                    event.id,
                    f"it is signed with audit key id {event.key_id}, which is not among the keys given (IAM_BOT_AUDIT_KEY; "
                    "after a rotation keep the old key after the new one)",
                )
            if not keys.check(event.key_id, keyed_body(key_id=event.key_id, **fields), event.hash):
                return broken(event.id, "its content does not match its HMAC (the event was edited, or the chain recomputed without the audit key)")
        for a in by_count.get(count + 1, ()):
            if a.head_hash != event.hash:
                return broken(
                    event.id,
                    f"anchor {a.short} ({a.source}) says event number {count + 1} has digest {a.head_hash[:12]}…, this one has "
                    f"{event.hash[:12]}… (the log up to here was rewritten, or events were removed and others written after them)",
                )
        prev = event.hash
        head_id = event.id
        count += 1
    done = VerifyResult(True, count, head_id=head_id, head_hash=prev, unkeyed=unkeyed, anchor=furthest)
    if furthest is not None and furthest.count > count:
        return VerifyResult(
            False, count, None, f"anchor {furthest.short} ({furthest.source}) says {furthest.count} events, the log has {count}",
            truncated=True, head_id=head_id, head_hash=prev, unkeyed=unkeyed, anchor=furthest,
        )
    if forged:
        return VerifyResult(
            False, count, None, f"recorded anchor(s) #{', #'.join(map(str, forged))} fail their HMAC (audit_anchors was edited without the audit key)",
            head_id=head_id, head_hash=prev, unkeyed=unkeyed, anchor=furthest,
        )
    return done


def describe(result: VerifyResult) -> str:
    """One line: intact, broken at event N (why), or truncated (anchor says X events, the log has Y)."""
    if result.truncated:
        return f"audit log TRUNCATED: {result.why}; events were removed from its end"
    if not result.ok and result.broken_at is None:
        return f"audit log BROKEN: {result.why}"
    if not result.ok:
        return f"audit log BROKEN at event {result.broken_at}: {result.why} ({result.count} events before it verify)"
    keyed = result.count - result.unkeyed
    if not result.unkeyed:
        how = "every link holds under the audit key"
    elif keyed:
        how = f"every link holds: {keyed} under the audit key, the {result.unkeyed} before the key by SHA-256 (pinned by the keyed ones)"
    else:
        how = "every link holds by SHA-256 only (no event is keyed yet: all are from before the audit key)"
    a = result.anchor
    against = f"; matches anchor {a.short} ({a.source})" if a else "; no anchor to check against (pass --anchor from the audit channel or an export)"
    return f"audit log intact: {result.count} events, {how}{against}"


EXPORT_FIELDS = ("id", "created_at", "request_id", "actor", "action", "details", "prev_hash", "hash", "key_id")
ANCHOR_ACTION = "audit_anchor"  # the export's last record (empty id): the anchor, not an event


def export_rows(session: Session, *, since: datetime | None = None, until_id: int | None = None) -> Iterator[dict[str, Any]]:
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until_id is not None:
        stmt = stmt.where(AuditEvent.id <= until_id)
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
            "key_id": event.key_id,
        }


def anchor_row(anchor: Anchor) -> dict[str, Any]:
    """The anchor as an export's final record: same columns, no id, action `audit_anchor`, `hash` the head's digest."""
    return {
        "id": None,
        "created_at": anchor.at.isoformat(timespec="microseconds") if anchor.at else None,
        "request_id": None,
        "actor": "iam-bot",
        "action": ANCHOR_ACTION,
        "details": anchor.export_details(),
        "prev_hash": "",
        "hash": anchor.head_hash,
        "key_id": None,
    }


def export_text(session: Session, *, since: datetime | None, fmt: str, anchor: Anchor | None = None) -> str:
    """The events (up to the anchor's head, when anchored), then the anchor as the final record."""
    events = export_rows(session, since=since, until_id=anchor.head_id if anchor else None)
    rows = itertools.chain(events, [anchor_row(anchor)] if anchor else [])
    if fmt == "jsonl":
        return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    if fmt == "csv":
        out = io.StringIO()
        out.write(csv_row(EXPORT_FIELDS))
        for r in rows:
            row = {**r, "details": json.dumps(r["details"], sort_keys=True, ensure_ascii=False)}
            out.write(csv_row([safe_cell(row[f]) for f in EXPORT_FIELDS]))  # no cell a spreadsheet runs
        return out.getvalue()
    raise ValueError(f"unknown format {fmt!r}; use csv or jsonl")
