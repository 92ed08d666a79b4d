"""Reading Slack payloads defensively (they may be hostile), and answering a refused click privately."""

from __future__ import annotations

from typing import Any

from bot.slack.ui import ids
from handlers import Services


def action_value(body: dict[str, Any], limit: int = 200) -> str:
    """The clicked button's value (a request's short id, with a plan digest on Approve/Deny), bounded."""
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")[:limit]


def short_id_of(body: dict[str, Any]) -> str:
    return ids.parse_approval_value(action_value(body))[0]


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


def tell(services: Services, body: dict[str, Any], text: str) -> None:
    """Answer the person who clicked, privately, where they clicked (by DM from a view)."""
    services.notifier.ephemeral(channel=clicked_in(body), user=body["user"]["id"], text=text)
