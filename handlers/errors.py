"""When a listener fails unexpectedly: log it for the operator, tell the person, never go silent."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_bolt.response import BoltResponse

from bot.common.tracebacks import type_name, where
from handlers import Services

log = logging.getLogger(__name__)

SORRY = (
    "Something went wrong on the bot's side and your last action may not have been saved. "
    "Please try again in a minute; if it keeps failing, tell the team that runs iam-bot."
)


def register(app: App, services: Services) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        # Only the type and where it was raised go to the log: exception texts (and the traceback's
        # messages) can quote request data or a secret. No traceback: the place is in the line.
        log.error("listener failed: %s at %s", type_name(error), where(error))
        user = (body.get("user") or {}).get("id") or body.get("user_id") or (body.get("event") or {}).get("user")
        if user:
            services.notifier.dm_quietly(user, {"text": SORRY}, what="error notice")
        return None
