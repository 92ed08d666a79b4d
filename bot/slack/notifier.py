"""The one place the core calls Slack's Web API: DMs, posts, updates, modals, Home, files.

It takes plain values (messages, views, places) and returns what Slack answered; it never opens a
transaction or reads a row. A call Slack refuses is logged with Slack's error code and reported as
False or skipped, so the change it announces (already committed) is never undone by a lost message.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.common.slack_ids import is_user

log = logging.getLogger(__name__)

Place = tuple[str, str]  # (channel id, message ts)


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or f"HTTP {exc.response.status_code}")


class SlackRefused(Exception):
    """Slack refused (or did not answer) a call whose outcome the caller must know; `code` is Slack's error."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class Notifier:
    def __init__(self, client: WebClient, *, audit_channel: str = ""):
        self.client = client
        self.audit_channel = audit_channel

    # ---- direct messages ----

    def dm(self, user_id: str, message: dict[str, Any]) -> Place:
        """Raises SlackRefused: for DMs whose loss the caller must know of (the credentials DM)."""
        try:
            channel = self.client.conversations_open(users=user_id)["channel"]["id"]
            resp = self.client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            raise SlackRefused(_error(exc)) from None
        return resp["channel"], resp["ts"]

    def dm_quietly(self, user_id: str, message: dict[str, Any], *, what: str) -> bool:
        """A DM whose loss must not undo the change it reports (the change is already committed)."""
        try:
            self.dm(user_id, message)
            return True
        except SlackRefused as exc:
            log.warning("could not DM %s: %s (%s)", user_id, what, exc.code)
            return False

    def find_dm(self, user_id: str, *, event_type: str, request: str) -> Place | None:
        """A DM of ours to `user_id` that carries this metadata, among the latest ones, if any.

        Used before re-sending a DM whose first attempt had no known outcome (the process died
        while Slack was answering), so the person gets it once. Raises SlackRefused if Slack
        cannot tell.
        """
        try:
            channel = self.client.conversations_open(users=user_id)["channel"]["id"]
            history = self.client.conversations_history(channel=channel, limit=50, include_all_metadata=True)
        except SlackApiError as exc:
            raise SlackRefused(_error(exc)) from None
        for found in history.get("messages") or []:
            meta = found.get("metadata") or {}
            if meta.get("event_type") == event_type and (meta.get("event_payload") or {}).get("request") == request:
                return channel, found["ts"]
        return None

    def ephemeral(
        self, *, channel: str, user: str, text: str = "", message: dict[str, Any] | None = None, thread_ts: str | None = None
    ) -> None:
        """Tell one person privately where they clicked or asked (in its thread, if any); by DM when there is no such place.

        `message` (text and blocks) instead of `text` for a full answer, e.g. a status reply to an @mention.
        """
        body = message if message is not None else {"text": text}
        what = "private answer" if message is not None else "refusal"
        if not channel:
            self.dm_quietly(user, body, what=what)
            return
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **body)
        except SlackApiError as exc:
            # Not in that channel (or a DM we cannot post to): tell them by DM instead of going silent.
            log.info("ephemeral failed (%s); sending a DM", _error(exc))
            self.dm_quietly(user, body, what=what)

    # ---- messages in channels and DMs ----

    def post_to(self, targets: Iterable[str], message: dict[str, Any], *, what: str) -> list[Place]:
        """Post to each target (a user gets a DM, a channel a post); returns where it landed."""
        posted = []
        for target in targets:
            try:
                if is_user(target):
                    posted.append(self.dm(target, message))
                else:
                    resp = self.client.chat_postMessage(channel=target, **message)
                    posted.append((resp["channel"], resp["ts"]))
            except SlackRefused as exc:
                log.error("could not send %s to %s: %s", what, target, exc.code)
            except SlackApiError as exc:
                log.error("could not send %s to %s: %s", what, target, _error(exc))
        return posted

    def update(self, places: Iterable[Place], message: dict[str, Any], *, what: str) -> None:
        for channel, ts in places:
            try:
                self.client.chat_update(channel=channel, ts=ts, **message)
            except SlackApiError as exc:
                log.warning("could not update %s %s/%s: %s", what, channel, ts, _error(exc))

    def reply_in_threads(self, places: Iterable[Place], message: dict[str, Any]) -> int:
        """A reply in the thread of each message (reminders: no new flood)."""
        sent = 0
        for channel, ts in places:
            try:
                self.client.chat_postMessage(channel=channel, thread_ts=ts, **message)
                sent += 1
            except SlackApiError as exc:
                log.warning("could not reply in %s/%s: %s", channel, ts, _error(exc))
        return sent

    def reply(self, *, channel: str, thread_ts: str | None, message: dict[str, Any]) -> None:
        try:
            self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message)
        except SlackApiError as exc:
            log.warning("could not answer in %s: %s", channel, _error(exc))

    def audit_notice(self, text: str) -> bool:
        """One line in IAM_BOT_AUDIT_CHANNEL (per decision, per created user, per audit anchor), when
        configured; True if Slack took it."""
        if not self.audit_channel:
            return False
        try:
            self.client.chat_postMessage(channel=self.audit_channel, text=text)
            return True
        except SlackApiError as exc:
            log.warning("audit channel notice not sent: %s", _error(exc))
            return False

    # ---- views ----

    def open_view(self, *, trigger_id: str, view: dict[str, Any]) -> bool:
        """A modal opened from a click or command; False if Slack refused (an expired trigger, most often)."""
        try:
            self.client.views_open(trigger_id=trigger_id, view=view)
            return True
        except SlackApiError as exc:
            log.warning("views.open failed: %s", _error(exc))
            return False

    def update_view(self, *, external_id: str, view: dict[str, Any]) -> bool:
        try:
            self.client.views_update(external_id=external_id, view=view)
            return True
        except SlackApiError as exc:
            log.info("views.update skipped: %s", _error(exc))
            return False

    def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        try:
            self.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.warning("home tab of %s not published: %s", user_id, _error(exc))

    # ---- files ----

    def upload_to_dm(self, user_id: str, *, content: str, filename: str, title: str, comment: str) -> bool:
        try:
            channel = self.client.conversations_open(users=user_id)["channel"]["id"]
            self.client.files_upload_v2(channel=channel, content=content, filename=filename, title=title, initial_comment=comment)
            return True
        except SlackApiError as exc:
            log.warning("upload to %s failed: %s", user_id, _error(exc))
            return False
