"""`/iam change <user name>` (and Home's menu, status's button): a modal prefilled with what the user
has now; what is added and taken away becomes a change request, planned on IAM as it stands, judged on
the user's whole grant afterwards, decided and applied like any other. And the time-bound grants'
"I'm done" (taken away now, no approval) and "Extend" (a new request, judged by the rules)."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable

from bot.common.errors import Refused
from bot.common.sql import SessionMaker
from bot.domain import grants as lasting
from bot.domain.views import TemporaryView
from bot.iam.errors import AwsError
from bot.domain.accounts import parse_target
from bot.iam.accounts import AccountUnknown
from bot.policy.guardrails import change_refusal, grant_end_refusal
from bot.policy.rulebook import Rulebook
from bot.requests import grants, store, usecases
from bot.requests.scope import Scopes
from bot.requests.validation import RawForm, validate_change
from bot.slack import ui
from bot.slack.notifier import Notifier
from bot.slack.ui import ids
from bot.slack.ui.changes import change_modal, loading_modal
from bot.slack.ui.text import clip, esc
from bot.workflows.attempt import attempt
from bot.workflows.requesters import Requesters

log = logging.getLogger(__name__)
USAGE = "Name the IAM user, as in `/iam change <user name>`."


class Changes:
    def __init__(
        self, *, sessionmaker: SessionMaker, scopes: Scopes, notifier: Notifier, rulebook: Rulebook, requesters: Requesters,
        is_approver: Callable[[str], bool], request_ttl: timedelta, clock: Callable[[], datetime], wake: Callable[[], None],
    ):
        self.sm = sessionmaker
        self.scopes = scopes  # a user is changed in the account it was made in, under the rules as they hold there
        self.notifier = notifier
        self.rulebook = rulebook
        self.requesters = requesters
        self.is_approver = is_approver
        self.request_ttl = request_ttl
        self.clock = clock
        self.wake = wake

    # ---------------------------------------------------------------- the modal

    def open(self, *, trigger_id: str, actor: str, text: str) -> str | None:
        """Open the modal at once, then fill it in from IAM (or say in it why not). Returns a private
        answer when no modal could be shown (no user named, or Slack refused the trigger)."""
        name = text.strip().split()[0][:105] if text.strip() else ""
        if not name:
            return USAGE
        external_id = ids.change_external_id(secrets.token_hex(8))
        if not self.notifier.open_view(trigger_id=trigger_id, view=loading_modal(external_id=external_id, user_name=name)):
            return f"Slack did not let me open the form in time. Please run `/iam change {esc(name)}` again."
        self.notifier.update_view(external_id=external_id, view=self._form(actor=actor, name=name, external_id=external_id))
        return None

    def _form(self, *, actor: str, name: str, external_id: str) -> dict[str, Any]:
        """The prefilled form, or a notice saying why this person cannot change this user."""
        account, name = parse_target(name)  # `prod:alice`: a user of member account prod
        with self.sm.begin() as s:
            creating = store.creating_request(s, user_name=name, account=account)
            not_ours = store.not_ours(s, user_name=name, account=account) if creating is None else ""
            dup = store.open_request_for_name(s, user_name=name, account=account)
            temporary = [TemporaryView(id=g.id, kind=g.kind, target=g.target, ends_at=g.ends_at)
                         for g in grants.active(s, user_name=name, account=account)]
            owner, path, user_name = (creating.owner_id, creating.path, creating.user_name) if creating else ("", "", name)
        if creating is None:
            return ui.notice_modal("Cannot change", f"{not_ours}, so the bot does not change it: a user made by hand is changed by hand, by your AWS admins.")
        if actor != owner and not self.is_approver(actor):
            return ui.notice_modal("Cannot change", f"`{esc(user_name)}` belongs to <@{owner}>: only its owner (or an approver) can change it.")
        try:
            scope = self.scopes.of(account)
        except AccountUnknown as exc:
            return ui.notice_modal("Cannot change", f"{exc}: the bot no longer serves that account.")
        except AwsError as exc:
            return ui.notice_modal("Cannot change", exc.explain())
        if problem := change_refusal(scope.rulebook.guardrails, path=path, path_prefix=scope.path_prefix):
            return ui.notice_modal("Cannot change", problem)
        if dup is not None:
            return ui.notice_modal("Cannot change", f"Request {dup.short_id} for `{esc(user_name)}` is still open; wait until it is done, then ask again.")
        try:
            user, creds = scope.iam.read_user(user_name), scope.iam.read_credentials(user_name)
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return ui.notice_modal("Cannot change", f"`{esc(user_name)}` no longer exists in IAM; there is nothing to change.")
            return ui.notice_modal("Cannot change", f"I could not read `{esc(user_name)}` from IAM: {exc.explain()} Try again in a minute.")
        if creds.marker != creating.short_id:
            return ui.notice_modal("Cannot change", f"`{esc(user_name)}` in IAM is not the user the bot created for request {creating.short_id}; "
                                   "it was replaced by hand, so the bot leaves it alone.")
        form = change_modal(external_id=external_id, user_name=user_name, owner_id=owner, groups=user.groups, policies=user.attached,
                            console=creds.console, keys=[k.key_id for k in creds.keys], temporary=temporary,
                            account=scope.member.label if scope.member else "", account_name=account)
        if len(form.get("private_metadata") or "") > 3000:
            return ui.notice_modal("Cannot change", f"`{esc(user_name)}` holds more groups and policies than this form can carry; ask your AWS admins.")
        return form

    def submit(self, *, actor: str, metadata: str, raw: RawForm) -> dict[str, str]:
        """File the change; returns field errors for the modal (empty: filed, the modal closes)."""
        try:
            had = json.loads(metadata)
            assert isinstance(had, dict) and isinstance(had.get("u"), str)
        except (ValueError, AssertionError):
            return {ids.B_REASON: "This form is out of date. Close it and run `/iam change <user name>` again."}
        today = self.clock().date()
        change, errors = validate_change(raw, had=had, today=today)
        if change is None:
            return errors
        with self.sm.begin() as s:
            creating = store.creating_request(s, user_name=change.user_name, account=change.account)
            path = creating.path if creating else "/"
        try:
            book, prefix = self.scopes.rules_for(change.account), self.scopes.prefix_for(change.account)
        except AccountUnknown as exc:
            return {ids.B_GROUPS: f"{exc}: the bot no longer serves that account."}
        # What the form itself breaks (a forbidden policy, a group not allowed, a grant too long), as for a new user.
        probe = replace(change, owner_id=actor, path=path)
        ev = book.evaluate(probe, actor, self.requesters.groups_of(actor), path_prefix=prefix, today=today)
        for field, message in ev.refusals:
            if field == "path" and change_refusal(book.guardrails, path=path, path_prefix=prefix) is None:
                continue  # a user the rules allow to be changed where it lives
            if field in ("expires", "boundary", "tags"):
                continue  # about creating a user; a change's end date and boundary are the user's own, judged on the plan
            if field == "path":
                errors.setdefault(ids.B_GROUPS, message)
            else:
                errors.setdefault({"grant_for": ids.B_GRANT_FOR, "policies": ids.B_POLICIES}.get(field, ids.B_GROUPS), message)
        if errors:
            return errors
        approver = creating is not None and creating.owner_id != actor and self.is_approver(actor)  # Slack, before the transaction
        now = self.clock()
        try:
            attempt(self.sm, self.clock, actor, usecases.file_change_request, actor_id=actor, is_approver=approver, change=change, now=now,
                    expires_at=now + self.request_ttl)
        except Refused as refused:
            return {ids.B_GROUPS: str(refused)}
        self.wake()
        return {}

    # ---------------------------------------------------------------- time-bound grants: I'm done, Extend

    def done(self, *, actor: str, grant_id: int) -> str:
        """Take a time-bound grant away now: its owner (or who asked for it, or an approver) only gives back."""
        with self.sm.begin() as s:
            g = grants.one(s, grant_id)
            who = (g.owner_id, g.requester_id) if g is not None else ()
        if g is None or g.ended_at is not None:
            return "That temporary grant has ended already; nothing is left to take away."
        if actor not in who and not self.is_approver(actor):
            return f"Only the owner <@{g.owner_id}>, who asked for it, or an approver can end this grant early."
        try:
            req = attempt(self.sm, self.clock, actor, usecases.file_revoke_request, grant_ids=[grant_id], actor_id=actor, now=self.clock(),
                          why=f"given back early by <@{actor}>")
        except Refused as refused:
            return str(refused)
        if req is None:
            return "That grant is being taken away already."
        self.wake()
        return clip(f"Request *{req.short_id}*: {g.kind} `{esc(g.target.rsplit('/', 1)[-1])}` is taken from `{esc(g.user_name)}` now; "
                    "you hear when it is done.", 3000)

    def extend(self, *, actor: str, grant_id: int, by: str) -> str:
        """Ask for more time: a request to keep the grant until its end plus `by`, judged by the rules."""
        if by not in lasting.DURATIONS:
            return "Pick how much longer from the list."
        now = self.clock()
        with self.sm.begin() as s:
            g = grants.one(s, grant_id)
            ends_at = g.ends_at if g is not None else now
        if g is None or g.ended_at is not None:
            return "That temporary grant has ended already. To have it again, ask with `/iam change`."
        ends = lasting.moment(max(now, ends_at) + lasting.DURATIONS[by])
        kind_items = {"groups": [(g.target, ends)], "policies": []} if g.kind == "group" else {"groups": [], "policies": [(g.target, ends)]}
        with self.sm.begin() as s:
            account = store.account_of(s, g.request_id)
        if too_long := grant_end_refusal(self.scopes.rules_for(account).guardrails, now=now, **kind_items):
            return too_long
        approver = actor not in (g.owner_id, g.requester_id) and self.is_approver(actor)
        try:
            req = attempt(self.sm, self.clock, actor, usecases.file_grant_extension, actor_id=actor, grant_id=grant_id, is_approver=approver,
                          ends=ends, now=now, expires_at=now + self.request_ttl)
        except Refused as refused:
            return str(refused)
        self.wake()
        return clip(f"Request *{req.short_id}*: keep {g.kind} `{esc(g.target.rsplit('/', 1)[-1])}` on `{esc(g.user_name)}` until "
                    f"{ends.replace('T', ' ').replace('Z', ' UTC')}. It is judged by the rules like any request; you hear when it is decided.", 3000)
