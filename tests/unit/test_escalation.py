"""bot/policy/escalation.py: privilege escalation and risks of a whole grant, judged by cloudsplaining."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.escalation import Findings, analyse, flags


def doc(*actions: str, resource: str | list[str] = "*", effect: str = "Allow", **extra) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": list(actions), "Resource": resource, **extra}]}


ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READ_ONLY = doc("s3:ListBucket", "ec2:Describe*")
PASS_ROLE = doc("iam:PassRole")
LAMBDA = doc("lambda:CreateFunction", "lambda:InvokeFunction")


def test_administrator_access_escalates_and_shows_everything() -> None:
    f = analyse([ADMIN])
    assert f.escalates
    assert {"CreateAccessKey", "AttachUserPolicy", "PutUserPolicy", "CreateNewPolicyVersion"} <= set(f.privilege_escalation)
    assert "iam:PutUserPolicy" in f.resource_exposure
    assert "s3:GetObject" in f.data_exfiltration
    assert "iam:CreateAccessKey" in f.credentials_exposure
    assert len(f.infrastructure_modification) > 1000


@pytest.mark.parametrize(
    ("action", "method"),
    [
        ("iam:CreateAccessKey", "CreateAccessKey"),
        ("iam:CreatePolicyVersion", "CreateNewPolicyVersion"),
        ("iam:AttachUserPolicy", "AttachUserPolicy"),
        ("iam:PutRolePolicy", "PutRolePolicy"),
        ("iam:Attach*", "AttachUserPolicy"),  # wildcards are expanded with policy_sentry's database
        ("IAM:createaccesskey", "CreateAccessKey"),  # actions are case-insensitive
        ("iam:?reateAccessKey", "CreateAccessKey"),  # `?` is widened, never ignored
    ],
)
def test_one_action_is_enough(action: str, method: str) -> None:
    f = analyse([doc(action)])
    assert f.escalates
    assert method in f.privilege_escalation


def test_pass_role_and_lambda_escalate_only_together() -> None:
    assert not analyse([PASS_ROLE]).escalates
    assert not analyse([LAMBDA]).escalates
    together = analyse([PASS_ROLE, LAMBDA])
    assert together.escalates
    assert "PassExistingRoleToNewLambdaThenInvoke" in together.privilege_escalation


def test_read_only_does_not_escalate_nor_modify() -> None:
    f = analyse([READ_ONLY])
    assert f == Findings()
    assert not f.escalates
    assert flags(f) == []


def test_nothing_to_judge() -> None:
    assert analyse([]) == Findings()
    assert analyse([{"Version": "2012-10-17", "Statement": []}]) == Findings()


def test_nothing_is_excluded() -> None:
    # cloudsplaining's default exclusions would leave s3:GetObject's kind out of some findings;
    # nothing is excluded here.
    assert analyse([doc("s3:GetObject")]).data_exfiltration == ("s3:GetObject",)


def test_deny_statements_neither_grant_nor_hide_a_grant() -> None:
    assert analyse([doc("iam:CreateAccessKey", effect="Deny")]) == Findings()
    deny_one_user = {
        "Statement": [
            {"Effect": "Deny", "Action": "iam:CreateAccessKey", "Resource": "arn:aws:iam::123456789012:user/root-ish"},
            {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"},
        ]
    }
    assert analyse([deny_one_user]).escalates


def test_conditions_do_not_make_a_grant_look_smaller() -> None:
    mfa = doc("iam:AttachUserPolicy", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    assert analyse([mfa]).escalates


def test_escalation_is_judged_whatever_the_resource_arn() -> None:
    # Attaching a policy to another user, or passing one role, is an escalation all the same.
    assert analyse([doc("iam:AttachUserPolicy", resource="arn:aws:iam::123456789012:user/alice")]).escalates
    scoped = [doc("iam:PassRole", resource="arn:aws:iam::123456789012:role/worker"), LAMBDA]
    assert analyse(scoped).escalates
    # ... while the other findings count only what is not constrained, as cloudsplaining reports them.
    bucket = analyse([doc("s3:GetObject", "s3:PutObject", resource="arn:aws:s3:::reports/*")])
    assert bucket == Findings()


def test_allow_with_not_action_is_broad() -> None:
    everything_but_s3 = {"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}
    f = analyse([everything_but_s3])
    assert f.escalates and "CreateAccessKey" in f.privilege_escalation
    assert not any(a.startswith("s3:") for a in f.infrastructure_modification)


def test_not_resource_with_allow_is_judged_as_everywhere() -> None:
    f = analyse([{"Statement": [{"Effect": "Allow", "Action": "iam:CreateAccessKey", "NotResource": "arn:aws:iam::123456789012:user/me"}]}])
    assert f.privilege_escalation == ("CreateAccessKey",)


def test_a_single_statement_object_is_read() -> None:
    f = analyse([{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}}])
    assert f.privilege_escalation == ("CreateAccessKey",)


@pytest.mark.parametrize(
    "malformed",
    [
        {"Statement": [{"Effect": "Allow", "Resource": "*"}]},  # no Action nor NotAction
        {"Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "NotAction": "s3:*", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": [None, 3], "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": {"iam:CreateAccessKey"}, "Resource": "*"}]},  # a set: not JSON either
        {"Statement": ["iam:CreateAccessKey"]},
        {"Statement": "Allow everything"},
        {"Version": "2012-10-17"},
        None,
        "not a document",
        # Read by us, refused by cloudsplaining (an action without a service prefix): judged as `*`.
        doc("CreateAccessKey"),
        doc("iam:Create:AccessKey"),
    ],
)
def test_what_cannot_be_read_is_judged_as_everything(malformed) -> None:
    f = analyse([READ_ONLY, malformed])
    assert f == analyse([ADMIN])


def test_a_statement_without_resource_is_judged_as_everywhere() -> None:
    f = analyse([{"Statement": [{"Effect": "Allow", "Action": "iam:CreateAccessKey"}]}])
    assert f.escalates


def test_the_same_grant_gives_the_same_findings() -> None:
    grant = [PASS_ROLE, LAMBDA]
    assert analyse(grant) == analyse(list(grant)) == analyse(iter(grant))


# --- flags ---


def test_flags_for_one_action() -> None:
    assert flags(analyse([doc("iam:CreateAccessKey")])) == [
        "Privilege escalation possible: `CreateAccessKey`",
        "Resource exposure: `iam:CreateAccessKey`",
        "Credentials exposure: `iam:CreateAccessKey`",
        "Infrastructure modification: `iam:CreateAccessKey`",
    ]


def test_flags_for_everything_count_and_stay_short() -> None:
    lines = flags(analyse([ADMIN]))
    assert [line.split(":")[0] for line in lines] == [
        "Privilege escalation possible",
        "Resource exposure",
        "Credentials exposure",
        "Data exfiltration",
        "Infrastructure modification",
    ]
    f = analyse([ADMIN])
    assert lines[0].startswith(f"Privilege escalation possible: {len(f.privilege_escalation)} ways (`CreateAccessKey`, ")
    assert lines[0].endswith(", …)")
    assert lines[-1] == f"Infrastructure modification: {len(f.infrastructure_modification)} actions"
    assert all(len(line) <= 200 for line in lines)


def test_flags_limit() -> None:
    f = Findings(data_exfiltration=("s3:GetObject", "ssm:GetParameter", "ssm:GetParameters"))
    assert flags(f) == ["Data exfiltration: `s3:GetObject`, `ssm:GetParameter`, `ssm:GetParameters`"]
    assert flags(f, limit=1) == ["Data exfiltration: 3 actions (`s3:GetObject`, …)"]
    assert flags(f, limit=0) == ["Data exfiltration: 3 actions"]


def test_long_names_are_cut_to_fit_one_line() -> None:
    f = Findings(privilege_escalation=tuple(f"PassExistingRoleToSomethingVeryLongIndeed{i}" for i in range(6)))
    (line,) = flags(f)
    assert line.startswith("Privilege escalation possible: 6 ways (`PassExistingRoleToSomethingVeryLongIndeed0`, ")
    assert len(line) <= 200


def test_no_findings_no_flags() -> None:
    assert flags(Findings()) == []


# --- never raises ---

_ATOMS = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["*", "Allow", "Deny", "iam:CreateAccessKey", "iam:Pass?ole", "s3:Get*", "lambda:*", "foo", "a:b:c", ":", "iam:", ""]),
    st.sampled_from(["arn:aws:iam::123456789012:user/x", "arn:aws:s3:::b/*", "arn:", "not-an-arn"]),
)
_VALUES = st.recursive(_ATOMS, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["Statement", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"]), inner, max_size=4)), max_leaves=10)
_STATEMENTS = st.dictionaries(st.sampled_from(["Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"]), _VALUES, max_size=5)
_DOCUMENTS = st.one_of(_VALUES, st.fixed_dictionaries({"Statement": st.one_of(_STATEMENTS, st.lists(st.one_of(_STATEMENTS, _VALUES), max_size=3), _VALUES)}))


@settings(max_examples=200, deadline=None)
@given(st.lists(_DOCUMENTS, max_size=3))
def test_any_input_is_judged_without_raising(documents) -> None:
    f = analyse(documents)
    assert all(len(line) <= 200 for line in flags(f))


def test_not_action_on_an_unreadable_arn_is_broad() -> None:
    # policy_sentry raises a bare Exception on an ARN it cannot parse; NotAction is judged on `*`.
    f = analyse([{"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "not-an-arn"}]}])
    assert f.escalates
