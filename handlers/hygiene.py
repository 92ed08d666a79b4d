"""The hygiene report's buttons, the owners' "Rotate now" and Home's menu on a user: answered privately to whoever clicked."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.slack.ui import ids
from handlers import Services
from handlers.common import action_value, tell


def register(app: App, services: Services) -> None:
    @app.action(ids.A_REPORT_REMIND)
    def remind_owner(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        tell(services, body, services.hygiene.remind_owner(actor=body["user"]["id"], user_name=action_value(body, 64)))

    def rotate(ack: Ack, body: dict[str, Any]) -> None:
        # The same as `/iam rotate-key <user>` by whoever clicked: the owner's own needs no approval, an approver's goes to a person.
        ack()
        answer = services.credential_requests.ask(kind="rotate_key", actor=body["user"]["id"], text=action_value(body, 64))
        tell(services, body, answer["text"])

    app.action(ids.A_REPORT_ROTATE)(rotate)
    app.action(ids.A_ROTATE_NOW)(rotate)

    @app.action(ids.A_REPORT_DISABLE)
    def disable(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        tell(services, body, services.removals.ask(kind="disable", actor=body["user"]["id"], text=action_value(body, 64))["text"])

    @app.action(ids.A_REPORT_OFFBOARD)
    def offboard(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        tell(services, body, services.removals.ask(kind="offboard", actor=body["user"]["id"], text=action_value(body, 64))["text"])

    @app.action(ids.A_DISABLE_NOW)
    def disable_now(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        tell(services, body, services.removals.disable_now(actor=body["user"]["id"], short_id=action_value(body, 20)))

    @app.action(ids.A_USER_MENU)
    def user_menu(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        chosen = str(((body.get("actions") or [{}])[0].get("selected_option") or {}).get("value") or "")[:100]
        kind, _, user_name = chosen.partition(":")
        actor = body["user"]["id"]
        if kind in ("rotate_key", "reset_password") and user_name:
            tell(services, body, services.credential_requests.ask(kind=kind, actor=actor, text=user_name)["text"])
        elif kind in ("disable", "offboard") and user_name:
            tell(services, body, services.removals.ask(kind=kind, actor=actor, text=user_name)["text"])
        else:
            tell(services, body, "That menu choice is not one I know; use `/iam help` to see what I can do.")
