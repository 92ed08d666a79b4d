"""Anchoring the audit chain outside the database: hourly (and after every AFTER_EVENTS new events) by
the worker's housekeeping, and at every export.

An anchor is taken only of a chain that verifies (a tampered chain is never blessed: the audit
channel gets an alarm instead); its line goes to IAM_BOT_AUDIT_CHANNEL and into the export file, and
it is recorded in the database (MAC'd) so the bot knows what it last anchored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.audit import anchor as anchors
from bot.audit import trail
from bot.audit.anchor import Anchor
from bot.audit.keys import AuditKeys
from bot.common.constants import BOT_ACTOR
from bot.common.sql import SessionMaker
from bot.slack.notifier import Notifier
from models import AuditEvent

log = logging.getLogger("bot.audit")

EVERY = timedelta(hours=1)  # the chain is checked, and anchored if it grew, at least this often
AFTER_EVENTS = 200  # ... and as soon as this many events were added since the last anchor


@dataclass(frozen=True)
class Anchored:
    anchor: Anchor | None
    problem: str = ""  # why nothing was anchored, in one line
    posted: bool = False  # the line reached the audit channel


class AuditAnchoring:
    def __init__(self, *, sessionmaker: SessionMaker, keys: AuditKeys, notifier: Notifier, clock: Callable[[], datetime]):
        self.sm = sessionmaker
        self.keys = keys
        self.notifier = notifier
        self.clock = clock
        self._last_check: datetime | None = None

    def run_due(self) -> Anchored | None:
        """Housekeeping: check and anchor when an hour has passed or enough events were added.
        A failure is logged, never raised (the other housekeeping tasks still run)."""
        try:
            now = self.clock()
            with self.sm.begin() as s:
                last = anchors.latest(s)
                added = anchors.events_after(s, last.head_id if last is not None else 0)
            hourly = self._last_check is None or now - self._last_check >= EVERY
            if not hourly and added < AFTER_EVENTS:
                return None
            self._last_check = now
            return self.anchor(reason="schedule", actor=BOT_ACTOR)
        except Exception:
            log.exception("audit anchoring failed")
            return None

    def anchor(self, *, reason: str, actor: str) -> Anchored:
        """Verify the chain and anchor its head: recorded, posted to the audit channel. `schedule`
        anchors only a head not anchored yet; an export always gets its anchor line."""
        now = self.clock()
        with self.sm.begin() as s:
            self._key_the_head(s, now)
        with self.sm.begin() as s:
            result = trail.verify(s, self.keys)
        if not result.ok:
            line = trail.describe(result)
            log.error("%s; not anchored", line)
            self.notifier.audit_notice(f":rotating_light: {line}. Nothing was anchored; check it with `iam-bot audit verify`.")
            return Anchored(None, line)
        if result.count == 0 or result.head_id is None:
            return Anchored(None, "the audit log is empty")
        with self.sm.begin() as s:
            trail.lock_chain(s)  # of several replicas, one anchors a given head on schedule
            last = anchors.latest(s)
            if reason == "schedule" and last is not None and last.head_id >= result.head_id:
                return Anchored(None, "nothing new since the last anchor")
            anchor = anchors.record(
                s, self.keys, count=result.count, head_id=result.head_id, head_hash=result.head_hash, now=now, reason=reason, actor=actor
            )
        posted = self.notifier.audit_notice(anchor.line())
        if posted and anchor.record_id is not None:
            with self.sm.begin() as s:
                anchors.mark_posted(s, anchor.record_id, channel=self.notifier.audit_channel, now=self.clock())
        log.info("audit anchored: %s events, head event #%s (%s)%s", anchor.count, anchor.head_id, reason, "" if posted else "; not posted to the audit channel")
        return Anchored(anchor, posted=posted)

    def _key_the_head(self, s: Session, now: datetime) -> None:
        """A chain whose newest event predates the audit key gets a keyed event first, so the anchored
        head is an HMAC (which pins every event before it) and not a SHA-256 anyone could recompute."""
        trail.lock_chain(s)
        head = s.execute(select(AuditEvent.id, AuditEvent.key_id).order_by(AuditEvent.id.desc()).limit(1)).first()
        if head is not None and head.key_id is None:
            trail.record(s, action="audit_keyed", actor=BOT_ACTOR, now=now, key_id=self.keys.signing_id, unkeyed_through=head.id)
