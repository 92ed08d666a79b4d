"""Approval rules: who may approve what, quorum, guardrails, reminders (pure).

The model and its evaluation; bot.policy.rules_file reads it from YAML or TOML. Callers resolve
Slack user-group membership and pass it in.
"""

from __future__ import annotations

import fnmatch
from datetime import date
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from bot.common.slack_ids import is_usergroup
from bot.domain.facts import policy_name
from bot.domain.spec import RequestSpec
from bot.policy.documents import glob_match, policy_matches
from bot.policy.guardrails import Guardrails, form_refusals, stricter
from bot.policy.subject import Subject

ACCESS_KINDS = ("console", "key", "both")
DEFAULT_RULE = "default"


@dataclass(frozen=True)
class Match:
    """Which requests a rule is about, judged on what the user will effectively hold (a `Subject`).

    A manual rule applies when its match `matches`: every key given matches (AND), and within a list
    any item held matching any glob will do (OR); `policies` matches managed policies held directly
    or through a group, and inline policies by name. An automatic rule reads the same keys as an
    allowlist (`uncovered`): every group, policy and tag key of the plan must be in it.
    """

    policies: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    copy_from: bool | tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    access: str | None = None
    tags: tuple[str, ...] | None = None  # tag-key globs
    accounts: tuple[str, ...] | None = None  # account names or ids (globs), as in IAM_BOT_ACCOUNTS

    @property
    def empty(self) -> bool:
        return self == Match()

    def matches(self, subject: Subject) -> bool:
        if self.policies is not None and not (
            any(policy_matches(p, self.policies) for p in subject.held)
            or any(glob_match(n, pat) for n in subject.inline for pat in self.policies)
        ):
            return False
        if self.groups is not None and not any(glob_match(g, pat) for g in subject.groups for pat in self.groups):
            return False
        if self.copy_from is not None:
            if self.copy_from is True and not subject.copy_from:
                return False
            if self.copy_from is False and subject.copy_from:
                return False
            if isinstance(self.copy_from, tuple) and not (
                subject.copy_from and any(glob_match(subject.copy_from, p) for p in self.copy_from)
            ):
                return False
        if self.paths is not None and not any(glob_match(subject.path, p) for p in self.paths):
            return False
        if self.access is not None:
            wanted = {"console": subject.console, "key": subject.key, "both": subject.console and subject.key}[self.access]
            if not wanted:
                return False
        if self.tags is not None and not any(glob_match(k, pat) for k in subject.tag_keys for pat in self.tags):
            return False
        if self.accounts is not None and not self._in_account(subject):
            return False
        return True

    def _in_account(self, subject: Subject) -> bool:
        return any(fnmatch.fnmatchcase(a, pat) for a in subject.accounts for pat in self.accounts or ())

    def uncovered(self, subject: Subject) -> list[str]:
        """What of the plan lies outside this allowlist, in words (empty: all of it is inside).

        Absent `groups` or `policies` allow none; absent `paths`, `access` or `tags` allow any.
        Inline policies (which only copying brings) are never inside an allowlist.
        """
        out = [f"group `{g}`" for g in subject.groups if not any(glob_match(g, p) for p in self.groups or ())]
        out += [f"policy `{policy_name(a)}`" for a in subject.attached if not policy_matches(a, self.policies or ())]
        out += [f"inline policy `{n}` (copied)" for n in subject.copied_inline]
        if subject.copy_from and not (
            self.copy_from is True or (isinstance(self.copy_from, tuple) and any(glob_match(subject.copy_from, p) for p in self.copy_from))
        ):
            out.append(f"copying from `{subject.copy_from}`")
        if self.paths is not None and not any(glob_match(subject.path, p) for p in self.paths):
            out.append(f"path `{subject.path}`")
        if self.access == "key" and subject.console:
            out.append("console access")
        if self.access == "console" and subject.key:
            out.append("an access key")
        if self.tags is not None:
            out += [f"tag `{k}`" for k in subject.tag_keys if not any(glob_match(k, p) for p in self.tags)]
        if self.accounts is not None and not self._in_account(subject):
            out.append(f"account `{subject.accounts[0] if subject.accounts else 'the bot’s own'}`")
        return out


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

    @property
    def specific(self) -> bool:
        """A manual rule with a `match`: it applies whenever its match does, and no automatic rule overrides it."""
        return not self.auto_approve and not self.match.empty


@dataclass(frozen=True)
class Choice:
    rule: Rule
    auto: bool = False
    notes: tuple[str, ...] = ()  # why an automatic rule did not approve it, for approvers


@dataclass(frozen=True)
class Reminders:
    first_after_hours: float
    backoff: float = 2.0
    max: int = 3
    escalate_to: tuple[str, ...] = ()
    # Escalation asks escalate_to to act (chase the approvers); they become approvers themselves only
    # when the file says so, so escalation never lowers the bar of a rule that names its approvers.
    escalation_approves: bool = False

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


DELIVERY_ANY, DELIVERY_FILE_ONLY = "any", "encrypted_file_only"
DELIVERIES = (DELIVERY_ANY, DELIVERY_FILE_ONLY)

# Day-two asks an owner may make of their own bot-managed user without approval, unless the rules
# file says otherwise (`self_service: []`): new credentials grant nothing new.
SELF_SERVICE_KINDS = ("rotate_key", "reset_password")


@dataclass(frozen=True)
class AccountGuardrails:
    """`accounts.<pattern>` of the rules file: guardrails on top of the file's, and a narrower path prefix."""

    pattern: str  # an account's name or id; globs allowed
    guardrails: Guardrails = field(default_factory=Guardrails)
    path_prefix: str | None = None

    def covers(self, accounts: Iterable[str]) -> bool:
        return any(fnmatch.fnmatchcase(a, self.pattern) for a in accounts)


@dataclass(frozen=True)
class Rulebook:
    rules: tuple[Rule, ...] = ()
    default_approvers: tuple[str, ...] = ()
    guardrails: Guardrails = field(default_factory=Guardrails)
    account_guardrails: tuple[AccountGuardrails, ...] = ()
    reminders: Reminders | None = None
    break_glass: BreakGlass | None = None
    request_ttl_hours: float | None = None
    # How credentials may reach their owner: "any" (an encrypted file to the owner's key if they
    # registered one, else the one-time Reveal) or "encrypted_file_only" (a key is required).
    delivery: str = "any"
    self_service: frozenset[str] = frozenset(SELF_SERVICE_KINDS)
    # An approved access key is made and delivered only once the user has MFA on (the password first).
    hold_keys_until_mfa: bool = False
    source: str | None = None

    @property
    def file_only(self) -> bool:
        return self.delivery == DELIVERY_FILE_ONLY

    def for_account(self, *accounts: str) -> Rulebook:
        """The rules as they hold in one account (its name and id): its `accounts` entries' guardrails on top
        of the file's, the strictest winning. The bot's own account (no names) has the file's alone."""
        extra = [a.guardrails for a in self.account_guardrails if accounts and a.covers(accounts)]
        if not extra:
            return self
        g = self.guardrails
        for more in extra:
            g = stricter(g, more)
        return replace(self, guardrails=g)

    def path_prefix_for(self, *accounts: str, default: str) -> str:
        """Where the bot's users live in this account: the longest `path_prefix` of its entries under the
        setting's (a prefix outside it would be outside the bot's own IAM policy), else the setting."""
        found = [a.path_prefix for a in self.account_guardrails if a.path_prefix and accounts and a.covers(accounts) and a.path_prefix.startswith(default)]
        return max(found, key=len) if found else default

    @classmethod
    def default(cls, approvers: Iterable[str]) -> Rulebook:
        """The simplest rule: IAM_BOT_APPROVERS, one approval each."""
        return cls(default_approvers=tuple(sorted(approvers)))

    @property
    def default_rule(self) -> Rule:
        return Rule(name=DEFAULT_RULE, approvers=self.default_approvers, quorum=1)

    def approvers_for(self, rule: Rule, *, escalated: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(users, groups) who may approve under `rule` now; escalation targets too once escalated, if the file lets them."""
        users, groups = rule.approver_users, rule.approver_groups
        if escalated and self.reminders and self.reminders.escalation_approves:
            extra = self.reminders.escalate_to
            users += tuple(e for e in extra if not is_usergroup(e) and e not in users)
            groups += tuple(e for e in extra if is_usergroup(e) and e not in groups)
        return users, groups

    @property
    def has_catch_all(self) -> bool:
        """A manual rule without `match` applies to every request, so IAM_BOT_APPROVERS is never needed."""
        return any(r.match.empty and not r.auto_approve for r in self.rules)

    def choose(self, subject: Subject, *, blockers: Sequence[str] = ()) -> Choice:
        """Which rule decides a request. How rules combine (the README says the same):

        1. Manual rules with a `match` that matches: the most demanding decides (highest quorum, then
           first in the file). No automatic rule and no catch-all can override one: nothing weakens them.
        2. Otherwise the first automatic rule that matches and whose allowlist covers the whole plan approves it, unless
           something could not be read or judged (`blockers`): then a person decides.
        3. Otherwise the most demanding manual rule without `match` (a catch-all), else IAM_BOT_APPROVERS.
        A catch-all never hides an automatic rule, and an automatic rule never approves part of a plan.
        """
        specific = [(r.quorum, -i, r) for i, r in enumerate(self.rules) if r.specific and r.match.matches(subject)]
        if specific:
            return Choice(rule=max(specific, key=lambda t: t[:2])[2])
        notes: list[str] = []
        for r in self.rules:
            if not r.auto_approve:
                continue
            if not r.match.matches(subject):
                continue  # about something else (an allowlist still has to name what it approves)
            outside = r.match.uncovered(subject)
            if not outside and not blockers:
                return Choice(rule=r, auto=True)
            if not outside:
                notes.append(f"Not auto-approved by rule {r.name}: {'; '.join(blockers)}")
            else:
                notes.append(f"Not auto-approved by rule {r.name}: {', '.join(outside[:4])} {'is' if len(outside) == 1 else 'are'} outside its allowlist")
        catch_all = [(r.quorum, -i, r) for i, r in enumerate(self.rules) if not r.auto_approve and r.match.empty]
        rule = max(catch_all, key=lambda t: t[:2])[2] if catch_all else self.default_rule
        return Choice(rule=rule, notes=tuple(notes))

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
        group_policies: Mapping[str, Iterable[str]] | None = None,
        today: date | None = None,
        account_id: str = "",
    ) -> Evaluation:
        """Which rule applies, who is asked, how many approvals, and what the guardrails refuse.

        `policy_documents` maps customer-managed policy ARNs to their documents, where known;
        `forbidden_actions` can only be checked for those.
        """
        rule = self.choose(Subject.of_spec(spec, account_id=account_id)).rule
        refusals = form_refusals(
            self.guardrails,
            spec,
            may_request=self.may_request(requester_id, requester_groups),
            required_boundary=self.required_boundary(spec.path, setting=boundary_setting),
            path_prefix=path_prefix,
            policy_documents=policy_documents or {},
            group_policies=group_policies or {},
            today=today,
        )
        return Evaluation(
            rule_name=rule.name,
            approver_users=rule.approver_users,
            approver_groups=rule.approver_groups,
            quorum=rule.quorum,
            auto_approve=rule.auto_approve,  # a preview: the plan's subject decides after submission
            refusals=tuple(refusals),
            required_boundary=self.required_boundary(spec.path, setting=boundary_setting),
        )
