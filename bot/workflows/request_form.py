"""The request modal: who may open it, typeahead, checks while Slack waits, the review with its plan, submit."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Callable

from bot.common.errors import Refused
from bot.common.logcontext import bind
from bot.common.sql import SessionMaker
from bot.domain.accounts import arn_in
from bot.domain.facts import IamFacts
from bot.domain.plan import Plan
from bot.domain.spec import RequestSpec
from bot.iam.accounts import AccountUnknown
from bot.iam.errors import AwsError
from bot.iam.gateway import IamGateway
from bot.policy.rulebook import Evaluation, Rulebook
from bot.requests import planner, store, usecases
from bot.requests.scope import Scope, Scopes
from bot.requests.validation import RawForm, validate_form
from bot.slack import ui
from bot.slack.notifier import Notifier
from bot.slack.typeahead import ranked
from bot.slack.ui import ids
from bot.slack.ui import keys as key_ui
from bot.policy import approval
from bot.workflows.requesters import Requesters

log = logging.getLogger(__name__)

# Of Slack's 3 s for answering a view submission, counted from its arrival, what the IAM checks may use.
QUICK_CHECK_SECONDS = 1.6  # the rest is for the draft, the review and the ack to reach Slack, on a busy host too
# Where each guardrail refusal is shown in the form (a refused requester sees it at the top).
REFUSAL_BLOCKS = {
    "requester": ids.B_USER_NAME,
    "path": ids.B_PATH,
    "boundary": ids.B_BOUNDARY,
    "groups": ids.B_GROUPS,
    "policies": ids.B_POLICIES,
    "tags": ids.B_TAGS,
    "expires": ids.B_EXPIRES,
    "grant_for": ids.B_GRANT_FOR,
}
NOT_ALLOWED = "You are not on the list of people who may request IAM users through the bot. Ask your AWS admins."


@dataclasses.dataclass(frozen=True)
class Checked:
    """The form's answer: field errors to show in the modal, or the review screen to push."""

    errors: dict[str, str]
    review: dict[str, Any] | None = None
    draft_id: str | None = None
    fill_later: bool = False  # "copy from": the review is filled in after the ack (`fill_review`)


class RequestForm:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        scopes: Scopes,
        notifier: Notifier,
        rulebook: Rulebook,
        requesters: Requesters,
        request_ttl: timedelta,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
        key_label: Callable[[str], str | None] = lambda _user: None,
    ):
        self.key_label = key_label  # an owner's key for encrypted credentials, as shown; None if none
        self.sm = sessionmaker
        self.scopes = scopes  # the account a request is about: its IAM, its rules, prefix, boundary and requirements
        self.notifier = notifier
        self.rulebook = rulebook
        self.requesters = requesters
        self.request_ttl = request_ttl
        self.clock = clock
        self.wake = wake

    # ---------------------------------------------------------------- the modal

    def modal(self, *, user_id: str) -> dict[str, Any]:
        """The request modal with the path and boundary the guardrails want filled in, or a refusal."""
        if not self.requesters.may_request(user_id):
            return ui.notice_modal("Not allowed", NOT_ALLOWED)
        account = self.default_account(user_id)
        book, prefix = self.scopes.rules_for(account), self.scopes.prefix_for(account)
        boundary = book.required_boundary(prefix, setting=self.scopes.boundary_setting_for(account))
        notes = []
        if book.guardrails.forbidden_policies:
            notes.append("Never granted here: " + ", ".join(f"`{ui.esc(p)}`" for p in book.guardrails.forbidden_policies[:8]))
        if book.guardrails.allowed_tag_keys is not None:
            notes.append("Tag keys allowed: " + (", ".join(f"`{ui.esc(k)}`" for k in book.guardrails.allowed_tag_keys[:10]) or "none"))
        if prefix != "/":
            notes.append(f"Users live under `{ui.esc(prefix)}`")
        if self.scopes.several:
            notes.append("The path, boundary and guardrails shown are those of the account first selected; on submit the chosen account's apply")
        notes.append(key_ui.delivery_line(user_id, self.key_label(user_id), file_only=book.file_only) + " (if you are the owner)")
        accounts = [(a.name, a.label) for a in self.scopes.accounts.members()] if self.scopes.several else []
        return ui.request_modal(requester_id=user_id, default_path=prefix, default_boundary=boundary, notes=notes, accounts=accounts, account=account)

    def default_account(self, user_id: str) -> str:
        """The account a requester's form starts on: their last request's, else the first configured ("" without any)."""
        if not self.scopes.several:
            return ""
        names = self.scopes.names()
        with self.sm.begin() as s:
            last = store.last_account_of(s, requester_id=user_id)
        return last if last in names else (names[0] if names else "")

    def open(self, *, trigger_id: str, user_id: str) -> bool:
        """Open the modal at once (nothing slow before views.open); False if Slack refused the trigger."""
        return self.notifier.open_view(trigger_id=trigger_id, view=self.modal(user_id=user_id))

    # ---------------------------------------------------------------- typeahead (from a brief cache)

    # Only someone who may request sees IAM's names: anyone in the workspace can send a
    # block_suggestion, and the lists name every group, policy and user of the account.
    # Anyone else gets no options (Slack shows "No results"), and nothing is logged.

    # `account`: the one the form is about (None: the requester's default). Its role is assumed on first use.

    def _iam(self, user_id: str, account: str | None) -> IamGateway:
        return self.scopes.of(self.default_account(user_id) if account is None else account).iam

    def group_options(self, query: str, *, user_id: str, account: str | None = None) -> list[dict[str, Any]]:
        if not self.requesters.may_request(user_id):
            return []
        return ui.options((g, g) for g in ranked(query, self._iam(user_id, account).group_names(), str))

    def policy_options(self, query: str, *, user_id: str, account: str | None = None) -> list[dict[str, Any]]:
        if not self.requesters.may_request(user_id):
            return []
        return ui.options(
            (f"{p.name} ({'AWS' if p.aws_managed else 'customer'})", p.arn) for p in ranked(query, self._iam(user_id, account).policies(), lambda p: p.name)
        )

    def user_options(self, query: str, *, user_id: str, account: str | None = None) -> list[dict[str, Any]]:
        if not self.requesters.may_request(user_id):
            return []
        return ui.options((u, u) for u in ranked(query, self._iam(user_id, account).user_names(), str))

    # ---------------------------------------------------------------- the form

    def with_required_defaults(self, spec: RequestSpec, raw: RawForm) -> RequestSpec:
        """An empty path means the users' path prefix (in the request's account); an empty boundary means the one required there."""
        if not raw.path.strip():
            spec = dataclasses.replace(spec, path=self.scopes.prefix_for(spec.account))
        if spec.permissions_boundary is None:
            required = self.scopes.rules_for(spec.account).required_boundary(spec.path, setting=self.scopes.boundary_setting_for(spec.account))
            if required:
                spec = dataclasses.replace(spec, permissions_boundary=required)
        return spec

    def evaluate(
        self, spec: RequestSpec, requester_id: str, *, policy_documents: dict[str, Any] | None = None, group_policies: dict[str, Any] | None = None
    ) -> Evaluation:
        """The verdict of the rules as they hold in the request's account; Slack user-group membership of the requester is read now."""
        member = self.scopes.member(spec.account)
        return self.scopes.rules_for(spec.account).evaluate(
            spec,
            requester_id,
            self.requesters.groups_of(requester_id),
            boundary_setting=self.scopes.boundary_setting_for(spec.account),
            path_prefix=self.scopes.prefix_for(spec.account),
            policy_documents=policy_documents,
            group_policies=group_policies,
            today=self.clock().date(),
            account_id=member.id if member else "",
        )

    def check(self, *, user_id: str, raw: RawForm, received_at: float | None = None) -> Checked:
        """Validate the form, quick checks against IAM and the guardrails within Slack's 3 s, then save a draft.
        Several accounts: each is checked as the user is made in it (its name, its guardrails).

        IAM answers that come too late are skipped here: the plan made at submission reads everything.
        `received_at` (time.monotonic()) is when Slack's delivery arrived: the checks' budget counts from it.
        """
        deadline = (received_at if received_at is not None else time.monotonic()) + QUICK_CHECK_SECONDS
        spec, errors = validate_form(raw, today=self.clock().date())
        if spec is None:
            return Checked(errors=errors)
        scopes = self._scopes_of_form(spec, user_id)
        if isinstance(scopes, str):
            return Checked(errors={ids.B_ACCOUNT: scopes} if len(self.scopes.names()) > 1 else {ids.B_USER_NAME: scopes})
        first = scopes[0]
        spec = self.with_required_defaults(dataclasses.replace(spec, account=first.account, also_accounts=tuple(x.account for x in scopes[1:])), raw)
        several = len(scopes) > 1
        ev: Evaluation | None = None
        for scope in scopes:
            member = self.member_spec(spec, scope.account)
            found = self._quick_checks(member, scope, user_id=user_id, deadline=deadline)
            ev = ev or found[1]
            for field, message in found[0].items():
                errors.setdefault(field, f"In {scope.account}: {message}" if several else message)
        assert ev is not None
        owner_key = self.key_label(spec.owner_id)  # read once: for the refusal below and the review's delivery line
        if self.rulebook.file_only and owner_key is None:
            errors.setdefault(
                ids.B_OWNER,
                ("You have" if spec.owner_id == user_id else "The owner has") + " no key registered, and credentials are only sent as a "
                "file encrypted to the owner's key. Register one with /iam key set <public key> (e.g. ~/.ssh/id_ed25519.pub), then submit again.",
            )
        if self.rulebook.hold_keys_until_mfa and spec.access_key and not spec.console_access:
            # MFA is enrolled by signing in to the console: a key-only user could never get its key.
            errors.setdefault(
                ids.B_ACCESS_TYPE,
                "This workspace's rules hold access keys until the user has MFA on, and MFA is set up by signing in to the AWS "
                "console: tick console access too.",
            )
        if errors:
            return Checked(errors=errors)
        with self.sm.begin() as s:
            draft_id = usecases.save_draft(s, requester_id=user_id, spec=spec, now=self.clock())
        if several:  # no preview: each account's plan is made on submit, and approvers see each
            review = self._review(spec, draft_id=draft_id, user_id=user_id, ev=ev, owner_key=owner_key,
                                  note=f"One plan per account is made when you submit ({', '.join(x.account for x in scopes)}); approvers see "
                                       "each, approve them together (the strictest rule of them decides), and each account's is made and reported on its own.")
            return Checked(errors={}, review=review, draft_id=draft_id)
        # Without "copy from" the steps follow from the form alone: shown at once, no IAM call.
        preview = None if spec.copy_from else self._preview(spec, IamFacts(account=first.account_id or first.iam.known_account_id() or ""), first)
        return Checked(
            errors={}, review=self._review(spec, draft_id=draft_id, user_id=user_id, ev=ev, owner_key=owner_key, plan=preview), draft_id=draft_id, fill_later=bool(spec.copy_from)
        )

    def _quick_checks(self, spec: RequestSpec, scope: Scope, *, user_id: str, deadline: float) -> tuple[dict[str, str], Evaluation]:
        """What can be told in one account while Slack waits: the name free there, the copy source still
        there, and its guardrails (a forbidden policy reached through a group, when IAM answers in time)."""
        errors: dict[str, str] = {}
        iam = scope.iam
        with self.sm.begin() as s:
            dup = store.open_request_for_name(s, user_name=spec.user_name, account=spec.account)
        if dup is not None:
            errors[ids.B_USER_NAME] = f"Request {dup.short_id} for this name is already open. Choose another name."
        elif iam.user_exists_quick(spec.user_name, deadline=deadline):
            errors[ids.B_USER_NAME] = "An IAM user with this name already exists (names are case-insensitive). Choose another."
        # The copy-from name came from our own list, spelled as IAM spells it.
        if spec.copy_from and iam.user_exists_quick(spec.copy_from, deadline=deadline, exact_only=True) is False:
            errors[ids.B_COPY_FROM] = "This user no longer exists in IAM. Pick another."
        # The plan judges the whole grant after submission anyway.
        g = scope.rulebook.guardrails
        via_groups = iam.group_policies_quick(list(spec.groups), deadline=deadline) if g.forbidden_policies and spec.groups else {}
        docs = iam.documents_quick(list(spec.policy_arns), deadline=deadline) if g.forbidden_actions else {}
        ev = self.evaluate(spec, user_id, policy_documents=docs, group_policies=via_groups)
        for field, message in ev.refusals:
            errors.setdefault(REFUSAL_BLOCKS.get(field, ids.B_USER_NAME), message)
        return errors, ev

    def member_spec(self, spec: RequestSpec, account: str) -> RequestSpec:
        """What is asked in one of the accounts of an ask for several: the first account's form, with this
        account's path prefix where the path was left to the default, and its namesake of the boundary."""
        if account == spec.account:
            return dataclasses.replace(spec, also_accounts=())
        member = self.scopes.member(account)
        path = self.scopes.prefix_for(account) if spec.path == self.scopes.prefix_for(spec.account) else spec.path
        boundary = spec.permissions_boundary
        if boundary and member is not None:
            boundary = arn_in(boundary, member.id)
        return dataclasses.replace(spec, account=account, also_accounts=(), path=path, permissions_boundary=boundary)

    def _scopes_of_form(self, spec: RequestSpec, user_id: str) -> list[Scope] | str:
        """Where the form's user is made: the accounts picked (or the only one); else what to tell the requester."""
        names = self.scopes.names()
        picked = [a for a in spec.accounts if a] or [names[0] if len(names) == 1 else self.default_account(user_id)]
        if any(a not in names for a in picked):
            return "Pick accounts from the list." if self.scopes.several else "This bot has no AWS account of that name."
        out = []
        for account in picked:
            try:
                out.append(self.scopes.of(account))
            except AwsError as exc:  # the role cannot be assumed: nothing can be checked or made there
                return exc.explain()
        return out

    def _preview(self, spec: RequestSpec, facts: IamFacts, scope: Scope) -> Plan:
        plan = planner.plan_create_user(spec, facts, marker="(on submission)", required=scope.required, hold_key=scope.rulebook.hold_keys_until_mfa)[0]
        return dataclasses.replace(plan, account_name=scope.account) if scope.account else plan

    def _review(self, spec: RequestSpec, *, draft_id: str, user_id: str, ev: Evaluation, owner_key: str | None, **plan: Any) -> dict[str, Any]:
        approvers = approval.who_is_asked(users=ev.approver_users, groups=ev.approver_groups, requester_id=user_id, owner_id=spec.owner_id)
        rule = ui.rule_text(rule_name=ev.rule_name, quorum=ev.quorum, approvers=approvers, auto_approve=ev.auto_approve)
        delivery = key_ui.delivery_line(spec.owner_id, owner_key, file_only=self.rulebook.file_only)
        return ui.review_modal(spec=spec, draft_id=draft_id, requester_id=user_id, approvers=approvers, rule=rule, delivery=delivery, **plan)

    def fill_review(self, *, draft_id: str, user_id: str) -> None:
        """After the ack, for "copy from": read what the source user has (it may take longer than Slack
        waits) and show the steps it brings. The only IAM read of the review, as before plans existed;
        the whole plan, with what every group grants, is read when the request is submitted."""
        try:
            with self.sm.begin() as s:
                spec = usecases.load_draft(s, draft_id=draft_id, actor_id=user_id)
        except Refused:
            return  # submitted (or gone) meanwhile: nothing to fill
        if not spec.copy_from:
            return
        ev, owner_key = self.evaluate(spec, user_id), self.key_label(spec.owner_id)
        try:
            scope = self.scopes.of(spec.account)
            source = scope.iam.read_user(spec.copy_from)
            preview = self._preview(spec, IamFacts(account=scope.account_id or scope.iam.known_account_id() or "", users={spec.copy_from: source}), scope)
            filled = self._review(spec, draft_id=draft_id, user_id=user_id, ev=ev, owner_key=owner_key, plan=preview)
        except AccountUnknown as exc:
            filled = self._review(spec, draft_id=draft_id, user_id=user_id, ev=ev, owner_key=owner_key, plan_error=str(exc))
        except AwsError as exc:
            filled = self._review(spec, draft_id=draft_id, user_id=user_id, ev=ev, owner_key=owner_key, plan_error=exc.explain())
        self.notifier.update_view(external_id=ids.review_external_id(draft_id), view=filled)

    # ---------------------------------------------------------------- the review: submit

    def submit(self, *, draft_id: str, user_id: str) -> None:
        """Submit the reviewed draft; the worker makes its plan, judges it and asks the approvers.

        Raises Refused (shown in the modal) if the draft is gone or the rules now refuse it.
        """
        now = self.clock()
        with self.sm.begin() as s:
            spec = usecases.load_draft(s, draft_id=draft_id, actor_id=user_id)
        # Judged again at submission, in each account: the rules or the requester's groups may have changed since the review.
        try:
            members = {account: self.member_spec(spec, account) for account in spec.accounts}
        except AccountUnknown as exc:
            raise Refused(f"{exc}. Start again with `/iam request`.") from None
        evs = {account: self.evaluate(member, user_id) for account, member in members.items()}
        with self.sm.begin() as s:
            req = usecases.submit_draft(s, draft_id=draft_id, actor_id=user_id, now=now, evaluation=evs[spec.account], evaluations=evs,
                                        specs=members, expires_at=now + self.request_ttl)
            bind(request=req.short_id)  # the lines of what follows name it
        self.wake()
