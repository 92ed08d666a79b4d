"""bot/policy/rulebook.py and the quorum predicates of bot/policy/approval.py, as plain functions, table-driven."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.policy import approval as rules
from bot.common.errors import ConfigError
from bot.policy.documents import forbidden_grants
from bot.policy.guardrails import Guardrails
from bot.policy.rulebook import Match, Reminders, Rule, Rulebook
from bot.policy.rules_file import load_rulebook
from bot.policy.subject import Subject
from bot.domain.spec import RequestSpec
from models import RequestState

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
CUSTOM = "arn:aws:iam::123456789012:policy/team/deploy-payments"
BOUNDARY = "arn:aws:iam::123456789012:policy/iam-bot-boundary"
PROD_BOUNDARY = "arn:aws:iam::123456789012:policy/prod-boundary"


def spec(**kw) -> RequestSpec:
    base = dict(user_name="dev01", console_access=True, access_key=False, owner_id="UOWNER", reason="work")
    return RequestSpec(**{**base, **kw})


# ---------------------------------------------------------------- matching

MATCHES = [
    ("no keys matches all", Match(), spec(), True),
    ("policy by name glob", Match(policies=("*Admin*",)), spec(policy_arns=(ADMIN,)), True),
    ("policy glob is case-insensitive", Match(policies=("*admin*",)), spec(policy_arns=(ADMIN,)), True),
    ("policy by ARN glob", Match(policies=("arn:aws:iam::123456789012:policy/team/*",)), spec(policy_arns=(CUSTOM,)), True),
    ("policy not requested", Match(policies=("*Admin*",)), spec(policy_arns=(READONLY,)), False),
    ("any of several policies", Match(policies=("*Admin*",)), spec(policy_arns=(READONLY, ADMIN)), True),
    ("group glob", Match(groups=("admin*",)), spec(groups=("devs", "admins")), True),
    ("group absent", Match(groups=("admins",)), spec(groups=("devs",)), False),
    ("copy_from true, copying", Match(copy_from=True), spec(copy_from="root-ish"), True),
    ("copy_from true, not copying", Match(copy_from=True), spec(), False),
    ("copy_from glob", Match(copy_from=("ops-*",)), spec(copy_from="ops-lead"), True),
    ("copy_from glob miss", Match(copy_from=("ops-*",)), spec(copy_from="dev-lead"), False),
    ("path glob", Match(paths=("/prod/*",)), spec(path="/prod/payments/"), True),
    ("path glob miss", Match(paths=("/prod/*",)), spec(path="/dev/"), False),
    ("access console", Match(access="console"), spec(console_access=True), True),
    ("access key, console only", Match(access="key"), spec(console_access=True, access_key=False), False),
    ("access both", Match(access="both"), spec(console_access=True, access_key=True), True),
    ("access both, one only", Match(access="both"), spec(console_access=False, access_key=True), False),
    ("AND: all keys must match", Match(policies=("*Admin*",), paths=("/prod/*",)), spec(policy_arns=(ADMIN,), path="/dev/"), False),
    ("AND: both match", Match(policies=("*Admin*",), paths=("/prod/*",)), spec(policy_arns=(ADMIN,), path="/prod/x/"), True),
]


@pytest.mark.parametrize("match,request_spec,expected", [m[1:] for m in MATCHES], ids=[m[0] for m in MATCHES])
def test_match(match: Match, request_spec: RequestSpec, expected: bool) -> None:
    assert match.matches(Subject.of_spec(request_spec)) is expected


def subject(**kw) -> Subject:
    return Subject(**{"path": "/", "console": False, "key": True, **kw})


def test_match_judges_what_is_held_through_groups_and_copies() -> None:
    admin_via_group = subject(groups=("ops",), held=(ADMIN,))
    assert Match(policies=("*Admin*",)).matches(admin_via_group)
    assert Match(policies=("break-glass",)).matches(subject(inline=("break-glass",)))  # inline policies by name
    assert Match(tags=("cost-*",)).matches(subject(tag_keys=("team", "cost-centre")))
    assert not Match(tags=("cost-*",)).matches(subject(tag_keys=("team",)))


UNCOVERED = [
    ("inside", Match(policies=("ReadOnlyAccess",), access="key"), subject(attached=(READONLY,), held=(READONLY,)), []),
    ("a group beside it", Match(policies=("ReadOnlyAccess",)), subject(attached=(READONLY,), groups=("admins",)), ["group `admins`"]),
    ("console beside a key-only rule", Match(policies=("ReadOnlyAccess",), access="key"), subject(console=True, attached=(READONLY,)), ["console access"]),
    ("copying is outside unless allowed", Match(policies=("ReadOnlyAccess",)), subject(copy_from="root", attached=(READONLY,)), ["copying from `root`"]),
    ("copied inline never inside", Match(copy_from=True, policies=("*",)), subject(copy_from="x", copied_inline=("all",)), ["inline policy `all` (copied)"]),
    ("tag keys when listed", Match(policies=("ReadOnlyAccess",), tags=("team",)), subject(attached=(READONLY,), tag_keys=("team", "abac-role")), ["tag `abac-role`"]),
    ("path when listed", Match(groups=("devs",), paths=("/dev/*",)), subject(path="/prod/", groups=("devs",)), ["path `/prod/`"]),
]


@pytest.mark.parametrize("match,subj,expected", [u[1:] for u in UNCOVERED], ids=[u[0] for u in UNCOVERED])
def test_an_allowlist_covers_every_item_or_says_what_is_outside(match: Match, subj: Subject, expected: list[str]) -> None:
    assert match.uncovered(subj) == expected


# ---------------------------------------------------------------- the winning rule

BOOK = Rulebook(
    rules=(
        Rule("readonly-auto", auto_approve=True, match=Match(policies=("ReadOnlyAccess",))),
        Rule("team-leads", approvers=("ULEAD1", "ULEAD2"), quorum=1, match=Match(groups=("devs",))),
        Rule("admin-grants", approvers=("UAAA", "UBBB", "SSECURITY"), quorum=2, match=Match(policies=("*Admin*",))),
        Rule("prod", approvers=("UPROD1", "UPROD2"), quorum=2, match=Match(paths=("/prod/*",))),
    ),
    default_approvers=("UDEFAULT",),
)

WINNERS = [
    ("nothing matches: the default rule", spec(), "default", 1, False),
    ("one match", spec(groups=("devs",)), "team-leads", 1, False),
    ("auto-approve alone", spec(policy_arns=(READONLY,)), "readonly-auto", 1, True),
    ("auto needs every item inside", spec(policy_arns=(READONLY, CUSTOM)), "default", 1, False),
    ("manual beats auto", spec(policy_arns=(READONLY,), groups=("devs",)), "team-leads", 1, False),
    ("higher quorum wins", spec(groups=("devs",), policy_arns=(ADMIN,)), "admin-grants", 2, False),
    ("equal quorum: first in the file", spec(policy_arns=(ADMIN,), path="/prod/a/"), "admin-grants", 2, False),
]


@pytest.mark.parametrize("request_spec,name,quorum,auto", [w[1:] for w in WINNERS], ids=[w[0] for w in WINNERS])
def test_most_demanding_rule_wins(request_spec: RequestSpec, name: str, quorum: int, auto: bool) -> None:
    ev = BOOK.evaluate(request_spec, "UREQ")
    assert (ev.rule_name, ev.quorum, ev.auto_approve) == (name, quorum, auto)


def test_evaluation_splits_users_and_groups() -> None:
    ev = BOOK.evaluate(spec(policy_arns=(ADMIN,)), "UREQ")
    assert ev.approver_users == ("UAAA", "UBBB") and ev.approver_groups == ("SSECURITY",)
    assert BOOK.evaluate(spec(), "UREQ").approver_users == ("UDEFAULT",)


# ---------------------------------------------------------------- guardrails

GUARDED = Rulebook(
    default_approvers=("UDEFAULT",),
    guardrails=Guardrails(
        forbidden_policies=("AdministratorAccess", "arn:aws:iam::*:policy/*Admin*"),
        forbidden_actions=("*", "iam:*"),
        required_boundaries=(("/", BOUNDARY), ("/prod/", PROD_BOUNDARY)),
        requesters=("UREQ", "SREQUESTERS"),
        max_groups=2,
        max_policies=2,
    ),
)
WILD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
IAM_ALL = {"Statement": {"Effect": "Allow", "Action": ["s3:Get*", "iam:*"], "Resource": "*"}}
NOT_ACTION = {"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}
NARROW = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "iam:GetUser"], "Resource": "*"}, {"Effect": "Deny", "Action": "*", "Resource": "*"}]}

REFUSALS = [
    ("all fine", dict(), "UREQ", (), {}, []),
    ("requester not listed", dict(), "UOTHER", (), {}, ["requester"]),
    ("requester in a listed group", dict(), "UOTHER", ("SREQUESTERS",), {}, []),
    ("forbidden AWS-managed policy by name", dict(policy_arns=(ADMIN,)), "UREQ", (), {}, ["policies"]),
    ("forbidden customer policy by ARN glob", dict(policy_arns=("arn:aws:iam::123456789012:policy/TeamAdmins",)), "UREQ", (), {}, ["policies"]),
    ("too many groups", dict(groups=("a", "b", "c")), "UREQ", (), {}, ["groups"]),
    ("too many policies", dict(policy_arns=(READONLY, CUSTOM, "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")), "UREQ", (), {}, ["policies"]),
    ("customer policy allowing *", dict(policy_arns=(CUSTOM,)), "UREQ", (), {CUSTOM: WILD}, ["policies"]),
    ("customer policy allowing iam:*", dict(policy_arns=(CUSTOM,)), "UREQ", (), {CUSTOM: IAM_ALL}, ["policies"]),
    ("Allow with NotAction is as broad as *", dict(policy_arns=(CUSTOM,)), "UREQ", (), {CUSTOM: NOT_ACTION}, ["policies"]),
    ("narrow customer policy", dict(policy_arns=(CUSTOM,)), "UREQ", (), {CUSTOM: NARROW}, []),
    ("wrong boundary", dict(permissions_boundary=PROD_BOUNDARY), "UREQ", (), {}, ["boundary"]),
    ("no boundary", dict(permissions_boundary=None), "UREQ", (), {}, ["boundary"]),
    ("longest prefix wins", dict(path="/prod/pay/", permissions_boundary=BOUNDARY), "UREQ", (), {}, ["boundary"]),
    ("prod boundary under /prod/", dict(path="/prod/pay/", permissions_boundary=PROD_BOUNDARY), "UREQ", (), {}, []),
    ("several at once", dict(groups=("a", "b", "c"), permissions_boundary=None), "UOTHER", (), {}, ["requester", "boundary", "groups"]),
]


@pytest.mark.parametrize(
    "fields,requester,groups,docs,expected", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_guardrail_refusals(fields: dict, requester: str, groups: tuple, docs: dict, expected: list[str]) -> None:
    s = spec(**{"permissions_boundary": BOUNDARY, **fields})
    ev = GUARDED.evaluate(s, requester, groups, policy_documents=docs)
    assert [f for f, _ in ev.refusals] == expected
    assert ev.allowed is (not expected)


def test_path_prefix_and_boundary_setting() -> None:
    book = Rulebook.default(["UAAA1"])
    ev = book.evaluate(spec(path="/other/"), "UREQ", path_prefix="/iam-bot/", boundary_setting=BOUNDARY)
    assert [f for f, _ in ev.refusals] == ["path", "boundary"]
    assert ev.required_boundary == BOUNDARY
    ok = book.evaluate(spec(path="/iam-bot/team/", permissions_boundary=BOUNDARY), "UREQ", path_prefix="/iam-bot/", boundary_setting=BOUNDARY)
    assert ok.refusals == ()
    # The file's per-prefix boundary overrides the setting under that prefix.
    assert GUARDED.required_boundary("/prod/x/", setting="arn:aws:iam::123456789012:policy/other") == PROD_BOUNDARY


@pytest.mark.parametrize(
    "doc,forbidden,expected",
    [
        (WILD, ("iam:*",), ["iam:*"]),
        ({"Statement": [{"Effect": "Allow", "Action": "IAM:*", "Resource": "*"}]}, ("iam:*",), ["iam:*"]),
        ({"Statement": [{"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*"}]}, ("iam:*", "*"), []),
        ({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}, ("*",), []),
    ],
)
def test_forbidden_grants(doc: dict, forbidden: tuple, expected: list) -> None:
    assert forbidden_grants(doc, forbidden) == expected


def test_reminder_backoff() -> None:
    r = Reminders(first_after_hours=4, backoff=2, max=3)
    assert [r.delay_hours(n) for n in range(3)] == [4, 8, 16]


# ---------------------------------------------------------------- deciding, quorum

APPROVERS = frozenset({"UAPPROVER", "UBOB", "UREQ"})
DECISIONS = [
    ("listed approver", dict(actor_id="UBOB"), None),
    ("not an approver", dict(actor_id="UNOBODY"), "designated approver"),
    ("own request", dict(actor_id="UREQ"), "your own request"),
    ("would own the account", dict(actor_id="UAPPROVER", owner_id="UAPPROVER"), "would own"),
    ("already approved by this person", dict(actor_id="UBOB", approved_by=frozenset({"UBOB"}), quorum=2), "already approved this request; it needs 1 more"),
    ("second, different approver", dict(actor_id="UAPPROVER", approved_by=frozenset({"UBOB"}), quorum=2), None),
    ("decided already", dict(actor_id="UBOB", state=RequestState.DENIED, decided_by="UAPPROVER"), "already denied by <@UAPPROVER>"),
    ("expired", dict(actor_id="UBOB", state=RequestState.EXPIRED), "expired"),
    ("auto-approved by the bot", dict(actor_id="UBOB", state=RequestState.APPROVED, decided_by="iam-bot"), "already approved by iam-bot"),
]


@pytest.mark.parametrize("fields,fragment", [d[1:] for d in DECISIONS], ids=[d[0] for d in DECISIONS])
def test_refusal_to_decide(fields: dict, fragment: str | None) -> None:
    ctx = rules.DecisionContext(
        **{"requester_id": "UREQ", "owner_id": "UOWNER", "approvers": APPROVERS, "state": RequestState.PENDING, **fields}
    )
    refusal = rules.refusal_to_decide(ctx)
    assert refusal is None if fragment is None else fragment in (refusal or "")


@pytest.mark.parametrize(
    "actor,users,groups,actor_groups,expected",
    [
        ("UA", ("UA",), (), (), True),
        ("UB", ("UA",), ("SSEC",), ("SSEC",), True),
        ("UB", ("UA",), ("SSEC",), (), False),  # left the group: no longer an approver
        ("UB", ("UA",), ("SSEC",), ("SOTHER",), False),
    ],
)
def test_may_approve(actor: str, users: tuple, groups: tuple, actor_groups: tuple, expected: bool) -> None:
    assert rules.may_approve(actor, approver_users=users, approver_groups=groups, actor_groups=actor_groups) is expected


@pytest.mark.parametrize(
    "decisions,quorum,reached,shown",
    [
        ([], 2, False, "0 of 2 approvals"),
        ([("UBOB", True)], 2, False, "1 of 2 approvals: <@UBOB>"),
        ([("UBOB", True), ("UBOB", True)], 2, False, "1 of 2 approvals: <@UBOB>"),  # the same person counts once
        ([("UBOB", True), ("UAMY", True)], 2, True, "2 of 2 approvals: <@UBOB>, <@UAMY>"),
        ([("UBOB", True), ("UAMY", False)], 2, False, "1 of 2 approvals: <@UBOB>"),
        ([("UBOB", True)], 1, True, "1 of 1 approval: <@UBOB>"),
    ],
)
def test_quorum_counting(decisions: list, quorum: int, reached: bool, shown: str) -> None:
    approvals = rules.distinct_approvals(decisions)
    assert rules.quorum_reached(approvals, quorum) is reached
    assert rules.progress_text(approvals, quorum) == shown


# ---------------------------------------------------------------- the file

GOOD_YAML = """\
request_ttl_hours: 48
reminders: {first_after_hours: 4, backoff: 2, max: 3, escalate_to: ["U0BACKUP", "S0SECOPS"]}
guardrails:
  forbidden_policies: ["AdministratorAccess", "arn:aws:iam::*:policy/*Admin*"]
  forbidden_actions: ["*", "iam:*"]
  required_boundaries: {"/": "arn:aws:iam::123456789012:policy/iam-bot-boundary"}
  requesters: ["U0REQ", "S0DEVS"]
  max_groups: 5
  max_policies: 5
break_glass: {requesters: ["U0ONCALL"]}
rules:
  - name: admin-grants
    match: {policies: ["*Admin*"], groups: ["admins"], copy_from: true, paths: ["/prod/*"], access: both}
    approvers: ["U0AAA", "S0SECURITY"]
    quorum: 2
  - name: readonly
    match: {policies: ["ReadOnlyAccess"]}
    auto_approve: true
"""

GOOD_TOML = """\
request_ttl_hours = 48

[reminders]
first_after_hours = 4
escalate_to = ["U0BACKUP"]

[guardrails]
forbidden_policies = ["AdministratorAccess"]

[guardrails.required_boundaries]
"/" = "arn:aws:iam::123456789012:policy/iam-bot-boundary"

[[rules]]
name = "admin-grants"
approvers = ["U0AAA", "S0SECURITY"]
quorum = 2
match = { policies = ["*Admin*"] }

[[rules]]
name = "everything-else"
approvers = ["U0BBB"]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_good_yaml_loads(tmp_path: Path) -> None:
    book = load_rulebook(write(tmp_path, "rules.yml", GOOD_YAML), default_approvers=["UDEF"])
    assert [r.name for r in book.rules] == ["admin-grants", "readonly"]
    assert book.rules[0].match.access == "both" and book.rules[0].match.copy_from is True and book.rules[0].quorum == 2
    assert book.reminders == Reminders(first_after_hours=4, backoff=2, max=3, escalate_to=("U0BACKUP", "S0SECOPS"))
    assert book.guardrails.requesters == ("U0REQ", "S0DEVS") and book.guardrails.max_groups == 5
    assert book.break_glass and book.break_glass.requesters == ("U0ONCALL",)
    assert book.request_ttl_hours == 48 and not book.has_catch_all
    assert book.default_approvers == ("UDEF",)


def test_good_toml_loads(tmp_path: Path) -> None:
    book = load_rulebook(write(tmp_path, "rules.toml", GOOD_TOML))
    assert [r.name for r in book.rules] == ["admin-grants", "everything-else"]
    assert book.has_catch_all
    assert book.guardrails.required_boundaries == (("/", "arn:aws:iam::123456789012:policy/iam-bot-boundary"),)


def test_example_file_in_deploy_loads() -> None:
    book = load_rulebook(Path(__file__).resolve().parents[2] / "deploy" / "rules.example.yml")
    assert book.rules and book.guardrails.forbidden_policies
    assert book.guardrails.allowed_tag_keys == ("team", "project", "cost-center")


def test_tags_tag_allowlist_and_escalation_load(tmp_path: Path) -> None:
    text = """\
    reminders: {first_after_hours: 1, escalate_to: [U0BOSS], escalation_approves: true}
    guardrails: {allowed_tag_keys: [team, "cost-*"]}
    rules:
      - {name: abac, approvers: [U0SEC], match: {tags: ["abac-*"]}}
    """
    book = load_rulebook(write(tmp_path, "rules.yml", text))
    assert book.reminders and book.reminders.escalation_approves is True
    assert book.guardrails.allowed_tag_keys == ("team", "cost-*")
    assert book.rules[0].match.tags == ("abac-*",)
    none_allowed = load_rulebook(write(tmp_path, "none.yml", "guardrails: {allowed_tag_keys: []}\n"))
    assert none_allowed.guardrails.allowed_tag_keys == ()  # an empty list allows no tags at all
    assert load_rulebook(write(tmp_path, "any.yml", "guardrails: {}\n")).guardrails.allowed_tag_keys is None


BAD_YAML = [
    ("quorum out of range", "rules:\n  - name: a\n    approvers: [UAAA1, SBBB1]\n    quorum: 11\n", "rules.yml:4: rules[0].quorum: must be a whole number from 1 to 10"),
    ("typo in a key", "rules:\n  - name: a\n    approvers: [UAAA1]\n    quorom: 2\n", "rules.yml:4: rules[0].quorom: unknown key"),
    ("typo in match", "rules:\n  - name: a\n    approvers: [UAAA1]\n    match:\n      polices: [x]\n", "rules.yml:5: rules[0].match.polices: unknown key"),
    ("not a Slack id", "rules:\n  - name: a\n    approvers: [UAAA1, bob]\n", "rules.yml:3: rules[0].approvers[1]: 'bob' is not a Slack user ID"),
    ("no approvers", "rules:\n  - name: a\n    quorum: 1\n", "rules.yml:2: rules[0].approvers: list who may approve"),
    ("quorum above the users listed", "rules:\n  - name: a\n    approvers: [UAAA1]\n    quorum: 2\n", "rules.yml:4: rules[0].quorum: needs 2 approvals but lists only 1"),
    ("duplicate name", "rules:\n  - {name: a, approvers: [UAAA1]}\n  - {name: a, approvers: [UAAA1]}\n", "rules.yml:3: rules[1].name: the name 'a' is already used"),
    ("bad access", "rules:\n  - name: a\n    approvers: [UAAA1]\n    match: {access: web}\n", "rules.yml:4: rules[0].match.access: must be console, key or both"),
    ("unknown top-level key", "request_ttl: 5\n", "rules.yml:1: request_ttl: unknown key"),
    ("bad boundary ARN", "guardrails:\n  required_boundaries:\n    /prod/: not-an-arn\n", "rules.yml:3: guardrails.required_boundaries./prod/: must be a managed policy ARN"),
    ("bad ttl", "request_ttl_hours: 0\n", "rules.yml:1: request_ttl_hours: must be a number of hours above 0"),
    ("syntax error", "rules:\n  - name: a\n   approvers: [UA\n", "rules.yml:3: not valid YAML"),
    ("empty break-glass list", "break_glass: {requesters: []}\n", "rules.yml:1: break_glass.requesters: list at least one"),
    ("bad tag allowlist", "guardrails:\n  allowed_tag_keys: 5\n", "rules.yml:2: guardrails.allowed_tag_keys: must be a list of tag-key globs"),
    ("bad escalation flag", "reminders: {first_after_hours: 1, escalation_approves: yes please}\n", "rules.yml:1: reminders.escalation_approves: must be true or false"),
]


@pytest.mark.parametrize("text,expected", [b[1:] for b in BAD_YAML], ids=[b[0] for b in BAD_YAML])
def test_yaml_errors_name_their_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_rulebook(write(tmp_path, "rules.yml", text))
    lines = str(info.value).splitlines()
    assert all(line.startswith("IAM_BOT_RULES: rules.yml") for line in lines), lines
    assert any(line.startswith("IAM_BOT_RULES: " + expected) for line in lines), lines


def test_every_problem_is_its_own_line(tmp_path: Path) -> None:
    text = "rules:\n  - name: a\n    approvers: [UAAA1]\n    quorom: 2\n  - name: b\n    approvers: [bob]\n"
    with pytest.raises(ConfigError) as info:
        load_rulebook(write(tmp_path, "rules.yml", text))
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("IAM_BOT_RULES: rules.yml:4: rules[0].quorom") and lines[1].startswith("IAM_BOT_RULES: rules.yml:6: rules[1].approvers[0]")


BAD_TOML = [
    ("quorum out of range", '[[rules]]\nname = "a"\napprovers = ["UAAA1", "SBBB1"]\nquorum = 0\n', "rules.toml:4: rules[0].quorum: must be a whole number"),
    ("second rule's typo", '[[rules]]\nname = "a"\napprovers = ["UAAA1"]\n\n[[rules]]\nname = "b"\napprover = ["UAAA1"]\n', "rules.toml:7: rules[1].approver: unknown key"),
    ("guardrails key", '[guardrails]\nmax_groups = 50\n', "rules.toml:2: guardrails.max_groups: must be a whole number from 0 to 10"),
    ("syntax error", '[[rules]]\nname = "a\n', "rules.toml:2: not valid TOML"),
]


@pytest.mark.parametrize("text,expected", [b[1:] for b in BAD_TOML], ids=[b[0] for b in BAD_TOML])
def test_toml_errors_name_their_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_rulebook(write(tmp_path, "rules.toml", text))
    lines = str(info.value).splitlines()
    assert any(line.startswith("IAM_BOT_RULES: " + expected) for line in lines), lines


def test_unreadable_or_unknown_file_kind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^IAM_BOT_RULES: rules.json: use a .yml, .yaml or .toml file$"):
        load_rulebook(write(tmp_path, "rules.json", "{}"))
    with pytest.raises(ConfigError, match=r"^IAM_BOT_RULES: cannot read"):
        load_rulebook(tmp_path / "missing.yml")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("rules: []\n", {"rotate_key", "reset_password"}),  # owners serve themselves by default
        ("self_service: []\n", set()),
        ("self_service: [reset_password]\n", {"reset_password"}),
    ],
)
def test_self_service_says_which_asks_of_an_owner_need_no_approval(tmp_path: Path, text: str, expected: set[str]) -> None:
    assert load_rulebook(write(tmp_path, "rules.yml", text)).self_service == expected


@pytest.mark.parametrize("value", ["[create_user]", "rotate_key", "[offboard]"])
def test_self_service_refuses_what_it_cannot_mean(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="self_service"):
        load_rulebook(write(tmp_path, "rules.yml", f"self_service: {value}\n"))


def test_require_expiry_and_its_cap(tmp_path: Path) -> None:
    from datetime import date

    from bot.policy.guardrails import expiry_refusal

    book = load_rulebook(write(tmp_path, "rules.yml", "guardrails:\n  require_expiry: {paths: [/contractors/], groups: [vendor-*]}\n  max_expiry_days: 90\n"))
    g = book.guardrails
    assert (g.expiry_paths, g.expiry_groups, g.max_expiry_days) == (("/contractors/",), ("vendor-*",), 90)
    today = date(2026, 12, 3)
    assert "users under `/contractors/`" in (expiry_refusal(g, path="/contractors/x/", groups=(), expires_on=None, today=today) or "")
    assert "members of group `vendor-acme`" in (expiry_refusal(g, path="/", groups=("vendor-acme",), expires_on=None, today=today) or "")
    assert expiry_refusal(g, path="/", groups=("developers",), expires_on=None, today=today) is None
    assert "at most 90 days" in (expiry_refusal(g, path="/", groups=(), expires_on="2027-03-04", today=today) or "")
    assert expiry_refusal(g, path="/", groups=(), expires_on="2027-03-03", today=today) is None
    assert expiry_refusal(g, path="/", groups=(), expires_on="2099-01-01", today=None) is None  # at plan time only the need is judged


@pytest.mark.parametrize("text", ["guardrails:\n  require_expiry: {paths: [contractors]}\n", "guardrails:\n  require_expiry: {when: always}\n",
                                  "guardrails:\n  max_expiry_days: 0\n"])
def test_require_expiry_refuses_what_it_cannot_mean(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="require_expiry|max_expiry_days"):
        load_rulebook(write(tmp_path, "rules.yml", text))
