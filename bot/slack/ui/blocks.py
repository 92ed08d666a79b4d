"""Block Kit for every view and message the bot sends, built with slack_sdk.models (it enforces limits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    DividerBlock,
    ExternalDataMultiSelectElement,
    ExternalDataSelectElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.policy import approval as rules
from bot.domain.spec import CopiedPermissions, RequestSpec, spec_of
from bot.slack.ui import ids
from bot.credentials.vault import Credentials
from models import AccessRequest, RequestState

Message = dict[str, Any]  # {"text": fallback, "blocks": [...]}: splat into chat.postMessage

STATE_WORDS = {
    RequestState.PENDING: ":hourglass_flowing_sand: waiting for approval",
    RequestState.APPROVED: ":white_check_mark: approved, creating the user",
    RequestState.PROVISIONING: ":gear: creating the user",
    RequestState.COMPLETED: ":white_check_mark: user created",
    RequestState.DENIED: ":no_entry: denied",
    RequestState.CANCELLED: ":heavy_minus_sign: cancelled",
    RequestState.EXPIRED: ":heavy_minus_sign: expired",
    RequestState.FAILED: ":x: failed",
}


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


def _code_list(items: Iterable[str], empty: str = "none") -> str:
    items = list(items)
    return ", ".join(f"`{esc(i)}`" for i in items) if items else f"_{empty}_"


def mention(slack_id: str) -> str:
    """A user, a Slack user group, or the bot itself, as mrkdwn."""
    if slack_id.startswith(("U", "W")):
        return f"<@{slack_id}>"
    if slack_id.startswith("S"):
        return f"<!subteam^{slack_id}>"
    return esc(slack_id)


def decider(req: AccessRequest) -> str:
    """Who decided, in words: a person, or the bot on behalf of a rule or a guardrail."""
    if req.decided_by == "iam-bot":
        return f"iam-bot (rule {esc(req.rule_name or 'default')})" if RequestState(req.state) is not RequestState.DENIED else "iam-bot (guardrail)"
    who = mention(req.decided_by or "?")
    return f"{who} :rotating_light: *break-glass*, to be reviewed" if req.break_glass else who


def rule_text(*, rule_name: str, quorum: int, approvers: Sequence[str], auto_approve: bool = False) -> str:
    """"Rule: admin-grants · needs 2 approvals from @a, @b, @security-team"."""
    if auto_approve:
        return f"Rule: *{esc(rule_name)}* · approved automatically (low risk), audited and announced"
    who = ", ".join(mention(a) for a in approvers) or "_no approver is configured_"
    noun = "approval" if quorum == 1 else "approvals"
    return f"Rule: *{esc(rule_name)}* · needs {quorum} {noun} from {who}"


def _policy_label(arn: str) -> str:
    return arn.split(":policy/", 1)[-1] if ":policy/" in arn else arn


def _message(text: str, blocks: Sequence[Any]) -> Message:
    return {"text": clip(text, 3000), "blocks": [b.to_dict() if hasattr(b, "to_dict") else b for b in blocks]}


def _view(**kwargs: Any) -> dict[str, Any]:
    return View(type="modal", **kwargs).to_dict()


# ---------------------------------------------------------------- request form


def request_modal(
    *, requester_id: str, default_path: str = "/", default_boundary: str | None = None, notes: Sequence[str] = ()
) -> dict[str, Any]:
    def text_input(block_id: str, label: str, *, hint: str | None = None, optional: bool = False, **el: Any) -> InputBlock:
        return InputBlock(
            block_id=block_id,
            label=label,
            hint=hint,
            optional=optional,
            element=PlainTextInputElement(action_id=ids.A_VALUE, **el),
        )

    blocks = [
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
                initial_option=Option(text=clip(_policy_label(default_boundary), 75), value=default_boundary) if default_boundary else None,
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
    ]
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(notes), 3000))]))
    return _view(
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


def spec_fields(spec: RequestSpec, *, requester_id: str | None = None) -> list[str]:
    tags = "\n".join(f"`{esc(k)}={esc(v)}`" for k, v in spec.tags) or "_none_"
    lines = []
    if requester_id:
        lines.append(f"*Requested by*\n<@{requester_id}>")
    lines += [
        f"*Account owner*\n<@{spec.owner_id}>",
        f"*User name*\n`{esc(spec.user_name)}`",
        f"*Access type*\n{', '.join(spec.access_types)}",
        f"*Path*\n`{esc(spec.path)}`",
        f"*Groups*\n{_code_list(spec.groups)}",
        f"*Managed policies*\n{_code_list(_policy_label(p) for p in spec.policy_arns)}",
        f"*Copy permissions from*\n{('`' + esc(spec.copy_from) + '`') if spec.copy_from else '_none_'}",
        f"*Permissions boundary*\n{('`' + esc(_policy_label(spec.permissions_boundary)) + '`') if spec.permissions_boundary else '_none_'}",
        f"*Tags*\n{tags}",
    ]
    return [clip(f, 2000) for f in lines]


def _field_sections(fields: list[str]) -> list[SectionBlock]:
    # A section holds at most 10 fields.
    return [
        SectionBlock(fields=[MarkdownTextObject(text=f) for f in fields[i : i + 10]]) for i in range(0, len(fields), 10)
    ]


def copied_text(copy_from: str, copied: CopiedPermissions | None, error: str | None) -> str:
    if error:
        return clip(f":warning: Could not read `{esc(copy_from)}`'s permissions: {esc(error)}", 3000)
    if copied is None:
        return f":hourglass_flowing_sand: Reading `{esc(copy_from)}`'s permissions from IAM…"
    boundary = _policy_label(copied.permissions_boundary) if copied.permissions_boundary else None
    return clip(
        f"*Copied from `{esc(copy_from)}`*\n"
        f"• Groups: {_code_list(copied.groups)}\n"
        f"• Managed policies: {_code_list(_policy_label(p) for p in copied.policy_arns)}\n"
        f"• Inline policies: {_code_list(copied.inline_policies)}\n"
        f"• Permissions boundary: {('`' + esc(boundary) + '`') if boundary else '_none_'}",
        3000,
    )


def review_modal(
    *,
    spec: RequestSpec,
    draft_id: str,
    requester_id: str,
    approvers: Sequence[str],
    copied: CopiedPermissions | None = None,
    copy_error: str | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    blocks: list[Any] = [
        SectionBlock(text=MarkdownTextObject(text="Check what will be created. *Back* returns to the form.")),
        *_field_sections(spec_fields(spec)),
    ]
    if spec.copy_from:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=copied_text(spec.copy_from, copied, copy_error))))
    if not (spec.groups or spec.policy_arns or spec.copy_from):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=":information_source: No permissions: the user will be able to do nothing until granted some.")]))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*Reason*\n{esc(spec.reason)}", 3000))))
    who = ", ".join(mention(a) for a in approvers) or "_no approver is configured_"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(rule or f"Will be sent for approval to: {who}", 3000))]))
    return _view(
        callback_id=ids.REVIEW_VIEW,
        external_id=ids.review_external_id(draft_id),
        private_metadata=draft_id,
        title="Review your request",
        submit="Submit request",
        close="Back",
        blocks=blocks,
    )


# ---------------------------------------------------------------- approval


def outcome_text(req: AccessRequest) -> str:
    state = RequestState(req.state)
    if state is RequestState.DENIED:
        reason = f": {esc(clip(req.decision_reason or '', 500))}" if req.decision_reason else ""
        return f":no_entry: *Denied* by {decider(req)} {when(req.decided_at)}{reason}"
    if state in (RequestState.APPROVED, RequestState.PROVISIONING):
        return f":white_check_mark: *Approved* by {decider(req)} {when(req.decided_at)} — creating the user…"
    if state is RequestState.COMPLETED:
        return f":white_check_mark: *Approved* by {decider(req)} {when(req.decided_at)} — user created, credentials sent to <@{req.owner_id}>"
    if state is RequestState.FAILED:
        return f":x: *Approved* by {decider(req)} {when(req.decided_at)}, but creating the user failed: {esc(clip(req.failure_reason or 'unknown error', 1500))}"
    if state is RequestState.CANCELLED:
        return f":heavy_minus_sign: *Cancelled* by the requester {when(req.updated_at)}"
    if state is RequestState.EXPIRED:
        return f":hourglass: *Expired* {when(req.updated_at)} without a decision"
    return STATE_WORDS[state]


def audit_line(req: AccessRequest) -> str:
    """The one-line notice for IAM_BOT_AUDIT_CHANNEL."""
    state = RequestState(req.state)
    who = f"requested by <@{req.requester_id}> for <@{req.owner_id}>"
    if req.break_glass:
        who += " :rotating_light: BREAK-GLASS, review it"
    if state is RequestState.COMPLETED:
        return f":white_check_mark: {req.short_id}: IAM user `{esc(req.user_name)}` created ({esc(req.user_arn or '')}), approved by {decider(req)}, {who}"
    if state is RequestState.FAILED:
        return f":x: {req.short_id}: creating `{esc(req.user_name)}` failed ({esc(clip(req.failure_reason or '', 200))}), {who}"
    if state is RequestState.CANCELLED:
        return f":heavy_minus_sign: {req.short_id}: `{esc(req.user_name)}` cancelled by the requester, {who}"
    if state is RequestState.DENIED:
        return f":no_entry: {req.short_id}: `{esc(req.user_name)}` denied by {decider(req)}, {who}"
    if state is RequestState.EXPIRED:
        return f":hourglass: {req.short_id}: `{esc(req.user_name)}` expired without a decision, {who}"
    if req.decided_by:
        return f":ballot_box_with_check: {req.short_id}: `{esc(req.user_name)}` {state.value} by {decider(req)}, {who}"
    return f"{req.short_id}: `{esc(req.user_name)}` {STATE_WORDS[state]}, {who}"


def progress_line(req: AccessRequest) -> str | None:
    """"1 of 2 approvals: <@bob>" while approvals are being gathered (None for a one-approval rule not yet begun)."""
    approvals = [d.approver_id for d in req.decisions if d.approved]
    approvals = list(dict.fromkeys(approvals))
    quorum = req.quorum or 1
    if quorum <= 1 and not approvals:
        return None
    return rules.progress_text(approvals, quorum)


def risk_blocks(req: AccessRequest) -> list[Any]:
    risk = req.risk or {}
    flags = [str(f) for f in risk.get("flags") or []]
    out: list[Any] = []
    if flags:
        out.append(SectionBlock(text=MarkdownTextObject(text=clip("*:warning: Risk*\n" + "\n".join(f"• {f}" for f in flags[:12]), 3000))))
    if risk.get("summary"):
        out.append(ContextBlock(elements=[MarkdownTextObject(text=clip(str(risk["summary"]), 3000))]))
    return out


def approval_message(req: AccessRequest, *, copied: CopiedPermissions | None = None) -> Message:
    spec = spec_of(req)
    blocks: list[Any] = [
        HeaderBlock(text=clip(f"IAM user request {req.short_id}: {req.user_name}", 150)),
    ]
    if req.break_glass:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(
            f":rotating_light: *Break-glass*: <@{req.requester_id}> approved this request themself. It must be reviewed.\n"
            f"*Why:* {esc(clip(req.decision_reason or '', 1000))}", 3000))))
    blocks += _field_sections(spec_fields(spec, requester_id=req.requester_id))
    if spec.copy_from and copied is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=copied_text(spec.copy_from, copied, None))))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*Reason*\n{esc(req.reason)}", 3000))))
    blocks += risk_blocks(req)
    progress = progress_line(req)
    if RequestState(req.state) is RequestState.PENDING:
        blocks.append(
            ActionsBlock(
                block_id=f"decide:{req.short_id}",
                elements=[
                    ButtonElement(text="Approve", action_id=ids.A_APPROVE, value=req.short_id, style="primary"),
                    ButtonElement(text="Deny", action_id=ids.A_DENY, value=req.short_id, style="danger"),
                ],
            )
        )
        context = f"Requested {when(req.created_at)}"
        if req.rule_name:
            context += f" · rule *{esc(req.rule_name)}*"
        if req.expires_at:
            context += f" · expires {when(req.expires_at)}"
        if progress:
            context = f"*{progress}* · " + context
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(context, 3000))]))
    else:
        outcome = outcome_text(req)
        if progress and (req.quorum or 1) > 1:
            outcome += f"\n{progress}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(outcome, 3000))))
    status = progress if progress and RequestState(req.state) is RequestState.PENDING else STATE_WORDS[RequestState(req.state)]
    text = f"IAM user request {req.short_id} from <@{req.requester_id}>: {req.user_name} — {status}"
    return _message(text, blocks)


def reminder_message(req: AccessRequest, *, number: int, escalated_to: Sequence[str] = ()) -> Message:
    progress = progress_line(req)
    text = f"Reminder: request {req.short_id} for {req.user_name} still waits for a decision"
    body = f":bell: Reminder {number}: request *{req.short_id}* for `{esc(req.user_name)}` still waits for a decision"
    body += f" ({progress})." if progress else "."
    if req.expires_at:
        body += f" It expires {when(req.expires_at)}."
    if escalated_to:
        body += f"\nEscalated to {', '.join(mention(e) for e in escalated_to)}."
    return _message(text, [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def expired_message(req: AccessRequest) -> Message:
    text = f"Your request {req.short_id} for {req.user_name} expired without a decision"
    body = (
        f":hourglass: Your request *{req.short_id}* for `{esc(req.user_name)}` expired {when(req.updated_at)} without a decision. "
        "Submit it again with `/iam request` if it is still needed."
    )
    return _message(text, [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def notice_to_approvers(req: AccessRequest) -> Message:
    """For approvers who had no say: an automatic or a break-glass approval, told at once."""
    if req.break_glass:
        text = f"Break-glass: {req.requester_id} approved their own request {req.short_id} ({req.user_name})"
        body = (
            f":rotating_light: *Break-glass*: <@{req.requester_id}> approved their own request *{req.short_id}* "
            f"for `{esc(req.user_name)}`.\n*Why:* {esc(clip(req.decision_reason or '', 1000))}\nPlease review it."
        )
    else:
        text = f"Request {req.short_id} ({req.user_name}) was approved automatically"
        body = f":robot_face: Request *{req.short_id}* for `{esc(req.user_name)}` by <@{req.requester_id}> was approved automatically by rule *{esc(req.rule_name or '')}*."
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000))), *_field_sections(spec_fields(spec_of(req), requester_id=req.requester_id))]
    blocks += risk_blocks(req)
    return _message(text, blocks)


def break_glass_modal(*, short_id: str, user_name: str) -> dict[str, Any]:
    return _view(
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
    return _view(
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


# ---------------------------------------------------------------- requester and owner DMs


def submitted_message(req: AccessRequest, *, approvers: Sequence[str], break_glass: bool = False) -> Message:
    who = ", ".join(mention(a) for a in approvers)
    text = f"Your request {req.short_id} for IAM user {req.user_name} was sent for approval."
    blocks: list[Any] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    f":inbox_tray: Your request *{req.short_id}* for IAM user `{esc(req.user_name)}` was sent for approval to {who}.\n"
                    f"Ask `/iam status {req.short_id}` any time.",
                    3000,
                )
            )
        )
    ]
    if (req.quorum or 1) > 1 or req.rule_name not in (None, "default"):
        text_ = rule_text(rule_name=req.rule_name or "default", quorum=req.quorum or 1, approvers=approvers)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(text_, 3000))]))
    if RequestState(req.state) is RequestState.PENDING:
        buttons: list[Any] = [_cancel_button(req)]
        if break_glass:
            buttons.append(ButtonElement(text="Break glass: approve it myself", action_id=ids.A_BREAK_GLASS, value=req.short_id, style="danger"))
        blocks.append(ActionsBlock(block_id=f"cancel:{req.short_id}", elements=buttons))
    return _message(text, blocks)


def _cancel_button(req: AccessRequest) -> ButtonElement:
    return ButtonElement(
        text="Cancel request",
        action_id=ids.A_CANCEL,
        value=req.short_id,
        confirm={
            "title": {"type": "plain_text", "text": "Cancel this request?"},
            "text": {"type": "mrkdwn", "text": clip(f"Withdraw request *{req.short_id}* for `{esc(req.user_name)}`?", 300)},
            "confirm": {"type": "plain_text", "text": "Cancel request"},
            "deny": {"type": "plain_text", "text": "Keep it"},
        },
    )


def home_view(*, user_id: str, data: Any) -> dict[str, Any]:
    """The App Home tab: my requests (Cancel / Reveal), and for approvers what waits and what was decided."""
    blocks: list[Any] = [
        HeaderBlock(text="AWS IAM user requests"),
        ActionsBlock(elements=[ButtonElement(text="Request an IAM user", action_id=ids.A_OPEN_REQUEST, style="primary")]),
        HeaderBlock(text="My requests"),
    ]
    if not data.mine:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="_None yet._ Start one with the button above or `/iam request`.")))
    for req in data.mine:
        accessory = None
        if RequestState(req.state) is RequestState.PENDING and req.requester_id == user_id:
            accessory = _cancel_button(req)
        elif req.id in data.revealable and req.owner_id == user_id:
            accessory = ButtonElement(text="Reveal credentials", action_id=ids.A_REVEAL, value=req.short_id, style="primary")
        line = _status_line(req)
        if req.user_arn:
            line += f"\n    `{esc(req.user_arn)}`"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(line, 3000)), accessory=accessory))
    if data.is_approver:
        blocks.append(HeaderBlock(text="Waiting for me"))
        if not data.awaiting:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="_Nothing waits for your decision._")))
        for req in data.awaiting:
            spec = spec_of(req)
            summary = (
                f"*{req.short_id}* `{esc(req.user_name)}` for <@{req.owner_id}>, requested by <@{req.requester_id}> {when(req.created_at)}\n"
                f"{', '.join(spec.access_types)} · groups {_code_list(spec.groups)} · policies {_code_list(_policy_label(p) for p in spec.policy_arns)}"
                + (f" · copy from `{esc(spec.copy_from)}`" if spec.copy_from else "")
                + f"\n_{esc(clip(req.reason, 300))}_"
                + (f"\n*{progress_line(req)}*" if progress_line(req) else "")
            )
            blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(summary, 3000))))
            blocks.append(
                ActionsBlock(
                    block_id=f"home-decide:{req.short_id}",
                    elements=[
                        ButtonElement(text="Approve", action_id=ids.A_APPROVE, value=req.short_id, style="primary"),
                        ButtonElement(text="Deny", action_id=ids.A_DENY, value=req.short_id, style="danger"),
                    ],
                )
            )
        blocks.append(HeaderBlock(text="Recently decided"))
        lines = "\n".join(_status_line(r) for r in data.recently_decided) or "_Nothing decided yet._"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(lines, 3000))))
    return View(type="home", blocks=blocks).to_dict()


def decision_message(req: AccessRequest) -> Message:
    text = f"Request {req.short_id} for {req.user_name}: {STATE_WORDS[RequestState(req.state)]}"
    body = f"Your request *{req.short_id}* for `{esc(req.user_name)}`:\n{outcome_text(req)}"
    if RequestState(req.state) is RequestState.DENIED:
        body += "\nIf something needs to change, submit a new request with `/iam request`."
    return _message(text, [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def credentials_ready_message(req: AccessRequest, *, expires_at: datetime) -> Message:
    text = f"Your IAM user {req.user_name} is ready. Reveal the credentials once, before they expire."
    return _message(
        text,
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(
                        f":key: Your IAM user `{esc(req.user_name)}` is ready (request *{req.short_id}*, approved by <@{req.decided_by}>).\n"
                        f"The credentials can be revealed *once*, by you only, until {when(expires_at)}. Have a password manager ready.",
                        3000,
                    )
                )
            ),
            ActionsBlock(
                block_id=f"reveal:{req.short_id}",
                elements=[ButtonElement(text="Reveal credentials", action_id=ids.A_REVEAL, value=req.short_id, style="primary")],
            ),
        ],
    )


def credentials_gone_message(req: AccessRequest, *, revealed_at: datetime | None) -> Message:
    if revealed_at:
        body = (
            f":lock: The credentials for `{esc(req.user_name)}` were revealed {when(revealed_at)} and are no longer stored. "
            "If you lost them, ask an AWS admin to reset the password or rotate the access key."
        )
    else:
        body = (
            f":lock: The credentials for `{esc(req.user_name)}` expired unrevealed and were destroyed. "
            "Ask an AWS admin to reset the password or create a new access key."
        )
    return _message(f"Credentials for {req.user_name}: no longer available", [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def failure_message(req: AccessRequest, *, for_approver: bool) -> Message:
    what = (req.failure_reason or "an unknown error").strip()
    advice = (
        "Nothing was left behind in AWS. Fix the cause, then ask the requester to submit a new request."
        if for_approver
        else "Nothing was left behind in AWS. Submit a new request once the cause is fixed; an approver has been told too."
    )
    body = f":x: Creating IAM user `{esc(req.user_name)}` (request *{req.short_id}*) failed.\n*What happened:* {esc(clip(what, 1500))}\n{advice}"
    return _message(f"Creating IAM user {req.user_name} failed", [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def reveal_modal(creds: Credentials) -> dict[str, Any]:
    def code(label: str, value: str) -> SectionBlock:
        return SectionBlock(text=MarkdownTextObject(text=f"*{label}*\n```{value}```"))

    blocks: list[Any] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=":warning: Copy these now: they are shown *once* and are no longer stored by the bot."
                + (" You must set a new password at first sign-in." if creds.password else "")
            )
        ),
        code("Console sign-in URL", creds.console_url),
        code("User name", creds.user_name),
    ]
    if creds.password:
        blocks.append(code("Password", creds.password))
    if creds.access_key_id:
        blocks.append(code("Access key ID", creds.access_key_id))
        blocks.append(code("Secret access key", creds.secret_access_key or ""))
    blocks.append(code("Credentials CSV (as the AWS console offers it)", creds.csv()))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Turn on MFA after signing in. Rotate access keys regularly.")]))
    return _view(callback_id=ids.REVEAL_VIEW, title="Your AWS credentials", close="Done", blocks=blocks)


def notice_modal(title: str, message: str) -> dict[str, Any]:
    return _view(title=clip(title, 24), close="Close", blocks=[SectionBlock(text=MarkdownTextObject(text=clip(message, 3000)))])


# ---------------------------------------------------------------- status and help


def _status_line(req: AccessRequest) -> str:
    state = RequestState(req.state)
    decided = f", decided by <@{req.decided_by}> {when(req.decided_at)}" if req.decided_by else ""
    failed = f"\n    {esc(clip(req.failure_reason or '', 300))}" if state is RequestState.FAILED else ""
    return (
        f"• *{req.short_id}* `{esc(req.user_name)}` — {STATE_WORDS[state]}{decided}; "
        f"requested by <@{req.requester_id}> {when(req.created_at)}{failed}"
    )


def status_message(*, mine: Sequence[AccessRequest], awaiting: Sequence[AccessRequest], query: str | None) -> Message:
    blocks: list[Any] = []
    if query and not mine:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"No request of yours matches `{esc(query)}`. Try `/iam status` to list them all.", 3000))))
    elif not mine:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="You have no IAM user requests yet. Start one with `/iam request`.")))
    else:
        title = f"*Requests matching `{esc(query)}`*" if query else "*Your recent requests*"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(title + "\n" + "\n".join(_status_line(r) for r in mine[:10]), 3000))))
    if awaiting:
        lines = "\n".join(_status_line(r) for r in awaiting[:10])
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*Waiting for your decision*\n{lines}", 3000))))
    text = f"{len(mine)} request(s)" + (f", {len(awaiting)} waiting for you" if awaiting else "")
    return _message(text, blocks)


_EVENT_WORDS = {
    "requested": "Requested by {actor}",
    "approved": "Approved by {actor}",
    "approval_recorded": "Approved by {actor} (more approvals needed)",
    "auto_approved": "Approved automatically by its rule",
    "break_glass": "Break-glass: approved by the requester {actor} themself, to be reviewed",
    "denied": "Denied by {actor}",
    "reminded": "Approvers reminded",
    "escalated": "Escalated to more approvers",
    "expired": "Expired without a decision",
    "provisioned:user": "IAM user created",
    "provisioned:permissions": "Permissions granted",
    "provisioned:login_profile": "Console password set (to be changed at first sign-in)",
    "provisioned:access_key": "Access key created",
    "provisioning_retry": "AWS was busy; retrying",
    "completed": "Completed",
    "failed": "Failed, and what was created was rolled back",
    "credentials_delivered": "Credentials sent",
    "credentials_revealed": "Credentials revealed by {actor}",
    "credentials_expired": "Credentials expired unrevealed and were destroyed",
}


def timeline_message(req: AccessRequest, events: Sequence[Any]) -> Message:
    """One request's story, from the audit log. `events` are AuditEvent rows (no secrets in them)."""
    lines = []
    for e in events:
        words = _EVENT_WORDS.get(e.action)
        if words is None:
            continue  # refused clicks and exports stay in the audit log, not in everyone's status
        actor = f"<@{e.actor}>" if e.actor.startswith(("U", "W")) else esc(e.actor)
        extra = f": {esc(clip(str(e.details.get('reason')), 300))}" if e.action == "denied" and e.details.get("reason") else ""
        lines.append(f"• {when(e.created_at)} — {words.format(actor=actor)}{extra}")
    header = f"*{req.short_id}* `{esc(req.user_name)}` — {STATE_WORDS[RequestState(req.state)]}"
    body = header + "\n" + ("\n".join(lines[-30:]) or "_no events yet_")
    if RequestState(req.state) is RequestState.FAILED and req.failure_reason:
        body += f"\n*Why it failed:* {esc(clip(req.failure_reason, 800))}"
    return _message(f"{req.short_id} {req.user_name}: {STATE_WORDS[RequestState(req.state)]}", [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def unknown_phrase_message(text: str) -> Message:
    return _message(
        "I did not understand that. Try: status, status <user name or request id>, what's pending, my requests, help.",
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(
                        f"I don't know what `{esc(clip(text, 80))}` means. Try `status`, `status developer01`, `status #R7KQ2ZX`, "
                        "`what's pending`, `my requests` or `help`.",
                        3000,
                    )
                )
            )
        ],
    )


def help_message() -> Message:
    return _message(
        "iam-bot: request an AWS IAM user with /iam request; check with /iam status",
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=(
                        "*iam-bot* creates AWS IAM users after an approver says yes, and hands the credentials to their owner, once.\n"
                        "• `/iam request` — ask for a new IAM user\n"
                        "• `/iam status [user name or request id]` — how your requests stand (also: DM me `status`)\n"
                        "• `/iam help` — this message"
                    )
                )
            ),
            ActionsBlock(elements=[ButtonElement(text="Request an IAM user", action_id=ids.A_OPEN_REQUEST, style="primary")]),
        ],
    )
