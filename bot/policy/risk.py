"""What approvers should notice about a request: short risk flags and a summary of what it grants.

PURE: judged on the plan's effective grant (`facts_from_plan`), whose documents were read from IAM
when the plan was made. Computed once per plan and stored on the request, so messages need no AWS call.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from bot.domain.plan import HELD, Granted, Plan, StepKind
from bot.domain.spec import RequestSpec
from bot.policy import escalation
from bot.policy.documents import allowed_actions, glob_match

# AWS-managed policies that amount to administering the account (or IAM, which is the same).
ADMIN_LIKE = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "*Admin*", "AWSOrganizationsFullAccess")
BROAD_ACTIONS = ("*", "iam:*", "sts:*", "organizations:*")


@dataclass(frozen=True)
class PolicyFact:
    """One policy: managed (with its ARN) or inline (arn is empty). Documents are dicts."""

    name: str
    arn: str = ""
    aws_managed: bool = False
    document: dict[str, Any] | None = None


@dataclass(frozen=True)
class RiskFacts:
    policies: tuple[PolicyFact, ...] = ()  # managed policies requested directly
    groups: dict[str, tuple[PolicyFact, ...]] = field(default_factory=dict)  # group -> its policies
    copy_from: str | None = None
    copied: tuple[PolicyFact, ...] = ()  # the copy source's attached and inline policies
    copied_groups: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # what could not be read (shown, never silently dropped)


def is_admin_like(p: PolicyFact) -> bool:
    """An AWS-managed policy whose document could not be read is judged by its name (fail closed)."""
    return p.aws_managed and p.document is None and any(glob_match(p.name, pattern) for pattern in ADMIN_LIKE)


def wildcards(p: PolicyFact) -> list[str]:
    """The wildcard actions a document allows (`*`, `iam:*`, `s3:Get*`, ...)."""
    if p.document is None:
        return []
    return list(dict.fromkeys(a for a in allowed_actions(p.document) if "*" in a or "?" in a))


def powerful(policies: Iterable[PolicyFact]) -> list[str]:
    """Why a set of policies is powerful: admin-like AWS policies, or broad wildcards in documents."""
    why = []
    for p in policies:
        if is_admin_like(p):
            why.append(p.name)
        elif p.document is not None and (broad := [a for a in allowed_actions(p.document) if any(glob_match(b, a) for b in BROAD_ACTIONS)]):
            why.append(f"{p.name} ({', '.join(dict.fromkeys(broad))})")
    return why


def risk_flags(spec: RequestSpec, facts: RiskFacts) -> list[str]:
    flags: list[str] = []
    for p in facts.policies:
        if is_admin_like(p):
            flags.append(f"AWS-managed admin-like policy `{p.name}`")
        elif p.aws_managed and (why := powerful([p])):
            flags.append(f"AWS-managed policy {', '.join(f'`{w}`' for w in why)}")
        elif not p.aws_managed and (w := wildcards(p)):
            flags.append(f"Customer policy `{p.name}` allows wildcard actions: {', '.join(f'`{a}`' for a in w[:6])}")
    for group, policies in facts.groups.items():
        if why := powerful(policies):
            flags.append(f"Group `{group}` grants {', '.join(f'`{w}`' for w in why[:4])}")
    if facts.copy_from and (why := powerful([*facts.copied, *(p for g in facts.copied_groups for p in facts.groups.get(g, ()))])):
        flags.append(f"Copies from a powerful user `{facts.copy_from}`: {', '.join(f'`{w}`' for w in why[:4])}")
    if not spec.permissions_boundary:
        flags.append("No permissions boundary")
    flags += escalation.flags(escalation_of(facts))
    for what in facts.unknown:
        flags.append(f"Could not read {what}: check it yourself")
    return flags


def documents_of(facts: RiskFacts) -> list[dict[str, Any]]:
    return [p.document for p in (*facts.policies, *facts.copied, *(p for ps in facts.groups.values() for p in ps)) if p.document is not None]


def escalation_of(facts: RiskFacts) -> escalation.Findings:
    """What the whole grant allows together (escalation often needs actions from two policies)."""
    return escalation.analyse(documents_of(facts))


def effective_summary(facts: RiskFacts) -> str:
    """One paragraph: services and actions granted, wildcards marked, AWS-managed policies by name."""
    by_service: dict[str, set[str]] = defaultdict(set)
    aws_managed: list[str] = []
    everything = [*facts.policies, *facts.copied, *(p for ps in facts.groups.values() for p in ps)]
    for p in everything:
        if p.aws_managed or p.document is None:
            # AWS-managed ones by name: "ReadOnlyAccess" says more than its 1,000 actions.
            if p.aws_managed:
                aws_managed.append(p.name)
            continue
        for action in allowed_actions(p.document):
            service, _, name = action.partition(":")
            if action == "*":
                by_service["*"].add("*")
            else:
                by_service[service.lower()].add(name or "*")
    parts = []
    if "*" in by_service:
        parts.append("*every action on every service* :warning:")
    for service in sorted(k for k in by_service if k != "*"):
        actions = sorted(by_service[service])
        shown = ", ".join(actions[:6]) + (f" +{len(actions) - 6}" if len(actions) > 6 else "")
        mark = " :warning:" if any("*" in a for a in actions) else ""  # wildcards stand out
        parts.append(f"{service} ({shown}){mark}")
    text = "Grants " + "; ".join(parts) if parts else ""
    names = sorted(dict.fromkeys(aws_managed))
    if names:
        text += ("; " if text else "Grants ") + "AWS-managed " + ", ".join(names)
    return text or "Grants no permissions."


def assess(spec: RequestSpec, facts: RiskFacts) -> dict[str, Any]:
    """What is stored on the request (AccessRequest.risk)."""
    return {"flags": risk_flags(spec, facts), "summary": effective_summary(facts)}


def facts_from_plan(plan: Plan, documents: Mapping[str, Mapping[str, Any]]) -> RiskFacts:
    """The plan's effective grant in the shape risk and guardrails judge.

    Every policy is judged by its document as the plan read it, AWS-managed ones included (kept by
    version id, so each is read once); one whose document could not be read has none here.
    """

    def fact(g: Granted) -> PolicyFact:
        doc = None if g.document is None else documents.get(g.document)
        return PolicyFact(name=g.name, arn=g.arn or "", aws_managed=g.aws_managed, document=dict(doc) if doc is not None else None)

    # A changed user is judged whole: the groups and policies it keeps (HELD) with those added.
    kept = [k.split(":", 1)[1] for k in plan.keeps if k.startswith("group:")]
    groups = list(dict.fromkeys([*(s.target for s in plan.steps if s.kind is StepKind.ADD_TO_GROUP), *kept]))
    return RiskFacts(
        policies=tuple(fact(g) for g in plan.grant.direct if (g.managed and not g.origin) or g.origin == HELD),
        groups={group: tuple(fact(g) for g in plan.grant.via_group(group)) for group in groups},
        copy_from=plan.copied_from,
        copied=tuple(fact(g) for g in plan.grant.direct if g.origin and g.origin != HELD),
        copied_groups=tuple(s.target for s in plan.steps if s.kind is StepKind.ADD_TO_GROUP and s.origin),
        unknown=plan.grant.unknown,
    )
