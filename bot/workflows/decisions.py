"""Approve, deny, cancel and break glass: who may, one decision wins, and everyone is told.

Each method runs its use case in one transaction; a refusal (the wrong person, a late click, a stale
plan) is raised as Refused, safe to show, and recorded in the audit trail in a transaction of its own
since the refused one rolls back. Announcing happens after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar

from bot.common.errors import Refused
from bot.common.logcontext import bind
from bot.common.sql import SessionMaker
from bot.policy.approval import progress_text
from bot.policy.rulebook import Rulebook
from bot.requests import store, usecases
from bot.slack import ui
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier
from bot.slack.ui import ids
from bot.workflows.announce import Announcer, Event
from bot.workflows.attempt import attempt
from bot.workflows.requesters import Requesters
from models import AccessRequest, RequestState

T = TypeVar("T")
Then = Callable[[], None]  # what follows a decision, run after Slack got its answer


class Decisions:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        notifier: Notifier,
        directory: Directory,
        rulebook: Rulebook,
        requesters: Requesters,
        announcer: Announcer,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
    ):
        self.sm = sessionmaker
        self.notifier = notifier
        self.directory = directory
        self.rulebook = rulebook
        self.requesters = requesters
        self.announcer = announcer
        self.clock = clock
        self.wake = wake

    def _attempt(self, actor: str, use_case: Callable[..., T], **kwargs: Any) -> T:
        return attempt(self.sm, self.clock, actor, use_case, **kwargs)

    def _actor_groups(self, *, short_id: str, actor: str) -> tuple[str, ...]:
        """The Slack user groups named as approvers of this request, by the rules in force now, that
        `actor` is in, read now. Never cached: someone removed from the group loses the right at once."""
        with self.sm.begin() as s:
            req = store.get_request(s, short_id=short_id)
            if req.state is RequestState.PENDING:
                usecases.rejudge(s, req, rulebook=self.rulebook, now=self.clock())
            groups = list(req.approver_groups or ())
        return self.directory.groups_of(actor, groups)

    def _decide(self, *, actor: str, short_id: str, approve: bool, digest: str | None = None, reason: str | None = None) -> AccessRequest:
        return self._attempt(
            actor,
            usecases.decide,
            short_id=short_id,
            actor_id=actor,
            approve=approve,
            digest=digest,
            rulebook=self.rulebook,
            actor_groups=self._actor_groups(short_id=short_id, actor=actor),
            now=self.clock(),
            reason=reason,
        )

    # ---------------------------------------------------------------- approve

    def approve(self, *, actor: str, value: str) -> str | None:
        """Approve the plan a message showed (`value` carries its digest). Returns what to tell the
        approver privately when more approvals are needed; raises Refused when they may not."""
        short_id, digest = ids.parse_approval_value(value)
        bind(request=short_id)
        req = self._decide(actor=actor, short_id=short_id, approve=True, digest=digest)
        if req.state is RequestState.PENDING:
            self.announcer.announce(req.id, Event.APPROVAL_RECORDED)
            with self.sm.begin() as s:
                approvals = store.approvals_of(s, request_id=req.id, digest=req.plan_digest)
            return f"Your approval of {req.short_id} is recorded: {progress_text(approvals, req.quorum)}. It waits for another approver."
        self.wake()
        for request_id in self._together(req):  # asked for several accounts: each is approved, and told so
            self.announcer.announce(request_id, Event.APPROVED)
        return None

    def _together(self, req: AccessRequest) -> list[int]:
        """The request and the others asked with it for several accounts, the one decided on first."""
        if not req.bundle:
            return [req.id]
        with self.sm.begin() as s:
            return [req.id, *(m.id for m in store.bundle_members(s, bundle=req.bundle) if m.id != req.id)]

    def withdraw(self, *, actor: str, value: str) -> str:
        """Take back one's approval of the plan shown, before quorum; returns what to tell the approver."""
        short_id, digest = ids.parse_approval_value(value)
        bind(request=short_id)
        req = self._attempt(actor, usecases.withdraw_approval, short_id=short_id, actor_id=actor, digest=digest, now=self.clock())
        self.announcer.announce(req.id, Event.APPROVAL_RECORDED)
        with self.sm.begin() as s:
            approvals = store.approvals_of(s, request_id=req.id, digest=req.plan_digest)
        return f"Your approval of {req.short_id} is withdrawn: {progress_text(approvals, req.quorum)}."

    # ---------------------------------------------------------------- deny

    def open_deny(self, *, actor: str, value: str, trigger_id: str) -> None:
        """Ask the approver for a reason, in a modal; raises Refused if they may not decide (or Slack refused)."""
        short_id, _digest = ids.parse_approval_value(value)
        req = self._attempt(
            actor,
            usecases.check_may_decide,
            short_id=short_id,
            actor_id=actor,
            rulebook=self.rulebook,
            now=self.clock(),
            actor_groups=self._actor_groups(short_id=short_id, actor=actor),
        )
        if not self.notifier.open_view(trigger_id=trigger_id, view=ui.deny_modal(short_id=req.short_id, user_name=req.user_name)):
            raise Refused("Slack did not let me open the form in time; please click Deny again.")

    def deny(self, *, actor: str, short_id: str, reason: str) -> Then:
        """Record the denial; returns the announcement, to run once Slack has its answer (a modal waits)."""
        req = self._decide(actor=actor, short_id=short_id, approve=False, reason=reason[:1000])
        together = self._together(req)

        def then() -> None:
            for request_id in together:
                self.announcer.announce(request_id, Event.DENIED)

        return then

    # ---------------------------------------------------------------- cancel

    def cancel(self, *, actor: str, short_id: str, channel: str, message_ts: str | None) -> None:
        """The requester withdraws it; the DM they clicked in says so, and everyone else is told."""
        req = self._attempt(actor, usecases.cancel, short_id=short_id, actor_id=actor, now=self.clock())
        if channel and message_ts:
            with self.sm.begin() as s:
                view = store.view_of(s, store.load_request(s, req.id), plan=False)
            self.notifier.update([(channel, message_ts)], ui.decision_message(view), what="cancelled request's DM")
        for request_id in self._together(req):
            self.announcer.announce(request_id, Event.CANCELLED)

    # ---------------------------------------------------------------- break glass

    def open_break_glass(self, *, actor: str, short_id: str, trigger_id: str) -> None:
        """The confirmation form, for a listed requester's own pending request only."""
        with self.sm.begin() as s:
            req = store.get_request(s, short_id=short_id)
            mine, pending, user_name = req.requester_id == actor, req.state is RequestState.PENDING, req.user_name
        if not (mine and self.requesters.may_break_glass(actor)):
            raise Refused("Only a requester listed for break-glass can approve their own request.")
        if not pending:
            raise Refused("This request is no longer waiting for approval. Nothing was changed.")
        if not self.notifier.open_view(trigger_id=trigger_id, view=ui.break_glass_modal(short_id=short_id, user_name=user_name)):
            raise Refused("Slack did not let me open the form in time; click the button again.")

    def break_glass(self, *, actor: str, short_id: str, reason: str) -> Then:
        """Record the self-approval; returns what follows (the worker woken, everyone told), to run after the ack."""
        req = self._attempt(
            actor,
            usecases.break_glass,
            short_id=short_id,
            actor_id=actor,
            allowed=self.requesters.may_break_glass(actor),
            reason=reason[:1000],
            now=self.clock(),
        )

        def then() -> None:
            self.wake()
            self.announcer.announce(req.id, Event.BREAK_GLASS)

        return then
