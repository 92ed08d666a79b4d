"""Running a use case from a listener: one transaction, and refusals audited even though it rolls back."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from bot.requests import usecases
from bot.runtime.app import Deps
from bot.slack.ui import ids

T = TypeVar("T")


def action_value(body: dict[str, Any]) -> str:
    """The clicked button's value (a request's short id), bounded: payloads may be hostile."""
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")[:20]


def view_input(view: dict[str, Any], block_id: str, field: str = "value") -> Any:
    """A submitted modal's input (`value`, `selected_options`, ...) by block id; None if absent."""
    values = (view.get("state") or {}).get("values") or {}
    return ((values.get(block_id) or {}).get(ids.A_VALUE) or {}).get(field)


def reason_and_request(view: dict[str, Any], block_id: str) -> tuple[str, str]:
    """The typed reason and the request's short id (carried in private_metadata) of a reason modal."""
    return (view_input(view, block_id) or "").strip(), str(view.get("private_metadata") or "")[:20]


def clicked_in(body: dict[str, Any]) -> str:
    """The channel of the message clicked; "" for a click in a view (Home, modal)."""
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""


def actor_groups(deps: Deps, *, short_id: str, actor: str) -> tuple[str, ...]:
    """The Slack user groups named as approvers of this request that `actor` is in, read now.

    Read at every decision, never cached: someone removed from the group loses the right at once.
    """
    from sqlalchemy import select

    from models import AccessRequest

    with deps.sessionmaker.begin() as s:
        groups = s.scalars(select(AccessRequest.approver_groups).where(AccessRequest.short_id == short_id)).first()
    return deps.notifier.directory.groups_of(actor, groups or ())


def attempt(deps: Deps, actor: str, use_case: Callable[..., T], **kwargs: Any) -> T:
    """Run `use_case(session, **kwargs)` in a transaction; on Refused, audit it and re-raise."""
    try:
        with deps.sessionmaker.begin() as session:
            return use_case(session, **kwargs)
    except usecases.Refused as refused:
        if refused.audit:
            with deps.sessionmaker.begin() as session:
                usecases.record_refusal(session, refused=refused, actor_id=actor, now=deps.clock())
        raise

