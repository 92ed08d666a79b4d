"""Status in plain words by DM or @mention (unknown phrasing gets short help, never silence), and members who leave."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.slack import phrases
from handlers import Services


def register(app: App, services: Services) -> None:
    @app.event("message")
    def direct_message(event: dict[str, Any]) -> None:
        # Only plain DMs from people: no edits, joins, or the bot's own messages.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return
        reply = services.status.answer(user_id=event["user"], query=phrases.parse(event.get("text") or ""))
        # In the thread the person wrote in; a top-level DM gets a top-level answer.
        services.notifier.reply(channel=event["channel"], thread_ts=event.get("thread_ts"), message=reply)

    @app.event("user_change")
    def member_changed(event: dict[str, Any]) -> None:
        # A member deactivated (Slack keeps their id, with deleted: true): their IAM users get offboarding requests.
        member = event.get("user") or {}
        if isinstance(member, dict) and member.get("deleted") is True and member.get("id"):
            services.departures.owner_left(str(member["id"])[:32])

    @app.event("app_mention")
    def mention(event: dict[str, Any]) -> None:
        if not event.get("user"):
            return
        # Only the asker sees the answer (ephemeral), in the thread they wrote in if any.
        services.status.answer_mention(
            user_id=event["user"], channel=event["channel"], thread_ts=event.get("thread_ts"), query=phrases.parse(event.get("text") or "")
        )
