"""Small pieces every builder uses: escaping, clipping, dates, mentions, and the Message shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from slack_sdk.models.views import View

from bot.common.constants import BOT_ACTOR
from bot.common.slack_ids import is_user, is_usergroup
from models import RequestState

Message = dict[str, Any]  # {"text": fallback, "blocks": [...]}: splat into chat.postMessage

STATE_WORDS = {
    RequestState.SUBMITTED: ":mag: being checked against IAM",
    RequestState.PENDING: ":hourglass_flowing_sand: waiting for approval",
    RequestState.APPROVED: ":white_check_mark: approved, creating the user",
    RequestState.PROVISIONING: ":gear: creating the user",
    RequestState.COMPLETED: ":white_check_mark: user created",
    RequestState.DENIED: ":no_entry: denied",
    RequestState.CANCELLED: ":heavy_minus_sign: cancelled",
    RequestState.EXPIRED: ":heavy_minus_sign: expired",
    RequestState.FAILED: ":x: failed",
}


# A request that changes an existing user (new credentials, disable, offboard) creates nothing.
DAY_TWO_WORDS = {
    RequestState.APPROVED: ":white_check_mark: approved, being applied",
    RequestState.PROVISIONING: ":gear: being applied",
    RequestState.COMPLETED: ":white_check_mark: done",
}


def state_words(state: RequestState, kind: str = "create_user") -> str:
    return STATE_WORDS[state] if kind == "create_user" else DAY_TWO_WORDS.get(state, STATE_WORDS[state])


def esc(text: str) -> str:
    """Escape user text for mrkdwn so it cannot mention, link or break formatting."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    fallback = dt.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(dt.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def code_list(items: Iterable[str], empty: str = "none") -> str:
    items = list(items)
    return ", ".join(f"`{esc(i)}`" for i in items) if items else f"_{empty}_"


def mention(slack_id: str) -> str:
    """A user, a Slack user group, or the bot itself, as mrkdwn."""
    if is_user(slack_id):
        return f"<@{slack_id}>"
    if is_usergroup(slack_id):
        return f"<!subteam^{slack_id}>"
    return esc(slack_id)


def is_bot(actor: str | None) -> bool:
    return actor == BOT_ACTOR


def policy_label(arn: str) -> str:
    """A managed policy as people read it: its path and name, without the ARN's prefix."""
    return arn.split(":policy/", 1)[-1] if ":policy/" in arn else arn


def message(text: str, blocks: Sequence[Any]) -> Message:
    return {"text": clip(text, 3000), "blocks": [b.to_dict() if hasattr(b, "to_dict") else b for b in blocks]}


def modal(**kwargs: Any) -> dict[str, Any]:
    return View(type="modal", **kwargs).to_dict()
