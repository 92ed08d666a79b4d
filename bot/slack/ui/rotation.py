"""What the owner is told while the old key of a rotation is retired (pure)."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from bot.slack.ui.text import Message, clip, esc, message, when

DEACTIVATE = "deactivate"
DELETE = "delete"


def retirement_notice(*, stage: str, done: bool, user_name: str, key_id: str, at: datetime, delete_at: datetime) -> Message:
    """Before and after each stage: the old key is deactivated (still restorable), then deleted."""
    key, user = f"`{esc(key_id)}`", f"`{esc(user_name)}`"
    where = f"IAM > Users > {esc(user_name)} > Security credentials"
    if stage == DEACTIVATE and not done:
        icon, body = ":hourglass_flowing_sand:", (
            f"The old access key {key} of {user} will be *deactivated* {when(at)}. Switch everything that still uses it to the new key "
            f"before then; {where} shows when each key was last used."
        )
    elif stage == DEACTIVATE:
        icon, body = ":lock:", (
            f"The old access key {key} of {user} was *deactivated*; it is deleted {when(delete_at)}. If something stopped working, it still "
            f"used the old key: switch it to the new one (until then an admin can make the old key active again in {where})."
        )
    elif not done:
        icon, body = ":hourglass_flowing_sand:", f"The old access key {key} of {user} (inactive) will be *deleted* {when(at)}. This cannot be undone."
    else:
        icon, body = ":white_check_mark:", f"The old access key {key} of {user} was *deleted*. The rotation is complete: only the new key remains."
    text = f"{user_name}: old access key {key_id} " + ({(DEACTIVATE, False): "is deactivated soon", (DEACTIVATE, True): "was deactivated",
                                                        (DELETE, False): "is deleted soon", (DELETE, True): "was deleted"}[(stage, done)])
    return message(text, [SectionBlock(text=MarkdownTextObject(text=clip(f"{icon} {body}", 3000)))])
