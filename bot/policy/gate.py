"""The gate: a plan judged whole, by the guardrails, the rules and the risk analysis (pure).

Everything is judged on the plan's effective grant, never on the form: a forbidden policy reached
through a group or a copied user is as forbidden as one asked for. The gate fails closed: what
could not be read is never approved automatically, and a guardrail that could not be checked
holds the request back from being applied (`Verdict.undecided`) until it can be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bot.domain.plan import Plan, PlanKind, StepKind
from bot.domain.spec import RequestSpec
from bot.policy import guardrails, risk
from bot.policy.rulebook import Rule, Rulebook
from bot.policy.subject import Subject


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    auto: bool
    denial: str | None  # the guardrail the plan breaks, in words
    undecided: tuple[str, ...]  # what the guardrails could not be checked against
    risk: dict[str, Any]  # flags and summary, stored on the request for approvers

    @property
    def approver_users(self) -> tuple[str, ...]:
        return self.rule.approver_users

    @property
    def approver_groups(self) -> tuple[str, ...]:
        return self.rule.approver_groups


SELF_SERVICE_RULE = Rule(name="self-service", auto_approve=True)
# The key of a create request approved while the rules held keys until MFA: that approval covers it.
HELD_KEY_RULE = Rule(name="held-until-mfa", auto_approve=True)


def judge_credentials(book: Rulebook, plan: Plan, *, by_owner: bool) -> Verdict:
    """New credentials for an existing user grant nothing new, so no guardrail or risk applies. The
    owner's own ask is served at once where the rules let owners serve themselves (`self_service`);
    any other ask goes to the approvers its rule names, never to an automatic rule."""
    risk = {"flags": [], "summary": f"A {plan.kind.brings} for `{plan.user_name}`; its permissions do not change."}
    if plan.kind is PlanKind.HELD_KEY:  # approved with the user; only its making waited for MFA
        return Verdict(rule=HELD_KEY_RULE, auto=True, denial=None, undecided=(), risk=risk)
    if by_owner and plan.kind.value in book.self_service:
        return Verdict(rule=SELF_SERVICE_RULE, auto=True, denial=None, undecided=(), risk=risk)
    choice = book.choose(Subject.of_plan(plan), blockers=("new credentials asked for by someone other than the owner",))
    return Verdict(rule=choice.rule, auto=False, denial=None, undecided=(), risk=risk)


REMOVAL_FLAGS = {
    PlanKind.OFFBOARD: "Deletes the IAM user and everything IAM holds for it: this cannot be undone",
    PlanKind.DISABLE: "The console password is deleted and the access keys deactivated: whatever uses them stops working",
    PlanKind.DISABLE_NOW: "The console password is deleted and the access keys deactivated: whatever uses them stops working",
    PlanKind.EXPIRE: "The console password is deleted and the access keys deactivated: whatever uses them stops working",
    PlanKind.EXPIRE_DELETE: "Deletes the IAM user and everything IAM holds for it: this cannot be undone",
}
# The end date a user was approved with: disabling it that day and deleting it after the grace period
# were approved with it (the plan named the date).
EXPIRY_RULE = Rule(name="expiry", auto_approve=True)
# An approver's "Disable now" on the offboarding of a user whose owner left (the offboarding still waits
# for its decision), or "Disable instead" on any offboarding: the click is a person's decision, and it
# only takes access away.
DISABLE_NOW_RULE = Rule(name="approver-disable-now", auto_approve=True)


def judge_removal(book: Rulebook, plan: Plan) -> Verdict:
    """Taking access away grants nothing, so no guardrail applies; a person always decides (never an
    automatic rule, never the owner alone): what breaks when a user goes is for someone to weigh."""
    risk = {"flags": [REMOVAL_FLAGS[plan.kind]], "summary": f"The {plan.kind.brings} `{plan.user_name}`: {len(plan.steps)} IAM changes."}
    if plan.kind is PlanKind.DISABLE_NOW:
        return Verdict(rule=DISABLE_NOW_RULE, auto=True, denial=None, undecided=(), risk=risk)
    if plan.kind in (PlanKind.EXPIRE, PlanKind.EXPIRE_DELETE):
        return Verdict(rule=EXPIRY_RULE, auto=True, denial=None, undecided=(), risk=risk)
    choice = book.choose(Subject.of_plan(plan), blockers=("taking access away needs a person",))
    return Verdict(rule=choice.rule, auto=False, denial=None, undecided=(), risk=risk)


def judge_extension(book: Rulebook, plan: Plan) -> Verdict:
    """More time keeps a grant alive: its rule's approvers decide, never an automatic rule (the asker
    was held to the rules' cap on how far ahead an end date may be)."""
    risk = {"flags": [f"Keeps `{plan.user_name}` and everything it holds until {plan.expires_on}"], "summary": ""}
    choice = book.choose(Subject.of_plan(plan), blockers=("more time for a user needs a person",))
    return Verdict(rule=choice.rule, auto=False, denial=None, undecided=(), risk=risk)


# A time-bound grant's end: taking it away was approved with it. The owner's "I'm done" only gives back
# what the owner asked to have for a while.
GRANT_ENDED_RULE = Rule(name="grant-ended", auto_approve=True)
GIVEN_BACK_RULE = Rule(name="given-back", auto_approve=True)


def judge_revoke(book: Rulebook, plan: Plan, *, given_back: bool) -> Verdict:
    """Taking away exactly what was granted for a time, when its time ends or its owner is done with it:
    approved with the grant, so no person is asked again."""
    what = ", ".join(f"`{s.target.rsplit('/', 1)[-1]}`" for s in plan.steps) or "nothing (the user is gone, or no longer the bot's)"
    risk = {"flags": [], "summary": f"Takes away {what} from `{plan.user_name}`: " + ("its owner is done with it." if given_back else "its time ended.")}
    return Verdict(rule=GIVEN_BACK_RULE if given_back else GRANT_ENDED_RULE, auto=True, denial=None, undecided=(), risk=risk)


def judge(book: Rulebook, plan: Plan, documents: Mapping[str, Mapping[str, Any]], spec: RequestSpec) -> Verdict:
    if plan.kind is PlanKind.REVOKE:
        return judge_revoke(book, plan, given_back=False)
    if plan.kind is PlanKind.EXTEND:
        return judge_extension(book, plan)
    if plan.kind.removal:
        return judge_removal(book, plan)
    if plan.kind.credentials_only:
        return judge_credentials(book, plan, by_owner=False)  # the plan job judges the owner's own ask
    facts = risk.facts_from_plan(plan, documents)
    subject = Subject.of_plan(plan)
    added = [s for s in plan.steps if s.kind in (StepKind.ADD_TO_GROUP, StepKind.ATTACH_POLICY)]
    denial = (
        guardrails.violation(book.guardrails, facts, tag_keys=subject.tag_keys)
        # an end date the rules want, also where a copied group brings the need, or a change adds it (its plan names the user's end)
        or guardrails.expiry_refusal(book.guardrails, path=subject.path, groups=subject.groups, expires_on=plan.expires_on, today=None)
        # what the rules grant only for a time, however it came to be added (copied, too)
        or guardrails.grant_end_refusal(
            book.guardrails, groups=[(s.target, s.lasts) for s in added if s.kind is StepKind.ADD_TO_GROUP],
            policies=[(s.target, s.lasts) for s in added if s.kind is StepKind.ATTACH_POLICY], now=None,
        )
    )
    undecided = guardrails.undecided(book.guardrails, facts)
    findings = risk.escalation_of(facts)
    blockers = []
    if subject.unknown or undecided:
        blockers.append("could not check " + ", ".join(list(dict.fromkeys([*subject.unknown, *undecided]))[:4]))
    if findings.escalates:
        blockers.append("the grant allows privilege escalation")
    choice = book.choose(subject, blockers=blockers)
    assessed = risk.assess(spec, facts)
    flags = list(assessed["flags"])
    if undecided:
        flags.append(f"The guardrails could not be checked against {', '.join(undecided[:4])}: checked again before anything is created")
    flags += list(choice.notes)
    return Verdict(
        rule=choice.rule,
        auto=choice.auto and denial is None,  # a refused plan is never approved, whatever a rule says
        denial=denial,
        undecided=tuple(undecided),
        risk={**assessed, "flags": list(dict.fromkeys(flags))},
    )
