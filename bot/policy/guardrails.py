"""Guardrails: what the bot may never grant, whoever approves (pure).

Checked twice: on the form while Slack waits (`form_refusals`, shown as field errors, with whatever
IAM answered in time), and on the plan after submission (`violation`), on the whole effective grant:
policies attached directly, through every group (managed and inline), and whatever copying brings,
AWS-managed documents included. What could not be read cannot be vouched for (`undecided`): such a
request is never approved automatically, and is not applied until it could be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Mapping

from bot.common.constants import MARKER_TAG
from bot.domain import grants as lasting
from bot.domain.facts import policy_name
from bot.domain.spec import RequestSpec
from bot.policy.documents import forbidden_grants, glob_match, policy_matches
from bot.policy.risk import PolicyFact, RiskFacts

# Tag keys nobody may set through the bot: its own marker, and AWS's namespace (IAM refuses those anyway).
RESERVED_TAG_KEYS = (MARKER_TAG, "aws:*")


@dataclass(frozen=True)
class Guardrails:
    forbidden_policies: tuple[str, ...] = ()
    forbidden_actions: tuple[str, ...] = ()
    required_boundaries: tuple[tuple[str, str], ...] = ()  # (path prefix, ARN)
    requesters: tuple[str, ...] | None = None  # None: everyone may request
    max_groups: int | None = None
    max_policies: int | None = None
    allowed_tag_keys: tuple[str, ...] | None = None  # globs; None: any key except the reserved ones
    allowed_groups: tuple[str, ...] | None = None  # group-name globs; None: any group (the bot's IAM policy lists these)
    # Users that must have an end date (contractors): under these path prefixes, or in groups matching these globs.
    expiry_paths: tuple[str, ...] = ()
    expiry_groups: tuple[str, ...] = ()
    max_expiry_days: int | None = None  # an end date at most this many days ahead
    # Time-bound grants: these groups (globs) and policies (ARN globs) only for a time; and no grant longer than this.
    grant_end_groups: tuple[str, ...] = ()
    grant_end_policies: tuple[str, ...] = ()
    max_grant_hours: int | None = None
    # Users the bot made outside its path prefix (before the prefix was set) that may still be changed: these path prefixes.
    changeable_paths: tuple[str, ...] = ()


def stricter(base: Guardrails, more: Guardrails) -> Guardrails:
    """An account's guardrails on top of the file's: lists of what is refused or required add up, limits take
    the lower, and an allowlist (requesters, tag keys, groups, changeable paths) the account sets replaces the file's."""

    def least(a: int | None, b: int | None) -> int | None:
        return b if a is None else a if b is None else min(a, b)

    def union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*a, *b]))

    return Guardrails(
        forbidden_policies=union(base.forbidden_policies, more.forbidden_policies),
        forbidden_actions=union(base.forbidden_actions, more.forbidden_actions),
        # The account's boundaries first: of two for the same prefix, the account's is the one required there.
        required_boundaries=tuple(dict.fromkeys([*more.required_boundaries, *(b for b in base.required_boundaries if b[0] not in {p for p, _ in more.required_boundaries})])),
        requesters=more.requesters if more.requesters is not None else base.requesters,
        max_groups=least(base.max_groups, more.max_groups),
        max_policies=least(base.max_policies, more.max_policies),
        allowed_tag_keys=more.allowed_tag_keys if more.allowed_tag_keys is not None else base.allowed_tag_keys,
        allowed_groups=more.allowed_groups if more.allowed_groups is not None else base.allowed_groups,
        expiry_paths=union(base.expiry_paths, more.expiry_paths),
        expiry_groups=union(base.expiry_groups, more.expiry_groups),
        max_expiry_days=least(base.max_expiry_days, more.max_expiry_days),
        grant_end_groups=union(base.grant_end_groups, more.grant_end_groups),
        grant_end_policies=union(base.grant_end_policies, more.grant_end_policies),
        max_grant_hours=least(base.max_grant_hours, more.max_grant_hours),
        changeable_paths=more.changeable_paths or base.changeable_paths,
    )


def change_refusal(g: Guardrails, *, path: str, path_prefix: str) -> str | None:
    """Only users under the bot's path prefix are changed, unless the rules name their path."""
    if path.startswith(path_prefix) or any(path.startswith(p) for p in g.changeable_paths):
        return None
    return (f"`{path}` is outside `{path_prefix}`, where the bot changes users; this workspace's rules do not allow changes there "
            "(guardrails.changeable_paths). Ask your AWS admins.")


def grant_end_refusal(g: Guardrails, *, groups: Iterable[tuple[str, str | None]], policies: Iterable[tuple[str, str | None]], now: datetime | None) -> str | None:
    """The rules' word on how long added groups and policies last, each given as (name or ARN, lasts):
    one the rules grant only for a time has no end, or an end beyond the cap (`now` None: a date or
    a moment is not judged, only the form's durations)."""
    items = [("group", n, lasts) for n, lasts in groups] + [("policy", a, lasts) for a, lasts in policies]
    for kind, name, lasts in items:
        needs = any(glob_match(name, e) for e in g.grant_end_groups) if kind == "group" else policy_matches(name, g.grant_end_policies)
        label = name if kind == "group" else policy_name(name)
        if needs and not lasts:
            return f"This workspace's rules grant {kind} `{label}` only for a time: pick how long under *For*."
        if lasts and g.max_grant_hours is not None and (lasting.relative(lasts) or now is not None):
            if lasting.longest(lasts, now=now or datetime.now(timezone.utc)) > timedelta(hours=g.max_grant_hours):
                return f"A grant may last at most {g.max_grant_hours} hours here ({kind} `{label}`); pick a shorter time (it can be extended later)."
    return None


def expiry_required(g: Guardrails, *, path: str, groups: Iterable[str]) -> str | None:
    """Why this user must have an end date (where it lives, or a group it joins), or None."""
    if prefix := next((p for p in g.expiry_paths if path.startswith(p)), None):
        return f"users under `{prefix}`"
    if group := next((x for x in groups if any(glob_match(x, e) for e in g.expiry_groups)), None):
        return f"members of group `{group}`"
    return None


def expiry_refusal(g: Guardrails, *, path: str, groups: Iterable[str], expires_on: str | None, today: date | None) -> str | None:
    """The rules' word on the end date: required here, or too far ahead (`today` None: not judged)."""
    if expires_on is None:
        why = expiry_required(g, path=path, groups=groups)
        return f"This workspace's rules want an end date for {why}: pick the day the account is no longer needed." if why else None
    if today is not None and g.max_expiry_days is not None and date.fromisoformat(expires_on) > today + timedelta(days=g.max_expiry_days):
        return f"The end date may be at most {g.max_expiry_days} days ahead here; pick an earlier one (it can be extended later)."
    return None


def group_allowed(g: Guardrails, group: str) -> bool:
    return g.allowed_groups is None or any(glob_match(group, a) for a in g.allowed_groups)


def group_refusal(g: Guardrails, groups: Iterable[str]) -> str | None:
    """Groups outside `allowed_groups`: the bot's own IAM policy may add users to those groups only."""
    bad = [x for x in groups if not group_allowed(g, x)]
    if not bad:
        return None
    allowed = ", ".join(f"`{a}`" for a in (g.allowed_groups or ())[:10]) or "none"
    return f"Group{'s' if len(bad) > 1 else ''} {', '.join(f'`{x}`' for x in bad[:5])} may not be joined through the bot (allowed: {allowed})."


def tag_refusal(g: Guardrails, keys: Iterable[str]) -> str | None:
    """Tags feed attribute-based access control, so which keys a requester may set is the file's to say."""
    keys = list(keys)
    reserved = [k for k in keys if any(glob_match(k, r) for r in RESERVED_TAG_KEYS)]
    if reserved:
        return f"The tag key `{reserved[0]}` is reserved; remove it."
    if g.allowed_tag_keys is not None and (bad := [k for k in keys if not any(glob_match(k, a) for a in g.allowed_tag_keys)]):
        allowed = ", ".join(f"`{a}`" for a in g.allowed_tag_keys[:10]) or "none"
        return f"Tag key{'s' if len(bad) > 1 else ''} {', '.join(f'`{k}`' for k in bad[:5])} may not be set here (allowed: {allowed})."
    return None


def form_refusals(
    g: Guardrails,
    spec: RequestSpec,
    *,
    may_request: bool,
    required_boundary: str | None,
    path_prefix: str = "/",
    policy_documents: Mapping[str, Mapping[str, Any]] | None = None,
    group_policies: Mapping[str, Iterable[str]] | None = None,
    today: date | None = None,
) -> list[tuple[str, str]]:
    """What the form itself breaks, as (form field, message): checked while Slack waits for the answer.

    `policy_documents` holds the documents of requested managed policies read in time, and
    `group_policies` the managed policies attached to requested groups read in time; what could
    not be read then is judged after submission, on the plan (`violation`).
    """
    out: list[tuple[str, str]] = []
    if not may_request:
        out.append(("requester", "You are not on the list of people who may request IAM users through the bot. Ask your AWS admins."))
    if not spec.path.startswith(path_prefix):
        out.append(("path", f"Users created by the bot live under `{path_prefix}`; use that path or one below it."))
    if required_boundary and spec.permissions_boundary != required_boundary:
        out.append(("boundary", f"Users under `{spec.path}` must have the permissions boundary `{policy_name(required_boundary)}`; keep it selected."))
    if message := group_refusal(g, spec.groups):
        out.append(("groups", message))
    elif g.max_groups is not None and len(spec.groups) > g.max_groups:
        out.append(("groups", f"At most {g.max_groups} group(s) per request here; you picked {len(spec.groups)}."))
    else:
        for group, arns in (group_policies or {}).items():
            if group in spec.groups and (bad := [a for a in arns if policy_matches(a, g.forbidden_policies)]):
                out.append(("groups", f"Group `{group}` carries {policy_name(bad[0])}, which can never be granted through the bot; ask your AWS admins."))
                break
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
    if message := tag_refusal(g, (k for k, _ in spec.tags)):
        out.append(("tags", message))
    if message := expiry_refusal(g, path=spec.path, groups=spec.groups, expires_on=spec.expires_on, today=today):
        out.append(("expires", message))
    start = datetime.combine(today, time(0, 0), tzinfo=timezone.utc) if today is not None else None
    if message := grant_end_refusal(g, groups=[(x, spec.grant_for) for x in spec.groups], policies=[(p, spec.grant_for) for p in spec.policy_arns], now=start):
        out.append(("grant_for", message))
    return out


def _where(facts: RiskFacts) -> Iterable[tuple[str, PolicyFact]]:
    """Every policy of the effective grant, with how the user would come to hold it."""
    for p in facts.policies:
        yield "", p
    for group, policies in facts.groups.items():
        via = f"joining group {group}" + (f" (copied from {facts.copy_from})" if group in facts.copied_groups else "")
        for p in policies:
            yield via, p
    for p in facts.copied:
        yield f"copying from {facts.copy_from}", p


def violation(guardrails: Guardrails, facts: RiskFacts, *, tag_keys: Iterable[str] = ()) -> str | None:
    """The first guardrail the effective grant breaks, in words; None if it breaks none it can be judged on."""
    for group in facts.groups:
        if not group_allowed(guardrails, group):
            copied = f" (copied from {facts.copy_from})" if group in facts.copied_groups else ""
            return f"group {group}{copied} is not one the bot may add users to"
    for via, p in _where(facts):
        lead = f"{via} would grant {p.name}" if via else f"policy {p.name}"
        if p.arn and policy_matches(p.arn, guardrails.forbidden_policies):
            return f"{lead}, which the bot may never grant" if via else f"{p.name} may never be granted through the bot"
        if p.document is not None and (hits := forbidden_grants(p.document, guardrails.forbidden_actions)):
            return f"{lead}, which allows {', '.join(hits)}" if via else f"{lead} allows {', '.join(hits)}, which the bot may never grant"
    if message := tag_refusal(guardrails, tag_keys):
        return message.rstrip(".")
    return None


def undecided(guardrails: Guardrails, facts: RiskFacts) -> list[str]:
    """What the guardrails could not be checked against, in words (empty: all of it was checked).

    Forbidden actions need every document; forbidden policies need every group's and the copy
    source's policy list, and allowed groups the copy source's groups, which `facts.unknown` names
    when they could not be read.
    """
    judged = guardrails.forbidden_policies or guardrails.forbidden_actions or guardrails.allowed_groups is not None
    out = list(facts.unknown) if judged else []
    if guardrails.forbidden_actions:
        out += [f"the document of {p.name}" for _via, p in _where(facts) if p.document is None]
    return list(dict.fromkeys(out))
