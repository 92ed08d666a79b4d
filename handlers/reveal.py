"""Reveal credentials: the owner only, once."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.common.errors import Refused
from bot.slack.ui import ids
from handlers import Services
from handlers.common import short_id_of, tell


def register(app: App, services: Services) -> None:
    @app.action(ids.A_REVEAL)
    def reveal(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        try:
            services.reveal.reveal(actor=body["user"]["id"], short_id=short_id_of(body), trigger_id=body["trigger_id"])
        except Refused as refused:
            tell(services, body, str(refused))
