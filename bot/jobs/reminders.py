"""Time-based work on pending requests, driven by the database: reminders with back-off, escalation, expiry.

Run from the worker's housekeeping. Each reminder is claimed by compare-and-set on
`next_reminder_at` and each expiry by the request's state, so however many replicas run this,
every reminder is sent once and every request expires once, and a restart loses nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.audit import trail as audit
from bot.requests import usecases
from bot.common.clock import Clock
from bot.runtime.db import SessionMaker
from bot.slack.notifier import Notifier
from bot.policy.rulebook import Reminders, is_group
from bot.slack.ui import blocks as ui
from models import AccessRequest, RequestState

log = logging.getLogger(__name__)


class ReminderService:
    def __init__(self, *, sessionmaker: SessionMaker, notifier: Notifier, clock: Clock, reminders: Reminders | None):
        self.sm = sessionmaker
        self.notifier = notifier
        self.clock = clock
        self.reminders = reminders

    def run_due(self) -> tuple[int, int]:
        """Expire what is past its time to live, then send the reminders that are due: (expired, reminded)."""
        return self.expire_due(), self.remind_due()

    # ---------------------------------------------------------------- expiry

    def expire_due(self) -> int:
        now = self.clock()
        with self.sm.begin() as s:
            due = list(
                s.scalars(
                    select(AccessRequest.id).where(
                        AccessRequest.state == RequestState.PENDING, AccessRequest.expires_at.is_not(None), AccessRequest.expires_at <= now
                    )
                )
            )
        expired = 0
        for request_id in due:
            with self.sm.begin() as s:
                won = usecases.expire(s, request_id=request_id, now=now)
                req = s.get(AccessRequest, request_id)
                assert req is not None
                requester, message = req.requester_id, ui.expired_message(req)
            if not won:
                continue  # decided meanwhile, or another replica expired it
            expired += 1
            self.notifier.announce_change(request_id, now=now)
            self.notifier.dm_quietly(requester, message, what="expiry notice")
        return expired

    # ---------------------------------------------------------------- reminders

    def remind_due(self) -> int:
        if self.reminders is None:
            return 0
        now = self.clock()
        with self.sm.begin() as s:
            due = s.execute(
                select(AccessRequest.id, AccessRequest.next_reminder_at, AccessRequest.reminders_sent).where(
                    AccessRequest.state == RequestState.PENDING,
                    AccessRequest.next_reminder_at.is_not(None),
                    AccessRequest.next_reminder_at <= now,
                )
            ).all()
        sent = 0
        for request_id, _due_at, count in due:
            if self._remind(request_id, count=count, now=now):
                sent += 1
        return sent

    def _remind(self, request_id: int, *, count: int, now: datetime) -> bool:
        r = self.reminders
        assert r is not None
        number = count + 1
        last = number >= r.max
        next_at = None if last else now + timedelta(hours=r.delay_hours(number))
        escalate = list(r.escalate_to) if last else []
        asked_before: set[str] = set()
        if escalate:
            # Who already has the request (read before the claim: no Slack call inside a transaction).
            with self.sm.begin() as s:
                req = s.get(AccessRequest, request_id)
                assert req is not None
                users, groups = usecases.approvers_of(req, default_approvers=self.notifier.rulebook.default_approvers)
            asked_before = set(self.notifier.directory.expand([*users, *groups]))
        with self.sm.begin() as s:
            # The claim: only the worker that moves the count on from the value it read sends it.
            claimed = s.execute(
                update(AccessRequest)
                .where(
                    AccessRequest.id == request_id,
                    AccessRequest.state == RequestState.PENDING,
                    AccessRequest.reminders_sent == count,
                    AccessRequest.next_reminder_at <= now,
                )
                .values(next_reminder_at=next_at, reminders_sent=number)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != 1:
                return False
            req = s.get(AccessRequest, request_id)
            assert req is not None
            s.refresh(req)
            added_users: list[str] = []
            if escalate:
                users = list(req.approver_users or [])
                groups = list(req.approver_groups or [])
                added_users = [e for e in escalate if not is_group(e) and e not in users]
                added_groups = [e for e in escalate if is_group(e) and e not in groups]
                req.approver_users = users + added_users
                req.approver_groups = groups + added_groups
                escalate = added_users + added_groups
                if escalate:
                    audit.record(s, action="escalated", actor=usecases.BOT_ACTOR, now=now, request_id=request_id, to=escalate)
            audit.record(s, action="reminded", actor=usecases.BOT_ACTOR, now=now, request_id=request_id, number=number, next_at=next_at)
            message = ui.reminder_message(req, number=number, escalated_to=escalate)
        self.notifier.thread_reply(request_id, message)
        if escalate:
            # The new approvers get the request itself, once, in their DMs with the buttons.
            people = [p for p in self.notifier.directory.expand(escalate) if p not in asked_before]
            self.notifier.post_approval_requests(request_id, only_to=people)
            self.notifier.refresh_homes(request_id, now=now)
        return True
