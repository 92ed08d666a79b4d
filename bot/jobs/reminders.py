"""Time-based work on pending requests, driven by the database: reminders with back-off, escalation, expiry.

Run from the worker's housekeeping. Each reminder is claimed by compare-and-set on `reminders_sent`
and each expiry by the request's state, so however many replicas run this, every reminder is sent
once and every request expires once, and a restart loses nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.slack_ids import is_usergroup
from bot.common.sql import SessionMaker, compare_and_set
from bot.policy.rulebook import Reminders
from bot.jobs.people import approvers_of_request
from bot.requests import store, usecases
from bot.slack import ui
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier
from bot.workflows.announce import Announcer, Event
from models import AccessRequest, RequestState

log = logging.getLogger(__name__)


class ReminderService:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        notifier: Notifier,
        directory: Directory,
        announcer: Announcer,
        clock: Callable[[], datetime],
        reminders: Reminders | None,
        default_approvers: tuple[str, ...] = (),
    ):
        self.sm = sessionmaker
        self.notifier = notifier
        self.directory = directory
        self.announcer = announcer
        self.clock = clock
        self.reminders = reminders
        self.default_approvers = default_approvers

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
            if won:  # else decided meanwhile, or another replica expired it
                expired += 1
                self.announcer.announce(request_id, Event.EXPIRED)
        return expired

    # ---------------------------------------------------------------- reminders

    def remind_due(self) -> int:
        if self.reminders is None:
            return 0
        now = self.clock()
        with self.sm.begin() as s:
            due = s.execute(
                select(AccessRequest.id, AccessRequest.reminders_sent).where(
                    AccessRequest.state == RequestState.PENDING,
                    AccessRequest.next_reminder_at.is_not(None),
                    AccessRequest.next_reminder_at <= now,
                )
            ).all()
        return sum(self._remind(request_id, count=count, now=now) for request_id, count in due)

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
            asked_before = set(approvers_of_request(self.sm, self.directory, request_id=request_id, default_approvers=self.default_approvers))
        with self.sm.begin() as s:
            # The claim: only the worker that moves the count on from the value it read sends it.
            if not compare_and_set(
                s,
                AccessRequest,
                where=[
                    AccessRequest.id == request_id,
                    AccessRequest.state == RequestState.PENDING,
                    AccessRequest.reminders_sent == count,
                    AccessRequest.next_reminder_at <= now,
                ],
                values={"next_reminder_at": next_at, "reminders_sent": number},
            ):
                return False
            req = store.load_request(s, request_id)
            s.refresh(req)
            if escalate:
                users, groups = list(req.approver_users or []), list(req.approver_groups or [])
                escalate = [e for e in escalate if e not in users and e not in groups]
                if r.escalation_approves:  # the file lets escalation targets decide, too
                    req.approver_users = users + [e for e in escalate if not is_usergroup(e)]
                    req.approver_groups = groups + [e for e in escalate if is_usergroup(e)]
                if escalate:
                    audit.record(s, action="escalated", actor=BOT_ACTOR, now=now, request_id=request_id, to=escalate, may_approve=r.escalation_approves)
            audit.record(s, action="reminded", actor=BOT_ACTOR, now=now, request_id=request_id, number=number, next_at=next_at)
            view = store.view_of(s, req)
            places = store.approval_places(s, request_id=request_id)
        self.notifier.reply_in_threads(places, ui.reminder_message(view, number=number, escalated_to=escalate))
        if escalate:
            people = [p for p in self.directory.expand(escalate) if p not in asked_before and p not in (view.requester_id, view.owner_id)]
            if r.escalation_approves:
                # The new approvers get the request itself, once, in their DMs with the buttons.
                posted = self.notifier.post_to(people, ui.approval_message(view), what=f"request {view.short_id}")
                with self.sm.begin() as s:
                    store.add_approval_places(s, request_id=request_id, places=posted)
                self.announcer.refresh_homes_of(request_id)
            else:
                # Asked to act, not to approve: the rule's approvers keep their quorum among themselves.
                self.notifier.post_to(people, ui.escalation_notice(view, approvers=[*users, *groups]), what=f"escalation of {view.short_id}")
        return True
