"""The contained bot policy (bot/ops/deploy_policy.py), statement by statement, for the defaults and a strict setup.

What it must hold: every write on an existing user needs the bot's marker tag on that user; CreateUser
needs the marker in the request, only allowed tag keys, and the boundary; the marker and the boundary
cannot be removed or changed; group membership only on the allowlisted groups. Every condition key is
checked against the Service Authorization Reference (as parliament ships it), since parliament itself
does not look inside `Null` conditions nor at a resource type's keys.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from bot.common.constants import MARKER_TAG
from bot.domain.spec import RequestSpec
from bot.ops.deploy_policy import (
    ACTIONS,
    EXAMPLE_BOUNDARY,
    REQUEST_MARKER,
    RESOURCE_MARKER,
    Scope,
    boundaries_for,
    group_resources,
    policy_warnings,
    render_json,
    render_policy,
)
from bot.policy.guardrails import Guardrails, form_refusals, undecided, violation
from bot.policy.risk import PolicyFact, RiskFacts
from bot.policy.rules_file import load_rulebook

ACCOUNT = "123456789012"
PROD = "arn:aws:iam::123456789012:policy/prod-boundary"
STRICT = {
    "account": ACCOUNT,
    "path_prefix": "/iam-bot/",
    "boundary_arn": EXAMPLE_BOUNDARY,
    "required_boundaries": (("/iam-bot/prod/", PROD), ("/elsewhere/", "arn:aws:iam::123456789012:policy/not-ours")),
    "allowed_tag_keys": ("team", "cost-*"),
    "allowed_groups": ("developers", "read-*"),
}

READS_ANYWHERE = ["iam:GenerateCredentialReport", "iam:GetAccountPasswordPolicy", "iam:GetCredentialReport", "iam:ListAccountAliases", "iam:ListGroups", "iam:ListPolicies", "iam:ListUsers", "iam:SimulateCustomPolicy"]
READ_USERS = ["iam:GetUser", "iam:GetUserPolicy", "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser", "iam:ListUserPolicies", "iam:ListUserTags"]
READ_GROUPS = ["iam:GetGroupPolicy", "iam:ListAttachedGroupPolicies", "iam:ListGroupPolicies"]
OWN_USERS = [
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:DeactivateMFADevice",
    "iam:DeleteAccessKey",
    "iam:DeleteLoginProfile",
    "iam:DeleteSSHPublicKey",
    "iam:DeleteServiceSpecificCredential",
    "iam:DeleteSigningCertificate",
    "iam:DeleteUser",
    "iam:GetLoginProfile",
    "iam:ListAccessKeys",
    "iam:ListMFADevices",
    "iam:ListSSHPublicKeys",
    "iam:ListServiceSpecificCredentials",
    "iam:ListSigningCertificates",
    "iam:UpdateAccessKey",
    "iam:UpdateLoginProfile",
]
MFA_DEVICES = ["iam:DeleteVirtualMFADevice"]
GRANTS = ["iam:AttachUserPolicy", "iam:DeleteUserPolicy", "iam:DetachUserPolicy", "iam:PutUserPolicy"]
MARKED = {"Null": {f"iam:ResourceTag/{MARKER_TAG}": "false"}}
ASKS_MARKER = {"Null": {f"aws:RequestTag/{MARKER_TAG}": "false"}}
MARKER_DENIES = [
    {"Sid": "DenyMarkerRemoval", "Effect": "Deny", "Action": "iam:UntagUser", "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": [MARKER_TAG]}}},
    {
        "Sid": "DenyMarkerChange",
        "Effect": "Deny",
        "Action": "iam:TagUser",
        "Resource": "*",
        "Condition": {**MARKED, "ForAnyValue:StringEquals": {"aws:TagKeys": [MARKER_TAG]}},
    },
]


def test_the_marker_keys_are_the_constant() -> None:
    assert MARKER_TAG == "iam-bot:request"
    assert RESOURCE_MARKER == "iam:ResourceTag/iam-bot:request" and REQUEST_MARKER == "aws:RequestTag/iam-bot:request"


def test_default_policy_statement_by_statement() -> None:
    """Prefix /, no boundary, no rules file: still no write on a user the bot did not create."""
    users = "arn:aws:iam::*:user/*"
    assert render_policy()["Statement"] == [
        {"Sid": "ReadAccountWide", "Effect": "Allow", "Action": READS_ANYWHERE, "Resource": "*"},
        {"Sid": "ReadAnyUser", "Effect": "Allow", "Action": READ_USERS, "Resource": users},
        {"Sid": "ReadPolicies", "Effect": "Allow", "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"], "Resource": "arn:aws:iam::*:policy/*"},
        {"Sid": "ReadGroupPolicies", "Effect": "Allow", "Action": READ_GROUPS, "Resource": "arn:aws:iam::*:group/*"},
        {"Sid": "ManageGroupMembership", "Effect": "Allow", "Action": ["iam:AddUserToGroup", "iam:RemoveUserFromGroup"], "Resource": "arn:aws:iam::*:group/*"},
        # No tag-key allowlist in the rules file: any key (IAM refuses aws:* itself), but the marker must be there.
        {"Sid": "CreateMarkedUsers", "Effect": "Allow", "Action": ["iam:CreateUser"], "Resource": users, "Condition": ASKS_MARKER},
        {"Sid": "TagOnlyWhileCreating", "Effect": "Allow", "Action": ["iam:TagUser"], "Resource": users, "Condition": ASKS_MARKER},
        {"Sid": "ManageOwnUsers", "Effect": "Allow", "Action": OWN_USERS, "Resource": users, "Condition": MARKED},
        {"Sid": "GrantOwnUsers", "Effect": "Allow", "Action": GRANTS, "Resource": users, "Condition": MARKED},
        {"Sid": "DeleteVirtualMFADevices", "Effect": "Allow", "Action": MFA_DEVICES, "Resource": "arn:aws:iam::*:mfa/*"},
        {"Sid": "CheckOwnPermissions", "Effect": "Allow", "Action": ["iam:SimulatePrincipalPolicy"], "Resource": "*"},
        *MARKER_DENIES,
    ]


def test_strict_policy_statement_by_statement() -> None:
    """Prefix /iam-bot/, a boundary (and the file's for /iam-bot/prod/), allowed tag keys and groups."""
    iam = f"arn:aws:iam::{ACCOUNT}"
    own = f"{iam}:user/iam-bot/*"
    both = [EXAMPLE_BOUNDARY, PROD]  # /elsewhere/'s boundary can never apply under /iam-bot/
    tag_keys = {"ForAllValues:StringLike": {"aws:TagKeys": [MARKER_TAG, "team", "cost-*"]}}
    bounded = {"ArnEquals": {"iam:PermissionsBoundary": both}}
    assert render_policy(**STRICT)["Statement"] == [
        {"Sid": "ReadAccountWide", "Effect": "Allow", "Action": READS_ANYWHERE, "Resource": "*"},
        {"Sid": "ReadAnyUser", "Effect": "Allow", "Action": READ_USERS, "Resource": f"{iam}:user/*"},
        {"Sid": "ReadPolicies", "Effect": "Allow", "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"], "Resource": "arn:aws:iam::*:policy/*"},
        {"Sid": "ReadGroupPolicies", "Effect": "Allow", "Action": READ_GROUPS, "Resource": f"{iam}:group/*"},
        {
            "Sid": "ManageAllowedGroupMembership",
            "Effect": "Allow",
            "Action": ["iam:AddUserToGroup", "iam:RemoveUserFromGroup"],
            "Resource": [f"{iam}:group/developers", f"{iam}:group/*/developers", f"{iam}:group/read-*", f"{iam}:group/*/read-*"],
        },
        {"Sid": "CreateMarkedUsersOnlyWithBoundary", "Effect": "Allow", "Action": ["iam:CreateUser"], "Resource": own, "Condition": {**ASKS_MARKER, **tag_keys, **bounded}},
        {"Sid": "TagOnlyWhileCreating", "Effect": "Allow", "Action": ["iam:TagUser"], "Resource": own, "Condition": {**ASKS_MARKER, **tag_keys}},
        {"Sid": "ManageOwnUsers", "Effect": "Allow", "Action": OWN_USERS, "Resource": own, "Condition": MARKED},
        {"Sid": "GrantOwnUsersOnlyWithBoundary", "Effect": "Allow", "Action": GRANTS, "Resource": own, "Condition": {**MARKED, **bounded}},
        # A virtual MFA device is named by its user: no path or marker narrows it (IAM refuses while it is assigned).
        {"Sid": "DeleteVirtualMFADevices", "Effect": "Allow", "Action": MFA_DEVICES, "Resource": f"{iam}:mfa/*"},
        {"Sid": "CheckOwnPermissions", "Effect": "Allow", "Action": ["iam:SimulatePrincipalPolicy"], "Resource": "*"},
        *MARKER_DENIES,
        {"Sid": "DenyBoundaryRemoval", "Effect": "Deny", "Action": "iam:DeleteUserPermissionsBoundary", "Resource": "*"},
        {"Sid": "DenyOtherBoundaries", "Effect": "Deny", "Action": "iam:PutUserPermissionsBoundary", "Resource": "*", "Condition": {"ArnNotEquals": {"iam:PermissionsBoundary": both}}},
        {
            "Sid": "DenyBoundaryPolicyChanges",
            "Effect": "Deny",
            "Action": ["iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"],
            "Resource": both,
        },
    ]


def test_an_empty_group_allowlist_allows_no_membership_and_an_empty_tag_allowlist_only_the_marker() -> None:
    policy = render_policy(allowed_groups=(), allowed_tag_keys=())
    assert not [s for s in policy["Statement"] if "iam:AddUserToGroup" in s["Action"]]
    (create,) = [s for s in policy["Statement"] if s["Action"] == ["iam:CreateUser"]]
    assert create["Condition"]["ForAllValues:StringLike"] == {"aws:TagKeys": [MARKER_TAG]}


def test_boundaries_come_from_the_setting_and_the_rules_file_where_they_can_apply() -> None:
    file = (("/iam-bot/prod/", PROD),)
    assert boundaries_for(path_prefix="/iam-bot/", boundary_arn=EXAMPLE_BOUNDARY) == (EXAMPLE_BOUNDARY,)
    assert boundaries_for(path_prefix="/iam-bot/", boundary_arn=EXAMPLE_BOUNDARY, required_boundaries=file) == (EXAMPLE_BOUNDARY, PROD)
    # A file prefix covering the whole bot prefix wins over the setting: the setting is never used.
    assert boundaries_for(path_prefix="/iam-bot/", boundary_arn=EXAMPLE_BOUNDARY, required_boundaries=(("/", PROD),)) == (PROD,)
    assert boundaries_for(path_prefix="/iam-bot/", boundary_arn=None, required_boundaries=(("/prod/", PROD),)) == ()
    assert boundaries_for(path_prefix="/", boundary_arn=None) == ()


def test_group_resources() -> None:
    assert group_resources("arn:aws:iam::1", None) == ["arn:aws:iam::1:group/*"]
    assert group_resources("arn:aws:iam::1", ("a",)) == ["arn:aws:iam::1:group/a", "arn:aws:iam::1:group/*/a"]
    with pytest.raises(ValueError, match="not a group name"):
        render_policy(allowed_groups=("admins[0]",))


def test_every_allow_names_a_resource_and_condition_keys_the_service_authorization_reference_lists() -> None:
    """Per action: a resource type it is authorized on, and condition keys of the action or of that resource type."""
    import parliament

    definition = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    iam = next(s for s in definition if s["prefix"] == "iam")
    privileges = {"iam:" + p["privilege"]: p for p in iam["privileges"]}
    resource_keys = {r["resource"]: r["condition_keys"] for r in iam["resources"]}

    def known(key: str, patterns: list[str]) -> bool:
        return any(fnmatchcase(key, p.replace("${TagKey}", "*")) for p in patterns)

    for config in ({}, STRICT):
        for s in render_policy(**config)["Statement"]:
            actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
            for action in actions:
                if not action.startswith("iam:"):
                    continue
                info = privileges[action]
                types = [rt["resource_type"].rstrip("*") for rt in info["resource_types"] if rt["resource_type"]]
                allowed = [k for rt in info["resource_types"] for k in rt["condition_keys"]]
                allowed += [k for t in types for k in resource_keys.get(t, [])]
                for block in (s.get("Condition") or {}).values():
                    for key in block:
                        assert key.startswith("aws:") or known(key, allowed), (s["Sid"], action, key)
                        if key.startswith("aws:RequestTag/") or key == "aws:TagKeys":
                            assert known(key, allowed), (s["Sid"], action, key)  # the action itself takes request tags
                if s["Effect"] == "Allow" and "user" in types and s["Resource"] != "*":
                    assert all(":user/" in r for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])), s["Sid"]
    # Group membership is authorized on the group alone: no user, no condition key can tie it to the bot's users.
    for action in ("iam:AddUserToGroup", "iam:RemoveUserFromGroup"):
        assert [(rt["resource_type"], rt["condition_keys"]) for rt in privileges[action]["resource_types"]] == [("group*", [])]
    # What ties writes to the bot's own users is a condition key of the user resource type.
    assert "iam:ResourceTag/${TagKey}" in resource_keys["user"]
    # ListMFADevices takes the user optionally ("user": without UserName it lists the caller's own); the bot always names one.
    for action, scope in ACTIONS.items():
        if scope in (Scope.OWN_USER, Scope.BOUNDED_USER):
            assert {"user*", "user"} & {rt["resource_type"] for rt in privileges[action]["resource_types"]}, action
    # What removal takes from a user before DeleteUser is authorized on the user itself, so the marker holds it.
    removals = ["DeleteLoginProfile", "DeleteSigningCertificate", "DeleteSSHPublicKey", "DeleteServiceSpecificCredential", "DeactivateMFADevice"]
    for name in removals + ["ListSigningCertificates", "ListSSHPublicKeys", "ListServiceSpecificCredentials"]:
        assert ACTIONS["iam:" + name] is Scope.OWN_USER, name
        assert [rt["resource_type"] for rt in privileges["iam:" + name]["resource_types"]] == ["user*"], name
    # DeleteVirtualMFADevice is not: only the device (mfa, or the retired sms-mfa), and no condition key of
    # the user's. The rendered resource is an ARN of the mfa resource type, with any device name.
    mfa_scoped = [a for a, scope in ACTIONS.items() if scope is Scope.MFA_DEVICE]
    assert mfa_scoped == MFA_DEVICES
    for action in mfa_scoped:
        types = [rt["resource_type"] for rt in privileges[action]["resource_types"]]
        assert "mfa" in types and not {"user", "user*"} & set(types), types
    mfa_arn = next(r["arn"] for r in iam["resources"] if r["resource"] == "mfa")
    any_device = mfa_arn.replace("${Partition}", "aws").replace("${Account}", ACCOUNT).replace("${MfaTokenIdWithPath}", "*")
    (statement,) = [s for s in render_policy(**STRICT)["Statement"] if s["Action"] == MFA_DEVICES]
    assert statement["Resource"] == any_device == f"arn:aws:iam::{ACCOUNT}:mfa/*"


def test_warnings_say_what_the_policy_cannot_hold() -> None:
    loose = policy_warnings(path_prefix="/", boundary_arn=None)
    assert [w.split(" ")[0] for w in loose] == ["IAM_BOT_PERMISSIONS_BOUNDARY", "IAM_BOT_USER_PATH_PREFIX", "group"]
    assert "tag an existing untagged user" in loose[1]
    assert policy_warnings(path_prefix="/iam-bot/", boundary_arn=None, required_boundaries=(("/", PROD),), allowed_groups=("devs",)) == []


def test_the_rendered_json_is_stable() -> None:
    assert render_json(render_policy(**STRICT)) == render_json(json.loads(render_json(render_policy(**STRICT))))


# ---------------------------------------------------------------- guardrails.allowed_groups, in the rules file


def _book(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "rules.yml"
    path.write_text(text)
    return load_rulebook(path)


def test_allowed_groups_in_the_rules_file(tmp_path: Path) -> None:
    assert _book(tmp_path, "guardrails: {allowed_groups: [developers, 'read-*']}\n").guardrails.allowed_groups == ("developers", "read-*")
    assert _book(tmp_path, "guardrails: {allowed_groups: []}\n").guardrails.allowed_groups == ()
    assert _book(tmp_path, "guardrails: {}\n").guardrails.allowed_groups is None
    from bot.common.errors import ConfigError

    with pytest.raises(ConfigError) as bad:
        _book(tmp_path, "guardrails:\n  allowed_groups: [devs, 'admins[0]']\n")
    assert str(bad.value) == (
        "IAM_BOT_RULES: rules.yml:2: guardrails.allowed_groups[1]: 'admins[0]' is not a group name or glob "
        "(letters, digits, + = , . @ _ - and the globs * ?)"
    )
    with pytest.raises(ConfigError, match="allowed_groups: must be a list of IAM group names"):
        _book(tmp_path, "guardrails:\n  allowed_groups: [1]\n")


# ---------------------------------------------------------------- guardrails.allowed_groups, on the form and the plan

G = Guardrails(allowed_groups=("developers", "read-*"))


def _spec(**kw: Any) -> RequestSpec:
    base: dict[str, Any] = dict(user_name="u1", console_access=False, access_key=True, path="/", reason="r", owner_id="UOWNER1")
    base.update(kw)
    return RequestSpec(**base)


def test_a_requested_group_outside_the_allowlist_is_a_field_error_on_groups() -> None:
    def refusals(g: Guardrails, groups: tuple[str, ...]) -> list[tuple[str, str]]:
        return form_refusals(g, _spec(groups=groups), may_request=True, required_boundary=None)

    assert refusals(G, ("developers", "Read-Only")) == []  # globs, case-insensitive as every guardrail glob
    assert refusals(G, ("developers", "admins", "ops")) == [("groups", "Groups `admins`, `ops` may not be joined through the bot (allowed: `developers`, `read-*`).")]
    assert refusals(Guardrails(allowed_groups=()), ("developers",)) == [("groups", "Group `developers` may not be joined through the bot (allowed: none).")]
    assert refusals(Guardrails(), ("admins",)) == []
    # One message for the field: the allowlist speaks before max_groups.
    assert [f for f, _ in refusals(Guardrails(allowed_groups=("developers",), max_groups=1), ("admins", "ops"))] == ["groups"]


def test_a_requested_or_copied_group_outside_the_allowlist_is_a_violation_of_the_plan() -> None:
    ro = (PolicyFact(name="ReadOnlyAccess", arn="arn:aws:iam::aws:policy/ReadOnlyAccess", aws_managed=True, document={"Version": "2012-10-17", "Statement": []}),)
    asked = RiskFacts(groups={"developers": ro, "admins": ro})
    assert violation(G, asked) == "group admins is not one the bot may add users to"
    copied = RiskFacts(groups={"read-only": ro, "admins": ro}, copy_from="template", copied_groups=("admins",))
    assert violation(G, copied) == "group admins (copied from template) is not one the bot may add users to"
    assert violation(G, RiskFacts(groups={"developers": ro, "read-only": ro})) is None
    assert violation(Guardrails(), asked) is None
    # A copy source whose groups could not be read cannot be vouched for.
    unread = RiskFacts(copy_from="template", unknown=("the groups of user template (AccessDenied)",))
    assert undecided(G, unread) == ["the groups of user template (AccessDenied)"]
    assert undecided(Guardrails(), unread) == []
