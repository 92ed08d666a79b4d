"""What the requester and the approvers are told once a user was disabled or offboarded (pure)."""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from bot.domain.plan import PlanKind
from bot.domain.views import RequestView
from bot.slack.ui.approval import decider
from bot.slack.ui.plan import step_words
from bot.slack.ui.text import Message, clip, esc, message

DONE = {
    PlanKind.DISABLE: "was *disabled*", PlanKind.DISABLE_NOW: "was *disabled*", PlanKind.OFFBOARD: "was *offboarded*",
    PlanKind.EXPIRE: "was *disabled* on its end date", PlanKind.EXPIRE_DELETE: "was *deleted* after its end date's grace period",
}


def removal_report(req: RequestView) -> Message:
    """Each change the approved plan made, as approved; anything added to the user after the approval and
    taken too is in the request's status."""
    kind = PlanKind(req.kind)
    steps = [f"• {step_words(s)}" for s in (req.plan.steps if req.plan else ())]
    head = f":wastebasket: `{esc(req.user_name)}` (owner <@{req.owner_id}>) {DONE.get(kind, 'was changed')}: request *{req.short_id}*, approved by {decider(req)}."
    body = head + "\n" + "\n".join(steps[:40]) + (f"\n• … and {len(steps) - 40} more" if len(steps) > 40 else "")
    if kind is PlanKind.EXPIRE:
        after = f"It is deleted after the grace period unless an extension is approved (`/iam extend {esc(req.user_name)} <YYYY-MM-DD>`)."
    else:
        after = "An admin can make the user work again in IAM; `/iam offboard` deletes it." if kind.disables else "This cannot be undone."
    return message(
        clip(f"{req.user_name} {DONE.get(kind, 'was changed').replace('*', '')} (request {req.short_id})", 300),
        [
            SectionBlock(text=MarkdownTextObject(text=clip(body, 3000))),
            ContextBlock(elements=[MarkdownTextObject(text=f"{after} Every change, with anything found at apply, is in `/iam status {req.short_id}`.")]),
        ],
    )
