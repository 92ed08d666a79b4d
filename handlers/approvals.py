"""Approve and Deny: one decision wins, every message shows it, refusals are ephemeral."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.requests import usecases
from bot.runtime.app import Deps
from bot.slack.ui import blocks as ui
from bot.slack.ui import ids
from bot.policy.approval import progress_text
from handlers.common import action_value, actor_groups, attempt, clicked_in, reason_and_request
from models import AccessRequest, RequestState

log = logging.getLogger(__name__)


def after_partial_approval(deps: Deps, request_id: int, *, actor: str, channel: str) -> None:
    """An approval that does not meet the quorum yet: every message shows the count; the approver is told."""
    deps.notifier.refresh_approval_messages(request_id)
    deps.notifier.refresh_homes(request_id, now=deps.clock())
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        approvals = usecases.approvals_of(s, request_id=request_id)
        text = f"Your approval of {req.short_id} is recorded: {progress_text(approvals, req.quorum)}. It waits for another approver."
    deps.notifier.ephemeral(channel=channel, user=actor, text=text)


def after_decision(deps: Deps, request_id: int) -> None:
    deps.notifier.announce_change(request_id, now=deps.clock())
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        requester, message = req.requester_id, ui.decision_message(req)
    deps.notifier.dm_quietly(requester, message, what="decision notice")


def decide(deps: Deps, *, actor: str, short_id: str, approve: bool, reason: str | None = None) -> AccessRequest:
    """The decision use case, with the actor's Slack user groups read now (leaving one removes the right)."""
    return attempt(
        deps,
        actor,
        usecases.decide,
        short_id=short_id,
        actor_id=actor,
        approve=approve,
        default_approvers=deps.rulebook.default_approvers,
        actor_groups=actor_groups(deps, short_id=short_id, actor=actor),
        now=deps.clock(),
        reason=reason,
    )


def register(app: App, deps: Deps) -> None:
    def refuse(body: dict[str, Any], text: str) -> None:
        deps.notifier.ephemeral(channel=clicked_in(body), user=body["user"]["id"], text=text)

    @app.action(ids.A_APPROVE)
    def approve(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        actor = body["user"]["id"]
        short_id = action_value(body)
        try:
            req = decide(deps, actor=actor, short_id=short_id, approve=True)
        except usecases.Refused as refused:
            refuse(body, str(refused))
            return
        if RequestState(req.state) is RequestState.PENDING:
            after_partial_approval(deps, req.id, actor=actor, channel=clicked_in(body))
            return
        deps.worker.wake()
        after_decision(deps, req.id)

    @app.action(ids.A_DENY)
    def deny_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        actor = body["user"]["id"]
        try:
            short_id = action_value(body)
            req = attempt(
                deps,
                actor,
                usecases.check_may_decide,
                short_id=short_id,
                actor_id=actor,
                default_approvers=deps.rulebook.default_approvers,
                actor_groups=actor_groups(deps, short_id=short_id, actor=actor),
            )
            view = ui.deny_modal(short_id=req.short_id, user_name=req.user_name)
        except usecases.Refused as refused:
            refuse(body, str(refused))
            return
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("deny modal not opened: %s", exc.response.get("error"))
            refuse(body, "Slack did not let me open the form in time; please click Deny again.")

    @app.view(ids.DENY_VIEW)
    def deny_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        actor = body["user"]["id"]
        reason, short_id = reason_and_request(view, ids.B_DENY_REASON)
        if not reason:
            ack(response_action="errors", errors={ids.B_DENY_REASON: "Say why, so the requester knows what to change."})
            return
        try:
            req = decide(deps, actor=actor, short_id=short_id, approve=False, reason=reason[:1000])
        except usecases.Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not denied", str(refused)))
            return
        ack()
        after_decision(deps, req.id)
