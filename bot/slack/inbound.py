"""Each Slack delivery is handled once: Slack retries events it thinks were not acknowledged
(X-Slack-Retry-Num), and a proxy or a replayed click can send the same payload twice.

Nothing is written before the ack (Slack waits on it). A replica remembers the keys it saw
(`RecentKeys`), which drops its own repeats at once; the key is then claimed in the database
(so every replica sees it) after the ack and before the listener's side effects. A key whose
claim never recorded the answer (`acked_at` empty, from before this scheme) and is older than
IN_FLIGHT may be claimed again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from bot.common.sql import insert_for
from models import InboundDelivery

RECEIVED_AT = "received_at"  # the Bolt context key: time.monotonic() when the delivery arrived (Slack's 3 s start there)
IN_FLIGHT = timedelta(seconds=30)
KEEP = timedelta(days=1)


def delivery_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery; None for requests that change nothing (typeahead options)."""
    if not isinstance(body, dict):
        return None
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"[:200]
    kind = body.get("type")
    trigger = body.get("trigger_id")
    if kind == "block_actions" and trigger:
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        return f"action:{trigger}:{first.get('action_id', '')}:{first.get('action_ts', '')}"[:200]
    if kind in ("view_submission", "shortcut", "message_action") and trigger:
        return f"{kind}:{trigger}"[:200]
    if body.get("command") and trigger:
        return f"command:{trigger}"[:200]
    return None


class RecentKeys:
    """The delivery keys this process saw lately, bounded: a repeat is dropped without any I/O."""

    def __init__(self, size: int = 20_000):
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str) -> bool:
        """True if the key is new to this process (and now remembered)."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


def claim(session: Session, *, key: str, now: datetime) -> bool:
    """True if this delivery is new (or a retry of one that died before it was answered).

    Claimed after the ack was made, so the row records both at once. One INSERT that does nothing
    on a repeat (no savepoint, no ORM flush): this runs for every delivery, beside the acks of others.
    """
    table = InboundDelivery.__table__
    stmt = insert_for(session)(table).values(key=key, received_at=now, acked_at=now).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    if session.execute(stmt).first() is not None:  # RETURNING, not rowcount: the drivers differ on the latter here
        return True
    taken = session.execute(
        update(InboundDelivery)
        .where(InboundDelivery.key == key, InboundDelivery.acked_at.is_(None), InboundDelivery.received_at < now - IN_FLIGHT)
        .values(received_at=now, acked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def purge(session: Session, *, now: datetime) -> int:
    return session.execute(
        delete(InboundDelivery).where(InboundDelivery.received_at < now - KEEP)
    ).rowcount


MAX_BODY = 1024 * 1024  # Slack's largest payloads (a full modal's state) are far below this


def malformed(raw: bytes, content_type: str) -> str | None:
    """Why a (signed) body is not something Slack sends, or None if it is.

    Parsed the way Bolt parses it, so what passes here never makes Bolt fail with a 500.
    """
    from slack_bolt.request import BoltRequest
    from slack_bolt.request.internals import parse_body

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    try:
        body = parse_body(text, content_type.split(";")[0].strip() or None)
    except ValueError:  # json.JSONDecodeError included
        return "body is not valid JSON or form data"
    if not isinstance(body, dict) or not body:
        return "body is not a Slack payload"
    if not any(k in body for k in ("type", "command", "ssl_check")):
        return "body is not a Slack payload (no type or command)"
    shape = _shape_problem(body)
    if shape:
        return f"body is not a Slack payload ({shape})"
    try:
        BoltRequest(body=text, headers={"content-type": [content_type]})  # what Bolt will do with it
    except Exception:
        return "body is not a Slack payload Bolt can read"
    if _has_nul(body):
        # Slack never sends NUL characters, and PostgreSQL text cannot hold them.
        return "body contains NUL characters"
    return None


# The fields our listeners read, by the type Slack always gives them: a body that disagrees was
# not sent by Slack, and would otherwise reach listeners that rightly trust Slack's shapes.
_TOP = {
    "user": dict, "view": dict, "event": dict, "state": dict, "container": dict, "message": dict,
    "team": (dict, type(None)), "channel": (dict, type(None)), "enterprise": (dict, type(None)),
    "actions": list, "type": str, "trigger_id": str, "command": str, "text": str, "user_id": str,
    "event_id": str, "channel_id": str, "response_url": str, "action_id": str, "value": str, "block_id": str,
}
_NESTED = {
    "user": {"id": str},
    "channel": {"id": str},
    "container": {"channel_id": str, "message_ts": str, "view_id": str},
    "view": {"id": str, "callback_id": str, "private_metadata": str, "state": dict, "root_view_id": str, "hash": str},
    "event": {"type": str, "user": str, "text": str, "channel": str, "channel_type": str, "ts": str, "tab": str, "bot_id": str, "subtype": str},
}


# What Slack sends with every slash command and every interaction of these kinds.
_REQUIRED = {
    "command": ("user_id", "trigger_id", "response_url", "text"),
    "block_actions": ("user", "actions"),
    "view_submission": ("user", "view"),
    "view_closed": ("user", "view"),
    "block_suggestion": ("user",),
    "event_callback": ("event", "event_id"),
}


# Inside those: what every user object and every view carries.
_REQUIRED_INSIDE = {"user": {"id": str}, "view": {"id": str, "type": str, "callback_id": str, "state": dict}}


def _shape_problem(body: dict[str, Any]) -> str | None:
    for key, kind in _TOP.items():
        if key in body and not isinstance(body[key], kind):
            return f"{key} has the wrong type"
    kind = "command" if "command" in body else body.get("type")
    missing = [f for f in _REQUIRED.get(kind, ()) if not body.get(f) and body.get(f) != ""]
    if missing:
        return f"{', '.join(missing)} missing"
    for key, fields in _REQUIRED_INSIDE.items():
        inner = body.get(key)
        if isinstance(inner, dict) and not all(isinstance(inner.get(f), t) for f, t in fields.items()):
            return f"{key} is incomplete"
    event = body.get("event")
    if isinstance(event, dict) and event.get("type") == "user_change":
        # The one event whose `user` is the member object, not an id: its id must be a string.
        member = event.get("user")
        if not isinstance(member, dict) or not isinstance(member.get("id"), str):
            return "event.user has the wrong type"
        body = {**body, "event": {k: v for k, v in event.items() if k != "user"}}
    for key, fields in _NESTED.items():
        inner = body.get(key)
        if isinstance(inner, dict):
            for field, kind in fields.items():
                if field in inner and not (inner[field] is None or isinstance(inner[field], kind)):
                    return f"{key}.{field} has the wrong type"
    for action in body.get("actions") or []:
        if not isinstance(action, dict) or not all(isinstance(action.get(f, ""), str) for f in ("action_id", "value", "block_id")):
            return "actions are not buttons"
    state = (body.get("view") or {}).get("state") or body.get("state") or {}
    values = state.get("values", {})
    if not isinstance(values, dict) or not all(isinstance(b, dict) and all(isinstance(e, dict) for e in b.values()) for b in values.values()):
        return "state.values has the wrong shape"
    return None


def _has_nul(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 64:
        return True  # nesting no Slack payload has
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    return False
