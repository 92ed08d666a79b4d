"""What owners and approvers are told to keep a user healthy: a key getting old, a reminder from the
report, MFA not yet enrolled (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock

from bot.domain.views import RequestView
from bot.slack.ui import ids
from bot.slack.ui.approval import decider
from bot.slack.ui.text import Message, clip, esc, mention, message, when

ROTATE_HOW = "`/iam rotate-key {user}` does the same."


def _rotate_button(user_name: str) -> ActionsBlock:
    return ActionsBlock(elements=[ButtonElement(text="Rotate now", action_id=ids.A_ROTATE_NOW, value=user_name, style="primary")])


def key_nudge(*, user_name: str, slot: int, age_days: int, max_age_days: int) -> Message:
    """A key approaching the rotation age, to its owner."""
    user = f"`{esc(user_name)}`"
    left = max_age_days - age_days
    due = f"reaches the rotation age of {max_age_days} days in {left} days" if left > 0 else f"is past the rotation age of {max_age_days} days"
    body = (
        f":hourglass: Access key {slot} of {user} is {age_days} days old and {due}. *Rotate now* makes a new key for you at once "
        f"(the old one keeps working for a grace period, so you can switch); {ROTATE_HOW.format(user=esc(user_name))}"
    )
    return message(clip(f"{user_name}: access key {slot} is {age_days} days old; rotate it", 300), [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000))), _rotate_button(user_name)])


def owner_reminder(*, user_name: str, details: Sequence[str], by: str, rotate: bool) -> Message:
    """An approver's "Remind owner" from the hygiene report."""
    lines = "\n".join(f"• {esc(d)}" for d in details) or "• nothing any more: it looks fine now"
    body = f":broom: {mention(by)} asks you to look after the IAM user `{esc(user_name)}`, which you own:\n{lines}"
    blocks: list = [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))]
    if rotate:
        blocks.append(_rotate_button(user_name))
    return message(clip(f"{user_name}: please look after this IAM user", 300), blocks)


def mfa_reminder(*, user_name: str, since: datetime, key_held: bool = False) -> Message:
    """To the owner: the user has no MFA device yet."""
    body = (
        f":iphone: The IAM user `{esc(user_name)}` has no MFA device yet (created {when(since)}). Sign in to the AWS console as "
        f"`{esc(user_name)}` and add one under *Security credentials > Multi-factor authentication (MFA)*; until then it can do "
        "little but that if this workspace requires MFA."
    )
    if key_held:
        body += " Its access key is held until then: it is made and sent to you within minutes of MFA being on." 
    return message(clip(f"{user_name}: add an MFA device", 300), [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def mfa_escalation(*, user_name: str, owner_id: str, since: datetime) -> Message:
    """To the approvers: an owner was reminded and the user still has no MFA device."""
    body = (
        f":warning: The IAM user `{esc(user_name)}` (owner {mention(owner_id)}) still has no MFA device (created {when(since)}); "
        f"its owner was reminded. Ask them, or disable the user in IAM if it is no longer needed."
    )
    return message(clip(f"{user_name}: still no MFA device", 300), [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def expiry_reminder(*, user_name: str, owner_id: str, expires_at: datetime, delete_at: datetime) -> Message:
    """To the owner and the approvers, a week and a day before a user's end date."""
    body = (
        f":calendar: The IAM user `{esc(user_name)}` (owner {mention(owner_id)}) ends {when(expires_at)}: it is *disabled* then "
        f"(console password deleted, keys deactivated) and *deleted* {when(delete_at)}. If it is still needed, ask for more time "
        f"with `/iam extend {esc(user_name)} <YYYY-MM-DD>`; an approver decides."
    )
    return message(clip(f"{user_name}: ends soon", 300), [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def extension_notice(req: RequestView) -> Message:
    """To the requester: an approved extension is on record."""
    day = req.spec.expires_on or "?"
    body = (
        f":calendar: `{esc(req.user_name)}` now ends on *{esc(day)}* (request *{esc(req.short_id)}*, approved by {decider(req)}). "
        "If its earlier end date had disabled it, it stays disabled and only its deletion moved: an admin can make it work again."
    )
    return message(clip(f"{req.user_name} now ends on {day}", 300), [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])
