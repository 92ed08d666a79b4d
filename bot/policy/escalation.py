"""Privilege escalation and other risks of a grant, judged by cloudsplaining (pure).

cloudsplaining (Salesforce) knows the published privilege-escalation paths (Rhino Security Labs'
and pathfinding.cloud's) and judges actions with policy_sentry's IAM database, which is bundled in
the package: nothing is fetched, at import or at call. We keep no list of risky actions of our own.

The documents are judged TOGETHER, as one grant: escalation often needs actions from two policies
(`iam:PassRole` in one, `lambda:CreateFunction` and `lambda:InvokeFunction` in another). Nothing is
excluded (cloudsplaining's default exclusions skip e.g. `AdministratorAccess`), and the judgement
fails closed: what cannot be read is judged as `*`, Deny statements and conditions never make a
grant look smaller (they are not evaluated here), and privilege escalation is judged whatever the
statements' resource ARNs (`iam:AttachUserPolicy` on one other user is still an escalation).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

_BROAD: dict[str, Any] = {"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}

# What cloudsplaining and policy_sentry raise on documents they cannot read (an action without a
# service prefix is unpacked with `a, b = action.split(":")`, odd values are iterated or indexed).
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError)

_MAX_FLAG = 200  # characters in one flag line


@dataclass(frozen=True)
class Findings:
    privilege_escalation: tuple[str, ...] = ()  # cloudsplaining's method names, e.g. "CreateAccessKey"
    resource_exposure: tuple[str, ...] = ()  # actions, sorted, de-duplicated ("Permissions management" level)
    data_exfiltration: tuple[str, ...] = ()
    infrastructure_modification: tuple[str, ...] = ()  # thousands for `*`: shown as a count
    credentials_exposure: tuple[str, ...] = ()

    @property
    def escalates(self) -> bool:
        return bool(self.privilege_escalation)


def analyse(documents: Iterable[Mapping[str, Any]]) -> Findings:
    """What the documents allow together. Never raises: what cannot be judged is judged as `*`."""
    docs = list(documents)
    try:
        key = json.dumps(docs, sort_keys=True)
    except (TypeError, ValueError):  # not plain JSON (a set, keys of mixed types): judged, not remembered
        return _analyse(docs)
    return _remembered(key)


@functools.lru_cache(maxsize=32)
def _remembered(key: str) -> Findings:
    """The gate and the risk flags judge the same grant one after the other: judge it once."""
    return _analyse(json.loads(key))


def _analyse(docs: list[Any]) -> Findings:
    readable = [_allow_statements(d) for d in docs]
    try:
        return _judge([s for statements in readable for s in statements])
    except _UNREADABLE:
        pass
    # Fail closed: a document cloudsplaining cannot read is judged as `*`, never left out.
    kept: list[dict[str, Any]] = []
    for statements in readable:
        try:
            _judge(statements)
        except _UNREADABLE:
            statements = [_BROAD]
        kept.extend(statements)
    try:
        return _judge(kept)
    except _UNREADABLE:
        return _judge([_BROAD])


def _judge(statements: list[dict[str, Any]]) -> Findings:
    if _BROAD in statements:  # `*` on `*` covers every other Allow
        return _everything()
    return _findings(statements)


@functools.cache
def _everything() -> Findings:
    return _findings([_BROAD])


def _findings(statements: list[dict[str, Any]]) -> Findings:
    # Imported here: policy_sentry loads its IAM database at import (~0.2 s, ~85 MB), which
    # processes that never judge a grant (the CLI, migrations) need not pay.
    from cloudsplaining.scan.policy_document import PolicyDocument
    from cloudsplaining.shared.exclusions import Exclusions

    # cloudsplaining's package import adds its own stdout handler; our log setup formats every line.
    logging.getLogger("cloudsplaining").handlers.clear()

    policy = {"Version": "2012-10-17", "Statement": statements}
    nothing_excluded = Exclusions({})
    # Conditions are not evaluated: flagged as if absent (a condition on MFA or a source IP does not
    # stop the holder). Resource ARNs count as cloudsplaining counts them for all but escalation.
    doc = PolicyDocument(policy, exclusions=nothing_excluded, flag_conditional_statements=True)
    # For escalation a resource ARN does not make a grant safe: AttachUserPolicy or CreateAccessKey
    # on another user, PassRole on one role, UpdateFunctionCode on one function all escalate.
    # cloudsplaining's `flag_resource_arn_statements` (its CLI's --flag-all-risky-actions) says so.
    everywhere = doc
    if any(s["Resource"] != ["*"] for s in statements):
        everywhere = PolicyDocument(policy, exclusions=nothing_excluded, flag_conditional_statements=True, flag_resource_arn_statements=True)
    return Findings(
        privilege_escalation=tuple(dict.fromkeys(e["type"] for e in everywhere.allows_privilege_escalation)),
        resource_exposure=_sorted(doc.permissions_management_without_constraints),
        data_exfiltration=_sorted(doc.allows_data_exfiltration_actions),
        infrastructure_modification=_sorted(doc.infrastructure_modification),
        credentials_exposure=_sorted(doc.credentials_exposure),
    )


def _sorted(actions: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(actions)))


# --- reading documents: each Allow statement in a shape cloudsplaining reads, or _BROAD ---


def _allow_statements(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, Mapping):
        return [_BROAD]
    raw = document.get("Statement")
    if isinstance(raw, Mapping):  # a single statement is valid IAM grammar
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        return [_BROAD]
    out = []
    for statement in raw:
        s = _allow_statement(statement)
        if s is not None:
            out.append(s)
    return out


def _allow_statement(statement: Any) -> dict[str, Any] | None:
    """One statement as cloudsplaining should judge it; None for a Deny, _BROAD when unreadable."""
    if not isinstance(statement, Mapping):
        return _BROAD
    # Deny statements are not evaluated: cloudsplaining would subtract a Deny's actions whatever its
    # resources and conditions, which can hide a grant. Any other Effect is judged as Allow.
    if statement.get("Effect") == "Deny":
        return None
    if ("Action" in statement) == ("NotAction" in statement):  # neither, or both
        return _BROAD
    key = "Action" if "Action" in statement else "NotAction"
    actions = _strings(statement[key])
    if actions is None:
        return _BROAD
    # An Allow with NotAction allows everything else: cloudsplaining expands it to every action in
    # its database but the listed ones. It is judged on `*`, whatever its Resource: on ARNs
    # cloudsplaining would keep only the actions that apply to them, after parsing each (policy_sentry
    # raises a bare Exception on one it cannot parse). NotResource with Allow grants everything but
    # the listed resources: judged on `*`. A missing or unreadable Resource is judged on `*` too, and
    # so is a list holding `*` among ARNs (which cloudsplaining counts as constrained for some findings).
    resources = None if key == "NotAction" or "NotResource" in statement else _strings(statement.get("Resource"))
    if resources is None or "*" in resources:
        resources = ["*"]
    return {"Effect": "Allow", key: [_canonical(a) for a in actions], "Resource": resources}


def _strings(value: Any) -> list[str] | None:
    """A string or a non-empty list of strings, as a list; None for anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _canonical(action: str) -> str:
    """IAM actions are case-insensitive; cloudsplaining matches exact ones as written (`IAM:createaccesskey`
    would escape the resource-exposure list) and does not know the `?` wildcard, so: the service in
    lower case, `?` widened to `*` (judging more, never less), an exact action spelled as in the database.
    An action without exactly one `:` is left as written: cloudsplaining cannot read it, so its
    document is judged as `*`."""
    if action == "*" or action.count(":") != 1:
        return action
    service, name = action.split(":")
    action = f"{service.lower()}:{name.replace('?', '*')}"
    if "*" in action:
        return action
    return _spelling().get(action.lower(), action)


@functools.cache
def _spelling() -> dict[str, str]:
    from policy_sentry.querying.all import get_all_actions

    return {a.lower(): a for a in get_all_actions()}


# --- flags for approvers (Slack mrkdwn) ---


def flags(findings: Findings, *, limit: int = 4) -> list[str]:
    """Short lines for approvers, the gravest first; none when nothing was found."""
    out = []
    if findings.privilege_escalation:
        out.append(_line("Privilege escalation possible", findings.privilege_escalation, limit, noun="ways"))
    if findings.resource_exposure:
        out.append(_line("Resource exposure", findings.resource_exposure, limit))
    if findings.credentials_exposure:
        out.append(_line("Credentials exposure", findings.credentials_exposure, limit))
    if findings.data_exfiltration:
        out.append(_line("Data exfiltration", findings.data_exfiltration, limit))
    if findings.infrastructure_modification:
        # Often thousands: a few names out of them say nothing, the count does.
        n = len(findings.infrastructure_modification)
        if n <= limit:
            out.append(_line("Infrastructure modification", findings.infrastructure_modification, limit))
        else:
            out.append(f"Infrastructure modification: {n} actions")
    return out


def _line(label: str, items: tuple[str, ...], limit: int, *, noun: str = "actions") -> str:
    names = [f"`{i.replace('`', chr(39))}`" for i in items]
    if len(names) <= limit and len(text := f"{label}: {', '.join(names)}") <= _MAX_FLAG:
        return text
    head = f"{label}: {len(names)} {noun}"
    shown: list[str] = []
    for name in names[: max(limit, 0)]:
        if len(f"{head} ({', '.join([*shown, name])}, …)") > _MAX_FLAG:
            break
        shown.append(name)
    return f"{head} ({', '.join(shown)}, …)" if shown else head
