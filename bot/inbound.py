"""Each Slack delivery is handled once: Slack retries events it thinks were not acknowledged
(X-Slack-Retry-Num), and a proxy or a replayed click can send the same payload twice.

The key is recorded in the database (so every replica sees it) after the signature is checked
and before any listener runs. `acked_at` records that Slack got its answer; a key left without
it for longer than IN_FLIGHT means the process died in between, and a later retry may go through.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import InboundDelivery

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
        actions = body.get("actions") or [{}]
        first = actions[0] if isinstance(actions[0], dict) else {}
        return f"action:{trigger}:{first.get('action_id', '')}:{first.get('action_ts', '')}"[:200]
    if kind in ("view_submission", "shortcut", "message_action") and trigger:
        return f"{kind}:{trigger}"[:200]
    if body.get("command") and trigger:
        return f"command:{trigger}"[:200]
    return None


def claim(session: Session, *, key: str, now: datetime) -> bool:
    """True if this delivery is new (or a retry of one that died before it was answered)."""
    try:
        with session.begin_nested():
            session.add(InboundDelivery(key=key, received_at=now))
        return True
    except IntegrityError:
        pass
    taken = session.execute(
        update(InboundDelivery)
        .where(InboundDelivery.key == key, InboundDelivery.acked_at.is_(None), InboundDelivery.received_at < now - IN_FLIGHT)
        .values(received_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def mark_acked(session: Session, *, key: str, now: datetime) -> None:
    session.execute(
        update(InboundDelivery).where(InboundDelivery.key == key).values(acked_at=now).execution_options(synchronize_session=False)
    )


def purge(session: Session, *, now: datetime) -> int:
    return session.execute(
        delete(InboundDelivery).where(InboundDelivery.received_at < now - KEEP)
    ).rowcount
