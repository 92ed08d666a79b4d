"""After a request changes state, everyone it concerns sees the new state: one table says who is told what.

The approval messages (updated in place, their buttons gone or carrying the new plan's digest), the
audit channel, the requester's and approvers' DMs, and the App Home of everyone the request shows
for. Called by workflows and jobs after their transaction commits; reads a snapshot in one short
transaction, then talks to Slack outside it.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Callable, Iterable

from bot.common.constants import BOT_ACTOR
from bot.common.slack_ids import is_user
from bot.common.sql import SessionMaker
from bot.domain.views import RequestView
from bot.policy import approval
from bot.policy.rulebook import Rulebook
from bot.requests import store
from bot.slack import ui
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier, Place
from bot.slack.ui.changes import change_notice
from bot.workflows.requesters import Requesters

log = logging.getLogger(__name__)


class Event(enum.Enum):
    ASKED = "asked"  # a plan was made and judged: approvers are asked (again, if it was made again)
    APPROVAL_RECORDED = "approval_recorded"  # one more approval, quorum not yet met
    APPROVED = "approved"
    AUTO_APPROVED = "auto_approved"
    BREAK_GLASS = "break_glass"
    DENIED = "denied"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REPLANNING = "replanning"  # IAM drifted from the approved plan: being checked again
    COMPLETED = "completed"
    REMOVED = "removed"  # a disable or offboard plan was applied: requester and approvers get what was taken
    EXTENDED = "extended"  # an extension was applied: the user's new end date is on record
    CHANGED = "changed"  # a change (or a grant extended) was applied: the requester and the owner get what changed
    REVOKED = "revoked"  # a time-bound grant was taken away: its owner and who asked for it are told
    FAILED = "failed"


@dataclass(frozen=True)
class Fanout:
    update_messages: bool = True
    audit_line: bool = True
    requester: Callable[[RequestView], ui.Message] | None = None
    approvers: Callable[[RequestView], ui.Message] | None = None
    owner: bool = False  # the owner is told what the requester is told


FANOUT: dict[Event, Fanout] = {
    Event.APPROVAL_RECORDED: Fanout(audit_line=False),
    Event.APPROVED: Fanout(requester=ui.decision_message),
    Event.AUTO_APPROVED: Fanout(requester=ui.decision_message, approvers=ui.notice_to_approvers),
    Event.BREAK_GLASS: Fanout(requester=ui.decision_message, approvers=ui.notice_to_approvers),
    Event.DENIED: Fanout(requester=ui.decision_message),
    Event.CANCELLED: Fanout(),  # the requester clicked; the DM they clicked in is updated by the workflow
    Event.EXPIRED: Fanout(requester=ui.expired_message),
    Event.REPLANNING: Fanout(),
    Event.COMPLETED: Fanout(),  # the owner's credentials DM follows (bot.jobs.delivery)
    Event.REMOVED: Fanout(requester=ui.removal_report, approvers=ui.removal_report),
    Event.EXTENDED: Fanout(requester=ui.extension_notice),
    Event.CHANGED: Fanout(requester=change_notice, owner=True),
    Event.REVOKED: Fanout(requester=change_notice, owner=True),
    Event.FAILED: Fanout(requester=lambda v: ui.failure_message(v, for_approver=False), approvers=lambda v: ui.failure_message(v, for_approver=True)),
}


@dataclass(frozen=True)
class Snapshot:
    view: RequestView
    places: list[Place]
    approver_users: list[str]
    approver_groups: list[str]


class Announcer:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        notifier: Notifier,
        directory: Directory,
        rulebook: Rulebook,
        requesters: Requesters,
        approval_channel: str = "",
        publish_home: Callable[[str], None],
    ):
        self.sm = sessionmaker
        self.notifier = notifier
        self.directory = directory
        self.rulebook = rulebook
        self.requesters = requesters
        self.approval_channel = approval_channel
        self.publish_home = publish_home

    def _snapshot(self, request_id: int) -> Snapshot:
        with self.sm.begin() as s:
            req = store.load_request(s, request_id)
            users, groups = store.approvers_of(req, default_approvers=self.rulebook.default_approvers)
            return Snapshot(view=store.view_of(s, req), places=store.approval_places(s, request_id=request_id), approver_users=users, approver_groups=groups)

    def eligible_approvers(self, snap: Snapshot, *, fresh: bool = True) -> list[str]:
        """The people who may decide now: its users and its groups' members, never its requester or owner.
        Calls Slack for groups (fresh: membership read now)."""
        everyone = self.directory.expand([*snap.approver_users, *snap.approver_groups], fresh=fresh)
        return approval.eligible_approvers(approvers=frozenset(everyone), requester_id=snap.view.requester_id, owner_id=snap.view.owner_id)

    # ---------------------------------------------------------------- the one entry point

    def announce(self, request_id: int, event: Event, *, also: Iterable[str] = ()) -> None:
        """`also`: more people to tell what the requester is told (a time-bound grant's owner and asker)."""
        snap = self._snapshot(request_id)
        if event is Event.ASKED:
            self._ask(snap)
        else:
            fan = FANOUT[event]
            view = snap.view
            if fan.update_messages:
                self._update_messages(snap)
            if fan.audit_line:
                self.notifier.audit_notice(ui.audit_line(view))
            if fan.requester is not None:
                told = [view.requester_id, *([view.owner_id] if fan.owner else []), *also]
                for person in dict.fromkeys(told):
                    self.notifier.dm_quietly(person, fan.requester(view), what=f"{event.value} notice")
            if fan.approvers is not None:
                for person in self._approvers_to_tell(snap, event):
                    self.notifier.dm_quietly(person, fan.approvers(view), what=f"{event.value} notice")
        self.refresh_homes(snap)

    def _update_messages(self, snap: Snapshot) -> None:
        """The approval messages that show this request: its own, and with an ask for several accounts, the
        one of the request presenting them all (it shows every account's state)."""
        if snap.places:
            self.notifier.update(snap.places, ui.approval_message(snap.view), what="approval message")
        for member in snap.view.members:
            with self.sm.begin() as s:
                places = store.approval_places(s, request_id=member.id)
                shown = store.view_of(s, store.load_request(s, member.id)) if places else None
            if places and shown is not None:
                self.notifier.update(places, ui.approval_message(shown), what="approval message")

    def _approvers_to_tell(self, snap: Snapshot, event: Event) -> list[str]:
        view = snap.view
        if event is Event.FAILED and view.decided_by and is_user(view.decided_by) and not view.break_glass:
            return [view.decided_by]  # the approver who said yes hears what became of it
        people = self.eligible_approvers(snap, fresh=event is not Event.FAILED)
        if not people:  # an automatic rule names nobody: the default approvers hear of it
            people = approval.eligible_approvers(
                approvers=frozenset(self.rulebook.default_approvers), requester_id=view.requester_id, owner_id=view.owner_id
            )
        return people

    def _ask(self, snap: Snapshot) -> None:
        """Approvers get the request with its plan; asked again, their messages get the new plan and a reply saying why."""
        view = snap.view
        message = ui.approval_message(view)
        if snap.places:
            self.notifier.update(snap.places, message, what="approval message")
            if view.plan_changes:
                text = f":warning: Request {view.short_id} was checked again: IAM changed since it was approved. The message above shows the new plan; approve it again if it is still right."
                self.notifier.reply_in_threads(snap.places, {"text": text})
            sent = len(snap.places)
        else:
            targets = [self.approval_channel] if self.approval_channel else self.eligible_approvers(snap)
            posted = self.notifier.post_to(targets, message, what=f"request {view.short_id}")
            with self.sm.begin() as s:
                store.add_approval_places(s, request_id=view.id, places=posted)
            sent = len(posted)
        may_break_glass = self.requesters.may_break_glass(view.requester_id)
        asked = approval.who_is_asked(users=snap.approver_users, groups=snap.approver_groups, requester_id=view.requester_id, owner_id=view.owner_id)
        confirmation = ui.submitted_message(view, approvers=asked, break_glass=may_break_glass)
        if sent == 0:
            confirmation = {
                **(confirmation if may_break_glass else {}),
                "text": f"Your request {view.short_id} is saved, but I could not reach any approver (none is configured or Slack refused). "
                "Tell your Slack admin to check IAM_BOT_APPROVERS and IAM_BOT_RULES.",
            }
        self.notifier.dm_quietly(view.requester_id, confirmation, what="submission confirmation")

    # ---------------------------------------------------------------- Home

    def refresh_homes(self, snap: Snapshot) -> None:
        """Everyone whose App Home shows this request sees its new state."""
        approvers = self.directory.expand([*snap.approver_users, *snap.approver_groups], fresh=False)
        people = {snap.view.requester_id, snap.view.owner_id, *approvers} - {BOT_ACTOR}
        for user_id in sorted(people):
            self.publish_home(user_id)

    def reassigned(self, request_id: int, *, newly_named: list[str]) -> None:
        """Who approves a waiting request changed (the rules changed): its messages show it, and the
        approvers it now names who were not named before get it in their DMs (or see it in the channel)."""
        snap = self._snapshot(request_id)
        view = snap.view
        if snap.places:
            self.notifier.update(snap.places, ui.approval_message(view), what="approval message")
        if newly_named and not self.approval_channel:
            people = approval.eligible_approvers(approvers=frozenset(self.directory.expand(newly_named)), requester_id=view.requester_id, owner_id=view.owner_id)
            posted = self.notifier.post_to(people, ui.approval_message(view), what=f"request {view.short_id}")
            with self.sm.begin() as s:
                store.add_approval_places(s, request_id=request_id, places=posted)
        self.refresh_homes(snap)

    def refresh_homes_of(self, request_id: int) -> None:
        self.refresh_homes(self._snapshot(request_id))
