"""`/iam` and its subcommands."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.audit import trail as audit
from bot.runtime.app import Deps
from bot.slack.phrases import Query
from bot.slack.ui import blocks as ui
from bot.slack.ui import ids
from handlers.replies import answer

log = logging.getLogger(__name__)


def request_form_view(deps: Deps, *, user_id: str) -> dict[str, Any]:
    """The request modal with the path and boundary the guardrails want filled in, or a refusal."""
    book = deps.rulebook
    if not book.may_request(user_id, deps.notifier.directory.groups_of(user_id, book.requester_groups_to_resolve)):
        return ui.notice_modal(
            "Not allowed",
            "You are not on the list of people who may request IAM users through the bot. Ask your AWS admins.",
        )
    prefix = deps.settings.user_path_prefix
    boundary = book.required_boundary(prefix, setting=deps.settings.permissions_boundary or None)
    notes = []
    if book.guardrails.forbidden_policies:
        notes.append("Never granted here: " + ", ".join(f"`{ui.esc(p)}`" for p in book.guardrails.forbidden_policies[:8]))
    if prefix != "/":
        notes.append(f"Users live under `{ui.esc(prefix)}`")
    return ui.request_modal(requester_id=user_id, default_path=prefix, default_boundary=boundary, notes=notes)


def open_request_modal(deps: Deps, client: WebClient, *, trigger_id: str, user_id: str) -> bool:
    try:
        client.views_open(trigger_id=trigger_id, view=request_form_view(deps, user_id=user_id))
        return True
    except SlackApiError as exc:
        log.warning("views.open failed: %s", exc.response.get("error"))
        return False


def send_audit_export(deps: Deps, client: WebClient, *, user_id: str, args: str) -> str:
    """`/iam audit [--since YYYY-MM-DD]`: approvers get the audit export as a file in their DM."""
    if user_id not in deps.notifier.approver_set(user_id):
        return "Only designated approvers can export the audit log."
    since = None
    words = args.split()
    if words:
        if len(words) != 2 or words[0] != "--since":
            return "Usage: `/iam audit [--since YYYY-MM-DD]`"
        try:
            since = datetime.fromisoformat(words[1])
        except ValueError:
            return f"`{ui.esc(ui.clip(words[1], 40))}` is not a date; use YYYY-MM-DD, e.g. `/iam audit --since 2026-01-01`."
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    with deps.sessionmaker.begin() as s:
        data = audit.export_text(s, since=since, fmt="csv")
        audit.record(s, action="audit_exported", actor=user_id, now=deps.clock(), since=words[1] if words else None)
    rows = max(0, data.count("\n") - 1)
    try:
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(
            channel=channel,
            content=data,
            filename=f"iam-bot-audit-{deps.clock():%Y%m%d-%H%M%S}.csv",
            title="iam-bot audit log",
            initial_comment=f"The audit log{' since ' + words[1] if words else ''}: {rows} events. `iam-bot audit verify` checks its hash chain.",
        )
    except SlackApiError as exc:
        log.warning("audit upload failed: %s", exc.response.get("error"))
        return "Slack refused the file upload; an operator can run `iam-bot audit export` instead."
    return f"Sent the audit log ({rows} events) to your DM with me."


def register(app: App, deps: Deps) -> None:
    @app.command("/iam")
    def iam_command(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        text = (command.get("text") or "").strip()
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        user_id = command["user_id"]
        if sub in ("request", "new"):
            if not open_request_modal(deps, client, trigger_id=command["trigger_id"], user_id=user_id):
                respond(response_type="ephemeral", text="Slack did not let me open the form in time. Please run `/iam request` again.")
        elif sub == "audit":
            respond(response_type="ephemeral", text=send_audit_export(deps, client, user_id=user_id, args=rest))
        elif sub == "status":
            query = Query("one", rest.strip().lstrip("#")[:100]) if rest.strip() else Query("mine")
            respond(response_type="ephemeral", **answer(deps, user_id=user_id, query=query))
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
        if not open_request_modal(deps, client, trigger_id=body["trigger_id"], user_id=user_id):
            deps.notifier.dm_quietly(user_id, {"text": "Slack did not let me open the form in time. Please run `/iam request`."}, what="retry hint")
