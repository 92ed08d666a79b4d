"""Guardrails: what the bot may never grant, whoever approves (pure).

Checked twice: on the form while Slack waits (`form_refusals`, shown as field errors), and on the
plan after submission (`violation`), where what groups and copied users bring is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bot.domain.facts import policy_name
from bot.domain.spec import RequestSpec
from bot.policy.documents import forbidden_grants, policy_matches
from bot.policy.risk import RiskFacts


@dataclass(frozen=True)
class Guardrails:
    forbidden_policies: tuple[str, ...] = ()
    forbidden_actions: tuple[str, ...] = ()
    required_boundaries: tuple[tuple[str, str], ...] = ()  # (path prefix, ARN)
    requesters: tuple[str, ...] | None = None  # None: everyone may request
    max_groups: int | None = None
    max_policies: int | None = None


def form_refusals(
    g: Guardrails,
    spec: RequestSpec,
    *,
    may_request: bool,
    required_boundary: str | None,
    path_prefix: str = "/",
    policy_documents: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[tuple[str, str]]:
    """What the form itself breaks, as (form field, message): checked while Slack waits for the answer.

    `policy_documents` holds the documents of requested customer-managed policies read in time;
    what could not be read then is judged after submission, on the plan (`violation`).
    """
    out: list[tuple[str, str]] = []
    if not may_request:
        out.append(("requester", "You are not on the list of people who may request IAM users through the bot. Ask your AWS admins."))
    if not spec.path.startswith(path_prefix):
        out.append(("path", f"Users created by the bot live under `{path_prefix}`; use that path or one below it."))
    if required_boundary and spec.permissions_boundary != required_boundary:
        out.append(("boundary", f"Users under `{spec.path}` must have the permissions boundary `{policy_name(required_boundary)}`; keep it selected."))
    if g.max_groups is not None and len(spec.groups) > g.max_groups:
        out.append(("groups", f"At most {g.max_groups} group(s) per request here; you picked {len(spec.groups)}."))
    bad = [p for p in spec.policy_arns if policy_matches(p, g.forbidden_policies)]
    if bad:
        names = ", ".join(policy_name(p) for p in bad)
        out.append(("policies", f"{names} can never be granted through the bot; ask your AWS admins."))
    elif g.max_policies is not None and len(spec.policy_arns) > g.max_policies:
        out.append(("policies", f"At most {g.max_policies} managed policies per request here; you picked {len(spec.policy_arns)}."))
    elif g.forbidden_actions:
        for arn, doc in (policy_documents or {}).items():
            if arn in spec.policy_arns and (hits := forbidden_grants(doc, g.forbidden_actions)):
                out.append(("policies", f"{policy_name(arn)} allows {', '.join(hits)}, which the bot may never grant."))
                break
    return out


def violation(guardrails: Guardrails, facts: RiskFacts) -> str | None:
    """Guardrails only checkable with the facts: policy documents, and what copying would grant."""
    for p in facts.policies:
        if not p.aws_managed and p.document is not None and (hits := forbidden_grants(p.document, guardrails.forbidden_actions)):
            return f"policy {p.name} allows {', '.join(hits)}, which the bot may never grant"
    for p in facts.copied:
        if p.arn and policy_matches(p.arn, guardrails.forbidden_policies):
            return f"copying from {facts.copy_from} would grant {p.name}, which the bot may never grant"
        if not p.aws_managed and p.document is not None and (hits := forbidden_grants(p.document, guardrails.forbidden_actions)):
            return f"copying from {facts.copy_from} would grant {p.name}, which allows {', '.join(hits)}"
    return None
