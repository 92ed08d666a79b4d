"""bot/policy/gate.py and how rules combine: the plan's whole effective grant judged, failing closed.

Pure: plans are built by the real planner from IamFacts; no IAM, no database.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.facts import GroupFacts, IamFacts, InlinePolicy, ManagedPolicy, UserFacts
from bot.domain.plan import StepKind
from bot.domain.spec import RequestSpec
from bot.policy import gate
from bot.policy.documents import glob_match, policy_matches
from bot.policy.guardrails import Guardrails
from bot.policy.rule_lint import never_effective
from bot.policy.rulebook import Match, Rule, Rulebook
from bot.policy.subject import Subject
from bot.requests.planner import plan_create_user

ACCOUNT = "123456789012"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
S3READ = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
KEYS = f"arn:aws:iam::{ACCOUNT}:policy/self-keys"


def doc(*actions: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


DOCS = {
    ADMIN: doc("*"),
    READONLY: doc("s3:ListBucket", "ec2:DescribeInstances"),
    S3READ: doc("s3:ListBucket"),
    KEYS: doc("iam:CreateAccessKey"),
}
FACTS = IamFacts(
    account=ACCOUNT,
    groups={
        "admins": GroupFacts("admins", attached=(ADMIN,)),
        "readers": GroupFacts("readers", attached=(READONLY,)),
        "inline-wild": GroupFacts("inline-wild", inline=(InlinePolicy("wild", doc("iam:*")),)),
    },
    users={"root-ish": UserFacts("root-ish", groups=("admins",)), "reader": UserFacts("reader", attached=(READONLY,))},
    policies={arn: ManagedPolicy(arn, "v1", d) for arn, d in DOCS.items()},
)
EXAMPLE = Rulebook(
    rules=(
        Rule("admin-grants", approvers=("UA1", "SSECURITY"), quorum=2, match=Match(policies=("*Admin*", "*FullAccess"))),
        Rule("read-only", auto_approve=True, match=Match(policies=("ReadOnlyAccess", "ViewOnlyAccess"), access="key")),
        Rule("everyone-else", approvers=("UA1", "UB2")),
    ),
    guardrails=Guardrails(forbidden_policies=("AdministratorAccess", "IAMFullAccess"), forbidden_actions=("*", "iam:*")),
)


def spec(**kw: Any) -> RequestSpec:
    return RequestSpec(**{"user_name": "dev01", "console_access": False, "access_key": True, "owner_id": "UOWNER", "reason": "work", **kw})


def judge(book: Rulebook, s: RequestSpec, facts: IamFacts = FACTS) -> gate.Verdict:
    plan, docs = plan_create_user(s, facts, marker="RTEST01")
    return gate.judge(book, plan, docs, s)


# ---------------------------------------------------------------- the findings, closed


def test_a_forbidden_policy_through_a_group_is_refused() -> None:
    v = judge(EXAMPLE, spec(groups=("admins",)))
    assert v.denial == "joining group admins would grant AdministratorAccess, which the bot may never grant"


def test_copying_an_admin_is_refused() -> None:
    v = judge(EXAMPLE, spec(copy_from="root-ish"))
    assert v.denial == "joining group admins (copied from root-ish) would grant AdministratorAccess, which the bot may never grant"


def test_a_forbidden_action_in_a_groups_inline_policy_is_refused() -> None:
    assert judge(EXAMPLE, spec(groups=("inline-wild",))).denial == "joining group inline-wild would grant wild, which allows iam:*"


def test_auto_approval_only_when_every_item_is_allowlisted() -> None:
    alone = judge(EXAMPLE, spec(policy_arns=(READONLY,)))
    assert (alone.rule.name, alone.auto) == ("read-only", True)  # the catch-all listed after it no longer hides it
    mixed = judge(EXAMPLE, spec(policy_arns=(READONLY,), groups=("readers",)))
    assert (mixed.rule.name, mixed.auto) == ("everyone-else", False)
    assert "Not auto-approved by rule read-only: group `readers` is outside its allowlist" in mixed.risk["flags"]
    console = judge(EXAMPLE, spec(policy_arns=(READONLY,), console_access=True))
    assert not console.auto  # the rule allows access keys only


def test_a_strict_rule_matched_through_a_group_wins_over_everything() -> None:
    book = Rulebook(rules=EXAMPLE.rules)  # no guardrails: the rule must still see AdministratorAccess via the group
    v = judge(book, spec(policy_arns=(READONLY,), groups=("admins",)))
    assert (v.rule.name, v.rule.quorum, v.auto) == ("admin-grants", 2, False)


def test_what_could_not_be_read_is_never_auto_approved_and_holds_the_guardrails() -> None:
    unreadable = IamFacts(
        account=ACCOUNT,
        policies={READONLY: ManagedPolicy(READONLY, "v1", None)},
        unknown=("policy ReadOnlyAccess (Throttling)",),
    )
    v = judge(EXAMPLE, spec(policy_arns=(READONLY,)), unreadable)
    assert not v.auto and v.rule.name == "everyone-else"
    assert v.undecided == ("policy ReadOnlyAccess (Throttling)", "the document of ReadOnlyAccess")
    assert any(f.startswith("Not auto-approved by rule read-only: could not check policy ReadOnlyAccess") for f in v.risk["flags"])
    assert any(f.startswith("The guardrails could not be checked against") for f in v.risk["flags"])
    assert v.denial is None  # not refused on a guess either: held until it can be read


def test_privilege_escalation_is_flagged_and_never_auto_approved() -> None:
    book = Rulebook(rules=(Rule("self-service", auto_approve=True, match=Match(policies=("self-keys",))),), default_approvers=("UA1",))
    v = judge(book, spec(policy_arns=(KEYS,)))
    assert not v.auto and v.rule.name == "default"
    assert any(f.startswith("Privilege escalation possible") and "CreateAccessKey" in f for f in v.risk["flags"])
    assert "Not auto-approved by rule self-service: the grant allows privilege escalation" in v.risk["flags"]


def test_tag_keys_outside_the_allowlist_are_refused_and_rules_can_match_them() -> None:
    book = Rulebook(
        rules=(Rule("abac", approvers=("USEC",), quorum=1, match=Match(tags=("abac-*",))),),
        default_approvers=("UA1",),
        guardrails=Guardrails(allowed_tag_keys=("team", "abac-*")),
    )
    assert judge(book, spec(tags=(("team", "x"),))).rule.name == "default"
    assert judge(book, spec(tags=(("abac-role", "admin"),))).rule.name == "abac"
    assert judge(book, spec(tags=(("cost", "1"),))).denial == "Tag key `cost` may not be set here (allowed: `team`, `abac-*`)"
    assert judge(Rulebook(), spec(tags=(("aws:x", "1"),))).denial == "The tag key `aws:x` is reserved; remove it"


def test_escalation_never_lowers_the_bar_unless_the_file_says_so() -> None:
    from bot.policy.rulebook import Reminders

    rule = Rule("strict", approvers=("UA1", "UA2"), quorum=2)
    asked_only = Rulebook(rules=(rule,), reminders=Reminders(first_after_hours=1, escalate_to=("UBOSS", "SOPS")))
    assert asked_only.approvers_for(rule, escalated=True) == (("UA1", "UA2"), ())
    approving = Rulebook(rules=(rule,), reminders=Reminders(first_after_hours=1, escalate_to=("UBOSS", "SOPS"), escalation_approves=True))
    assert approving.approvers_for(rule, escalated=True) == (("UA1", "UA2", "UBOSS"), ("SOPS",))
    assert approving.approvers_for(rule, escalated=False) == (("UA1", "UA2"), ())


# ---------------------------------------------------------------- rules that can never take effect


def test_rules_that_can_never_take_effect_are_named() -> None:
    book = Rulebook(
        rules=(
            Rule("keys-need-a-lead", approvers=("UL",), match=Match(access="key")),
            Rule("ro", auto_approve=True, match=Match(policies=("ReadOnlyAccess",), access="key")),
            Rule("prod", approvers=("UP",), match=Match(paths=("/prod/*",))),
            Rule("admins-auto", auto_approve=True, match=Match(policies=("AdministratorAccess",))),
        ),
        guardrails=Guardrails(forbidden_policies=("AdministratorAccess",)),
    )
    lines = never_effective(book, path_prefix="/iam-bot/")
    assert lines == [
        "rule ro (automatic) never approves anything: every request it covers also matches rule keys-need-a-lead, which needs a person",
        "rule prod: its paths /prod/* all lie outside IAM_BOT_USER_PATH_PREFIX /iam-bot/, where every user is created",
        "rule admins-auto (automatic) allowlists AdministratorAccess, which guardrails.forbidden_policies refuses anyway",
    ]
    assert never_effective(EXAMPLE) == []


# ---------------------------------------------------------------- property: the gate cannot be walked around

GROUPS = ("admins", "readers", "inline-wild", "devs")
POLICIES = (ADMIN, READONLY, S3READ, KEYS)
NAMES = {ADMIN: "AdministratorAccess", READONLY: "ReadOnlyAccess", S3READ: "s3-read", KEYS: "self-keys"}


@st.composite
def worlds(draw: Any) -> tuple[Rulebook, RequestSpec, IamFacts]:
    readable = POLICIES if draw(st.booleans()) else draw(st.lists(st.sampled_from(POLICIES), unique=True))
    policies = {arn: ManagedPolicy(arn, "v1", DOCS[arn]) if arn in readable else ManagedPolicy(arn) for arn in POLICIES}
    groups = {
        g: GroupFacts(g, attached=tuple(draw(st.lists(st.sampled_from(POLICIES if draw(st.booleans()) else (READONLY, S3READ)), unique=True, max_size=2))),
                      inline=(InlinePolicy("wild", doc("iam:*")),) if g == "inline-wild" else ())
        for g in GROUPS
    }
    copy = draw(st.sampled_from([None, "source"]))
    users = {"source": UserFacts("source", groups=tuple(draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))),
                                 attached=tuple(draw(st.lists(st.sampled_from(POLICIES), unique=True, max_size=2))))}
    unknown = tuple(f"policy {NAMES[a]} (Throttling)" for a in POLICIES if a not in readable)
    facts = IamFacts(account=ACCOUNT, groups=groups, users=users, policies=policies, unknown=unknown)
    allow = st.lists(st.sampled_from([*GROUPS, "*"]), unique=True, max_size=3)
    allow_p = st.lists(st.sampled_from([*NAMES.values(), "*"]), unique=True, max_size=3)
    rules = []
    for i in range(draw(st.integers(0, 2))):
        rules.append(Rule(f"auto{i}", auto_approve=True, match=Match(
            groups=tuple(draw(allow)) or None, policies=tuple(draw(allow_p)) or None,
            copy_from=draw(st.sampled_from([None, True])), access=draw(st.sampled_from([None, "key", "console", "both"])))))
    for i in range(draw(st.integers(0, 2))):
        rules.append(Rule(f"manual{i}", approvers=("UM",), match=Match(policies=tuple(draw(allow_p)) or None, groups=tuple(draw(allow)) or None)))
    if draw(st.booleans()):
        rules.append(Rule("catch-all", approvers=("UC",)))
    rules = draw(st.permutations(rules))
    forbidden = tuple(draw(st.lists(st.sampled_from(list(NAMES.values())), unique=True, max_size=2)))
    actions = tuple(draw(st.lists(st.sampled_from(["*", "iam:*", "iam:CreateAccessKey"]), unique=True, max_size=2)))
    book = Rulebook(rules=tuple(rules), default_approvers=("UD",), guardrails=Guardrails(forbidden_policies=forbidden, forbidden_actions=actions))
    s = spec(
        groups=tuple(draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))),
        policy_arns=tuple(draw(st.lists(st.sampled_from(POLICIES), unique=True, max_size=2))),
        copy_from=copy,
        console_access=draw(st.booleans()),
    )
    return book, s, facts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_auto_approval_implies_everything_allowlisted_and_a_forbidden_item_anywhere_is_refused(world: tuple[Rulebook, RequestSpec, IamFacts]) -> None:
    book, s, facts = world
    plan, docs = plan_create_user(s, facts, marker="RPROP01")
    v = gate.judge(book, plan, docs, s)
    held = [g for g in plan.grant.policies]
    if v.auto:
        m = v.rule.match
        for step in plan.steps:
            if step.kind is StepKind.ADD_TO_GROUP:
                assert any(glob_match(step.target, p) for p in m.groups or ())
            if step.kind is StepKind.ATTACH_POLICY:
                assert policy_matches(step.target, m.policies or ())
            assert step.kind is not StepKind.PUT_USER_POLICY
        assert not plan.grant.unknown and not v.undecided
        assert all(g.document is not None for g in held)
        assert not any(r.specific and r.match.matches(Subject.of_plan(plan)) for r in book.rules)
        assert v.denial is None
    forbidden_anywhere = any(g.arn and policy_matches(g.arn, book.guardrails.forbidden_policies) for g in held)
    if forbidden_anywhere:
        assert v.denial is not None  # denied on the plan: it never reaches an approver or the apply job
    if "*" in book.guardrails.forbidden_actions and any(g.document and docs[g.document] == DOCS[ADMIN] for g in held):
        assert v.denial is not None
    if v.denial is None and v.undecided:
        assert not v.auto  # held back: the apply job reads again before anything is created
