"""Approve and Deny: one decision wins, every message shows it, refusals are private."""

from __future__ import annotations

from typing import Any, Callable

from slack_bolt import Ack, App

from bot.common.errors import Refused
from bot.slack import ui
from bot.slack.ui import ids
from handlers import Services
from handlers.common import action_value, reason_and_request, tell


def register(app: App, services: Services) -> None:
    decisions = services.decisions

    def click(ack: Ack, body: dict[str, Any], decide: Callable[..., str | None]) -> None:
        """Approve or withdraw: what to tell the clicker (progress, or the refusal) is told privately."""
        ack()
        try:
            note = decide(actor=body["user"]["id"], value=action_value(body))
        except Refused as refused:
            note = str(refused)
        if note:
            tell(services, body, note)

    @app.action(ids.A_APPROVE)
    def approve(ack: Ack, body: dict[str, Any]) -> None:
        click(ack, body, decisions.approve)

    @app.action(ids.A_WITHDRAW)
    def withdraw(ack: Ack, body: dict[str, Any]) -> None:
        click(ack, body, decisions.withdraw)

    @app.action(ids.A_DENY)
    def deny_clicked(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        try:
            decisions.open_deny(actor=body["user"]["id"], value=action_value(body), trigger_id=body["trigger_id"])
        except Refused as refused:
            tell(services, body, str(refused))

    @app.view(ids.DENY_VIEW)
    def deny_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason, short_id = reason_and_request(view, ids.B_DENY_REASON)
        if not reason:
            ack(response_action="errors", errors={ids.B_DENY_REASON: "Say why, so the requester knows what to change."})
            return
        try:
            then = decisions.deny(actor=body["user"]["id"], short_id=short_id, reason=reason)
        except Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not denied", str(refused)))
            return
        ack()
        then()
