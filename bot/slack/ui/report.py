"""The IAM hygiene report as a message with buttons, and as a CSV file of every finding (pure).

A message holds at most 50 blocks and each user shown takes two (its findings, its buttons), so the
message shows the most serious users first and says how many more are in the file, whatever the size
of the account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.common.spreadsheet import csv_row, safe_cell
from bot.domain.accounts import qualified
from bot.domain.hygiene import KIND_ORDER, Finding, FindingKind, Thresholds, summarise
from bot.slack.ui import ids
from bot.slack.ui.text import Message, clip, esc, mention, message, when

MAX_BLOCKS = 50
FIXED_BLOCKS = 4  # header, when, summary, "more in the file"
MAX_USERS = (MAX_BLOCKS - FIXED_BLOCKS) // 2
FILE_COLUMNS = ("user", "finding", "detail", "owner", "account", "generated_at")


def _n(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def summary_words(counts: dict[FindingKind, int], thresholds: Thresholds) -> str:
    """Counts in words, e.g. "3 users without MFA · 5 keys older than 90 days"; kinds with none left out."""
    words = {
        FindingKind.NO_MFA: lambda n: _n(n, "user", "users") + " without MFA",
        FindingKind.OLD_KEY: lambda n: _n(n, "key", "keys") + f" older than {thresholds.key_age_days} days",
        FindingKind.UNUSED_KEY: lambda n: _n(n, "key", "keys") + f" unused for {thresholds.unused_days} days",
        FindingKind.UNUSED_PASSWORD: lambda n: _n(n, "password", "passwords") + f" unused for {thresholds.unused_days} days",
        FindingKind.OWNER_LEFT: lambda n: _n(n, "user", "users") + " whose owner has left",
        FindingKind.UNMANAGED: lambda n: _n(n, "user", "users") + " not managed by the bot",
    }
    return " · ".join(words[kind](n) for kind, n in counts.items() if n)


def _by_user(found: Sequence[Finding]) -> list[list[Finding]]:
    """Findings grouped by user; users with the most serious finding first, then by name."""
    groups: dict[str, list[Finding]] = {}
    for f in found:
        groups.setdefault(f.user, []).append(f)
    return sorted(groups.values(), key=lambda g: (min(KIND_ORDER[f.kind] for f in g), g[0].user))


def user_buttons(group: Sequence[Finding], *, in_account: str = "") -> list[ButtonElement]:
    """The actions that apply to one user's findings; each button's value is the user as people name it
    (`prod:alice` in member account prod). A user the bot did not make gets none: the bot's IAM policy
    lets it touch only its own users."""
    user, owner, managed = qualified(in_account, group[0].user), group[0].owner_id, group[0].managed
    kinds = {f.kind for f in group}
    out: list[ButtonElement] = []
    if owner and FindingKind.OWNER_LEFT not in kinds:
        out.append(ButtonElement(text="Remind owner", action_id=ids.A_REPORT_REMIND, value=user))
    if managed and kinds & {FindingKind.OLD_KEY, FindingKind.UNUSED_KEY}:
        out.append(ButtonElement(text="Rotate key", action_id=ids.A_REPORT_ROTATE, value=user))
    if managed:
        out.append(ButtonElement(
            text="Disable", action_id=ids.A_REPORT_DISABLE, value=user, style="danger",
            confirm=_confirm("Disable this IAM user?", f"Ask to disable `{esc(user)}`: once an approver agrees, its console password and access keys stop working.", "Ask"),
        ))
        out.append(ButtonElement(
            text="Offboard", action_id=ids.A_REPORT_OFFBOARD, value=user,
            confirm=_confirm("Offboard this IAM user?", f"Ask to offboard `{esc(user)}`: once an approver agrees, it is deleted with everything IAM holds for it.", "Ask"),
        ))
    return out


def _confirm(title: str, text: str, button: str) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": clip(title, 100)},
        "text": {"type": "mrkdwn", "text": clip(text, 300)},
        "confirm": {"type": "plain_text", "text": button},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def user_text(group: Sequence[Finding]) -> str:
    user, owner = group[0].user, group[0].owner_id
    left = any(f.kind is FindingKind.OWNER_LEFT for f in group)
    who = f"owner {mention(owner)}" + (" (left)" if left else "") if owner else "_no owner on record_"
    lines = "\n".join(f"• {esc(f.detail)}" for f in group)
    return clip(f"*`{esc(user)}`* — {who}\n{lines}", 3000)


def report_message(
    found: Sequence[Finding],
    *,
    account: str,
    generated_at: datetime,
    total_users: int,
    max_lines: int = 40,
    thresholds: Thresholds = Thresholds(),
    in_account: str = "",
) -> Message:
    """The report for a channel: summary, then up to `max_lines` users (at most MAX_USERS, for Slack's
    50-block limit) with their findings and buttons. `thresholds` only words the summary."""
    groups = _by_user(found)
    shown = groups[: max(0, min(max_lines, MAX_USERS))]
    summary = summary_words(summarise(found), thresholds)
    blocks: list[Any] = [
        HeaderBlock(text=clip(f"IAM hygiene report: {account}", 150)),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Generated {when(generated_at)} · {_n(total_users, 'IAM user', 'IAM users')}, {len(groups):,} with findings"
                )
            ]
        ),
        SectionBlock(text=MarkdownTextObject(text=clip(f"*Summary:* {summary}" if summary else "No findings: every IAM user looks fine.", 3000))),
    ]
    for group in shown:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=user_text(group))))
        if buttons := user_buttons(group, in_account=in_account):
            blocks.append(ActionsBlock(elements=buttons))
    if len(groups) > len(shown):
        more = len(groups) - len(shown)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {_n(more, 'more user', 'more users')} with findings in the attached file.")]))
    text = f"IAM hygiene report for {account}: " + (f"{_n(len(groups), 'user', 'users')} with findings" if groups else "no findings")
    return message(clip(text, 300), blocks)


def report_file(found: Sequence[Finding], *, account: str, generated_at: datetime) -> bytes:
    """Every finding as CSV, one row each, safe to open in a spreadsheet (an IAM name may start with = + - @)."""
    stamp = generated_at.isoformat()
    rows = [csv_row(FILE_COLUMNS)]
    rows += [csv_row([safe_cell(v) for v in (f.user, f.kind.value, f.detail, f.owner_id or "", account, stamp)]) for f in found]
    return "".join(rows).encode("utf-8")
