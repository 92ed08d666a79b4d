"""Status by DM or @mention; unknown phrasing gets short help, never silence."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.app import Deps
from bot.ui import blocks as ui
from handlers.commands import status_reply

_MENTION = re.compile(r"<@[A-Z0-9]+>")


def reply_for(deps: Deps, *, user_id: str, text: str) -> dict[str, Any]:
    words = _MENTION.sub("", text).strip()
    head, _, rest = words.partition(" ")
    if head.lower() in ("status", "requests"):
        return status_reply(deps, user_id=user_id, query=rest.strip()[:100] or None)
    return ui.help_message()


def register(app: App, deps: Deps) -> None:
    @app.event("message")
    def direct_message(event: dict[str, Any], client: WebClient) -> None:
        # Only plain DMs from people: no edits, joins, or the bot's own messages.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return
        reply = reply_for(deps, user_id=event["user"], text=event.get("text") or "")
        client.chat_postMessage(channel=event["channel"], **reply)

    @app.event("app_mention")
    def mention(event: dict[str, Any], client: WebClient) -> None:
        if not event.get("user"):
            return
        reply = reply_for(deps, user_id=event["user"], text=event.get("text") or "")
        client.chat_postMessage(channel=event["channel"], thread_ts=event.get("thread_ts") or event.get("ts"), **reply)
