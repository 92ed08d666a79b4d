"""What approvers see: the request with its plan and risk, Approve/Deny, outcomes, reminders (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.domain.plan import PlanKind
from bot.domain.views import RequestView
from bot.policy.approval import progress_text
from bot.slack.ui import ids
from bot.slack.ui.form import field_sections, spec_fields
from bot.slack.ui.plan import plan_blocks
from bot.slack.ui.text import state_words, Message, clip, esc, is_bot, mention, message, when
from models import RequestState


def decider(req: RequestView) -> str:
    """Who decided, in words: a person, or the bot on behalf of a rule or a guardrail."""
    if is_bot(req.decided_by):
        return "iam-bot (guardrail)" if req.state is RequestState.DENIED else f"iam-bot (rule {esc(req.rule_name or 'default')})"
    who = mention(req.decided_by or "?")
    return f"{who} :rotating_light: *break-glass*, to be reviewed" if req.break_glass else who


def rule_text(*, rule_name: str, quorum: int, approvers: Sequence[str], auto_approve: bool = False) -> str:
    """"Rule: admin-grants · needs 2 approvals from @a, @b, @security-team"."""
    if auto_approve:
        # Shown on the review, before the plan is made: the rule only approves what it wholly covers.
        return (
            f"Rule: *{esc(rule_name)}* · approved automatically if, once checked against IAM, all of it is inside the rule "
            "and nothing is unreadable or escalating (otherwise a person decides); audited and announced"
        )
    who = ", ".join(mention(a) for a in approvers) or "_no approver is configured_"
    noun = "approval" if quorum == 1 else "approvals"
    return f"Rule: *{esc(rule_name)}* · needs {quorum} {noun} from {who}"


def progress_line(req: RequestView) -> str | None:
    """"1 of 2 approvals: <@bob>" while approvals are being gathered (None for a one-approval rule not yet begun)."""
    if req.quorum <= 1 and not req.approvals:
        return None
    return progress_text(list(req.approvals), req.quorum)


def outcome_text(req: RequestView) -> str:
    state = req.state
    if state is RequestState.DENIED:
        reason = f": {esc(clip(req.decision_reason or '', 500))}" if req.decision_reason else ""
        return f":no_entry: *Denied* by {decider(req)} {when(req.decided_at)}{reason}"
    approved = f":white_check_mark: *Approved* by {decider(req)} {when(req.decided_at)}"
    if state in (RequestState.APPROVED, RequestState.PROVISIONING):
        return f"{approved} — {'creating the user' if req.kind == PlanKind.CREATE_USER.value else 'being applied'}…"
    if state is RequestState.COMPLETED:
        if req.kind == PlanKind.CREATE_USER.value:
            return f"{approved} — user created, credentials sent to <@{req.owner_id}>"
        # A change, a rotation or an offboarding creates no user; only a plan that made credentials sent any.
        sent = req.plan is not None and req.plan.makes_credentials
        return f"{approved} — done ({esc(req.brings)})" + (f", credentials sent to <@{req.owner_id}>" if sent else "")
    if state is RequestState.FAILED:
        if req.decided_by is None:
            return f":x: *Could not be done*: {esc(clip(req.failure_reason or 'unknown error', 1500))}"
        doing = "creating the user" if req.kind == "create_user" else "applying it"
        return f":x: *Approved* by {decider(req)} {when(req.decided_at)}, but {doing} failed: {esc(clip(req.failure_reason or 'unknown error', 1500))}"
    if state is RequestState.CANCELLED:
        return f":heavy_minus_sign: *Cancelled* by the requester {when(req.updated_at)}"
    if state is RequestState.EXPIRED:
        return f":hourglass: *Expired* {when(req.updated_at)} without a decision"
    if state is RequestState.SUBMITTED:
        return ":mag: *Being checked against IAM again*; this message gets the new plan and fresh buttons when that is done."
    return state_words(state, req.kind)


def audit_line(req: RequestView) -> str:
    """The one-line notice for IAM_BOT_AUDIT_CHANNEL."""
    state = req.state
    who = f"requested by <@{req.requester_id}> for <@{req.owner_id}>"
    if req.break_glass:
        who += " :rotating_light: BREAK-GLASS, review it"
    name = f"`{esc(req.user_name)}`" + (f" in AWS account {esc(req.spec.account)}" if req.spec.account else "")
    if state is RequestState.COMPLETED and req.kind != "create_user":
        return f":white_check_mark: {req.short_id}: {esc(req.brings)} for {name} done, approved by {decider(req)}, {who}"
    if state is RequestState.COMPLETED:
        return f":white_check_mark: {req.short_id}: IAM user {name} created ({esc(req.user_arn or '')}), approved by {decider(req)}, {who}"
    if state is RequestState.FAILED:
        doing = f"creating {name}" if req.kind == "create_user" else f"the {esc(req.brings)} for {name}"
        return f":x: {req.short_id}: {doing} failed ({esc(clip(req.failure_reason or '', 200))}), {who}"
    if state is RequestState.CANCELLED:
        return f":heavy_minus_sign: {req.short_id}: {name} cancelled by the requester, {who}"
    if state is RequestState.DENIED:
        return f":no_entry: {req.short_id}: {name} denied by {decider(req)}, {who}"
    if state is RequestState.EXPIRED:
        return f":hourglass: {req.short_id}: {name} expired without a decision, {who}"
    if state is RequestState.SUBMITTED and req.plan_changes:
        return f":warning: {req.short_id}: IAM drifted from the plan approved for {name}; nothing beyond it was applied, approvers are asked again, {who}"
    if req.decided_by:
        return f":ballot_box_with_check: {req.short_id}: {name} {state.value} by {decider(req)}, {who}"
    return f"{req.short_id}: {name} {state_words(state, req.kind)}, {who}"


def risk_blocks(req: RequestView) -> list[Any]:
    out: list[Any] = []
    if req.risk_flags:
        more = [f"• … and {len(req.risk_flags) - 12} more"] if len(req.risk_flags) > 12 else []
        out.append(SectionBlock(text=MarkdownTextObject(text=clip("*:warning: Risk*\n" + "\n".join([*(f"• {esc(f)}" for f in req.risk_flags[:12]), *more]), 3000))))
    if req.risk_summary:  # flags and summary quote names read from IAM and the request: escaped like all user text
        out.append(ContextBlock(elements=[MarkdownTextObject(text=clip(esc(req.risk_summary), 3000))]))
    return out


def decide_buttons(req: RequestView, *, block_id: str) -> ActionsBlock:
    """Approve carries the plan's digest: a click approves exactly the plan shown with it."""
    value = ids.approval_value(req.short_id, req.approval_digest)
    elements = [
        ButtonElement(text="Approve", action_id=ids.A_APPROVE, value=value, style="primary"),
        ButtonElement(text="Deny", action_id=ids.A_DENY, value=value, style="danger"),
    ]
    if req.quorum > 1 and req.approvals:  # before quorum, an approver may take theirs back
        elements.append(ButtonElement(text="Withdraw my approval", action_id=ids.A_WITHDRAW, value=value))
    if req.kind == PlanKind.OFFBOARD.value and is_bot(req.requester_id):  # filed because the owner left
        elements.append(ButtonElement(text="Disable now", action_id=ids.A_DISABLE_NOW, value=req.short_id))
    elif req.kind == PlanKind.OFFBOARD.value:  # keep the user, stopped, rather than delete it
        elements.append(ButtonElement(text="Disable instead", action_id=ids.A_DISABLE_INSTEAD, value=req.short_id))
    return ActionsBlock(block_id=block_id, elements=elements)


def bundle_blocks(req: RequestView) -> list[Any]:
    """An ask for several accounts: where each account's request stands, and each other account's plan
    (the request's own is shown above); one Approve approves every waiting one."""
    together = req.together
    lines = [f"• *AWS account {esc(m.spec.account)}*: request *{m.short_id}* — {state_words(m.state, m.kind)}"
             + (f": {esc(clip(m.failure_reason or m.decision_reason or '', 200))}" if m.state in (RequestState.FAILED, RequestState.DENIED) else "")
             for m in together]
    out: list[Any] = [SectionBlock(text=MarkdownTextObject(text=clip(
        f"*One request for {len(together)} AWS accounts*, judged together (the strictest rule of them decides); each account's plan "
        "is applied and reported on its own.\n" + "\n".join(lines), 3000)))]
    for m in req.members:
        out.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*In AWS account {esc(m.spec.account)}* (request *{m.short_id}*)", 3000))))
        out += plan_blocks(m.plan, digest=m.plan_digest if m.state is RequestState.PENDING else None)
        if m.risk_flags:  # each account's grant is judged on its own: its flags, in short
            out.append(ContextBlock(elements=[MarkdownTextObject(text=clip(f":warning: Risk in {esc(m.spec.account)}: " + " · ".join(esc(f) for f in m.risk_flags[:6]), 3000))]))
    return out


def approval_message(req: RequestView) -> Message:
    title = PlanKind(req.kind).title
    several = f" in {len(req.together)} AWS accounts" if req.members else ""
    blocks: list[Any] = [HeaderBlock(text=clip(f"{title} {req.short_id}: {req.user_name}{several}", 150))]
    if req.break_glass:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(
            f":rotating_light: *Break-glass*: <@{req.requester_id}> approved this request themself. It must be reviewed.\n"
            f"*Why:* {esc(clip(req.decision_reason or '', 1000))}", 3000))))
    # An ask for several accounts names each of them; each one's plan follows.
    shown = replace(req.spec, also_accounts=tuple(v.spec.account for v in req.members)) if req.members else req.spec
    blocks += field_sections(spec_fields(shown, requester_id=req.requester_id, kind=req.kind))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*Reason*\n{esc(req.reason)}", 3000))))
    if req.members:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*In AWS account {esc(req.spec.account)}* (request *{req.short_id}*)", 3000))))
    blocks += plan_blocks(req.plan, digest=req.plan_digest, changes=req.plan_changes if req.state is RequestState.PENDING else ())
    if req.members:
        blocks += bundle_blocks(req)
    blocks += risk_blocks(req)
    progress = progress_line(req)
    if req.state is RequestState.PENDING and req.plan_digest and req.plan is not None and req.approval_digest:
        blocks.append(decide_buttons(req, block_id=f"decide:{req.short_id}"))
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
        if progress and req.quorum > 1:
            outcome += f"\n{progress}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(outcome, 3000))))
    status = progress if progress and req.state is RequestState.PENDING else state_words(req.state, req.kind)
    text = f"{title} {req.short_id} from {mention(req.requester_id)}: {req.user_name} — {status}"
    return message(text, blocks)


def reminder_message(req: RequestView, *, number: int, escalated_to: Sequence[str] = ()) -> Message:
    progress = progress_line(req)
    text = f"Reminder: request {req.short_id} for {req.user_name} still waits for a decision"
    body = f":bell: Reminder {number}: request *{req.short_id}* for `{esc(req.user_name)}` still waits for a decision"
    body += f" ({progress})." if progress else "."
    if req.expires_at:
        body += f" It expires {when(req.expires_at)}."
    if escalated_to:
        body += f"\nEscalated to {', '.join(mention(e) for e in escalated_to)}."
    return message(text, [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def escalation_notice(req: RequestView, *, approvers: Sequence[str]) -> Message:
    """For escalation contacts: the request waits too long; they chase its approvers (they cannot approve it)."""
    text = f"Request {req.short_id} for {req.user_name} has waited too long for its approvers"
    who = ", ".join(mention(a) for a in approvers) or "its approvers"
    body = (
        f":rotating_light: Request *{req.short_id}* from <@{req.requester_id}> for `{esc(req.user_name)}` still waits for a decision"
        f" from {who}. You are its escalation contact: please get one of them to decide. Only they can approve it."
    )
    if req.expires_at:
        body += f" It expires {when(req.expires_at)}."
    return message(text, [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def notice_to_approvers(req: RequestView) -> Message:
    """For approvers who had no say: an automatic or a break-glass approval, told at once."""
    if req.break_glass:
        text = f"Break-glass: {req.requester_id} approved their own request {req.short_id} ({req.user_name})"
        body = (
            f":rotating_light: *Break-glass*: <@{req.requester_id}> approved their own request *{req.short_id}* "
            f"for `{esc(req.user_name)}`.\n*Why:* {esc(clip(req.decision_reason or '', 1000))}\nPlease review it."
        )
    else:
        text = f"Request {req.short_id} ({req.user_name}) was approved automatically"
        body = f":robot_face: Request *{req.short_id}* for `{esc(req.user_name)}` by {mention(req.requester_id)} was approved automatically by rule *{esc(req.rule_name or '')}*."
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000))),
                         *field_sections(spec_fields(req.spec, requester_id=req.requester_id, kind=req.kind))]
    blocks += plan_blocks(req.plan, digest=req.plan_digest)
    blocks += risk_blocks(req)
    return message(text, blocks)


def failure_message(req: RequestView, *, for_approver: bool) -> Message:
    what = (req.failure_reason or "an unknown error").strip()
    if req.decided_by is None:  # failed while being checked: nothing was ever done in AWS
        advice = "Nothing was done in AWS. Submit a new request with current names." if not for_approver else "Nothing was done in AWS."
    elif for_approver:
        advice = "Nothing was left behind in AWS. Fix the cause, then ask the requester to submit a new request."
    else:
        advice = "Nothing was left behind in AWS. Submit a new request once the cause is fixed; an approver has been told too."
    if req.kind == PlanKind.CREATE_USER.value:
        head, text = f"Creating IAM user `{esc(req.user_name)}` (request *{req.short_id}*)", f"Creating IAM user {req.user_name}"
    else:  # a change is put back when it fails half-way, a removal keeps what it removed: status has each step
        head, text = f"Request *{req.short_id}* for `{esc(req.user_name)}` ({esc(req.brings)})", f"Request {req.short_id} for {req.user_name}"
        if req.decided_by is not None:
            advice = f"Every step made before it stopped is in `/iam status {req.short_id}`. Fix the cause, then ask again."
    body = f":x: {head} failed.\n*What happened:* {esc(clip(what, 1500))}\n{advice}"
    return message(f"{text} failed", [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])
