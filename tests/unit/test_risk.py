"""bot/policy/risk.py: what approvers are warned about, and the summary of what a request grants."""

from __future__ import annotations

import pytest

from bot.policy.guardrails import Guardrails
from bot.policy.guardrails import violation as guardrail_violation
from bot.policy.risk import PolicyFact, RiskFacts, assess, effective_summary, risk_flags
from bot.domain.spec import RequestSpec

BOUNDARY = "arn:aws:iam::123456789012:policy/boundary"
ADMIN = PolicyFact(name="AdministratorAccess", arn="arn:aws:iam::aws:policy/AdministratorAccess", aws_managed=True)
READONLY = PolicyFact(name="ReadOnlyAccess", arn="arn:aws:iam::aws:policy/ReadOnlyAccess", aws_managed=True)


def doc(*actions: str, effect: str = "Allow") -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": list(actions), "Resource": "*"}]}


def customer(name: str, *actions: str) -> PolicyFact:
    return PolicyFact(name=name, arn=f"arn:aws:iam::123456789012:policy/{name}", document=doc(*actions))


def spec(**kw) -> RequestSpec:
    return RequestSpec(**{"user_name": "u1", "console_access": True, "access_key": False, "owner_id": "UO", "reason": "r", "permissions_boundary": BOUNDARY, **kw})


PE, RE, CE, DE, IM = "Privilege escalation possible", "Resource exposure", "Credentials exposure", "Data exfiltration", "Infrastructure modification"
FINDINGS = (PE, RE, CE, DE, IM)

# (name, facts, spec, the bot's own flags, the kinds of cloudsplaining findings flagged after them)
FLAGS = [
    ("nothing risky", RiskFacts(policies=(READONLY,)), spec(), [], []),
    ("admin-like AWS policy", RiskFacts(policies=(ADMIN,)), spec(), ["AWS-managed admin-like policy `AdministratorAccess`"], []),
    ("wildcards in a customer policy", RiskFacts(policies=(customer("deploy", "s3:*", "ec2:Describe*", "sqs:SendMessage"),)), spec(), ["Customer policy `deploy` allows wildcard actions: `s3:*`, `ec2:Describe*`"], [RE, DE, IM]),
    ("no boundary", RiskFacts(), spec(permissions_boundary=None), ["No permissions boundary"], []),
    ("powerful copy source", RiskFacts(copy_from="ops", copied=(customer("all", "*"),)), spec(copy_from="ops"), ["Copies from a powerful user `ops`: `all (*)`"], [PE, RE, CE, DE, IM]),
    ("copy source powerful through a group", RiskFacts(copy_from="ops", copied_groups=("admins",), groups={"admins": (ADMIN,)}), spec(copy_from="ops"), ["Group `admins` grants `AdministratorAccess`", "Copies from a powerful user `ops`: `AdministratorAccess`"], []),
    ("harmless copy source", RiskFacts(copy_from="dev", copied=(customer("read", "s3:GetObject"),)), spec(copy_from="dev"), [], [DE]),
    ("group granting iam:*", RiskFacts(groups={"iam-admins": (customer("iam", "iam:*"),)}), spec(groups=("iam-admins",)), ["Group `iam-admins` grants `iam (iam:*)`"], [PE, RE, CE, IM]),
    ("escalation needs two policies together", RiskFacts(policies=(customer("pass", "iam:PassRole"),), groups={"lambda": (customer("fn", "lambda:CreateFunction", "lambda:InvokeFunction"),)}), spec(), [], [PE, RE, IM]),
    ("unreadable facts are named", RiskFacts(unknown=("policy x (AccessDenied)",)), spec(), ["Could not read policy x (AccessDenied): check it yourself"], []),
]


@pytest.mark.parametrize("facts,request_spec,expected,findings", [f[1:] for f in FLAGS], ids=[f[0] for f in FLAGS])
def test_risk_flags(facts: RiskFacts, request_spec: RequestSpec, expected: list[str], findings: list[str]) -> None:
    flags = risk_flags(request_spec, facts)
    assert [f for f in flags if not f.startswith(FINDINGS)] == expected
    assert [f.split(":")[0] for f in flags if f.startswith(FINDINGS)] == findings


def test_summary_lists_services_and_marks_wildcards() -> None:
    facts = RiskFacts(
        policies=(customer("deploy", "s3:GetObject", "s3:PutObject", "ec2:*"), READONLY),
        groups={"devs": (PolicyFact(name="inline", document=doc("sqs:SendMessage")),)},
    )
    text = effective_summary(facts)
    assert text == "Grants ec2 (*) :warning:; s3 (GetObject, PutObject); sqs (SendMessage); AWS-managed ReadOnlyAccess"
    assert effective_summary(RiskFacts(policies=(customer("all", "*"),))).startswith("Grants *every action on every service*")
    assert effective_summary(RiskFacts()) == "Grants no permissions."
    deny_only = PolicyFact(name="d", document=doc("*", effect="Deny"))
    assert effective_summary(RiskFacts(policies=(deny_only,))) == "Grants no permissions."
    assert set(assess(spec(), facts)) == {"flags", "summary"}


@pytest.mark.parametrize(
    "facts,expected",
    [
        (RiskFacts(policies=(customer("deploy", "s3:GetObject"),)), None),
        (RiskFacts(policies=(customer("wild", "iam:*"),)), "policy wild allows iam:*, which the bot may never grant"),
        (RiskFacts(copy_from="ops", copied=(ADMIN,)), "copying from ops would grant AdministratorAccess, which the bot may never grant"),
        (RiskFacts(copy_from="ops", copied=(PolicyFact(name="inline-all", document=doc("*")),)), "copying from ops would grant inline-all, which allows *, iam:*"),
        (RiskFacts(policies=(ADMIN,)), "AdministratorAccess may never be granted through the bot"),
        # Through a group, and copied through the source's group: the whole effective grant is judged.
        (RiskFacts(groups={"admins": (ADMIN,)}), "joining group admins would grant AdministratorAccess, which the bot may never grant"),
        (
            RiskFacts(copy_from="ops", copied_groups=("admins",), groups={"admins": (ADMIN,)}),
            "joining group admins (copied from ops) would grant AdministratorAccess, which the bot may never grant",
        ),
        (RiskFacts(groups={"devs": (PolicyFact(name="inline", document=doc("iam:*")),)}), "joining group devs would grant inline, which allows iam:*"),
        # AWS-managed documents are read and judged too (PowerUserAccess: Allow NotAction counts as `*`).
        (
            RiskFacts(policies=(PolicyFact(name="PowerUserAccess", arn="arn:aws:iam::aws:policy/PowerUserAccess", aws_managed=True,
                                           document={"Statement": [{"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}]}),)),
            "policy PowerUserAccess allows *, iam:*, which the bot may never grant",
        ),
    ],
)
def test_guardrail_violation_after_submission(facts: RiskFacts, expected: str | None) -> None:
    g = Guardrails(forbidden_policies=("AdministratorAccess",), forbidden_actions=("*", "iam:*"))
    assert guardrail_violation(g, facts) == expected
