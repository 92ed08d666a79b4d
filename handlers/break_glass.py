"""Break-glass (off unless IAM_BOT_RULES lists requesters): approve your own request, with a reason."""

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
from handlers.common import action_value, attempt, clicked_in, reason_and_request, view_input
from handlers.request_form import _tell_approvers, _tell_requester
from models import RequestState

log = logging.getLogger(__name__)


def _listed(deps: Deps, user_id: str) -> bool:
    book = deps.rulebook
    return book.may_break_glass(user_id, deps.notifier.directory.groups_of(user_id, book.requester_groups_to_resolve))


def register(app: App, deps: Deps) -> None:
    @app.action(ids.A_BREAK_GLASS)
    def clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        actor, short_id, channel = body["user"]["id"], action_value(body), clicked_in(body)
        try:
            with deps.sessionmaker.begin() as s:
                req = usecases.get_request(s, short_id=short_id)
                mine, pending, user_name = req.requester_id == actor, RequestState(req.state) is RequestState.PENDING, req.user_name
        except usecases.Refused as refused:
            deps.notifier.ephemeral(channel=channel, user=actor, text=str(refused))
            return
        if not (mine and _listed(deps, actor)):
            deps.notifier.ephemeral(channel=channel, user=actor, text="Only a requester listed for break-glass can approve their own request.")
            return
        if not pending:
            deps.notifier.ephemeral(channel=channel, user=actor, text="This request is no longer waiting for approval. Nothing was changed.")
            return
        try:
            client.views_open(trigger_id=body["trigger_id"], view=ui.break_glass_modal(short_id=short_id, user_name=user_name))
        except SlackApiError as exc:
            log.warning("break-glass modal not opened: %s", exc.response.get("error"))
            deps.notifier.ephemeral(channel=channel, user=actor, text="Slack did not let me open the form in time; click the button again.")

    @app.view(ids.BREAK_GLASS_VIEW)
    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        actor = body["user"]["id"]
        reason, short_id = reason_and_request(view, ids.B_BG_REASON)
        confirm = view_input(view, ids.B_BG_CONFIRM, "selected_options") or []
        errors = {}
        if not reason:
            errors[ids.B_BG_REASON] = "Say why this cannot wait for an approver; reviewers read it."
        if not any(isinstance(o, dict) and o.get("value") == ids.BG_CONFIRMED for o in confirm):
            errors[ids.B_BG_CONFIRM] = "Tick the box to confirm you take responsibility."
        if errors:
            ack(response_action="errors", errors=errors)
            return
        try:
            req = attempt(
                deps,
                actor,
                usecases.break_glass,
                short_id=short_id,
                actor_id=actor,
                allowed=_listed(deps, actor),
                reason=reason[:1000],
                now=deps.clock(),
            )
        except usecases.Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not approved", str(refused)))
            return
        ack()
        deps.worker.wake()
        _tell_approvers(deps, req.id)  # every approver, at once
        deps.notifier.announce_change(req.id, now=deps.clock())
        _tell_requester(deps, req.id)
