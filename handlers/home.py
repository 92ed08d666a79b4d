"""The App Home tab, and cancelling a request (from Home or the confirmation DM)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.common.errors import Refused
from bot.slack.ui import ids
from handlers import Services
from handlers.common import clicked_in, short_id_of, tell


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            services.status.publish_home(event["user"])

    @app.action(ids.A_CANCEL)
    def cancel(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        try:
            services.decisions.cancel(
                actor=body["user"]["id"],
                short_id=short_id_of(body),
                channel=clicked_in(body),
                message_ts=(body.get("container") or {}).get("message_ts"),
            )
        except Refused as refused:
            tell(services, body, str(refused))
