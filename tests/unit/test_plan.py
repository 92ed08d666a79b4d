"""Plans as pure functions over IAM facts: what each kind of input resolves to, the digest, drift, changes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.common.constants import MARKER_TAG
from bot.domain.facts import GroupFacts, IamFacts, InlinePolicy, ManagedPolicy, UserFacts
from bot.domain.plan import Plan, PlanKind, Step, StepKind, changes, document_hash, group_drift, plan_digest, policy_drift
from bot.domain.spec import RequestSpec
from bot.iam.errors import AwsError
from bot.requests.planner import gather_facts, plan_create_user

ACCOUNT = "123456789012"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
S3READ = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:policy/team/deploy"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/dev-boundary"
DOC_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
DOC_DEPLOY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["lambda:UpdateFunctionCode"], "Resource": "*"}]}
DOC_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
DOC_READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "ec2:Describe*"], "Resource": "*"}]}
DOC_BOUND = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "lambda:*"], "Resource": "*"}]}
INLINE_LOGS = InlinePolicy("read-logs", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:Get*", "Resource": "*"}]})
INLINE_TEAM = InlinePolicy("team-extra", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]})

POLICIES = {
    READONLY: ManagedPolicy(READONLY, "v108", DOC_READ),
    ADMIN: ManagedPolicy(ADMIN, "v1", DOC_ALL),
    S3READ: ManagedPolicy(S3READ, "v2", DOC_S3),
    DEPLOY: ManagedPolicy(DEPLOY, "v5", DOC_DEPLOY),
    BOUNDARY: ManagedPolicy(BOUNDARY, "v1", DOC_BOUND),
}
GROUPS = {
    "developers": GroupFacts("developers", attached=(DEPLOY,), inline=(INLINE_TEAM,)),
    "readers": GroupFacts("readers", attached=(READONLY,)),
    "admins": GroupFacts("admins", attached=(ADMIN,)),
}
TEMPLATE = UserFacts("template", groups=("readers", "admins"), attached=(S3READ,), inline=(INLINE_LOGS,), boundary=BOUNDARY)


def spec(**kw: object) -> RequestSpec:
    base: dict[str, object] = dict(user_name="alice", console_access=True, access_key=False, owner_id="UOWNER", reason="work")
    return RequestSpec(**{**base, **kw})  # type: ignore[arg-type]


def facts(**kw: object) -> IamFacts:
    base: dict[str, object] = dict(account=ACCOUNT, users={"template": TEMPLATE}, groups=GROUPS, policies=POLICIES)
    return IamFacts(**{**base, **kw})  # type: ignore[arg-type]


def kinds(plan: Plan) -> list[tuple[str, str, str]]:
    return [(s.kind.value, s.target, s.origin) for s in plan.steps]


def grants(plan: Plan) -> set[tuple[str | None, str, str | None, str]]:
    return {(g.group, g.name, g.version, g.origin) for g in plan.grant.policies}


# ---------------------------------------------------------------- what each kind of input resolves to


def test_groups_resolve_to_their_policies_with_versions_and_documents() -> None:
    plan, docs = plan_create_user(spec(groups=("developers", "readers")), facts(), marker="R1")
    assert kinds(plan) == [
        ("create_user", "", ""),
        ("add_to_group", "developers", ""),
        ("add_to_group", "readers", ""),
        ("create_login_profile", "", ""),
    ]
    assert grants(plan) == {("developers", "deploy", "v5", ""), ("developers", "team-extra", None, ""), ("readers", "ReadOnlyAccess", "v108", "")}
    # Every document the grant names is handed over with it, keyed by its hash.
    assert plan.grant.documents == set(docs)
    assert docs[document_hash(DOC_DEPLOY)] == DOC_DEPLOY and docs[document_hash(INLINE_TEAM.document)] == INLINE_TEAM.document
    assert plan.grant.direct == () and plan.grant.boundary is None


def test_policies_are_attached_directly_with_their_versions() -> None:
    plan, docs = plan_create_user(spec(policy_arns=(S3READ, READONLY), access_key=True, console_access=False), facts(), marker="R1")
    assert kinds(plan) == [
        ("create_user", "", ""),
        ("attach_policy", S3READ, ""),
        ("attach_policy", READONLY, ""),
        ("create_access_key", "", ""),
    ]
    assert {(g.arn, g.version, g.document) for g in plan.grant.direct} == {
        (S3READ, "v2", document_hash(DOC_S3)),
        (READONLY, "v108", document_hash(DOC_READ)),
    }


def test_copy_resolves_into_concrete_groups_policies_inline_documents_and_boundary() -> None:
    plan, docs = plan_create_user(spec(copy_from="template", groups=("readers",), console_access=True, access_key=True), facts(), marker="R7")
    copied = "copied from template"
    assert kinds(plan) == [
        ("create_user", "", copied),  # the boundary came from the copy
        ("add_to_group", "readers", ""),  # asked for: not marked as copied, not added twice
        ("add_to_group", "admins", copied),
        ("attach_policy", S3READ, copied),
        ("put_user_policy", "read-logs", copied),
        ("create_login_profile", "", ""),
        ("create_access_key", "", ""),
    ]
    create = plan.steps[0]
    assert create.boundary == BOUNDARY and plan.grant.boundary is not None and plan.grant.boundary.version == "v1"
    inline = plan.step(StepKind.PUT_USER_POLICY, "read-logs")
    assert inline is not None and docs[inline.document or ""] == INLINE_LOGS.document  # the document itself, as read
    assert ("admins", "AdministratorAccess", "v1", copied) in grants(plan)  # what the copied group brings is in the grant
    assert plan.copied_from == "template"


def test_an_asked_boundary_wins_over_the_copied_one() -> None:
    plan, _ = plan_create_user(spec(copy_from="template", permissions_boundary=S3READ), facts(), marker="R1")
    assert plan.steps[0].boundary == S3READ and plan.steps[0].origin == ""


@pytest.mark.parametrize(
    "console,key,expected",
    [(True, False, ["create_login_profile"]), (False, True, ["create_access_key"]), (True, True, ["create_login_profile", "create_access_key"])],
)
def test_both_access_types(console: bool, key: bool, expected: list[str]) -> None:
    plan, _ = plan_create_user(spec(console_access=console, access_key=key), facts(), marker="R1")
    assert [s.kind.value for s in plan.steps][1:] == expected


def test_the_user_is_created_with_path_tags_and_the_bots_marker() -> None:
    plan, _ = plan_create_user(spec(path="/eng/", tags=(("team", "pay"),)), facts(), marker="RABC123")
    assert plan.steps[0] == Step(StepKind.CREATE_USER, path="/eng/", tags=(("team", "pay"), (MARKER_TAG, "RABC123")))
    assert plan.account == ACCOUNT and plan.user_name == "alice" and plan.kind is PlanKind.CREATE_USER


def test_what_could_not_be_read_is_named_and_unversioned() -> None:
    unread = dict(POLICIES)
    unread[S3READ] = ManagedPolicy(S3READ)
    plan, docs = plan_create_user(spec(policy_arns=(S3READ,)), facts(policies=unread, unknown=("policy s3-read (AccessDenied)",)), marker="R1")
    (g,) = plan.grant.direct
    assert g.version is None and g.document is None
    assert plan.grant.unknown == ("policy s3-read (AccessDenied)",)


# ---------------------------------------------------------------- the digest


def test_the_digest_covers_every_step_and_every_document() -> None:
    plan, _ = plan_create_user(spec(groups=("developers",)), facts(), marker="R1")
    assert plan.digest == plan_digest(plan.to_body()) and len(plan.digest) == 64
    # The same facts give the same plan (stable), a round trip through JSON keeps it.
    again, _ = plan_create_user(spec(groups=("developers",)), facts(), marker="R1")
    assert again.digest == plan.digest
    assert Plan.from_body(json.loads(json.dumps(plan.to_body()))) == plan
    # A group's policy document that differs (same name, same version label) changes the digest.
    changed = dict(GROUPS)
    changed["developers"] = GroupFacts("developers", attached=(DEPLOY,), inline=(InlinePolicy("team-extra", DOC_ALL),))
    other, _ = plan_create_user(spec(groups=("developers",)), facts(groups=changed), marker="R1")
    assert other.digest != plan.digest


def test_an_unknown_plan_format_is_refused() -> None:
    plan, _ = plan_create_user(spec(), facts(), marker="R1")
    with pytest.raises(ValueError):
        Plan.from_body({**plan.to_body(), "format": 99})


# ---------------------------------------------------------------- drift


def _plan() -> Plan:
    return plan_create_user(spec(groups=("developers",), policy_arns=(S3READ,), permissions_boundary=BOUNDARY), facts(), marker="R1")[0]


def test_a_group_exactly_as_planned_or_with_less_is_not_drift() -> None:
    plan = _plan()
    inline = {INLINE_TEAM.name: document_hash(INLINE_TEAM.document)}
    assert group_drift(plan, "developers", attached={DEPLOY: "v5"}, inline=inline) == []
    assert group_drift(plan, "developers", attached={}, inline={}) == []  # it grants less now: nothing unapproved


@pytest.mark.parametrize(
    "attached,inline,words",
    [
        ({DEPLOY: "v5", ADMIN: "v1"}, None, "now also has `AdministratorAccess` attached"),
        ({DEPLOY: "v6"}, None, "changed its default version from v5 to v6"),
        ({DEPLOY: "v5"}, {"team-extra": document_hash(DOC_ALL)}, "inline policy `team-extra` of group `developers` was changed"),
        ({DEPLOY: "v5"}, {"team-extra": document_hash(INLINE_TEAM.document), "more": "x"}, "new inline policy `more`"),
    ],
)
def test_a_group_that_would_grant_more_is_drift(attached: dict, inline: dict | None, words: str) -> None:
    inline = inline if inline is not None else {INLINE_TEAM.name: document_hash(INLINE_TEAM.document)}
    found = group_drift(_plan(), "developers", attached=attached, inline=inline)
    assert len(found) == 1 and words in found[0]


def test_policy_and_boundary_versions() -> None:
    plan = _plan()
    assert policy_drift(plan, S3READ, version="v2") == []
    assert "from v2 to v3" in policy_drift(plan, S3READ, version="v3")[0]
    assert policy_drift(plan, BOUNDARY, version="v1", boundary=True) == []
    assert "permissions boundary" in policy_drift(plan, BOUNDARY, version="v2", boundary=True)[0]


def test_something_that_could_not_be_read_counts_as_changed_once_it_can() -> None:
    unread = dict(POLICIES)
    unread[S3READ] = ManagedPolicy(S3READ)
    plan, _ = plan_create_user(spec(policy_arns=(S3READ,)), facts(policies=unread), marker="R1")
    assert "from unknown to v2" in policy_drift(plan, S3READ, version="v2")[0]


def test_changes_between_two_plans_name_what_grants_more() -> None:
    old = _plan()
    changed = dict(GROUPS)
    changed["developers"] = GroupFacts("developers", attached=(DEPLOY, ADMIN), inline=(INLINE_TEAM,))
    moved = dict(POLICIES)
    moved[S3READ] = replace(POLICIES[S3READ], version="v3")
    new, _ = plan_create_user(spec(groups=("developers",), policy_arns=(S3READ,), permissions_boundary=BOUNDARY), facts(groups=changed, policies=moved), marker="R1")
    words = changes(old, new)
    assert "now grants `AdministratorAccess` through group `developers`" in words
    assert "`s3-read`: default version v2 -> v3" in words
    assert changes(old, old) == []


# ---------------------------------------------------------------- reading the facts (the one impure part)


class FakeIam:
    """IAM as a reader of facts, to test what is asked and how errors are sorted (not AWS itself: that is moto's job)."""

    def __init__(self, fail: dict[str, str] | None = None):
        self.fail = fail or {}
        self.asked: list[str] = []

    def _check(self, what: str) -> None:
        self.asked.append(what)
        if what in self.fail:
            raise AwsError(self.fail[what], "no", action=what)

    def read_user(self, name: str) -> UserFacts:
        self._check(f"user:{name}")
        return TEMPLATE

    def read_group(self, name: str) -> GroupFacts:
        self._check(f"group:{name}")
        return GROUPS[name]

    def read_policy(self, arn: str) -> ManagedPolicy:
        self._check(f"policy:{arn}")
        return POLICIES[arn]

    def account_id(self) -> str:
        return ACCOUNT


def test_gather_reads_the_copy_source_then_every_group_and_policy_once() -> None:
    iam = FakeIam()
    got = gather_facts(iam, spec(copy_from="template", groups=("readers",), policy_arns=(READONLY,)))
    assert iam.asked == ["user:template", "group:readers", "group:admins", f"policy:{READONLY}", f"policy:{S3READ}", f"policy:{ADMIN}", f"policy:{BOUNDARY}"]
    assert set(got.groups) == {"readers", "admins"} and got.missing == () and got.unknown == ()


def test_gather_sorts_missing_from_unreadable_and_raises_transient() -> None:
    got = gather_facts(FakeIam(fail={"group:readers": "NoSuchEntity", f"policy:{S3READ}": "AccessDenied"}), spec(groups=("readers",), policy_arns=(S3READ,)))
    assert got.missing == ("group readers",)
    assert got.unknown == ("policy s3-read (AccessDenied)",)
    assert got.policies[S3READ].version is None
    with pytest.raises(AwsError):
        gather_facts(FakeIam(fail={"group:readers": "Throttling"}), spec(groups=("readers",)))


# ---------------------------------------------------------------- a property: the grant is exactly the steps' grant


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(st.sampled_from(sorted(GROUPS)), unique=True, max_size=3),
    policies=st.lists(st.sampled_from(sorted(POLICIES)), unique=True, max_size=4),
    copy=st.booleans(),
)
def test_every_policy_the_user_holds_comes_from_a_step(groups: list[str], policies: list[str], copy: bool) -> None:
    plan, docs = plan_create_user(spec(groups=tuple(groups), policy_arns=tuple(policies), copy_from="template" if copy else None), facts(), marker="R1")
    group_steps = {s.target for s in plan.steps if s.kind is StepKind.ADD_TO_GROUP}
    attached = {s.target for s in plan.steps if s.kind is StepKind.ATTACH_POLICY}
    inline = {s.target for s in plan.steps if s.kind is StepKind.PUT_USER_POLICY}
    for g in plan.grant.policies:
        if g.group is not None:
            assert g.group in group_steps
        elif g.arn is not None:
            assert g.arn in attached
        else:
            assert g.name in inline
    for name in group_steps:  # and every group's policies are in the grant
        assert {g.name for g in plan.grant.via_group(name)} == {p.rsplit("/", 1)[-1] for p in GROUPS[name].attached} | {p.name for p in GROUPS[name].inline}
    assert plan.grant.documents <= set(docs)
    assert len({s.key for s in plan.steps}) == len(plan.steps)  # no step twice
