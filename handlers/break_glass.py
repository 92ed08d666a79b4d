"""Break-glass (off unless IAM_BOT_RULES lists requesters): approve your own request, with a reason."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.common.errors import Refused
from bot.slack import ui
from bot.slack.ui import ids
from handlers import Services
from handlers.common import reason_and_request, short_id_of, tell, view_input


def register(app: App, services: Services) -> None:
    decisions = services.decisions

    @app.action(ids.A_BREAK_GLASS)
    def clicked(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        try:
            decisions.open_break_glass(actor=body["user"]["id"], short_id=short_id_of(body), trigger_id=body["trigger_id"])
        except Refused as refused:
            tell(services, body, str(refused))

    @app.view(ids.BREAK_GLASS_VIEW)
    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
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
            then = decisions.break_glass(actor=body["user"]["id"], short_id=short_id, reason=reason)
        except Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not approved", str(refused)))
            return
        ack()
        then()
