"""The hygiene report's buttons, the owners' "Rotate now" and Home's menu on a user: answered privately to whoever clicked."""

from __future__ import annotations

from typing import Any, Callable

from slack_bolt import Ack, App

from bot.slack.ui import ids
from handlers import Services
from handlers.common import action_value, tell


def register(app: App, services: Services) -> None:
    @app.action(ids.A_REPORT_REMIND)
    def remind_owner(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        tell(services, body, services.hygiene.remind_owner(actor=body["user"]["id"], user_name=action_value(body, 105)))

    def ask(kind: str, actor: str, user_name: str) -> str:
        """The same as `/iam <kind> <user>` by whoever clicked: the owner's own rotation needs no approval; the rest goes to a person."""
        if kind in ("rotate_key", "reset_password"):
            return str(services.credential_requests.ask(kind=kind, actor=actor, text=user_name)["text"])
        return str(services.removals.ask(kind=kind, actor=actor, text=user_name)["text"])

    def button(kind: str) -> Callable[[Ack, dict[str, Any]], None]:
        def clicked(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            tell(services, body, ask(kind, body["user"]["id"], action_value(body, 105)))

        return clicked

    app.action(ids.A_REPORT_ROTATE)(button("rotate_key"))
    app.action(ids.A_ROTATE_NOW)(button("rotate_key"))
    app.action(ids.A_REPORT_DISABLE)(button("disable"))
    app.action(ids.A_REPORT_OFFBOARD)(button("offboard"))

    @app.action(ids.A_DISABLE_NOW)
    def disable_now(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        tell(services, body, services.removals.disable_now(actor=body["user"]["id"], short_id=action_value(body, 20)))

    @app.action(ids.A_DISABLE_INSTEAD)
    def disable_instead(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        tell(services, body, services.removals.disable_instead(actor=body["user"]["id"], short_id=action_value(body, 20)))

    @app.action(ids.A_USER_MENU)
    def user_menu(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        chosen = str(((body.get("actions") or [{}])[0].get("selected_option") or {}).get("value") or "")[:120]
        kind, _, user_name = chosen.partition(":")
        if kind == "change" and user_name:
            if (answer := services.changes.open(trigger_id=body["trigger_id"], actor=body["user"]["id"], text=user_name)) is not None:
                tell(services, body, answer)
        elif kind in ("rotate_key", "reset_password", "disable", "offboard") and user_name:
            tell(services, body, ask(kind, body["user"]["id"], user_name))
        else:
            tell(services, body, "That menu choice is not one I know; use `/iam help` to see what I can do.")
