"""Status in plain words by DM or @mention; unknown phrasing gets short help, never silence."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack import phrases
from bot.runtime.app import Deps
from handlers.replies import answer


def register(app: App, deps: Deps) -> None:
    @app.event("message")
    def direct_message(event: dict[str, Any], client: WebClient) -> None:
        # Only plain DMs from people: no edits, joins, or the bot's own messages.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return
        reply = answer(deps, user_id=event["user"], query=phrases.parse(event.get("text") or ""))
        # In the thread the person wrote in; a top-level DM gets a top-level answer.
        client.chat_postMessage(channel=event["channel"], thread_ts=event.get("thread_ts"), **reply)

    @app.event("app_mention")
    def mention(event: dict[str, Any], client: WebClient) -> None:
        if not event.get("user"):
            return
        reply = answer(deps, user_id=event["user"], query=phrases.parse(event.get("text") or ""))
        client.chat_postMessage(channel=event["channel"], thread_ts=event.get("thread_ts") or event.get("ts"), **reply)
