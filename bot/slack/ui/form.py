"""Modals: the request form and its typeahead options, the review, deny and break-glass forms, notices (pure)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from slack_sdk.models.blocks import (
    CheckboxesElement,
    DatePickerElement,
    ContextBlock,
    DividerBlock,
    ExternalDataMultiSelectElement,
    ExternalDataSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    StaticMultiSelectElement,
    UserSelectElement,
)

from bot.domain import grants as lasting
from bot.domain.grants import DURATION_WORDS
from bot.domain.plan import Plan, PlanKind
from bot.domain.spec import RequestSpec
from bot.slack.ui import ids
from bot.slack.ui.plan import plan_blocks
from bot.slack.ui.text import clip, code_list, esc, mention, modal, policy_label

# ---------------------------------------------------------------- request form


def grant_for_blocks(*, hint: str) -> list[InputBlock]:
    """"For" and "Until": how long what is added lasts (the request form's and the change modal's)."""
    choices = [Option(value=ids.FOREVER, text="For good")] + [Option(value=k, text=v) for k, v in DURATION_WORDS.items()]
    choices.append(Option(value="until", text="Until the date below"))
    return [
        InputBlock(block_id=ids.B_GRANT_FOR, label="For", optional=True, hint=hint,
                   element=StaticSelectElement(action_id=ids.A_VALUE, options=choices, placeholder="For good")),
        InputBlock(block_id=ids.B_GRANT_UNTIL, label="Until", optional=True, hint="With \"Until the date below\": taken away as that day begins (00:00 UTC).",
                   element=DatePickerElement(action_id=ids.A_VALUE, placeholder="No date")),
    ]



def account_block(accounts: Sequence[tuple[str, str]], *, chosen: str) -> InputBlock:
    """ "AWS account": (name, label) of each account the bot serves; `chosen` first selected (the requester's last)."""
    options = [Option(value=name, text=clip(label, 75)) for name, label in accounts[:100]]
    initial = next((o for o in options if o.value == chosen), options[0] if options else None)
    return InputBlock(
        block_id=ids.B_ACCOUNT, label="AWS account",
        hint="Where the user is created; pick several to create it in each (approved once, made and reported in each). "
             "Groups, policies and users below are searched in the first.",
        element=StaticMultiSelectElement(action_id=ids.A_VALUE, options=options, initial_options=[initial] if initial else None,
                                         placeholder="Pick accounts", max_selected_items=10),
    )


def request_modal(
    *, requester_id: str, default_path: str = "/", default_boundary: str | None = None, notes: Sequence[str] = (),
    accounts: Sequence[tuple[str, str]] = (), account: str = "",
) -> dict[str, Any]:
    def text_input(block_id: str, label: str, *, hint: str | None = None, optional: bool = False, **el: Any) -> InputBlock:
        return InputBlock(
            block_id=block_id,
            label=label,
            hint=hint,
            optional=optional,
            element=PlainTextInputElement(action_id=ids.A_VALUE, **el),
        )

    blocks: list[Any] = [account_block(accounts, chosen=account)] if len(accounts) > 1 else []
    blocks += [
        text_input(
            ids.B_USER_NAME,
            "User name",
            hint="1–64 letters, digits and + = , . @ _ -. Must be unused in the account (case-insensitive).",
            max_length=64,
            placeholder="jane.doe",
        ),
        InputBlock(
            block_id=ids.B_ACCESS_TYPE,
            label="Access type",
            hint="Choose one or both.",
            element=CheckboxesElement(
                action_id=ids.A_VALUE,
                options=[
                    Option(value=ids.ACCESS_CONSOLE, text="Console access", description="Sign in to the AWS console with a password"),
                    Option(value=ids.ACCESS_KEY, text="Access key", description="Programmatic access: CLI, SDKs, API"),
                ],
            ),
        ),
        SectionBlock(text=MarkdownTextObject(text="*Permissions* — any of groups, managed policies, or a copy of an existing user's.")),
        InputBlock(
            block_id=ids.B_GROUPS,
            label="Groups",
            optional=True,
            hint="Type to search the account's IAM groups.",
            element=ExternalDataMultiSelectElement(action_id=ids.A_GROUPS, min_query_length=0, placeholder="Search groups"),
        ),
        InputBlock(
            block_id=ids.B_POLICIES,
            label="Managed policies",
            optional=True,
            hint="AWS-managed and customer-managed policies attached directly to the user.",
            element=ExternalDataMultiSelectElement(action_id=ids.A_POLICIES, min_query_length=0, placeholder="Search policies"),
        ),
        InputBlock(
            block_id=ids.B_COPY_FROM,
            label="Copy permissions from existing user",
            optional=True,
            hint="Copies its groups, attached and inline policies, and permissions boundary.",
            element=ExternalDataSelectElement(action_id=ids.A_COPY_FROM, min_query_length=0, placeholder="Search users"),
        ),
        DividerBlock(),
        text_input(
            ids.B_PATH,
            "Path",
            optional=True,
            hint=f"Default `{default_path}`. Example: {default_path}engineering/" if default_path != "/" else "Default `/`. Example: /engineering/",
            max_length=512,
            placeholder=default_path,
            initial_value=default_path if default_path != "/" else None,
        ),
        text_input(
            ids.B_TAGS,
            "Tags",
            optional=True,
            multiline=True,
            hint="One key=value per line, at most 49 (the bot adds one tag of its own).",
            placeholder="team=payments\ncost-center=1234",
        ),
        InputBlock(
            block_id=ids.B_BOUNDARY,
            label="Permissions boundary",
            optional=True,
            hint="A managed policy that caps what the user can ever do." + (" Required here: filled in for you." if default_boundary else ""),
            element=ExternalDataSelectElement(
                action_id=ids.A_BOUNDARY,
                min_query_length=0,
                placeholder="Search policies",
                # An option's value holds 150 characters; a longer required boundary is filled in on submission instead.
                initial_option=Option(text=clip(policy_label(default_boundary), 75), value=default_boundary)
                if default_boundary and len(default_boundary) <= 150
                else None,
            ),
        ),
        InputBlock(
            block_id=ids.B_OWNER,
            label="Account owner",
            hint="The Slack user who will receive the credentials.",
            element=UserSelectElement(action_id=ids.A_VALUE, initial_user=requester_id),
        ),
        text_input(
            ids.B_REASON,
            "Reason",
            multiline=True,
            max_length=3000,
            hint="Approvers see this. Say what the account is for.",
        ),
        InputBlock(
            block_id=ids.B_EXPIRES,
            label="Expires",
            optional=True,
            hint="For contractors and other temporary accounts: on this date the user is disabled, and it is deleted after a "
            "grace period unless an extension is approved (`/iam extend`).",
            element=DatePickerElement(action_id=ids.A_VALUE, placeholder="No end date"),
        ),
        *grant_for_blocks(hint="How long the groups and policies you ask for last; then they are taken away and the user stays "
                               "(you can extend, or give them back early)."),
    ]
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(notes), 3000))]))
    return modal(
        callback_id=ids.REQUEST_VIEW,
        title="Request an IAM user",
        submit="Review",
        close="Cancel",
        blocks=blocks,
    )


def options(items: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Options for external_select: (label, value); Slack caps label at 75 and value at 150 chars."""
    out = []
    for label, value in items:
        if len(value) > 150:
            continue  # Slack rejects the whole list for one over-long value
        out.append(Option(text=clip(label, 75), value=value).to_dict())
        if len(out) == 100:
            break
    return out


# ---------------------------------------------------------------- review


def _change_fields(spec: RequestSpec) -> list[str]:
    """A change (or a grant's extension or end): what it adds and takes away, as asked."""
    adds = [*(f"group `{esc(g)}`" for g in spec.groups), *(f"`{esc(policy_label(p))}`" for p in spec.policy_arns), *(a.lower() for a in spec.access_types)]
    names = {"console": "console password", "key": "access keys"}
    takes = [names.get(r) or (f"group `{esc(r[6:])}`" if r.startswith("group:") else f"`{esc(policy_label(r.split(':', 1)[1]))}`") for r in spec.remove]
    lines = [f"*Adds*\n{', '.join(adds) or '_nothing_'}", f"*Takes away*\n{', '.join(takes) or '_nothing_'}"]
    if spec.grant_for:
        lines.append(f"*What it adds lasts*\n{esc(lasting.words(spec.grant_for))}, then taken away")
    return lines


def spec_fields(spec: RequestSpec, *, requester_id: str | None = None, kind: str = "create_user") -> list[str]:
    tags = "\n".join(f"`{esc(k)}={esc(v)}`" for k, v in spec.tags) or "_none_"
    lines = []
    if requester_id:
        lines.append(f"*Requested by*\n{mention(requester_id)}")
    if spec.account:
        lines.append("*AWS account*\n" + ", ".join(f"`{esc(a)}`" for a in spec.accounts))
    if kind != "create_user":  # about a user that exists: what it is, and what this request does to it
        lines += [f"*Account owner*\n<@{spec.owner_id}>", f"*User name*\n`{esc(spec.user_name)}`", f"*Path*\n`{esc(spec.path)}`"]
        if kind in ("change", "extend_grant", "revoke"):
            lines += _change_fields(spec)
        else:
            lines.append(f"*This request*\n{esc(PlanKind(kind).brings)}")
            if spec.expires_on and kind == "extend":
                lines.append(f"*New end date*\n{esc(spec.expires_on)}")
        return [clip(f, 2000) for f in lines]
    lines += [
        f"*Account owner*\n<@{spec.owner_id}>",
        f"*User name*\n`{esc(spec.user_name)}`",
        f"*Access type*\n{', '.join(spec.access_types)}",
        f"*Path*\n`{esc(spec.path)}`",
        f"*Groups*\n{code_list(spec.groups)}",
        f"*Managed policies*\n{code_list(policy_label(p) for p in spec.policy_arns)}",
        f"*Copy permissions from*\n{('`' + esc(spec.copy_from) + '`') if spec.copy_from else '_none_'}",
        f"*Permissions boundary*\n{('`' + esc(policy_label(spec.permissions_boundary)) + '`') if spec.permissions_boundary else '_none_'}",
        f"*Tags*\n{tags}",
    ]
    if spec.expires_on:
        lines.append(f"*Expires*\n{esc(spec.expires_on)} (disabled that day)")
    if spec.grant_for:
        lines.append(f"*Groups and policies last*\n{esc(lasting.words(spec.grant_for))}, then taken away")
    return [clip(f, 2000) for f in lines]


def field_sections(fields: list[str]) -> list[SectionBlock]:
    # A section holds at most 10 fields.
    return [
        SectionBlock(fields=[MarkdownTextObject(text=f) for f in fields[i : i + 10]]) for i in range(0, len(fields), 10)
    ]


def review_modal(
    *,
    spec: RequestSpec,
    draft_id: str,
    requester_id: str,
    approvers: Sequence[str],
    rule: str | None = None,
    plan: Plan | None = None,
    plan_error: str | None = None,
    delivery: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """What will be asked for, and (filled in after the ack, by views.update) the plan read from IAM;
    `note` instead of a plan (an ask for several accounts: each one's is made on submit)."""
    blocks: list[Any] = [
        SectionBlock(text=MarkdownTextObject(text="Check what will be created. *Back* returns to the form.")),
        *field_sections(spec_fields(spec)),
    ]
    if note:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(esc(note), 3000))))
    elif plan_error:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f":warning: Could not read the plan from IAM: {esc(plan_error)} It is read again when you submit.", 3000))))
    else:
        blocks += plan_blocks(plan, holdings=False)
    if not (spec.groups or spec.policy_arns or spec.copy_from):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=":information_source: No permissions: the user will be able to do nothing until granted some.")]))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*Reason*\n{esc(spec.reason)}", 3000))))
    if delivery:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(delivery, 3000))]))
    who = ", ".join(mention(a) for a in approvers) or "_no approver is configured_"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(rule or f"Will be sent for approval to: {who}", 3000))]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text="On submit the bot reads IAM again and approvers approve exactly the plan it makes then.")]))
    return modal(
        callback_id=ids.REVIEW_VIEW,
        external_id=ids.review_external_id(draft_id),
        private_metadata=draft_id,
        title="Review your request",
        submit="Submit request",
        close="Back",
        blocks=blocks[:100],
    )


def break_glass_modal(*, short_id: str, user_name: str) -> dict[str, Any]:
    return modal(
        callback_id=ids.BREAK_GLASS_VIEW,
        private_metadata=short_id,
        title="Break glass",
        submit="Approve it myself",
        close="Cancel",
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(
                        f":rotating_light: You are about to approve your own request *{short_id}* for `{esc(user_name)}` "
                        "without an approver. Every approver is told at once, and the request is flagged for review.",
                        3000,
                    )
                )
            ),
            InputBlock(
                block_id=ids.B_BG_REASON,
                label="Why can't this wait for an approver?",
                element=PlainTextInputElement(action_id=ids.A_VALUE, multiline=True, max_length=1000),
            ),
            InputBlock(
                block_id=ids.B_BG_CONFIRM,
                label="Confirmation",
                element=CheckboxesElement(
                    action_id=ids.A_VALUE,
                    options=[Option(value=ids.BG_CONFIRMED, text="I take responsibility for this access and expect it to be reviewed")],
                ),
            ),
        ],
    )


def deny_modal(*, short_id: str, user_name: str) -> dict[str, Any]:
    return modal(
        callback_id=ids.DENY_VIEW,
        private_metadata=short_id,
        title="Deny request",
        submit="Deny",
        close="Cancel",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=clip(f"Deny request *{short_id}* for `{esc(user_name)}`?", 3000))),
            InputBlock(
                block_id=ids.B_DENY_REASON,
                label="Reason",
                hint="The requester sees this.",
                element=PlainTextInputElement(action_id=ids.A_VALUE, multiline=True, max_length=1000),
            ),
        ],
    )


def notice_modal(title: str, message: str) -> dict[str, Any]:
    return modal(title=clip(title, 24), close="Close", blocks=[SectionBlock(text=MarkdownTextObject(text=clip(message, 3000)))])
