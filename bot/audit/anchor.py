"""Anchors: the audit chain's head written down outside the database.

An anchor is `<count>:<head digest>`: the log had `count` events and the last one's digest (an
HMAC under the audit key) was `head digest`. It is posted to IAM_BOT_AUDIT_CHANNEL and written at
the end of every export; whoever holds a copy can later show that the log lost events (fewer than
`count`) or was rewritten (another digest at that place). Each anchor is also recorded in the
database, MAC'd with the audit key so it cannot be forged there; the copies outside are what
verification does not have to trust the database for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.audit.keys import AuditKeys
from models import AuditAnchor, AuditEvent

ANCHOR_RE = re.compile(r"^\s*(\d{1,12}):([0-9a-f]{64})\s*$")
ANCHOR_HELP = "expected <count>:<head digest>, e.g. 1234:<64 hex digits>, as posted in the audit channel or at the end of an export"
REASON_WORDS = {"schedule": "scheduled", "export": "at an export"}


@dataclass(frozen=True)
class Anchor:
    count: int
    head_hash: str
    head_id: int | None = None
    at: datetime | None = None
    reason: str = ""
    source: str = "given"  # "given" (command line) or "recorded #<id>" (the database)
    record_id: int | None = None  # its row in audit_anchors, if recorded

    @property
    def token(self) -> str:
        return f"{self.count}:{self.head_hash}"

    @property
    def short(self) -> str:
        return f"{self.count}:{self.head_hash[:12]}…"

    def line(self) -> str:
        """The line posted to the audit channel: everything needed to check the log against it later."""
        when = f", {_iso(self.at)}" if self.at else ""
        why = f" ({REASON_WORDS.get(self.reason, self.reason)})" if self.reason else ""
        return (
            f"Audit anchor `{self.token}`: {self.count} events, head event #{self.head_id}{when}{why}. "
            f"Check the log against it with `iam-bot audit verify --anchor {self.token}`"
        )

    def export_details(self) -> dict[str, object]:
        return {"anchor": self.token, "count": self.count, "head_id": self.head_id, "verify": f"iam-bot audit verify --anchor {self.token}"}


def parse(text: str) -> Anchor:
    """`<count>:<head digest>`; ValueError (with how to write it) otherwise."""
    m = ANCHOR_RE.match(text.lower())
    if not m or int(m.group(1)) < 1:
        raise ValueError(ANCHOR_HELP)
    return Anchor(count=int(m.group(1)), head_hash=m.group(2))


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _mac_body(*, count: int, head_id: int, head_hash: str, at: datetime, reason: str) -> dict[str, object]:
    return {
        "kind": "anchor",
        "count": count,
        "head_id": head_id,
        "head_hash": head_hash,
        "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "reason": reason,
    }


def record(
    session: Session, keys: AuditKeys, *, count: int, head_id: int, head_hash: str, now: datetime, reason: str, actor: str
) -> Anchor:
    """Record an anchor in the database, MAC'd with the newest audit key."""
    kid = keys.signing_id
    row = AuditAnchor(
        event_count=count,
        head_id=head_id,
        head_hash=head_hash,
        created_at=now,
        reason=reason,
        actor=actor,
        key_id=kid,
        mac=keys.mac(kid, _mac_body(count=count, head_id=head_id, head_hash=head_hash, at=now, reason=reason)),
    )
    session.add(row)
    session.flush()
    return _anchor(row)


def mark_posted(session: Session, record_id: int, *, channel: str, now: datetime) -> None:
    """Note that the anchor reached the audit channel (not part of its MAC: the channel keeps its own copy)."""
    row = session.get(AuditAnchor, record_id)
    if row is not None:
        row.posted_at = now
        row.channel = channel


def recorded(session: Session, keys: AuditKeys | None) -> tuple[list[Anchor], list[int]]:
    """The anchors recorded in the database whose MAC holds, and the ids of those whose MAC does not
    (edited or forged: an attacker without the key cannot make one)."""
    good: list[Anchor] = []
    bad: list[int] = []
    if keys is None:
        return good, bad
    for row in session.scalars(select(AuditAnchor).order_by(AuditAnchor.id)):
        body = _mac_body(count=row.event_count, head_id=row.head_id, head_hash=row.head_hash, at=row.created_at, reason=row.reason)
        if keys.check(row.key_id, body, row.mac):
            good.append(_anchor(row))
        else:
            bad.append(row.id)
    return good, bad


def latest(session: Session) -> AuditAnchor | None:
    """What the bot last anchored (for scheduling only: verification checks each anchor's MAC)."""
    return session.scalars(select(AuditAnchor).order_by(AuditAnchor.id.desc()).limit(1)).first()


def events_after(session: Session, head_id: int) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.id > head_id)) or 0


def _anchor(row: AuditAnchor) -> Anchor:
    return Anchor(
        count=row.event_count, head_hash=row.head_hash, head_id=row.head_id, at=row.created_at, reason=row.reason,
        source=f"recorded #{row.id}", record_id=row.id,
    )
