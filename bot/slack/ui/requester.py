"""What requesters and owners see: confirmation, decisions, expiry, the credentials DM and reveal (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bot.credentials.recipients import OwnerKey
from bot.credentials.vault import Credentials
from bot.domain.views import RequestView
from bot.slack.ui import ids
from bot.slack.ui.approval import decider, outcome_text, rule_text
from bot.slack.ui.plan import plan_blocks
from bot.slack.ui.text import state_words, Message, clip, esc, mention, message, modal, when
from models import RequestState


def submitted_message(req: RequestView, *, approvers: Sequence[str], break_glass: bool = False) -> Message:
    who = ", ".join(mention(a) for a in approvers)
    several = f" in AWS accounts {', '.join(m.spec.account for m in req.together)}" if req.members else ""
    text = f"Your request {req.short_id} for IAM user {req.user_name}{several} was sent for approval."
    blocks: list[Any] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    f":inbox_tray: Your request *{req.short_id}* for IAM user `{esc(req.user_name)}`{esc(several)} was sent for approval to {who}.\n"
                    f"Ask `/iam status {req.short_id}` any time.",
                    3000,
                )
            )
        )
    ]
    if req.quorum > 1 or req.rule_name not in (None, "default"):
        text_ = rule_text(rule_name=req.rule_name or "default", quorum=req.quorum, approvers=approvers)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(text_, 3000))]))
    blocks += plan_blocks(req.plan, digest=req.plan_digest, changes=req.plan_changes)
    if req.state is RequestState.PENDING:
        buttons: list[Any] = [cancel_button(req)]
        if break_glass and not req.members:  # break-glass decides one account's request, never an ask for several
            buttons.append(ButtonElement(text="Break glass: approve it myself", action_id=ids.A_BREAK_GLASS, value=req.short_id, style="danger"))
        blocks.append(ActionsBlock(block_id=f"cancel:{req.short_id}", elements=buttons))
    return message(text, blocks)


def cancel_button(req: RequestView) -> ButtonElement:
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


def decision_message(req: RequestView) -> Message:
    where = f" in AWS account {req.spec.account}" if req.spec.account else ""
    text = f"Request {req.short_id} for {req.user_name}{where}: {state_words(req.state, req.kind)}"
    body = f"Your request *{req.short_id}* for `{esc(req.user_name)}`{esc(where)}:\n{outcome_text(req)}"
    if req.state is RequestState.DENIED:
        body += "\nIf something needs to change, submit a new request with `/iam request`."
    return message(text, [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def _ready(req: RequestView, *, plain: bool = False) -> str:
    name = req.user_name if plain else f"`{esc(req.user_name)}`"
    if req.spec.account:  # a member account's user: which account it lives in
        name += f" (AWS account {req.spec.account if plain else esc(req.spec.account)})"
    if req.kind == "create_user":
        return f"Your IAM user {name} is ready" + ("." if plain else "")
    if req.kind == "change":
        return f"The change to {name} is done, and its new credentials are ready" + ("." if plain else "")
    return f"A {req.brings} for {name} is ready" + ("." if plain else "")


def credentials_ready_message(req: RequestView, *, expires_at: datetime) -> Message:
    text = f"{_ready(req, plain=True)} Reveal the credentials once, before they expire."
    return message(
        text,
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(
                        f":key: {_ready(req)} (request *{req.short_id}*, approved by {decider(req)}).\n"
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


def credentials_file_comment(req: RequestView, *, key: OwnerKey, filename: str, command: str) -> str:
    """The text shared with the encrypted credentials file (no secret: those are in the file only)."""
    return clip(
        f":closed_lock_with_key: {_ready(req)} (request *{req.short_id}*, approved by {decider(req)}). "
        f"Its credentials are in `{esc(filename)}`, encrypted to your key {esc(key.label)}: only its private key opens the file.\n"
        f"Open it with:\n```{esc(command)}```\n"
        "It holds the CSV the AWS console offers: user name, password, access key ID, secret access key and sign-in URL. "
        "Sign in, set a new password when asked, and turn on MFA for the user (IAM > Users > Security credentials > "
        "Assign MFA device) before you use the access key. Keep the credentials in your password manager and delete the decrypted file.",
        3000,
    )


def credentials_held_message(req: RequestView, *, expires_at: datetime) -> Message:
    text = f"{_ready(req, plain=True)[:-1]}; the credentials wait for your public key."
    return message(
        text,
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(
                        f":key: {_ready(req)} (request *{req.short_id}*). This workspace sends credentials "
                        "only as a file encrypted to your own key, and you have none registered. Register one with "
                        "`/iam key set <public key>` (the contents of `~/.ssh/id_ed25519.pub`, or an `age1…` recipient from `age-keygen`): "
                        f"the file is sent within a minute. The credentials are destroyed unsent {when(expires_at)}.",
                        3000,
                    )
                )
            )
        ],
    )


def credentials_gone_message(req: RequestView, *, revealed_at: datetime | None) -> Message:
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
    return message(f"Credentials for {req.user_name}: no longer available", [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


def expired_message(req: RequestView) -> Message:
    text = f"Your request {req.short_id} for {req.user_name} expired without a decision"
    body = (
        f":hourglass: Your request *{req.short_id}* for `{esc(req.user_name)}` expired {when(req.updated_at)} without a decision. "
        "Submit it again with `/iam request` if it is still needed."
    )
    return message(text, [SectionBlock(text=MarkdownTextObject(text=clip(body, 3000)))])


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
    return modal(callback_id=ids.REVEAL_VIEW, title="Your AWS credentials", close="Done", blocks=blocks)
