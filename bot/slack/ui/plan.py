"""A plan in plain words: its steps, what the user will hold afterwards, and what changed (pure)."""

from __future__ import annotations

from typing import Any, Sequence

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from bot.common.constants import MARKER_TAG
from bot.domain import grants as lasting
from bot.domain.plan import HELD, Granted, Plan, PlanKind, Step, StepKind
from bot.slack.ui.text import clip, esc, policy_label


def short_digest(digest: str | None) -> str:
    return (digest or "")[:12]


def _from(origin: str) -> str:
    return f" _({esc(origin)})_" if origin else ""


def _lasting(step: Step) -> str:
    return f" *{lasting.words(step.lasts)}*, then taken away" if step.lasts else ""


def step_words(step: Step, kind: PlanKind | None = None) -> str:
    """One step, as an approver reads it (`kind`: the plan's, where a step's words depend on it)."""
    if step.kind is StepKind.CREATE_USER:
        words = f"Create the user at `{esc(step.path or '/')}`"
        if step.boundary:
            words += f" with the permissions boundary `{esc(policy_label(step.boundary))}`{_from(step.origin)}"
        tags = [f"`{esc(k)}={esc(v)}`" for k, v in step.tags if k != MARKER_TAG]
        listed = ", ".join(tags)
        if tags:
            words += f", tagged {listed}" if len(listed) <= 600 else f", with the {len(tags)} tags listed under *Tags*"
        return words
    if step.kind is StepKind.ADD_TO_GROUP:
        again = " again" if kind is PlanKind.EXTEND_GRANT else ""
        return f"Add to group `{esc(step.target)}`{again}{_lasting(step)}{_from(step.origin)}"
    if step.kind is StepKind.ATTACH_POLICY:
        managed = "AWS-managed" if ":iam::aws:policy/" in step.target else "customer-managed"
        return f"Attach `{esc(policy_label(step.target))}` ({managed}){_lasting(step)}{_from(step.origin)}"
    if step.kind is StepKind.PUT_USER_POLICY:
        return f"Put the inline policy `{esc(step.target)}`{_from(step.origin)}"
    if step.kind is StepKind.CREATE_LOGIN_PROFILE:
        return "Create a console password (to be changed at first sign-in)"
    if step.kind is StepKind.CREATE_ACCESS_KEY:
        return "Create an access key"
    if step.kind is StepKind.HOLD_ACCESS_KEY:
        return "Create an access key *once the user has MFA on* (the rules hold it until then); it is delivered the same way"
    if step.kind is StepKind.ADD_ACCESS_KEY and not step.target:
        if kind is PlanKind.CHANGE:
            return "Create an access key (delivered to the owner, revealed once)"
        return "Create the access key held until MFA was on (approved with the user)"
    if step.kind is StepKind.ADD_ACCESS_KEY:
        return f"Create a new access key beside `{esc(step.target)}`, which is deactivated after a grace period and then deleted"
    if step.kind is StepKind.RESET_PASSWORD:
        return "Set a new console password (to be changed at the next sign-in)"
    if step.kind in REMOVAL_WORDS:
        return REMOVAL_WORDS[step.kind].format(t=esc(policy_label(step.target) if step.kind is StepKind.DETACH_POLICY else step.target)) + _from(step.origin)
    return esc(step.key)


REMOVAL_WORDS = {
    StepKind.DELETE_LOGIN_PROFILE: "Delete the console password",
    StepKind.DEACTIVATE_ACCESS_KEY: "Deactivate the access key `{t}`",
    StepKind.DELETE_ACCESS_KEY: "Delete the access key `{t}`",
    StepKind.DELETE_SIGNING_CERTIFICATE: "Delete the signing certificate `{t}`",
    StepKind.DELETE_SSH_KEY: "Delete the SSH public key `{t}`",
    StepKind.DELETE_SERVICE_CREDENTIAL: "Delete the service-specific credential `{t}`",
    StepKind.DEACTIVATE_MFA_DEVICE: "Deactivate the MFA device `{t}`",
    StepKind.DELETE_VIRTUAL_MFA_DEVICE: "Delete the virtual MFA device `{t}`",
    StepKind.DELETE_INLINE_POLICY: "Delete the inline policy `{t}`",
    StepKind.DETACH_POLICY: "Detach `{t}`",
    StepKind.REMOVE_FROM_GROUP: "Remove from group `{t}`",
    StepKind.DELETE_USER: "Delete the user",
}


def _granted(g: Granted, *, changed: bool = False) -> str:
    """`changed`: the plan changes an existing user, so what it adds is marked as new."""
    new = " *new*" if changed and g.origin != HELD else ""
    if g.arn is None:
        return f"inline `{esc(g.name)}`{new}"
    kind = "AWS-managed" if g.aws_managed else "customer-managed"
    version = f"version {esc(g.version)}" if g.version else "version unknown"
    return f"`{esc(g.name)}` ({kind}, {version}){new}"


SECTION = 3000  # Slack's limit for a section's text
PLAN_SECTIONS = 5  # per part (steps, holdings) of a message's 50 blocks


def _sections(title: str, lines: Sequence[str], *, budget: int = PLAN_SECTIONS) -> tuple[list[SectionBlock], int]:
    """`lines` packed whole into sections of at most 3000 characters, at most `budget` of them.

    Returns the sections and how many lines were left out or cut short, so the reader is told.
    """
    chunks: list[str] = []
    current, continued = title, title + " _(continued)_"
    longest = SECTION - len(continued) - 1  # what one line may take and still fit under either title
    shortened = 0
    for n, line in enumerate(lines):
        if len(line) > longest:
            line, shortened = clip(line, longest), shortened + 1
        if len(current) + 1 + len(line) > SECTION:
            chunks.append(current)
            if len(chunks) == budget:
                return [SectionBlock(text=MarkdownTextObject(text=c)) for c in chunks], shortened + len(lines) - n
            current = continued
        current += "\n" + line
    chunks.append(current)
    return [SectionBlock(text=MarkdownTextObject(text=c)) for c in chunks], shortened


def grant_lines(plan: Plan) -> list[str]:
    """Every policy the user will hold afterwards, directly and through each group, a line each (a
    changed user's: what it keeps and what is new, marked)."""
    changed = plan.kind is PlanKind.CHANGE  # what it adds is marked new (an extension grants again what the user has)
    direct = plan.grant.direct
    lines = ["• directly: " + (", ".join(_granted(g, changed=changed) for g in direct) if direct else "_nothing_")]
    kept = [k.split(":", 1)[1] for k in plan.keeps if k.startswith("group:")]
    added = [s.target for s in plan.steps if s.kind is StepKind.ADD_TO_GROUP]
    for group in dict.fromkeys([*kept, *added]):
        via = plan.grant.via_group(group)
        mark = " *(new)*" if changed and group in added and group not in kept else ""
        lines.append(f"• through `{esc(group)}`{mark}: " + (", ".join(_granted(g, changed=changed) for g in via) if via else "_nothing_"))
    if plan.grant.boundary is not None:
        lines.append(f"• capped by the boundary {_granted(plan.grant.boundary)}")
    lines += [f"• :warning: could not read {esc(what)}" for what in plan.grant.unknown]
    return lines


def grant_words(plan: Plan) -> str:
    return "\n".join(grant_lines(plan))


TAKES = frozenset({StepKind.REMOVE_FROM_GROUP, StepKind.DETACH_POLICY, StepKind.DELETE_LOGIN_PROFILE, StepKind.DELETE_ACCESS_KEY})


def step_lines(plan: Plan) -> list[str]:
    """Numbered steps; a change's marked `+` for what it adds and `−` for what it takes away."""
    def sign(s: Step) -> str:
        return ("− " if s.kind in TAKES else "+ ") if plan.kind is PlanKind.CHANGE else ""

    return [f"{n}. {sign(s)}{step_words(s, plan.kind)}" for n, s in enumerate(plan.steps, start=1)]


def plan_blocks(
    plan: Plan | None, *, digest: str | None = None, changes: Sequence[str] = (), pending_text: str | None = None, holdings: bool = True
) -> list[Any]:
    """The plan as sections: what changed (if it was made again), every step, every policy the user will hold.

    All of it is shown, in as many sections as it takes; if a plan is too long for Slack's message
    limits, the reader is told how much is not shown, and the footer no longer says "exactly this".
    """
    if plan is None:
        text = pending_text or ":mag: Reading the plan from IAM: every step it takes, and what the user will hold…"
        return [SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION)))]
    out: list[Any] = []
    changes_cut = 0
    if changes:
        listed = [f"• {clip(esc(c), 300)}" for c in changes[:15]] + ([f"• … and {len(changes) - 15} more"] if len(changes) > 15 else [])
        shown, changes_cut = _sections("*:warning: The plan was made again: IAM changed since it was approved*", listed, budget=2)
        out += shown
    lines = step_lines(plan) or ["_Nothing changes in IAM now._"]
    if plan.expires_on and plan.kind.grants:
        lines.append(f":hourglass: The user ends on {esc(plan.expires_on)}, as on record: this does not move that.")
    elif plan.expires_on:
        lines.append(f":hourglass: *{'Ends' if plan.kind is not PlanKind.EXTEND else 'Now ends'} on {esc(plan.expires_on)}*: the user is disabled that day and "
                     "deleted after the grace period, unless an extension is approved.")
    steps, steps_cut = _sections(f"*What will be done in IAM* (user `{esc(clip(plan.user_name, 64))}`)", lines)
    if plan.kind.disables:
        held, held_cut = [SectionBlock(text=MarkdownTextObject(text="*What the user will hold*\nIts permissions stay as they are; nothing can use them."))], 0
    elif plan.kind.deletes:
        held, held_cut = [SectionBlock(text=MarkdownTextObject(text="*What the user will hold*\nNothing: the user is deleted."))], 0
    elif plan.kind is PlanKind.EXTEND:
        held, held_cut = [SectionBlock(text=MarkdownTextObject(text="*What the user will hold*\nThe permissions it has now, for longer."))], 0
    elif plan.kind is PlanKind.REVOKE:
        held, held_cut = [SectionBlock(text=MarkdownTextObject(text="*What the user will hold*\nWhat it has now, less what is taken away above."))], 0
    elif plan.kind.credentials_only:  # nothing granted: the user keeps exactly the permissions it has
        held, held_cut = [SectionBlock(text=MarkdownTextObject(text="*What the user will hold*\nThe permissions it has now: this grants nothing new."))], 0
    else:
        held, held_cut = _sections("*What the user will hold*", grant_lines(plan)) if holdings else ([], 0)
    out += steps + held
    if not holdings:  # a preview: what groups and policies grant is read when the request is submitted
        out.append(ContextBlock(elements=[MarkdownTextObject(
            text="What the user will hold (every policy, directly and through each group, with its version) is read from IAM when you submit; approvers see all of it.")]))
    footer = f"AWS account {esc(plan.account_name)} ({esc(plan.account)})" if plan.account_name else f"AWS account {esc(plan.account)}" if plan.account else ""
    if cut := changes_cut + steps_cut + held_cut:
        out.append(ContextBlock(elements=[MarkdownTextObject(text=(
            f":warning: {cut} line(s) of this plan are not shown in full here (Slack's message limits). "
            f"It has {len(plan.steps)} steps and grants {len(plan.grant.policies)} policies; ask the requester to split it if you cannot judge it."))]))
        if digest:
            footer += f" · plan `{short_digest(digest)}`: approving approves the whole plan, shown or not"
    elif digest:
        footer += f" · plan `{short_digest(digest)}`: approving approves exactly this"
    if footer:
        out.append(ContextBlock(elements=[MarkdownTextObject(text=clip(footer.removeprefix(" · "), SECTION))]))
    return out
