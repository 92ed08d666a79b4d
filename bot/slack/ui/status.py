"""Status in plain words: a person's requests, one request's timeline, help (pure)."""

from __future__ import annotations

from typing import Any, Sequence

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock

from bot.common.slack_ids import is_user
from bot.domain.accounts import qualified
from bot.domain import grants as lasting
from bot.domain.views import RequestView, TimelineEvent
from bot.slack.ui import ids
from bot.slack.ui.text import state_words, Message, clip, esc, is_bot, mention, message, when
from models import RequestState


def status_line(req: RequestView) -> str:
    state = req.state
    decided = f", decided by {esc(req.decided_by) if is_bot(req.decided_by) else mention(req.decided_by)} {when(req.decided_at)}" if req.decided_by else ""
    failed = f"\n    {esc(clip(req.failure_reason or '', 300))}" if state is RequestState.FAILED else ""
    return (
        f"• *{req.short_id}* `{esc(req.user_name)}`{' in ' + esc(req.spec.account) if req.spec.account else ''} — {state_words(state, req.kind)}{decided}; "
        f"requested by <@{req.requester_id}> {when(req.created_at)}{user_words(req)}{failed}"
    )


def user_words(req: RequestView) -> str:
    """What the bot knows of the user a completed request created: MFA (when watched) and its end date."""
    if req.mfa is None or req.state is not RequestState.COMPLETED:
        return ends_words(req)
    if req.mfa.enrolled:
        return " · MFA on" + ends_words(req)
    return (" · :warning: no MFA device yet" if req.mfa.checked_at else " · MFA not checked yet") + ends_words(req)


def ends_words(req: RequestView) -> str:
    out = f" · ends {req.ends:%Y-%m-%d}" if req.ends is not None and req.state is RequestState.COMPLETED else ""
    for g in req.temporary:  # what the request granted for a time, while the user holds it
        out += f" · temporary {g.kind} `{esc(g.label)}` until {when(g.ends_at)}" + (" (being taken away)" if g.ending else "")
    return out


def status_message(*, mine: Sequence[RequestView], awaiting: Sequence[RequestView], query: str | None) -> Message:
    blocks: list[Any] = []
    if query and not mine:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"No request of yours matches `{esc(query)}`. Try `/iam status` to list them all.", 3000))))
    elif not mine:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="You have no IAM user requests yet. Start one with `/iam request`.")))
    else:
        title = f"*Requests matching `{esc(query)}`*" if query else "*Your recent requests*"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(title + "\n" + "\n".join(status_line(r) for r in mine[:10]), 3000))))
    if awaiting:
        lines = "\n".join(status_line(r) for r in awaiting[:10])
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*Waiting for your decision*\n{lines}", 3000))))
    text = f"{len(mine)} request(s)" + (f", {len(awaiting)} waiting for you" if awaiting else "")
    return message(text, blocks)


_EVENT_WORDS = {
    "requested": "Requested by {actor}",
    "planned": "Checked against IAM: plan `{digest}` made",
    "plan_adopted": "Plan `{digest}` made when it was applied (approved before plans existed)",
    "plan_drift": "IAM changed since the approval; nothing beyond the approved plan was applied, so it is made again and asked again",
    "approved": "Approved by {actor}",
    "approval_recorded": "Approved by {actor} (more approvals needed)",
    "auto_approved": "Approved automatically by its rule",
    "break_glass": "Break-glass: approved by the requester {actor} themself, to be reviewed",
    "denied": "Denied by {actor}",
    "reminded": "Approvers reminded",
    "escalated": "Escalated: its escalation contacts were asked to act",
    "approval_withdrawn": "Approval withdrawn by {actor}",
    "rule_reevaluated": "Judged again by the current rules: who approves it changed",
    "expired": "Expired without a decision",
    "cancelled": "Cancelled by {actor}",
    "applied:create_user": "IAM user created",
    "applied:add_to_group": "Added to group `{target}`",
    "applied:attach_policy": "Policy `{target}` attached",
    "applied:put_user_policy": "Inline policy `{target}` put",
    "applied:create_login_profile": "Console password set (to be changed at first sign-in)",
    "applied:create_access_key": "Access key created",
    "applied:add_access_key": "New access key created beside `{target}`, which is retired on schedule",
    "applied:reset_password": "Console password reset (to be changed at the next sign-in)",
    "applied:delete_login_profile": "Console password deleted",
    "applied:deactivate_access_key": "Access key `{target}` deactivated",
    "applied:delete_access_key": "Access key `{target}` deleted",
    "applied:delete_signing_certificate": "Signing certificate `{target}` deleted",
    "applied:delete_ssh_key": "SSH public key `{target}` deleted",
    "applied:delete_service_credential": "Service-specific credential `{target}` deleted",
    "applied:deactivate_mfa_device": "MFA device `{target}` deactivated",
    "applied:delete_virtual_mfa_device": "Virtual MFA device `{target}` deleted",
    "applied:delete_inline_policy": "Inline policy `{target}` deleted",
    "applied:detach_policy": "Policy `{target}` detached",
    "applied:remove_from_group": "Removed from group `{target}`",
    "applied:delete_user": "IAM user deleted",
    "reverted": "Undone after the failure: {step} `{target}`",
    "grant_reminded": "Owner reminded that a temporary grant ends soon (Extend / I'm done)",
    "old_key_deactivated": "Old access key deactivated",
    "old_key_deleted": "Old access key deleted: the rotation is complete",
    "provisioning_retry": "AWS was busy; retrying",
    "completed": "Completed",
    "failed": "Failed; nothing was left behind in AWS",
    "credentials_delivered": "Credentials sent",
    "credentials_revealed": "Credentials revealed by {actor}",
    "credentials_expired": "Credentials expired unrevealed and were destroyed",
}


def _event_line(e: TimelineEvent, kind: str = "create_user") -> str | None:
    words = _EVENT_WORDS.get(e.action)
    if e.action == "failed" and kind in ("change", "extend_grant") and e.details.get("stage") != "plan":
        words = "Failed; any group or policy it had changed was put back (each is listed above)"
    if words is None:
        return None  # refused clicks and exports stay in the audit log, not in everyone's status
    actor = mention(e.actor) if is_user(e.actor) else esc(e.actor)
    target = str(e.details.get("target") or "")
    text = words.format(actor=actor, digest=str(e.details.get("digest") or "")[:12], target=esc(target.rsplit("/", 1)[-1]),
                        step=esc(str(e.details.get("step") or "").replace("_", " ")))
    if e.details.get("lasts"):
        text += f" {lasting.words(str(e.details['lasts']))}"
    if e.action == "applied:add_access_key" and not target:
        text = "Access key created (held until MFA was on)"
    if e.action.startswith("applied:") and e.details.get("origin"):
        text += f" ({esc(str(e.details['origin']))})"
    if e.details.get("already_gone"):
        text += " (already gone)"
    if e.action == "credentials_delivered" and e.details.get("method") == "encrypted_file":
        text = f"Credentials sent as a file encrypted to the owner's key `{esc(str(e.details.get('key') or ''))}`; no longer stored"
    if e.action == "denied" and e.details.get("reason"):
        text += f": {esc(clip(str(e.details.get('reason')), 300))}"
    return f"• {when(e.created_at)} — {text}"


def timeline_message(req: RequestView, events: Sequence[TimelineEvent]) -> Message:
    """One request's story, from the audit log (no secrets are ever in it)."""
    lines = [line for e in events if (line := _event_line(e, req.kind))]
    header = f"*{req.short_id}* `{esc(req.user_name)}`{' in AWS account ' + esc(req.spec.account) if req.spec.account else ''} — {state_words(req.state, req.kind)}"
    if req.kind != "create_user":
        header += f" ({req.brings})"
    header += user_words(req)
    if req.members:  # asked with others for several accounts: where each stands
        header += "\n" + " · ".join(f"{esc(m.spec.account)}: *{m.short_id}* {state_words(m.state, m.kind)}" for m in req.together)
    body = header + "\n" + ("\n".join(lines[-30:]) or "_no events yet_")
    if req.state is RequestState.FAILED and req.failure_reason:
        body += f"\n*Why it failed:* {esc(clip(req.failure_reason, 800))}"
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))]
    if req.state is RequestState.COMPLETED and req.kind == "create_user":  # the owner (or an approver) may change it
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Change this user", action_id=ids.A_CHANGE_USER, value=qualified(req.spec.account, req.user_name))]))
    return message(f"{req.short_id} {req.user_name}: {state_words(req.state, req.kind)}", blocks)


def unknown_phrase_message(text: str) -> Message:
    return message(
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
    return message(
        "iam-bot: request an AWS IAM user with /iam request; check with /iam status",
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=(
                        "*iam-bot* creates AWS IAM users after an approver says yes, and hands the credentials to their owner, once.\n"
                        "• `/iam request` — ask for a new IAM user\n"
                        "• `/iam status [user name or request id]` — how your requests stand (also: DM me `status`)\n"
                        "• `/iam key set <public key>` — get credentials as a file only your key opens (`show`, `remove`)\n"
                        "• `/iam rotate-key [user name]` — a new access key for a user you own; the old one is retired after a grace period\n"
                        "• `/iam reset-password [user name]` — a new console password for a user you own\n"
                        "• `/iam change <user name>` — add or take away groups, policies, console access or a key, for good or for a time "
                        "(a user of another AWS account: `prod:alice`)\n"
                        "• `/iam disable <user name>` / `/iam offboard <user name>` — stop a user you own, or delete it (an approver agrees first)\n"
                        "• `/iam extend <user name> <YYYY-MM-DD>` — more time for a user created with an end date (an approver agrees)\n"
                        "• `/iam report [account]` — approvers: the account's IAM hygiene (no MFA, old or unused keys and passwords, owners who left)\n"
                        "• `/iam help` — this message"
                    )
                )
            ),
            ActionsBlock(elements=[ButtonElement(text="Request an IAM user", action_id=ids.A_OPEN_REQUEST, style="primary")]),
        ],
    )
