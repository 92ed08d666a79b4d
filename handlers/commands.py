"""`/iam` and its subcommands."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import usecases
from bot.app import Deps
from bot.ui import blocks as ui
from bot.ui import ids

log = logging.getLogger(__name__)


def open_request_modal(client: WebClient, *, trigger_id: str, user_id: str) -> bool:
    try:
        client.views_open(trigger_id=trigger_id, view=ui.request_modal(requester_id=user_id))
        return True
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        return False


def status_reply(deps: Deps, *, user_id: str, query: str | None) -> dict[str, Any]:
    with deps.sessionmaker.begin() as s:
        mine = usecases.requests_of(s, user_id=user_id, query=query)
        awaiting = [] if query else usecases.awaiting_decision(s, approver_id=user_id, approvers=deps.settings.approvers)
        return ui.status_message(mine=mine, awaiting=awaiting, query=query)


def register(app: App, deps: Deps) -> None:
    @app.command("/iam")
    def iam_command(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        text = (command.get("text") or "").strip()
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        user_id = command["user_id"]
        if sub in ("request", "new"):
            if not open_request_modal(client, trigger_id=command["trigger_id"], user_id=user_id):
                respond(response_type="ephemeral", text="Slack did not let me open the form in time. Please run `/iam request` again.")
        elif sub == "status":
            respond(response_type="ephemeral", **status_reply(deps, user_id=user_id, query=rest.strip()[:100] or None))
        elif sub in ("", "help"):
            respond(response_type="ephemeral", **ui.help_message())
        else:
            msg = ui.help_message()
            msg["text"] = f"I don't know `/iam {ui.esc(ui.clip(sub, 40))}`. " + msg["text"]
            respond(response_type="ephemeral", **msg)

    @app.action(ids.A_OPEN_REQUEST)
    def open_from_help(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = body["user"]["id"]
        if not open_request_modal(client, trigger_id=body["trigger_id"], user_id=user_id):
            deps.notifier.dm_quietly(user_id, {"text": "Slack did not let me open the form in time. Please run `/iam request`."}, what="retry hint")
