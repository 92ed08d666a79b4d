"""Approve and Deny: one decision wins, every message shows it, refusals are ephemeral."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import usecases
from bot.app import Deps
from bot.ui import blocks as ui
from bot.ui import ids
from handlers.common import action_value, attempt, clicked_in
from models import AccessRequest

log = logging.getLogger(__name__)


def after_decision(deps: Deps, request_id: int) -> None:
    deps.notifier.announce_change(request_id, now=deps.clock())
    with deps.sessionmaker.begin() as s:
        req = s.get(AccessRequest, request_id)
        assert req is not None
        requester, message = req.requester_id, ui.decision_message(req)
    deps.notifier.dm_quietly(requester, message, what="decision notice")


def register(app: App, deps: Deps) -> None:
    def refuse(body: dict[str, Any], text: str) -> None:
        deps.notifier.ephemeral(channel=clicked_in(body), user=body["user"]["id"], text=text)

    @app.action(ids.A_APPROVE)
    def approve(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        actor = body["user"]["id"]
        try:
            req = attempt(
                deps,
                actor,
                usecases.decide,
                short_id=action_value(body),
                actor_id=actor,
                approve=True,
                approvers=deps.settings.approvers,
                now=deps.clock(),
            )
        except usecases.Refused as refused:
            refuse(body, str(refused))
            return
        deps.worker.wake()
        after_decision(deps, req.id)

    @app.action(ids.A_DENY)
    def deny_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        actor = body["user"]["id"]
        try:
            req = attempt(
                deps, actor, usecases.check_may_decide, short_id=action_value(body), actor_id=actor, approvers=deps.settings.approvers
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
        values = (view.get("state") or {}).get("values") or {}
        reason = (((values.get(ids.B_DENY_REASON) or {}).get(ids.A_VALUE) or {}).get("value") or "").strip()
        if not reason:
            ack(response_action="errors", errors={ids.B_DENY_REASON: "Say why, so the requester knows what to change."})
            return
        try:
            req = attempt(
                deps,
                actor,
                usecases.decide,
                short_id=str(view.get("private_metadata") or "")[:20],
                actor_id=actor,
                approve=False,
                approvers=deps.settings.approvers,
                now=deps.clock(),
                reason=reason[:1000],
            )
        except usecases.Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not denied", str(refused)))
            return
        ack()
        after_decision(deps, req.id)
