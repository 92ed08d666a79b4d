"""The request modal: typeahead options from IAM, validation in the modal, review, submit."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.policy import approval as rules, risk
from bot.requests import usecases
from bot.runtime.app import Deps
from bot.policy.rulebook import Evaluation
from bot.domain.spec import RequestSpec
from bot.slack.typeahead import ranked
from bot.iam.gateway import AwsError
from bot.common.logcontext import bind
from bot.slack.ui import blocks as ui
from bot.slack.ui import ids
from bot.requests.validation import RawForm, validate_form
from bot.domain.spec import spec_of
from models import AccessRequest

log = logging.getLogger(__name__)

# Of Slack's 3 s for answering a view submission, what the IAM checks may use.
QUICK_CHECK_SECONDS = 2.2
# Where each guardrail refusal is shown in the form (a refused requester sees it at the top).
REFUSAL_BLOCKS = {
    "requester": ids.B_USER_NAME,
    "path": ids.B_PATH,
    "boundary": ids.B_BOUNDARY,
    "groups": ids.B_GROUPS,
    "policies": ids.B_POLICIES,
}


def with_required_defaults(deps: Deps, spec: RequestSpec, raw: RawForm) -> RequestSpec:
    """An empty path means the users' path prefix; an empty boundary means the one required there."""
    if not raw.path.strip():
        spec = dataclasses.replace(spec, path=deps.settings.user_path_prefix)
    if spec.permissions_boundary is None:
        required = deps.rulebook.required_boundary(spec.path, setting=deps.settings.permissions_boundary or None)
        if required:
            spec = dataclasses.replace(spec, permissions_boundary=required)
    return spec


def evaluate(deps: Deps, spec: RequestSpec, requester_id: str, *, policy_documents: dict[str, Any] | None = None) -> Evaluation:
    """The rulebook's verdict; Slack user-group membership of the requester is read now."""
    book = deps.rulebook
    groups = deps.notifier.directory.groups_of(requester_id, book.requester_groups_to_resolve)
    return book.evaluate(
        spec,
        requester_id,
        groups,
        boundary_setting=deps.settings.permissions_boundary or None,
        path_prefix=deps.settings.user_path_prefix,
        policy_documents=policy_documents,
    )


def who_is_asked(ev: Evaluation, *, requester_id: str, owner_id: str) -> list[str]:
    """Approver users and groups as the review and the confirmation show them (never the requester or owner)."""
    users = rules.eligible_approvers(approvers=frozenset(ev.approver_users), requester_id=requester_id, owner_id=owner_id)
    return [*users, *ev.approver_groups]


def parse_request_form(values: dict[str, Any]) -> RawForm:
    """Read the submitted state.values defensively: a hostile payload may omit or mistype anything."""

    def element(block: str, action: str) -> dict[str, Any]:
        found = (values.get(block) or {}).get(action)
        return found if isinstance(found, dict) else {}

    def text(block: str) -> str:
        v = element(block, ids.A_VALUE).get("value")
        return v if isinstance(v, str) else ""

    def selected(block: str, action: str) -> tuple[str, ...]:
        opts = element(block, action).get("selected_options") or []
        return tuple(o["value"] for o in opts if isinstance(o, dict) and isinstance(o.get("value"), str))

    def one(block: str, action: str) -> str:
        opt = element(block, action).get("selected_option") or {}
        v = opt.get("value") if isinstance(opt, dict) else None
        return v if isinstance(v, str) else ""

    owner = element(ids.B_OWNER, ids.A_VALUE).get("selected_user")
    return RawForm(
        user_name=text(ids.B_USER_NAME),
        access_types=selected(ids.B_ACCESS_TYPE, ids.A_VALUE),
        groups=selected(ids.B_GROUPS, ids.A_GROUPS),
        policy_arns=selected(ids.B_POLICIES, ids.A_POLICIES),
        copy_from=one(ids.B_COPY_FROM, ids.A_COPY_FROM),
        path=text(ids.B_PATH),
        tags=text(ids.B_TAGS),
        permissions_boundary=one(ids.B_BOUNDARY, ids.A_BOUNDARY),
        owner_id=owner if isinstance(owner, str) else "",
        reason=text(ids.B_REASON),
    )


def register(app: App, deps: Deps) -> None:
    iam = deps.iam

    # ---- typeahead: answered from a briefly cached IAM listing ----

    def _options_or_empty(ack: Ack, build: Any) -> None:
        try:
            ack(options=build())
        except AwsError as exc:
            # An empty list shows "No results"; the cause goes to the operator's log.
            log.warning("options lookup failed: %s during %s", exc.code, exc.action)
            ack(options=[])

    @app.options(ids.A_GROUPS)
    def group_options(ack: Ack, payload: dict[str, Any]) -> None:
        q = payload.get("value") or ""
        _options_or_empty(ack, lambda: ui.options((g, g) for g in ranked(q, iam.group_names(), str)))

    @app.options(ids.A_POLICIES)
    @app.options(ids.A_BOUNDARY)
    def policy_options(ack: Ack, payload: dict[str, Any]) -> None:
        q = payload.get("value") or ""
        _options_or_empty(
            ack,
            lambda: ui.options(
                (f"{p.name} ({'AWS' if p.aws_managed else 'customer'})", p.arn)
                for p in ranked(q, iam.policies(), lambda p: p.name)
            ),
        )

    @app.options(ids.A_COPY_FROM)
    def user_options(ack: Ack, payload: dict[str, Any]) -> None:
        q = payload.get("value") or ""
        _options_or_empty(ack, lambda: ui.options((u, u) for u in ranked(q, iam.user_names(), str)))

    # ---- the form: validate, push the review screen ----

    @app.view(ids.REQUEST_VIEW)
    def request_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        user_id = body["user"]["id"]
        deadline = time.monotonic() + QUICK_CHECK_SECONDS
        raw = parse_request_form((view.get("state") or {}).get("values") or {})
        spec, errors = validate_form(raw)
        ev = None
        if spec is not None:
            spec = with_required_defaults(deps, spec, raw)
            # Quick checks against the world; slow answers are skipped and re-checked at provisioning.
            with deps.sessionmaker.begin() as s:
                dup = usecases.open_request_for_name(s, user_name=spec.user_name)
            if dup is not None:
                errors[ids.B_USER_NAME] = f"Request {dup.short_id} for this name is already open. Choose another name."
            elif iam.user_exists_quick(spec.user_name, deadline=deadline):
                errors[ids.B_USER_NAME] = "An IAM user with this name already exists (names are case-insensitive). Choose another."
            # The copy-from name came from our own list, spelled as IAM spells it.
            if spec.copy_from and iam.user_exists_quick(spec.copy_from, deadline=deadline, exact_only=True) is False:
                errors[ids.B_COPY_FROM] = "This user no longer exists in IAM. Pick another."
            # Guardrails, in the form; documents not read in time are checked again after submission.
            docs = iam.customer_documents_quick(list(spec.policy_arns), deadline=deadline) if deps.rulebook.guardrails.forbidden_actions else {}
            ev = evaluate(deps, spec, user_id, policy_documents=docs)
            for field, message in ev.refusals:
                errors.setdefault(REFUSAL_BLOCKS.get(field, ids.B_USER_NAME), message)
        if errors or spec is None or ev is None:
            ack(response_action="errors", errors=errors)
            return
        with deps.sessionmaker.begin() as s:
            draft_id = usecases.save_draft(s, requester_id=user_id, spec=spec, now=deps.clock())
        approvers = who_is_asked(ev, requester_id=user_id, owner_id=spec.owner_id)
        rule = ui.rule_text(rule_name=ev.rule_name, quorum=ev.quorum, approvers=approvers, auto_approve=ev.auto_approve)
        review = ui.review_modal(spec=spec, draft_id=draft_id, requester_id=user_id, approvers=approvers, rule=rule)
        ack(response_action="push", view=review)
        if spec.copy_from:
            # Fill in what copying brings after the ack: IAM may take longer than Slack waits.
            try:
                copied, error = iam.read_permissions(spec.copy_from), None
            except AwsError as exc:
                copied, error = None, exc.explain()
            filled = ui.review_modal(
                spec=spec, draft_id=draft_id, requester_id=user_id, approvers=approvers, copied=copied, copy_error=error, rule=rule
            )
            try:
                client.views_update(external_id=ids.review_external_id(draft_id), view=filled)
            except SlackApiError as exc:
                log.info("review update skipped: %s", exc.response.get("error"))

    # ---- the review: submit the request ----

    @app.view(ids.REVIEW_VIEW)
    def review_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        draft_id = str(view.get("private_metadata") or "")[:64]
        now = deps.clock()
        try:
            with deps.sessionmaker.begin() as s:
                spec = usecases.load_draft(s, draft_id=draft_id, actor_id=user_id)
            # Judged again at submission: the rules or the requester's groups may have changed since the review.
            ev = evaluate(deps, spec, user_id)
            reminders = deps.rulebook.reminders
            with deps.sessionmaker.begin() as s:
                req = usecases.submit_draft(
                    s,
                    draft_id=draft_id,
                    actor_id=user_id,
                    now=now,
                    evaluation=ev,
                    expires_at=now + deps.request_ttl,
                    next_reminder_at=now + timedelta(hours=reminders.delay_hours(0)) if reminders and not ev.auto_approve else None,
                )
                request_id = req.id
                bind(request=req.short_id)  # the lines of what follows (approvers asked, DMs) name it
        except usecases.Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not submitted", str(refused)))
            return
        ack(response_action="clear")
        # Bolt has answered Slack at ack(); the slow calls below run after it.
        _announce(deps, request_id, evaluation=ev)


def _announce(deps: Deps, request_id: int, *, evaluation: Evaluation) -> None:
    """After submission: judge the risk from IAM, then deny (guardrail), approve (rule) or ask the approvers."""
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        spec = spec_of(req)
        requester, owner = req.requester_id, req.owner_id
    facts = deps.iam.risk_facts(policy_arns=list(spec.policy_arns), groups=list(spec.groups), copy_from=spec.copy_from)
    violation = risk.guardrail_violation(deps.rulebook.guardrails, facts)
    with deps.sessionmaker.begin() as s:
        s.get(AccessRequest, request_id).risk = risk.assess(spec, facts)  # type: ignore[union-attr]
    if violation:
        with deps.sessionmaker.begin() as s:
            usecases.deny_by_guardrail(s, request_id=request_id, reason=f"Refused by a guardrail: {violation}.", now=deps.clock())
        _tell_requester(deps, request_id)
        deps.notifier.announce_change(request_id, now=deps.clock())
        return
    if evaluation.auto_approve:
        with deps.sessionmaker.begin() as s:
            won = usecases.auto_approve(s, request_id=request_id, now=deps.clock())
        if won:
            deps.worker.wake()
            _tell_approvers(deps, request_id)
            _tell_requester(deps, request_id)
            deps.notifier.announce_change(request_id, now=deps.clock())
            return
    spec_copy = None
    if spec.copy_from:
        try:
            spec_copy = deps.iam.read_permissions(spec.copy_from)
        except AwsError as exc:
            log.info("could not read permissions of %s for the approval message: %s", spec.copy_from, exc.code)
    sent = deps.notifier.post_approval_requests(request_id, copied=spec_copy)
    approvers = who_is_asked(evaluation, requester_id=requester, owner_id=owner)
    book = deps.rulebook
    may_break_glass = book.may_break_glass(requester, deps.notifier.directory.groups_of(requester, book.requester_groups_to_resolve))
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        message = ui.submitted_message(req, approvers=approvers, break_glass=may_break_glass)
    if sent == 0:
        message = {
            "text": f"Your request {req.short_id} is saved, but I could not reach any approver (none is configured or Slack refused). "
            "Tell your Slack admin to check IAM_BOT_APPROVERS and IAM_BOT_RULES."
        }
        if may_break_glass:
            message = {**ui.submitted_message(req, approvers=approvers, break_glass=True), "text": message["text"]}
    deps.notifier.dm_quietly(requester, message, what="submission confirmation")
    deps.notifier.refresh_homes(request_id, now=deps.clock())


def _tell_requester(deps: Deps, request_id: int) -> None:
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        requester, message = req.requester_id, ui.decision_message(req)
    deps.notifier.dm_quietly(requester, message, what="decision notice")


def _tell_approvers(deps: Deps, request_id: int) -> None:
    """Approvers who had no say (automatic or break-glass approval) are told at once, by DM."""
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        message = ui.notice_to_approvers(req)
    people = deps.notifier.eligible_approvers(req)
    if not people:  # an automatic rule names nobody: the default approvers hear of it
        people = rules.eligible_approvers(
            approvers=frozenset(deps.rulebook.default_approvers), requester_id=req.requester_id, owner_id=req.owner_id
        )
    for person in people:
        deps.notifier.dm_quietly(person, message, what="approval notice")
