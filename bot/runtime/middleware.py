"""Bolt middleware and the App subclass: which delivery a log line is about, and each delivery handled once."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Callable, Mapping

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.listener.custom_listener import CustomListener

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


def slack_context_middleware(body: dict[str, Any], context: dict[str, Any], next: Callable[[], Any]) -> Any:
    """Bolt global middleware: one log line per delivery, and its ids on every line after it.

    Bolt runs global middleware in a loop *before* the listener (`next()` only records that it
    was called), so a `with` block here would end before the listener runs. The context is
    set for the rest of this dispatch instead, replacing (not merging) whatever an earlier
    delivery on this server thread left; listeners run in `ContextExecutor`, which copies it.
    """
    # When the delivery arrived: Slack's 3 s run from here, not from when a listener thread starts.
    context[inbound.RECEIVED_AT] = time.monotonic()
    fields = slack_ids(body)
    logcontext.start(**fields)
    log.info("slack %s", fields.get("slack"))
    return next()




class RepeatedDelivery(Exception):
    """This delivery was handled already (by this replica or another): do nothing more."""


class ClaimingAck(Ack):
    """Bolt's ack, plus: once Slack has its answer, the delivery waits for a work slot and is claimed
    in the database.

    The answer goes back at once (Bolt's runner returns `self.response` as soon as it is set);
    the claim is written right after it, in the listener's thread and before anything the listener
    does after its ack(), so no ack waits for a database write and no duplicate reaches a side effect.
    The work slot (`OnceApp.work_slots`) bounds how many listeners work after their ack at once, so
    that a burst of clicks is answered at once and worked through a few at a time: an ack never
    waits for a thread that earlier deliveries' work is holding.
    """

    def __init__(self, claim: Callable[[], bool]):
        super().__init__()
        self._claim = claim
        self._fresh: bool | None = None
        self.armed = False  # set in the listener's thread: Bolt's own ack of an event must not claim
        self.slots: threading.BoundedSemaphore | None = None  # set with `armed`
        self.holds_slot = False

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = super().__call__(*args, **kwargs)
        if self.armed:
            self.claim()
        return response

    def claim(self) -> None:
        if self._fresh is None:
            if self.slots is not None and not self.holds_slot:
                self.slots.acquire()
                self.holds_slot = True
            self._fresh = self._claim()
        if not self._fresh:
            raise RepeatedDelivery

    def release(self) -> None:
        if self.holds_slot and self.slots is not None:
            self.holds_slot = False
            self.slots.release()


class OnceListener(CustomListener):
    """A listener whose delivery is claimed after the ack and before its side effects.

    Events are acked by Bolt before the listener starts, so they are claimed first thing here;
    commands and interactions are claimed by their own ack() (`ClaimingAck`).
    """

    def __init__(self, *, slots: threading.BoundedSemaphore, **kwargs: Any):
        super().__init__(**kwargs)
        self.slots = slots

    def run_ack_function(self, *, request: BoltRequest, response: BoltResponse) -> BoltResponse | None:
        ack = request.context.get("ack")
        claiming = isinstance(ack, ClaimingAck)
        try:
            if claiming:
                ack.slots = self.slots
                if self.auto_acknowledgement:
                    ack.claim()
                else:
                    ack.armed = True
            return super().run_ack_function(request=request, response=response)
        except RepeatedDelivery:
            return None
        finally:
            if claiming:
                ack.release()


class OnceApp(App):
    """Bolt's App, with every listener a `OnceListener`, and a way to let listeners finish on shutdown."""

    listener_pool: ContextExecutor
    recent_deliveries: inbound.RecentKeys
    work_slots: threading.BoundedSemaphore

    def drain(self, timeout: float = 5.0) -> None:
        """Let listeners already running (after their ack) finish, for up to `timeout` s."""
        done = threading.Thread(target=self.listener_pool.shutdown, kwargs={"wait": True}, daemon=True)
        done.start()
        done.join(timeout)

    def _register_listener(self, functions: Any, primary_matcher: Any, matchers: Any, middleware: Any, auto_acknowledgement: bool = False, ack_timeout: int = 3) -> Any:
        registered = super()._register_listener(functions, primary_matcher, matchers, middleware, auto_acknowledgement, ack_timeout)
        plain = self._listeners[-1]
        self._listeners[-1] = OnceListener(
            slots=self.work_slots,
            app_name=plain.app_name, ack_function=plain.ack_function, lazy_functions=plain.lazy_functions, matchers=plain.matchers,
            middleware=plain.middleware, auto_acknowledgement=plain.auto_acknowledgement, ack_timeout=plain.ack_timeout,
            base_logger=self._base_logger,
        )
        return registered


def drop_repeated_deliveries(sm: SessionMaker, clock: Callable[[], datetime], recent: inbound.RecentKeys) -> Callable[..., Any]:
    """Drop a delivery seen before: from memory at once (no I/O before the ack), and across replicas
    by the database claim that `ClaimingAck` makes after the ack."""

    def middleware(req: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        key = inbound.delivery_key(req.body)
        if key is None:
            return next()
        kind, retry = key.split(":", 1)[0], req.headers.get("x-slack-retry-num", ["0"])[0]
        if not recent.add(key):
            log.info("dropped a repeated Slack delivery (%s, retry %s)", kind, retry)
            return BoltResponse(status=200, body="")

        def claim() -> bool:
            try:
                with sm.begin() as s:
                    fresh = inbound.claim(s, key=key, now=clock())
            except Exception as exc:
                # The listener's own writes will meet the same fault; a retry from Slack may try again.
                recent.forget(key)
                log.warning("could not record a Slack delivery (%s); handling it anyway", type(exc).__name__)
                return True
            if not fresh:
                log.info("dropped a repeated Slack delivery (%s, retry %s)", kind, retry)
            return fresh

        req.context["ack"] = ClaimingAck(claim)
        return next()

    return middleware
