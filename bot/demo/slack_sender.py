"""Send Slack-shaped, correctly signed HTTP requests to the running Bolt app.

Payload shapes follow what Slack actually sends (slash command form posts, interactivity
``payload=<json>`` form posts, Events API JSON), so the app's request verification,
Bolt's listener matching and context extraction all run for real.
"""

from __future__ import annotations

import itertools
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import requests

# One workspace for both sides: what the stand-in answers, the sender's payloads claim.
from bot.demo.standin import APP_ID, BOT_ID, BOT_USER_ID, VIEW_DEFAULTS
# Legacy verification token Slack still includes in payloads; Bolt ignores it.
VERIFICATION_TOKEN = "legacy-verification-token"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# Module-wide so ids/timestamps stay unique across several senders in one test run.
_seq = itertools.count(1)


def _unique_ts() -> str:
    """A message-style ts ("1712345678.000042"), unique and increasing."""
    return f"{int(time.time())}.{next(_seq) % 1_000_000:06d}"


def _trigger_id() -> str:
    # Same "digits.digits.hex" shape as Slack's trigger ids.
    return f"{next(_seq)}.{uuid.uuid4().int % 10**9}.{uuid.uuid4().hex}"


class SlackSender:
    """Plays Slack's side of the Events/Interactivity/Slash-command HTTP traffic."""

    def __init__(
        self,
        app_base_url: str,
        signing_secret: str,
        team_id: str = "T0TEST",
        *,
        response_url_base: str = "https://hooks.slack.com/",
        timeout: float = 10.0,
        on_view_response: Any = None,
    ) -> None:
        """`response_url_base`: pass ``SlackStandIn.hooks_url`` so the app's respond()
        calls reach the stand-in instead of the (unreachable) real Slack.
        `on_view_response`: pass ``SlackStandIn.accept_view_response``, so a view the app pushes or
        updates in its answer to a submission is known to the stand-in afterwards, as to Slack."""
        self.on_view_response = on_view_response
        base = app_base_url.rstrip("/")
        self.url = base if base.endswith("/slack/events") else f"{base}/slack/events"
        self.team_id = team_id
        self.team_domain = team_id.lower()
        self.response_url_base = response_url_base if response_url_base.endswith("/") else response_url_base + "/"
        self.timeout = timeout
        self._secret = signing_secret.encode()

    # ------------------------------------------------------------------ transport

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """POST `body` signed like Slack does; override timestamp/signature to test rejection."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        all_headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            # One request per connection: a caller that keeps its responses (a test racing 200
            # clicks) must not also keep 200 sockets open against the server's connection limit.
            "Connection": "close",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": (
                signature if signature is not None else self._sign(ts, body)
            ),
            **(headers or {}),
        }
        self.last_delivery = (body, content_type)
        # A fresh session per request: tests may send concurrently and Session isn't
        # thread-safe; trust_env=False keeps proxy env vars away from 127.0.0.1.
        with requests.Session() as session:
            session.trust_env = False
            return session.post(self.url, data=body, headers=all_headers, timeout=self.timeout)

    def _sign(self, ts: str, body: bytes) -> str:
        # As Slack signs: HMAC-SHA256 over the raw bytes (works for bodies that are not UTF-8 too).
        mac = hmac.new(self._secret, b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
        return "v0=" + mac.hexdigest()

    def redeliver(self, *, retry_num: int | None = None) -> requests.Response:
        """Send the previous body again, freshly signed: a duplicate, or Slack's retry of it."""
        body, content_type = self.last_delivery
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else None
        return self.post(body, content_type, headers=headers)

    def _post_form(self, fields: dict[str, str]) -> requests.Response:
        return self.post(urlencode(fields).encode(), FORM)

    def _post_payload(self, payload: dict[str, Any]) -> requests.Response:
        # Interactivity arrives as a form post with a single JSON `payload` field.
        return self._post_form({"payload": json.dumps(payload)})

    # ------------------------------------------------------------------ shared shapes

    def _response_url(self, kind: str) -> str:
        return f"{self.response_url_base}{kind}/{self.team_id}/{next(_seq)}/{uuid.uuid4().hex[:24]}"

    def _user(self, user_id: str) -> dict[str, str]:
        name = user_id.lower()  # same convention as SlackStandIn's users.info
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> dict[str, str]:
        return {"id": self.team_id, "domain": self.team_domain}

    def _interaction(self, kind: str, user_id: str) -> dict[str, Any]:
        return {
            "type": kind,
            "user": self._user(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _as_sent_view(self, view: dict[str, Any], values: dict[str, Any] | None = None) -> dict[str, Any]:
        """The view as Slack echoes it back: the bot's view plus Slack-managed fields."""
        view_id = view.get("id") or f"V{uuid.uuid4().hex[:10].upper()}"
        full: dict[str, Any] = {
            "type": "modal",
            "blocks": [],
            **VIEW_DEFAULTS,
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "app_installed_team_id": self.team_id,
        }
        full.setdefault("root_view_id", view_id)
        if values is not None:
            full["state"] = {"values": values}
        else:
            full.setdefault("state", {"values": {}})
        return full

    # ------------------------------------------------------------------ slash commands

    def command(
        self,
        user_id: str,
        text: str = "",
        *,
        command: str = "/iam",
        channel_id: str = "C0GENERAL",
        trigger_id: str | None = None,
        response_url: str | None = None,
    ) -> requests.Response:
        if channel_id.startswith("D"):
            channel_name = "directmessage"
        elif channel_id == "C0GENERAL":
            channel_name = "general"
        else:
            channel_name = channel_id.lower()
        return self._post_form(
            {
                "token": VERIFICATION_TOKEN,
                "team_id": self.team_id,
                "team_domain": self.team_domain,
                "channel_id": channel_id,
                "channel_name": channel_name,
                "user_id": user_id,
                "user_name": user_id.lower(),
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": response_url or self._response_url("commands"),
                "trigger_id": trigger_id or _trigger_id(),
            }
        )

    # ------------------------------------------------------------------ interactivity

    def block_action(
        self,
        user_id: str,
        action_id: str,
        value: str = "",
        *,
        block_id: str = "b",
        channel_id: str | None = None,
        message_ts: str | None = None,
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        container: dict[str, Any] | None = None,
        trigger_id: str | None = None,
        overflow: bool = False,
    ) -> requests.Response:
        """A button click, in a message (channel_id + message_ts) or in a view; `overflow`: the choice of
        the option whose value is `value` in an overflow menu."""
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": "button",
            "text": {"type": "plain_text", "text": action_id, "emoji": True},
            "action_ts": _unique_ts(),
        }
        if overflow:
            del action["text"]
            action.update(type="overflow", selected_option={"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value})
        elif value:
            action["value"] = value  # Slack omits `value` for buttons that have none
        payload = self._interaction("block_actions", user_id)
        payload.update({"trigger_id": trigger_id or _trigger_id(), "actions": [action], "state": {"values": {}}})
        if view is not None:
            full_view = self._as_sent_view(view)
            payload["view"] = full_view
            payload["container"] = container or {"type": "view", "view_id": full_view["id"]}
            # No response_url: Slack only sends one for actions on messages.
        else:
            payload["response_url"] = self._response_url("actions")
            if channel_id and message_ts:
                payload["container"] = container or {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel_id,
                    "is_ephemeral": False,
                }
                payload["channel"] = {"id": channel_id, "name": channel_id.lower()}
                payload["message"] = {
                    "type": "message",
                    "user": BOT_USER_ID,
                    "bot_id": BOT_ID,
                    "text": "",
                    **(message or {}),
                    "ts": message_ts,
                }
            elif container is not None:
                payload["container"] = container
        return self._post_payload(payload)

    def view_submission(
        self, user_id: str, view: dict[str, Any], values: dict[str, Any], *, trigger_id: str | None = None
    ) -> requests.Response:
        """Submit `view` (as the bot opened it) with `values` as its state.values."""
        payload = self._interaction("view_submission", user_id)
        payload.update(
            {
                "trigger_id": trigger_id or _trigger_id(),
                "view": self._as_sent_view(view, values),
                "response_urls": [],
            }
        )
        resp = self._post_payload(payload)
        if self.on_view_response is not None and resp.status_code == 200 and resp.text:
            try:
                answer = resp.json()
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("response_action") in ("push", "update") and isinstance(answer.get("view"), dict):
                self.on_view_response(answer["response_action"], payload["view"], answer["view"])
        return resp

    def view_closed(self, user_id: str, view: dict[str, Any]) -> requests.Response:
        """Sent only for views opened with notify_on_close=true, as Slack does."""
        payload = self._interaction("view_closed", user_id)
        payload.update({"view": self._as_sent_view(view), "is_cleared": False})
        return self._post_payload(payload)

    def block_suggestion(
        self, user_id: str, action_id: str, value: str, *, block_id: str = "b", view: dict[str, Any] | None = None
    ) -> requests.Response:
        """An external_select options request; the app answers with JSON options."""
        payload = self._interaction("block_suggestion", user_id)
        payload.update({"action_id": action_id, "block_id": block_id, "value": value})
        if view is not None:
            full_view = self._as_sent_view(view)
            payload["view"] = full_view
            payload["container"] = {"type": "view", "view_id": full_view["id"]}
        return self._post_payload(payload)

    # ------------------------------------------------------------------ Events API

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> requests.Response:
        body = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        headers: dict[str, str] = {}
        if retry_num is not None:
            # Slack redelivers an event it got no timely 200 for, with these headers.
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(body).encode(), JSON, headers=headers)

    def _message_event(self, kind: str, user_id: str, text: str, channel: str) -> dict[str, Any]:
        ts = _unique_ts()
        return {
            "type": kind,
            "user": user_id,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel": channel,
            "team": self.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }

    def dm(self, user_id: str, text: str, *, channel: str | None = None) -> requests.Response:
        """A message.im event: the user writes to the bot in their DM."""
        event = self._message_event("message", user_id, text, channel or "D" + user_id[1:])
        event["channel_type"] = "im"
        return self.event(event)

    def mention(self, user_id: str, text: str, *, channel: str = "C0GENERAL", thread_ts: str | None = None) -> requests.Response:
        """An app_mention event (a reply in the thread `thread_ts` if given); "<@UBOT> " is prepended
        unless `text` already mentions the bot."""
        mention = f"<@{BOT_USER_ID}>"
        full_text = text if mention in text else f"{mention} {text}"
        event = self._message_event("app_mention", user_id, full_text, channel)
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return self.event(event)
