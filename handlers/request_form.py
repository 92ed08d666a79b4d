"""The request modal: typeahead options from IAM, validation in the modal, review, submit."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import rules, usecases
from bot.app import Deps
from bot.typeahead import ranked
from bot.aws import AwsError
from bot.logcontext import bind
from bot.ui import blocks as ui
from bot.ui import ids
from bot.validation import RawForm, validate_form
from models import AccessRequest

log = logging.getLogger(__name__)

# Of Slack's 3 s for answering a view submission, what the IAM checks may use.
QUICK_CHECK_SECONDS = 2.2


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
        spec, errors = validate_form(parse_request_form((view.get("state") or {}).get("values") or {}))
        if spec is not None:
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
        if errors or spec is None:
            ack(response_action="errors", errors=errors)
            return
        with deps.sessionmaker.begin() as s:
            draft_id = usecases.save_draft(s, requester_id=user_id, spec=spec, now=deps.clock())
        approvers = rules.eligible_approvers(approvers=deps.settings.approvers, requester_id=user_id, owner_id=spec.owner_id)
        review = ui.review_modal(spec=spec, draft_id=draft_id, requester_id=user_id, approvers=approvers)
        ack(response_action="push", view=review)
        if spec.copy_from:
            # Fill in what copying brings after the ack: IAM may take longer than Slack waits.
            try:
                copied, error = iam.read_permissions(spec.copy_from), None
            except AwsError as exc:
                copied, error = None, exc.explain()
            filled = ui.review_modal(
                spec=spec, draft_id=draft_id, requester_id=user_id, approvers=approvers, copied=copied, copy_error=error
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
        try:
            with deps.sessionmaker.begin() as s:
                req = usecases.submit_draft(s, draft_id=draft_id, actor_id=user_id, now=deps.clock())
                request_id = req.id
                bind(request=req.short_id)  # the lines of what follows (approvers asked, DMs) name it
        except usecases.Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not submitted", str(refused)))
            return
        ack(response_action="clear")
        # Bolt has answered Slack at ack(); the slow calls below run after it.
        _announce(deps, request_id)


def _announce(deps: Deps, request_id: int) -> None:
    spec_copy = None
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        copy_from = req.copy_from
        requester, owner = req.requester_id, req.owner_id
    if copy_from:
        try:
            spec_copy = deps.iam.read_permissions(copy_from)
        except AwsError as exc:
            log.info("could not read permissions of %s for the approval message: %s", copy_from, exc.code)
    sent = deps.notifier.post_approval_requests(request_id, copied=spec_copy)
    approvers = rules.eligible_approvers(approvers=deps.settings.approvers, requester_id=requester, owner_id=owner)
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        message = ui.submitted_message(req, approvers=approvers)
    if sent == 0:
        message = {
            "text": f"Your request {req.short_id} is saved, but I could not reach any approver (none is configured or Slack refused). "
            "Tell your Slack admin to check IAM_BOT_APPROVERS."
        }
    deps.notifier.dm_quietly(requester, message, what="submission confirmation")
    deps.notifier.refresh_homes(request_id, now=deps.clock())
