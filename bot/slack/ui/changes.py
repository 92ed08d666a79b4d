"""Changing a user and time-bound grants: the change modal, the grant reminder with Extend and I'm
done, and what the owner and requester are told when a change or a grant's end was applied (pure)."""

from __future__ import annotations

import json
from typing import Any, Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    ExternalDataMultiSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)

from bot.common.slack_ids import is_user
from bot.domain.grants import DURATION_WORDS
from bot.domain.plan import PlanKind
from bot.domain.views import RequestView, TemporaryView
from bot.slack.ui import ids
from bot.slack.ui.approval import decider
from bot.slack.ui.form import grant_for_blocks
from bot.slack.ui.plan import step_lines
from bot.slack.ui.text import Message, clip, code_list, esc, message, modal, policy_label, when

METADATA_LIMIT = 3000  # Slack's limit for a view's private_metadata


def loading_modal(*, external_id: str, user_name: str) -> dict[str, Any]:
    """Opened at once (Slack's trigger lasts 3 s); replaced by the form once IAM has answered."""
    return modal(external_id=external_id, title="Change an IAM user", close="Cancel",
                 blocks=[SectionBlock(text=MarkdownTextObject(text=clip(f":mag: Reading what `{esc(user_name)}` has in IAM…", 3000)))])


def change_metadata(*, user_name: str, groups: Sequence[str], policies: Sequence[str], console: bool, key: bool, account: str = "") -> str:
    """What the user had when the form was filled in (and its account): the change is the difference from this."""
    had: dict[str, Any] = {"u": user_name, "g": list(groups), "p": list(policies), "c": console, "k": key}
    if account:
        had["a"] = account
    return json.dumps(had, separators=(",", ":"))


def change_modal(
    *, external_id: str, user_name: str, owner_id: str, groups: Sequence[str], policies: Sequence[str], console: bool, keys: Sequence[str],
    temporary: Sequence[TemporaryView] = (), notes: Sequence[str] = (), account: str = "", account_name: str = "",
) -> dict[str, Any]:
    """Prefilled with what the user has now: untick or remove to take away, add to grant. `account`: the
    member account as shown (`prod (111111111111)`), `account_name` as requests carry it."""
    had = [f"groups {code_list(groups)}", f"policies {code_list(policy_label(p) for p in policies)}",
           "console password" if console else "no console password", f"access key {code_list(keys)}" if keys else "no access key"]
    where = f" in AWS account {esc(account)}" if account else ""
    lines = [f"*Change `{esc(user_name)}`*{where} (owner <@{owner_id}>). It has now: " + " · ".join(had) + "."]
    lines += [f"• {g.kind} `{esc(g.label)}` is temporary: taken away {when(g.ends_at)}" for g in temporary]
    access = [Option(value=ids.ACCESS_CONSOLE, text="Console access"), Option(value=ids.ACCESS_KEY, text="Access key")]
    initial = [o for o, on in zip(access, (console, bool(keys))) if on]
    blocks: list[Any] = [
        SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), 3000))),
        InputBlock(block_id=ids.B_GROUPS, label="Groups", optional=True, hint="Remove a group to take it away; add one to grant it.",
                   element=ExternalDataMultiSelectElement(action_id=ids.A_GROUPS, min_query_length=0, placeholder="Search groups",
                                                          initial_options=[Option(value=g, text=clip(g, 75)) for g in groups] or None)),
        InputBlock(block_id=ids.B_POLICIES, label="Managed policies", optional=True, hint="Attached to the user itself.",
                   element=ExternalDataMultiSelectElement(action_id=ids.A_POLICIES, min_query_length=0, placeholder="Search policies",
                                                          initial_options=[Option(value=p, text=clip(policy_label(p), 75)) for p in policies] or None)),
        InputBlock(block_id=ids.B_ACCESS_TYPE, label="Access type", optional=True,
                   hint="Untick to delete the console password or the access keys; tick to get new ones, delivered to the owner.",
                   element=CheckboxesElement(action_id=ids.A_VALUE, options=access, initial_options=initial or None)),
        *grant_for_blocks(hint="How long the groups and policies you add last; then they are taken away (you can extend, or give them back early)."),
        InputBlock(block_id=ids.B_REASON, label="Reason", hint="Approvers see this.",
                   element=PlainTextInputElement(action_id=ids.A_VALUE, multiline=True, max_length=3000)),
        ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join([
            "The bot reads IAM again on submit; approvers see the difference and everything the user will hold afterwards", *notes]), 3000))]),
    ]
    metadata = change_metadata(user_name=user_name, groups=groups, policies=policies, console=console, key=bool(keys), account=account_name)
    return modal(callback_id=ids.CHANGE_VIEW, external_id=external_id, private_metadata=metadata, title="Change an IAM user",
                 submit="Submit change", close="Cancel", blocks=blocks)


def grant_actions(grant: TemporaryView, *, block_id: str | None = None) -> ActionsBlock:
    """I'm done (taken away now, no approval) and Extend by… (a new request, judged by the rules)."""
    return ActionsBlock(block_id=block_id, elements=[
        ButtonElement(text="I'm done", action_id=ids.A_GRANT_DONE, value=str(grant.id)),
        StaticSelectElement(action_id=ids.A_GRANT_EXTEND, placeholder="Extend by…",
                            options=[Option(value=f"{grant.id}:{k}", text=v) for k, v in DURATION_WORDS.items()]),
    ])


def grant_reminder(*, user_name: str, grant: TemporaryView, owner_id: str) -> Message:
    """To the owner (and who asked for it), before a time-bound grant ends."""
    body = (f":hourglass_flowing_sand: {grant.kind.capitalize()} `{esc(grant.label)}` of `{esc(user_name)}` (owner <@{owner_id}>) is taken away "
            f"{when(grant.ends_at)}. Still need it? *Extend* asks for more time (the rules decide, as for any request). Done with it? "
            "*I'm done* takes it away now, no approval needed.")
    return message(clip(f"{grant.label} of {user_name} ends soon", 300),
                   [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000))), grant_actions(grant)])


def temporary_words(grants: Sequence[TemporaryView]) -> str:
    return "; ".join(f"{g.kind} `{esc(g.label)}` until {when(g.ends_at)}" + (" (being taken away)" if g.ending else "") for g in grants)


def change_notice(req: RequestView) -> Message:
    """To the requester and the owner: the change, a grant extended, or a grant's end, as applied."""
    kind = PlanKind(req.kind)
    steps = step_lines(req.plan) if req.plan else []
    if kind is PlanKind.REVOKE:
        why = "given back early" if is_user(req.requester_id) else "its time ended"
        head = f":lock: Taken from `{esc(req.user_name)}` (owner <@{req.owner_id}>), {why}: request *{req.short_id}*."
        if not steps:
            head += " Nothing was left to take: the user is gone, or no longer the one the bot made."
    else:
        what = "was changed" if kind is PlanKind.CHANGE else "keeps its grant longer"
        head = f":white_check_mark: `{esc(req.user_name)}` (owner <@{req.owner_id}>) {what}: request *{req.short_id}*, approved by {decider(req)}."
    body = head + "\n" + "\n".join(steps[:30])
    if req.temporary:
        body += f"\n:hourglass: Temporary: {temporary_words(req.temporary)}. The owner is reminded before, with *Extend* and *I'm done*."
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))]
    if any(st.startswith(("+ Create", "Create")) or "access key (delivered" in st or "console password (to be" in st for st in steps):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="The new credentials go to the owner in a separate DM, to reveal once.")]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Every step is in `/iam status {req.short_id}`; anything already gone is marked so.")]))
    return message(clip(f"{req.user_name}: request {req.short_id} done", 300), blocks)
