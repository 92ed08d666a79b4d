"""The change modal (/iam change, Home's menu, status's button), and time-bound grants' I'm done and Extend."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.slack.ui import ids
from handlers import Services
from handlers.common import action_value, tell
from handlers.request_form import parse_request_form


def _selected(body: dict[str, Any]) -> str:
    """The chosen option of a select or an overflow menu, bounded (payloads may be hostile)."""
    action = (body.get("actions") or [{}])[0]
    return str((action.get("selected_option") or {}).get("value") or "")[:100]


def _grant_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def register(app: App, services: Services) -> None:
    changes = services.changes

    @app.view(ids.CHANGE_VIEW)
    def change_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        raw = parse_request_form((view.get("state") or {}).get("values") or {})
        errors = changes.submit(actor=body["user"]["id"], metadata=str(view.get("private_metadata") or "")[:3000], raw=raw)
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack(response_action="clear")

    @app.action(ids.A_CHANGE_USER)
    def change_clicked(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        if (answer := changes.open(trigger_id=body["trigger_id"], actor=body["user"]["id"], text=action_value(body, 105))) is not None:
            tell(services, body, answer)

    def grant_action(body: dict[str, Any], what: str, grant: str, by: str = "") -> None:
        actor, grant_id = body["user"]["id"], _grant_id(grant)
        if grant_id is None:
            tell(services, body, "That button is not one I know; use `/iam status` to see your requests.")
        elif what == "done":
            tell(services, body, changes.done(actor=actor, grant_id=grant_id))
        else:
            tell(services, body, changes.extend(actor=actor, grant_id=grant_id, by=by))

    @app.action(ids.A_GRANT_DONE)
    def grant_done(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        grant_action(body, "done", action_value(body, 12))

    @app.action(ids.A_GRANT_EXTEND)
    def grant_extend(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        grant, _, by = _selected(body).partition(":")
        grant_action(body, "extend", grant, by)
