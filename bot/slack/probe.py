"""Asking Slack whether a deployment's settings work (for `iam-bot doctor`): tokens, scopes, people, channels.

Each question answers with Slack's answer, or raises SlackProblem naming Slack's error code (or,
when nothing answered, the kind of network failure): never the exception's text, which may quote
the request and so a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


class SlackProblem(Exception):
    def __init__(self, code: str, *, unreachable: bool = False):
        super().__init__(code)
        self.code = code
        self.unreachable = unreachable  # nothing answered at the Web API URL


@dataclass(frozen=True)
class Identity:
    user: str
    team: str
    scopes: frozenset[str] | None  # None: Slack did not say (no x-oauth-scopes header)


class SlackProbe:
    def __init__(self, *, base_url: str, timeout: float = 10):
        self.base_url = base_url
        self.timeout = timeout

    def _call(self, token: str, ask: Callable[[WebClient], Any]) -> Any:
        # Each Web API method is named in the code (not by string): tests check the manifest's scopes against them.
        try:
            return ask(WebClient(token=token or None, base_url=self.base_url, timeout=self.timeout))
        except SlackApiError as exc:
            raise SlackProblem(str(exc.response.get("error") or f"HTTP {exc.response.status_code}")) from None
        except OSError as exc:  # URLError, timeouts: nothing answered
            raise SlackProblem(type(exc).__name__, unreachable=True) from None

    def identity(self, bot_token: str) -> Identity:
        """auth.test: who the token is, and the scopes Slack says it has."""
        resp = self._call(bot_token, lambda client: client.auth_test())
        headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
        raw = headers.get("x-oauth-scopes")
        if isinstance(raw, list):
            raw = ",".join(raw)
        scopes = frozenset(x.strip() for x in raw.split(",") if x.strip()) if raw is not None else None
        return Identity(user=str(resp.get("user")), team=str(resp.get("team")), scopes=scopes)

    def open_socket_mode(self, app_token: str) -> None:
        """apps.connections.open, Socket Mode's own method: the app-level token goes in the call."""
        self._call("", lambda client: client.apps_connections_open(app_token=app_token))

    def user(self, bot_token: str, user_id: str) -> dict[str, Any]:
        return dict(self._call(bot_token, lambda client: client.users_info(user=user_id))["user"])

    def channel(self, bot_token: str, channel_id: str) -> dict[str, Any]:
        return dict(self._call(bot_token, lambda client: client.conversations_info(channel=channel_id))["channel"])
