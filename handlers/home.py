"""The App Home tab, and cancelling a pending request (from Home or the confirmation DM)."""

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
from handlers.common import action_value, attempt, clicked_in

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            deps.notifier.publish_home(event["user"], now=deps.clock())

    @app.action(ids.A_CANCEL)
    def cancel(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        actor = body["user"]["id"]
        short_id = action_value(body)
        channel = clicked_in(body)
        try:
            req = attempt(deps, actor, usecases.cancel, short_id=short_id, actor_id=actor, now=deps.clock())
        except usecases.Refused as refused:
            deps.notifier.ephemeral(channel=channel, user=actor, text=str(refused))
            return
        message_ts = (body.get("container") or {}).get("message_ts")
        if channel and message_ts:
            # The confirmation DM the button was in now says what happened.
            try:
                client.chat_update(channel=channel, ts=message_ts, **ui.decision_message(req))
            except SlackApiError as exc:
                log.info("could not update the cancelled request's DM: %s", exc.response.get("error"))
        deps.notifier.announce_change(req.id, now=deps.clock())
