"""What a log line is about: the request's short id and Slack's ids, carried by a context variable.

Set for each Slack delivery by a Bolt global middleware, and for each provisioning job by the
worker; `bot.runtime.logsetup` writes them into every line. Only ids, never a payload: nothing here can
carry a secret.
"""

from __future__ import annotations

import contextvars
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from bot.slack.ui import ids

log = logging.getLogger("bot.slack")

# Replaced, never mutated: copies held by other threads must not change under them.
_fields: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("iam_bot_log_fields", default={})

# Actions whose value is a request's short id, and views whose private_metadata is one.
_REQUEST_ACTIONS = frozenset({ids.A_APPROVE, ids.A_DENY, ids.A_REVEAL, ids.A_CANCEL})
_REQUEST_VIEWS = frozenset({ids.DENY_VIEW})


def current() -> Mapping[str, str]:
    return _fields.get()


def _clean(fields: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v)[:80] for k, v in fields.items() if v not in (None, "")}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line written inside the block (in this thread or context)."""
    token = _fields.set({**_fields.get(), **_clean(fields)})
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: Any) -> None:
    """Add `fields` for the rest of the current context (a listener run, a `log_context` block)."""
    _fields.set({**_fields.get(), **_clean(fields)})


def slack_ids(body: Mapping[str, Any]) -> dict[str, str]:
    """The ids of one Slack delivery (command, interaction or event), and what kind it is."""
    kind = str(body.get("type") or "")
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    user = body.get("user") if isinstance(body.get("user"), dict) else {}
    team = body.get("team") if isinstance(body.get("team"), dict) else {}
    channel = body.get("channel") if isinstance(body.get("channel"), dict) else {}
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    view = body.get("view") if isinstance(body.get("view"), dict) else {}
    actions = body.get("actions") if isinstance(body.get("actions"), list) else []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}

    out: dict[str, Any] = {
        "team": team.get("id") or body.get("team_id"),
        "user": user.get("id") or body.get("user_id") or event.get("user"),
        "channel": channel.get("id") or container.get("channel_id") or body.get("channel_id") or event.get("channel"),
        "trigger": body.get("trigger_id"),
        "event": body.get("event_id"),
    }
    if body.get("command"):
        out["slack"] = f"command {body['command']}"
    elif kind == "event_callback":
        out["slack"] = f"event {event.get('type', '?')}"
    elif kind == "block_actions":
        out["slack"] = f"action {action.get('action_id', '?')}"
        if action.get("action_id") in _REQUEST_ACTIONS:
            out["request"] = action.get("value")
    elif kind in ("view_submission", "view_closed"):
        out["slack"] = f"{kind} {view.get('callback_id', '?')}"
        if view.get("callback_id") in _REQUEST_VIEWS:
            out["request"] = view.get("private_metadata")
    elif kind == "block_suggestion":
        out["slack"] = f"options {body.get('action_id', '?')}"
    else:
        out["slack"] = kind or "request"
    return _clean(out)


def slack_context_middleware(body: dict[str, Any], next: Callable[[], Any]) -> Any:
    """Bolt global middleware: one log line per delivery, and its ids on every line after it.

    Bolt runs global middleware in a loop *before* the listener (`next()` only records that it
    was called), so a `with` block here would end before the listener runs. The context is
    set for the rest of this dispatch instead, replacing (not merging) whatever an earlier
    delivery on this server thread left; listeners run in `ContextExecutor`, which copies it.
    """
    fields = slack_ids(body)
    _fields.set(fields)
    log.info("slack %s", fields.get("slack"))
    return next()


class ContextExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, running each listener in a copy of the submitter's context."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)
