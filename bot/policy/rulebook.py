"""Approval rules: who may approve what, quorum, guardrails, reminders (pure).

The model and its evaluation; bot.policy.rules_file reads it from YAML or TOML. Callers resolve
Slack user-group membership and pass it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from bot.common.slack_ids import is_usergroup
from bot.domain.spec import RequestSpec
from bot.policy.documents import glob_match, policy_matches
from bot.policy.guardrails import Guardrails, form_refusals

ACCESS_KINDS = ("console", "key", "both")
DEFAULT_RULE = "default"


@dataclass(frozen=True)
class Match:
    policies: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    copy_from: bool | tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    access: str | None = None

    def matches(self, spec: RequestSpec) -> bool:
        """Every key given must match (AND); within a list any item matching any glob will do (OR)."""
        if self.policies is not None and not any(policy_matches(p, self.policies) for p in spec.policy_arns):
            return False
        if self.groups is not None and not any(glob_match(g, pat) for g in spec.groups for pat in self.groups):
            return False
        if self.copy_from is not None:
            if self.copy_from is True and not spec.copy_from:
                return False
            if self.copy_from is False and spec.copy_from:
                return False
            if isinstance(self.copy_from, tuple) and not (
                spec.copy_from and any(glob_match(spec.copy_from, p) for p in self.copy_from)
            ):
                return False
        if self.paths is not None and not any(glob_match(spec.path, p) for p in self.paths):
            return False
        if self.access is not None:
            wanted = {
                "console": spec.console_access,
                "key": spec.access_key,
                "both": spec.console_access and spec.access_key,
            }[self.access]
            if not wanted:
                return False
        return True


@dataclass(frozen=True)
class Rule:
    name: str
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    auto_approve: bool = False
    match: Match = field(default_factory=Match)

    @property
    def approver_users(self) -> tuple[str, ...]:
        return tuple(a for a in self.approvers if not is_usergroup(a))

    @property
    def approver_groups(self) -> tuple[str, ...]:
        return tuple(a for a in self.approvers if is_usergroup(a))

    def demand(self, order: int) -> tuple[bool, int, int]:
        """Sort key of "most demanding": manual before automatic, then quorum, then file order first."""
        return (not self.auto_approve, self.quorum, -order)


@dataclass(frozen=True)
class Reminders:
    first_after_hours: float
    backoff: float = 2.0
    max: int = 3
    escalate_to: tuple[str, ...] = ()

    def delay_hours(self, sent: int) -> float:
        """Hours until reminder number `sent + 1`: first_after, then multiplied by backoff each time."""
        return self.first_after_hours * self.backoff**sent


@dataclass(frozen=True)
class BreakGlass:
    requesters: tuple[str, ...]


@dataclass(frozen=True)
class Evaluation:
    rule_name: str
    approver_users: tuple[str, ...]
    approver_groups: tuple[str, ...]
    quorum: int
    auto_approve: bool
    refusals: tuple[tuple[str, str], ...] = ()  # (form field, message)
    required_boundary: str | None = None

    @property
    def allowed(self) -> bool:
        return not self.refusals


@dataclass(frozen=True)
class Rulebook:
    rules: tuple[Rule, ...] = ()
    default_approvers: tuple[str, ...] = ()
    guardrails: Guardrails = field(default_factory=Guardrails)
    reminders: Reminders | None = None
    break_glass: BreakGlass | None = None
    request_ttl_hours: float | None = None
    source: str | None = None

    @classmethod
    def default(cls, approvers: Iterable[str]) -> Rulebook:
        """The simplest rule: IAM_BOT_APPROVERS, one approval each."""
        return cls(default_approvers=tuple(sorted(approvers)))

    @property
    def default_rule(self) -> Rule:
        return Rule(name=DEFAULT_RULE, approvers=self.default_approvers, quorum=1)

    @property
    def has_catch_all(self) -> bool:
        """A rule without `match` applies to every request, so IAM_BOT_APPROVERS is never needed."""
        return any(r.match == Match() for r in self.rules)

    def winning_rule(self, spec: RequestSpec) -> Rule:
        matching = [(r.demand(i), r) for i, r in enumerate(self.rules) if r.match.matches(spec)]
        if not matching:
            return self.default_rule
        return max(matching, key=lambda pair: pair[0])[1]

    def required_boundary(self, path: str, *, setting: str | None = None) -> str | None:
        """The boundary a user at `path` must have: the longest matching prefix in the file, else the setting."""
        best: tuple[int, str] | None = None
        for prefix, arn in self.guardrails.required_boundaries:
            if path.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), arn)
        return best[1] if best else (setting or None)

    def may_request(self, requester_id: str, requester_groups: Iterable[str] = ()) -> bool:
        allowed = self.guardrails.requesters
        if allowed is None:
            return True
        return requester_id in allowed or bool(set(requester_groups) & set(allowed))

    def may_break_glass(self, requester_id: str, requester_groups: Iterable[str] = ()) -> bool:
        if self.break_glass is None:
            return False
        listed = self.break_glass.requesters
        return requester_id in listed or bool(set(requester_groups) & set(listed))

    @property
    def requester_groups_to_resolve(self) -> tuple[str, ...]:
        """Slack user groups whose membership decides whether someone may request or break glass."""
        ids = list(self.guardrails.requesters or ()) + list(self.break_glass.requesters if self.break_glass else ())
        return tuple(sorted({i for i in ids if is_usergroup(i)}))

    @property
    def known_approver_users(self) -> frozenset[str]:
        """Every user named as an approver anywhere (for Home and status; groups are resolved apart)."""
        ids = set(self.default_approvers)
        for r in self.rules:
            ids |= set(r.approver_users)
        if self.reminders:
            ids |= {i for i in self.reminders.escalate_to if not is_usergroup(i)}
        return frozenset(ids)

    @property
    def known_approver_groups(self) -> frozenset[str]:
        ids = {g for r in self.rules for g in r.approver_groups}
        if self.reminders:
            ids |= {i for i in self.reminders.escalate_to if is_usergroup(i)}
        return frozenset(ids)

    def evaluate(
        self,
        spec: RequestSpec,
        requester_id: str,
        requester_groups: Iterable[str] = (),
        *,
        boundary_setting: str | None = None,
        path_prefix: str = "/",
        policy_documents: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Evaluation:
        """Which rule applies, who is asked, how many approvals, and what the guardrails refuse.

        `policy_documents` maps customer-managed policy ARNs to their documents, where known;
        `forbidden_actions` can only be checked for those.
        """
        rule = self.winning_rule(spec)
        refusals = form_refusals(
            self.guardrails,
            spec,
            may_request=self.may_request(requester_id, requester_groups),
            required_boundary=self.required_boundary(spec.path, setting=boundary_setting),
            path_prefix=path_prefix,
            policy_documents=policy_documents or {},
        )
        return Evaluation(
            rule_name=rule.name,
            approver_users=rule.approver_users,
            approver_groups=rule.approver_groups,
            quorum=rule.quorum,
            auto_approve=rule.auto_approve,
            refusals=tuple(refusals),
            required_boundary=self.required_boundary(spec.path, setting=boundary_setting),
        )
