"""The App Home tab: my requests (Cancel / Reveal), and for approvers what waits, with its plan, and what was decided (pure)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, HeaderBlock, MarkdownTextObject, Option, OverflowMenuElement, SectionBlock
from slack_sdk.models.views import View

from bot.domain.plan import PlanKind
from bot.domain.views import HomeData
from bot.slack.ui import ids
from bot.domain.accounts import qualified
from bot.slack.ui.changes import grant_actions
from bot.slack.ui.keys import home_key_block
from bot.slack.ui.approval import decide_buttons, progress_line, risk_blocks
from bot.slack.ui.plan import grant_lines, short_digest, step_lines
from bot.slack.ui.requester import cancel_button
from bot.slack.ui.status import status_line
from bot.slack.ui.text import clip, code_list, esc, policy_label, when
from models import RequestState


def user_menu(user_name: str) -> OverflowMenuElement:
    """Day-two actions on a user I own; each option's value is `<plan kind>:<user name>`."""
    return OverflowMenuElement(
        action_id=ids.A_USER_MENU,
        options=[
            Option(text="Change groups, policies, access", value=f"{PlanKind.CHANGE.value}:{user_name}"),
            Option(text="Rotate access key", value=f"{PlanKind.ROTATE_KEY.value}:{user_name}"),
            Option(text="Reset console password", value=f"{PlanKind.RESET_PASSWORD.value}:{user_name}"),
            Option(text="Disable", value=f"{PlanKind.DISABLE.value}:{user_name}"),
            Option(text="Offboard (delete)", value=f"{PlanKind.OFFBOARD.value}:{user_name}"),
        ],
    )


def home_view(*, user_id: str, data: HomeData) -> dict[str, Any]:
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
        if req.state is RequestState.PENDING and req.requester_id == user_id:
            accessory = cancel_button(req)
        elif req.id in data.revealable and req.owner_id == user_id:
            accessory = ButtonElement(text="Reveal credentials", action_id=ids.A_REVEAL, value=req.short_id, style="primary")
        elif req.state is RequestState.COMPLETED and req.kind == PlanKind.CREATE_USER.value and req.owner_id == user_id:
            accessory = user_menu(qualified(req.spec.account, req.user_name))
        line = status_line(req)
        if req.user_arn:
            line += f"\n    `{esc(req.user_arn)}`"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(line, 3000)), accessory=accessory))
        if req.owner_id == user_id or req.requester_id == user_id:  # I'm done / Extend on what it granted for a time
            blocks += [grant_actions(g, block_id=f"grant:{g.id}") for g in req.temporary[:3] if not g.ending]
    blocks.append(home_key_block(data.key_label, file_only=data.file_only))
    if data.is_approver:
        blocks.append(HeaderBlock(text="Waiting for me"))
        if not data.awaiting:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="_Nothing waits for your decision._")))
        for req in data.awaiting:
            spec = req.spec
            summary = (
                f"*{req.short_id}* `{esc(req.user_name)}` for <@{req.owner_id}>, requested by <@{req.requester_id}> {when(req.created_at)}\n"
                f"{', '.join(spec.access_types)} · groups {code_list(spec.groups)} · policies {code_list(policy_label(p) for p in spec.policy_arns)}"
                + (f" · copy from `{esc(spec.copy_from)}`" if spec.copy_from else "")
                + f"\n_{esc(clip(req.reason, 300))}_"
                + (f"\n*{progress_line(req)}*" if progress_line(req) else "")
            )
            blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(summary, 3000))))
            if req.plan is not None:
                plan = "\n".join([*step_lines(req.plan), *grant_lines(req.plan)])
                head = f"*Plan* `{short_digest(req.plan_digest)}`"
                if len(head) + 1 + len(plan) > 3000:  # Home is compact: the approval message shows all of it
                    head += " _(shortened here; the approval message shows all of it)_"
                blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"{head}\n{plan}", 3000))))
            blocks.extend(risk_blocks(req))  # the same flags and summary as the approval message
            if req.state is RequestState.PENDING and req.plan_digest:  # as in approval_message: only a plan can be approved
                blocks.append(decide_buttons(req, block_id=f"home-decide:{req.short_id}"))
        blocks.append(HeaderBlock(text="Recently decided"))
        lines = "\n".join(status_line(r) for r in data.recently_decided) or "_Nothing decided yet._"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(lines, 3000))))
    return View(type="home", blocks=blocks[:100]).to_dict()
