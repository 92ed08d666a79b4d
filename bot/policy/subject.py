"""What rules judge of a request (pure): everything the user will effectively hold, and where from.

Made from the plan (`of_plan`): the groups joined and what each brings, the policies attached
directly, whatever copying brings, path, access, tags, and what could not be read. The form makes a
smaller one from what was typed (`of_spec`), for the review's preview only: the rule that decides is
the one the plan's subject gets, after submission.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.common.constants import MARKER_TAG
from bot.domain.plan import Plan, StepKind
from bot.domain.spec import RequestSpec


@dataclass(frozen=True)
class Subject:
    path: str
    console: bool
    key: bool
    groups: tuple[str, ...] = ()  # every group joined: asked for or copied
    attached: tuple[str, ...] = ()  # managed policies attached to the user itself: asked for or copied
    held: tuple[str, ...] = ()  # every managed policy held, directly or through a group
    inline: tuple[str, ...] = ()  # inline policies on the user (copied) or on its groups, by name
    copied_inline: tuple[str, ...] = ()  # inline policies put on the user itself (only copying does that)
    copy_from: str | None = None
    tag_keys: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # what could not be read: rules cannot have seen it
    accounts: tuple[str, ...] = ()  # the AWS account, by its name and its id (either may be matched); () for the bot's own

    @classmethod
    def of_spec(cls, spec: RequestSpec, *, account_id: str = "") -> Subject:
        """What the form alone says (groups' policies and the copy source are not read yet)."""
        return cls(
            accounts=tuple(a for a in (spec.account, account_id) if a),
            path=spec.path,
            console=spec.console_access,
            key=spec.access_key,
            groups=tuple(spec.groups),
            attached=tuple(spec.policy_arns),
            held=tuple(spec.policy_arns),
            copy_from=spec.copy_from,
            tag_keys=tuple(k for k, _ in spec.tags),
        )

    @classmethod
    def of_plan(cls, plan: Plan) -> Subject:
        create = plan.step(StepKind.CREATE_USER)
        kept: dict[str, list[str]] = {}  # a changed user: what it keeps is judged with what it gets
        for k in plan.keeps:
            kind, _, name = k.partition(":")
            kept.setdefault(kind, []).append(name)
        return cls(
            path=(create.path if create and create.path else plan.path or "/"),
            console=plan.has(StepKind.CREATE_LOGIN_PROFILE) or plan.has(StepKind.RESET_PASSWORD) or "console" in kept,
            key=plan.has(StepKind.CREATE_ACCESS_KEY) or plan.has(StepKind.ADD_ACCESS_KEY) or plan.has(StepKind.HOLD_ACCESS_KEY) or "key" in kept,
            groups=tuple(dict.fromkeys([*(s.target for s in plan.steps if s.kind is StepKind.ADD_TO_GROUP), *kept.get("group", ())])),
            attached=tuple(dict.fromkeys([*(s.target for s in plan.steps if s.kind is StepKind.ATTACH_POLICY), *kept.get("policy", ())])),
            held=tuple(dict.fromkeys(g.arn for g in plan.grant.policies if g.arn)),
            inline=tuple(dict.fromkeys(g.name for g in plan.grant.policies if not g.managed)),
            copied_inline=tuple(s.target for s in plan.steps if s.kind is StepKind.PUT_USER_POLICY),
            copy_from=plan.copied_from,
            tag_keys=tuple(k for k, _ in (create.tags if create else ()) if k != MARKER_TAG),
            unknown=plan.grant.unknown,
            accounts=tuple(a for a in (plan.account_name, plan.account if plan.account_name else "") if a),
        )
