"""The gate: a plan judged whole, by the guardrails, the rules and the risk analysis (pure).

Everything is judged on the plan's effective grant, never on the form: a forbidden policy reached
through a group or a copied user is as forbidden as one asked for. The gate fails closed: what
could not be read is never approved automatically, and a guardrail that could not be checked
holds the request back from being applied (`Verdict.undecided`) until it can be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bot.domain.plan import Plan
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


def judge(book: Rulebook, plan: Plan, documents: Mapping[str, Mapping[str, Any]], spec: RequestSpec) -> Verdict:
    facts = risk.facts_from_plan(plan, documents)
    subject = Subject.of_plan(plan)
    denial = guardrails.violation(book.guardrails, facts, tag_keys=subject.tag_keys)
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
