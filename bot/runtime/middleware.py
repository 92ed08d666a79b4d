"""Bolt middleware and the App subclass: which delivery a log line is about, and each delivery handled once."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, Callable, Mapping

from slack_bolt import App, BoltRequest, BoltResponse

from bot.common import logcontext
from bot.common.logcontext import ContextExecutor
from bot.common.sql import SessionMaker
from bot.slack import inbound
from bot.slack.ui import ids

log = logging.getLogger("bot.slack")  # the name operators filter on (README, "Logs")

# Actions whose value names a request (`<short id>[:<plan digest>]`), and views whose private_metadata is one.
_REQUEST_ACTIONS = frozenset({ids.A_APPROVE, ids.A_WITHDRAW, ids.A_DENY, ids.A_REVEAL, ids.A_CANCEL, ids.A_BREAK_GLASS})
_REQUEST_VIEWS = frozenset({ids.DENY_VIEW, ids.BREAK_GLASS_VIEW})


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
            out["request"] = ids.parse_approval_value(str(action.get("value") or ""))[0]
    elif kind in ("view_submission", "view_closed"):
        out["slack"] = f"{kind} {view.get('callback_id', '?')}"
        if view.get("callback_id") in _REQUEST_VIEWS:
            out["request"] = view.get("private_metadata")
    elif kind == "block_suggestion":
        out["slack"] = f"options {body.get('action_id', '?')}"
    else:
        out["slack"] = kind or "request"
    return logcontext.clean(out)


def slack_context_middleware(body: dict[str, Any], next: Callable[[], Any]) -> Any:
    """Bolt global middleware: one log line per delivery, and its ids on every line after it.

    Bolt runs global middleware in a loop *before* the listener (`next()` only records that it
    was called), so a `with` block here would end before the listener runs. The context is
    set for the rest of this dispatch instead, replacing (not merging) whatever an earlier
    delivery on this server thread left; listeners run in `ContextExecutor`, which copies it.
    """
    fields = slack_ids(body)
    logcontext.start(**fields)
    log.info("slack %s", fields.get("slack"))
    return next()




class OnceApp(App):
    """Bolt's App, plus: a delivery whose listener answered Slack is marked as answered.

    The key is claimed by `drop_repeated_deliveries` (after Bolt checked the signature, so an
    unsigned request can never claim a real one's key); this records that Slack got its answer.
    """

    listener_pool: ContextExecutor
    sessionmaker: SessionMaker
    clock: Callable[[], datetime]

    def drain(self, timeout: float = 5.0) -> None:
        """Let listeners already running (after their ack) finish, for up to `timeout` s."""
        done = threading.Thread(target=self.listener_pool.shutdown, kwargs={"wait": True}, daemon=True)
        done.start()
        done.join(timeout)

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        resp = super().dispatch(req)
        key = req.context.get("delivery_key")
        if key and resp.status < 400:
            try:
                with self.sessionmaker.begin() as s:
                    inbound.mark_acked(s, key=key, now=self.clock())
            except Exception:
                log.exception("could not mark delivery as answered")  # at worst a retry is handled again
        return resp


def drop_repeated_deliveries(sm: SessionMaker, clock: Callable[[], datetime]) -> Callable[..., Any]:
    def middleware(req: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        key = inbound.delivery_key(req.body)
        if key is None:
            return next()
        with sm.begin() as s:
            fresh = inbound.claim(s, key=key, now=clock())
        if not fresh:
            retry = req.headers.get("x-slack-retry-num", ["0"])[0]
            log.info("dropped a repeated Slack delivery (%s, retry %s)", key.split(":", 1)[0], retry)
            return BoltResponse(status=200, body="")
        req.context["delivery_key"] = key
        return next()

    return middleware
