"""`/iam` and its subcommands."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.slack import ui
from bot.slack.phrases import Query
from bot.slack.ui import ids
from handlers import Services

RETRY = "Slack did not let me open the form in time. Please run `/iam request` again."


def register(app: App, services: Services) -> None:
    @app.command("/iam")
    def iam_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        text = (command.get("text") or "").strip()
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        user_id = command["user_id"]
        if sub in ("request", "new"):
            if not services.form.open(trigger_id=command["trigger_id"], user_id=user_id):
                respond(response_type="ephemeral", text=RETRY)
        elif sub == "audit":
            respond(response_type="ephemeral", text=services.audit_export.export(user_id=user_id, args=rest))
        elif sub == "status":
            query = Query("one", rest.strip().lstrip("#")[:100]) if rest.strip() else Query("mine")
            respond(response_type="ephemeral", **services.status.answer(user_id=user_id, query=query))
        elif sub == "key":
            # The text may be a private key pasted by mistake: it goes to the parser only, never to a log.
            respond(response_type="ephemeral", **services.keys.command(user_id=user_id, text=rest))
        elif sub in ("rotate-key", "reset-password"):
            kind = "rotate_key" if sub == "rotate-key" else "reset_password"
            respond(response_type="ephemeral", **services.credential_requests.ask(kind=kind, actor=user_id, text=rest))
        elif sub == "change":
            # The modal opens first (Slack's trigger lasts 3 s); IAM is read after, and the form filled in.
            if (answer := services.changes.open(trigger_id=command["trigger_id"], actor=user_id, text=rest)) is not None:
                respond(response_type="ephemeral", text=answer)
        elif sub == "extend":
            respond(response_type="ephemeral", **services.extensions.ask(actor=user_id, text=rest))
        elif sub in ("disable", "offboard"):
            respond(response_type="ephemeral", **services.removals.ask(kind=sub, actor=user_id, text=rest))
        elif sub == "report":
            # After the ack: IAM may take seconds to make the credential report.
            respond(response_type="ephemeral", **services.hygiene.on_demand(user_id=user_id, text=rest))
        elif sub in ("", "help"):
            respond(response_type="ephemeral", **ui.help_message())
        else:
            msg = ui.help_message()
            msg["text"] = f"I don't know `/iam {ui.esc(ui.clip(sub, 40))}`. " + msg["text"]
            respond(response_type="ephemeral", **msg)

    @app.action(ids.A_REMOVE_KEY)
    def remove_key(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user_id = body["user"]["id"]
        services.notifier.dm_quietly(user_id, services.keys.remove(user_id=user_id), what="key removed notice")

    @app.action(ids.A_OPEN_REQUEST)
    def open_from_help(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user_id = body["user"]["id"]
        if not services.form.open(trigger_id=body["trigger_id"], user_id=user_id):
            services.notifier.dm_quietly(user_id, {"text": RETRY}, what="retry hint")
