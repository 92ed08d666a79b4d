"""The one place the core calls Slack's Web API: DMs, posts, updates, modals, Home, files.

It takes plain values (messages, views, places) and returns what Slack answered; it never opens a
transaction or reads a row. A call Slack refuses is logged with Slack's error code and reported as
False or skipped, so the change it announces (already committed) is never undone by a lost message.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
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
        if not is_user(user_id):
            return False  # the bot itself asked (an owner left): there is nobody to tell
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

    def post(self, channel: str, message: dict[str, Any]) -> Place:
        """Post to one channel; raises SlackRefused (the caller decides whether to try again)."""
        try:
            resp = self.client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            raise SlackRefused(_error(exc)) from None
        return resp["channel"], resp["ts"]

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

    # An encrypted file into a DM, in Slack's current upload flow, one step at a time: the caller
    # records the file id before any byte is sent, and looks for it in the DM before sending again.

    def dm_channel(self, user_id: str) -> str:
        try:
            return str(self.client.conversations_open(users=user_id)["channel"]["id"])
        except SlackApiError as exc:
            raise SlackRefused(_error(exc)) from None

    def start_upload(self, *, filename: str, length: int) -> tuple[str, str]:
        """(file id, upload URL) for a file of `length` bytes; raises SlackRefused."""
        try:
            resp = self.client.files_getUploadURLExternal(filename=filename, length=length)
        except SlackApiError as exc:
            raise SlackRefused(_error(exc)) from None
        return str(resp["file_id"]), str(resp["upload_url"])

    def upload_bytes(self, url: str, data: bytes) -> None:
        """Send the file's bytes to the URL Slack handed out; raises SlackRefused."""
        request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - a URL Slack gave us
                if resp.status != 200:
                    raise SlackRefused(f"upload_http_{resp.status}")
        except urllib.error.HTTPError as exc:
            raise SlackRefused(f"upload_http_{exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SlackRefused(f"upload_{type(exc).__name__}") from None

    def complete_upload(self, *, file_id: str, title: str, channel: str, comment: str) -> None:
        """Share an uploaded file into `channel` with a comment; raises SlackRefused."""
        try:
            self.client.files_completeUploadExternal(files=[{"id": file_id, "title": title}], channel_id=channel, initial_comment=comment)
        except SlackApiError as exc:
            raise SlackRefused(_error(exc)) from None

    def find_file_in_dm(self, user_id: str, *, file_id: str | None, title: str) -> bool:
        """Whether our DM to `user_id` already shows this file (by its id, or else by its title among our
        latest messages): an upload whose outcome was lost is found here, not made twice. Raises SlackRefused."""
        try:
            channel = self.dm_channel(user_id)
            history = self.client.conversations_history(channel=channel, limit=50)
        except SlackApiError as exc:
            raise SlackRefused(_error(exc)) from None
        for message in history.get("messages") or []:
            for f in message.get("files") or []:
                if (file_id and f.get("id") == file_id) or f.get("title") == title:
                    return True
        return False

    def upload_to_dm(self, user_id: str, *, content: str, filename: str, title: str, comment: str) -> bool:
        try:
            channel = self.client.conversations_open(users=user_id)["channel"]["id"]
            self.client.files_upload_v2(channel=channel, content=content, filename=filename, title=title, initial_comment=comment)
            return True
        except SlackApiError as exc:
            log.warning("upload to %s failed: %s", user_id, _error(exc))
            return False
