"""The bot's own IAM policy, rendered from its settings and its rules file (pure: no AWS, no I/O).

Least privilege, as AWS documents it, so that a compromised bot can take nothing it did not make:
- every write on a user is confined to users under the bot's path prefix
  (`arn:aws:iam::<account>:user<prefix>*`: a user's ARN carries its path);
- every write on an existing user (access keys, login profile, policies, deletion) also needs the
  bot's marker tag on that user (`"Null": {"iam:ResourceTag/iam-bot:request": "false"}`): the bot
  tags every user it creates at CreateUser, so it cannot mint a key or a password for, nor grant
  a policy to, a user it did not create. `iam:ResourceTag/${TagKey}` is a condition key of the
  `user` resource type (Service Authorization Reference), so it applies to every action
  authorized on a user;
- CreateUser needs the marker in the request (`aws:RequestTag/iam-bot:request`) and, with
  `guardrails.allowed_tag_keys` in the rules file, only those tag keys and the marker
  (`ForAllValues:StringLike` over `aws:TagKeys`). Without the allowlist any key is allowed: IAM
  itself refuses keys starting with `aws:`, and the form refuses the marker, so there is nothing
  more a condition could add. Tag-on-create is authorized as iam:TagUser as well, with the same
  conditions; the bot calls TagUser nowhere else;
- the bot may neither remove its marker (Deny UntagUser of it) nor change it on a user that has
  it (Deny TagUser of it where the user already carries it);
- with a permissions boundary (IAM_BOT_PERMISSIONS_BOUNDARY, or the rules file's
  `required_boundaries` for paths under the prefix), CreateUser and the user-policy writes are
  allowed only with `"ArnEquals": {"iam:PermissionsBoundary": <boundary>}` (an ARN-typed key: AWS's
  examples write StringEquals, which works too; parliament expects the ARN operator). The Service
  Authorization Reference lists that condition key for CreateUser, AttachUserPolicy,
  DetachUserPolicy, PutUserPolicy, DeleteUserPolicy, PutUserPermissionsBoundary and
  DeleteUserPermissionsBoundary; on CreateUser it is the boundary in the request, on the others the
  boundary the user has. So the bot cannot create an unbounded user, nor grant policies to one;
- explicit Denies keep the boundary in place: no DeleteUserPermissionsBoundary, no
  PutUserPermissionsBoundary to another policy, no new default version of the boundary policy;
- with `guardrails.allowed_groups` in the rules file, group membership is allowed on those groups
  only (each name at any group path), not on `group/*`.

Limits worth knowing (also in the README):
- AddUserToGroup/RemoveUserFromGroup are authorized on the group alone (resource type `group*`, no
  condition keys): they cannot be tied to the bot's users, only to the groups it may use;
- IAM offers no condition that tells tag-on-create from tagging an existing user without tags, so
  TagUser with the marker on an untagged user under the prefix cannot be denied: a dedicated path
  prefix (one no existing user has) is what keeps the bot from adopting a user it did not create;
- DeleteVirtualMFADevice is authorized on the device (resource type `mfa`) alone: a virtual device's
  name and path are chosen by the user who enrols it, and it carries none of the user's tags, so it is
  allowed on `mfa/*`. IAM refuses to delete a device still assigned to a user (DeleteConflict), and
  only DeactivateMFADevice (confined to the bot's users) unassigns one: what the bot could delete
  beyond its users' devices is an unassigned one (say, one being enrolled right now);
- IAM compares ARNs and `aws:TagKeys` case-sensitively, and `*` in an ARN also matches `/`: a glob
  in `allowed_groups` also matches a group whose path starts like it.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Any, Iterable, Sequence

from bot.common.constants import MARKER_TAG


class Scope(enum.Enum):
    """Where an action is allowed; the statements below are built per scope."""

    ACCOUNT = "account"  # actions with no resource type: Resource "*"
    ANY_USER = "any-user"  # reads of any user: copy-from and the name check look outside the prefix
    NEW_USER = "new-user"  # CreateUser: under the prefix, with the marker (and boundary) in the request
    TAG_ON_CREATE = "tag-on-create"  # TagUser, as CreateUser's tags are authorized: same request conditions
    OWN_USER = "own-user"  # existing users under the prefix that carry the bot's marker
    BOUNDED_USER = "bounded-user"  # as OWN_USER, and only with the boundary (iam:PermissionsBoundary)
    GROUP = "group"  # membership: authorized on the group alone (see the module docstring)
    GROUP_READ = "group-read"  # reads of a group's policies, for the plan's effective grant
    POLICY = "policy"  # reads of managed policies (customer and AWS managed)
    PRINCIPAL = "principal"  # iam:SimulatePrincipalPolicy, for `iam-bot doctor`
    MFA_DEVICE = "mfa-device"  # DeleteVirtualMFADevice: authorized on the device (`mfa/*`), not the user (module docstring)


# Every IAM action the bot needs, and where. One line per action: a new call in bot/iam/gateway.py adds
# one line here (tests/unit/test_deploy_artifacts.py fails until it does).
ACTIONS: dict[str, Scope] = {
    "iam:GetAccountPasswordPolicy": Scope.ACCOUNT,
    "iam:ListAccountAliases": Scope.ACCOUNT,
    "iam:ListGroups": Scope.ACCOUNT,
    "iam:ListPolicies": Scope.ACCOUNT,
    "iam:ListUsers": Scope.ACCOUNT,
    "iam:SimulateCustomPolicy": Scope.ACCOUNT,  # `iam-bot doctor` asks IAM about the rendered policy (no resource)
    # The hygiene report reads IAM's credential report (account-wide: no resource type).
    "iam:GenerateCredentialReport": Scope.ACCOUNT,
    "iam:GetCredentialReport": Scope.ACCOUNT,
    "iam:GetUser": Scope.ANY_USER,
    "iam:GetUserPolicy": Scope.ANY_USER,
    "iam:ListAttachedUserPolicies": Scope.ANY_USER,
    "iam:ListGroupsForUser": Scope.ANY_USER,
    "iam:ListUserPolicies": Scope.ANY_USER,
    "iam:ListUserTags": Scope.ANY_USER,  # EntityAlreadyExists: is the existing user ours? (any path)
    "iam:CreateUser": Scope.NEW_USER,
    "iam:TagUser": Scope.TAG_ON_CREATE,  # CreateUser with Tags is also authorized as TagUser
    "iam:DeleteUser": Scope.OWN_USER,
    "iam:ListAccessKeys": Scope.OWN_USER,
    "iam:CreateAccessKey": Scope.OWN_USER,
    "iam:DeleteAccessKey": Scope.OWN_USER,
    "iam:UpdateAccessKey": Scope.OWN_USER,  # a rotated key is deactivated before it is deleted
    "iam:GetLoginProfile": Scope.OWN_USER,  # /iam reset-password: has the user a console password?
    "iam:CreateLoginProfile": Scope.OWN_USER,
    "iam:UpdateLoginProfile": Scope.OWN_USER,
    "iam:DeleteLoginProfile": Scope.OWN_USER,
    "iam:ListMFADevices": Scope.OWN_USER,  # has a user the bot made enrolled MFA yet?
    # Disabling and offboarding: what IAM requires removed before DeleteUser (bot/iam/gateway.py read_removal).
    "iam:ListSigningCertificates": Scope.OWN_USER,
    "iam:DeleteSigningCertificate": Scope.OWN_USER,
    "iam:ListSSHPublicKeys": Scope.OWN_USER,
    "iam:DeleteSSHPublicKey": Scope.OWN_USER,
    "iam:ListServiceSpecificCredentials": Scope.OWN_USER,
    "iam:DeleteServiceSpecificCredential": Scope.OWN_USER,
    "iam:DeactivateMFADevice": Scope.OWN_USER,
    "iam:DeleteVirtualMFADevice": Scope.MFA_DEVICE,  # once deactivated from the user (DeleteConflict before)
    "iam:AttachUserPolicy": Scope.BOUNDED_USER,
    "iam:DetachUserPolicy": Scope.BOUNDED_USER,
    "iam:PutUserPolicy": Scope.BOUNDED_USER,
    "iam:DeleteUserPolicy": Scope.BOUNDED_USER,
    "iam:AddUserToGroup": Scope.GROUP,
    "iam:RemoveUserFromGroup": Scope.GROUP,
    "iam:SimulatePrincipalPolicy": Scope.PRINCIPAL,
    # Guardrails and risk flags read what a request would grant (bot/policy/risk.py).
    "iam:GetPolicy": Scope.POLICY,
    "iam:GetPolicyVersion": Scope.POLICY,
    "iam:GetGroupPolicy": Scope.GROUP_READ,
    "iam:ListAttachedGroupPolicies": Scope.GROUP_READ,
    "iam:ListGroupPolicies": Scope.GROUP_READ,
}

# Actions that take the iam:PermissionsBoundary condition key (Service Authorization Reference for
# IAM); a NEW_USER or BOUNDED_USER action outside this set would be a mistake in the table above.
BOUNDARY_KEY_ACTIONS = frozenset(
    {
        "iam:CreateUser",
        "iam:AttachUserPolicy",
        "iam:DetachUserPolicy",
        "iam:PutUserPolicy",
        "iam:DeleteUserPolicy",
        "iam:PutUserPermissionsBoundary",
        "iam:DeleteUserPermissionsBoundary",
    }
)

# Changing the boundary policy itself would lift the cap on every user the bot made.
BOUNDARY_POLICY_CHANGES = ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion")

# The condition keys that tie the bot to its own users (MARKER_TAG is set by CreateUser on every user it makes).
RESOURCE_MARKER = f"iam:ResourceTag/{MARKER_TAG}"
REQUEST_MARKER = f"aws:RequestTag/{MARKER_TAG}"

# The documented example rendered into deploy/iam-policy.json (a test keeps them equal).
EXAMPLE_ACCOUNT = "123456789012"
EXAMPLE_PATH_PREFIX = "/iam-bot/"
EXAMPLE_BOUNDARY = "arn:aws:iam::123456789012:policy/iam-bot-boundary"

_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>aws|\d{12}):policy/\S+$")
# A group name (IAM: [\w+=,.@-]+) with the glob characters IAM's ARN matching shares with fnmatch.
GROUP_GLOB = re.compile(r"^[\w+=,.@*?-]{1,128}$", re.ASCII)


def _actions(scope: Scope) -> list[str]:
    return sorted(a for a, s in ACTIONS.items() if s is scope)


def boundary_account(boundary_arn: str | None) -> str | None:
    m = _ARN.match(boundary_arn or "")
    return m["account"] if m and m["account"] != "aws" else None


def boundaries_for(
    *, path_prefix: str, boundary_arn: str | None, required_boundaries: Iterable[tuple[str, str]] = ()
) -> tuple[str, ...]:
    """Every boundary a user the bot creates may be given, as the form and the plan choose it.

    The rules file's `required_boundaries` for prefixes that overlap the bot's, and the setting
    unless a file prefix covers the bot's whole prefix (the longest prefix in the file wins, else
    the setting: bot/policy/rulebook.py). Empty: the bot creates unbounded users.
    """
    required = list(required_boundaries)
    from_file = [arn for prefix, arn in required if prefix.startswith(path_prefix) or path_prefix.startswith(prefix)]
    covered = any(path_prefix.startswith(prefix) for prefix, _ in required)
    setting = [boundary_arn] if boundary_arn and not covered else []
    return tuple(dict.fromkeys([*setting, *from_file]))


def group_resources(iam: str, allowed_groups: Sequence[str] | None) -> list[str]:
    """The group ARNs membership may change on: `group/*`, or each allowed name at the root and at any path."""
    if allowed_groups is None:
        return [f"{iam}:group/*"]
    return [arn for g in allowed_groups for arn in (f"{iam}:group/{g}", f"{iam}:group/*/{g}")]


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def render_policy(
    *,
    account: str = "*",
    path_prefix: str = "/",
    boundary_arn: str | None = None,
    required_boundaries: Sequence[tuple[str, str]] = (),
    allowed_tag_keys: Sequence[str] | None = None,
    allowed_groups: Sequence[str] | None = None,
    kms_key_id: str | None = None,
) -> dict[str, Any]:
    """The policy document for the bot's identity. `account` is a 12-digit id or "*".

    `required_boundaries`, `allowed_tag_keys` and `allowed_groups` are the rules file's guardrails
    (None: the file sets no allowlist); the boundary setting is IAM_BOT_PERMISSIONS_BOUNDARY.
    """
    if account != "*" and not re.fullmatch(r"\d{12}", account):
        raise ValueError("account must be a 12-digit AWS account id or *")
    if not (path_prefix.startswith("/") and path_prefix.endswith("/")):
        raise ValueError("path prefix must start and end with /")
    boundaries = boundaries_for(path_prefix=path_prefix, boundary_arn=boundary_arn or None, required_boundaries=required_boundaries)
    matches = [_ARN.match(b) for b in boundaries]
    if not all(matches):
        raise ValueError("boundary must be a managed policy ARN")
    partitions = {m["partition"] for m in matches if m}
    if len(partitions) > 1:
        raise ValueError(f"boundaries in more than one partition: {sorted(partitions)}")
    for g in allowed_groups or ():
        if not GROUP_GLOB.match(g):
            raise ValueError(f"allowed group {g!r} is not a group name or a glob of one (letters, digits, +=,.@-_ * ?)")
    bad = sorted(a for a, s in ACTIONS.items() if s in (Scope.NEW_USER, Scope.BOUNDED_USER) and a not in BOUNDARY_KEY_ACTIONS)
    if bad:
        raise ValueError(f"iam:PermissionsBoundary does not apply to {bad}")
    partition = partitions.pop() if partitions else "aws"
    iam = f"arn:{partition}:iam::{account}"
    own_users = f"{iam}:user{path_prefix}*"
    boundary = _one_or_list(boundaries) if boundaries else None
    # The tag keys CreateUser (and its TagUser) may set: the marker and the file's allowlist.
    tag_keys = {"ForAllValues:StringLike": {"aws:TagKeys": [MARKER_TAG, *allowed_tag_keys]}} if allowed_tag_keys is not None else {}

    statements: list[dict[str, Any]] = []

    def allow(sid: str, scope: Scope, resource: str | list[str], condition: dict[str, Any] | None = None) -> None:
        actions = _actions(scope)
        if not actions:
            return
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)

    def deny(sid: str, action: str | list[str], resource: str, condition: dict[str, Any] | None = None) -> None:
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Deny", "Action": action, "Resource": resource}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)

    allow("ReadAccountWide", Scope.ACCOUNT, "*")
    allow("ReadAnyUser", Scope.ANY_USER, f"{iam}:user/*")
    # The account's own policies and AWS managed ones (account "aws", which parliament cannot parse
    # as an account): "*" in the account field matches both, and these are reads only.
    allow("ReadPolicies", Scope.POLICY, f"arn:{partition}:iam::*:policy/*")
    allow("ReadGroupPolicies", Scope.GROUP_READ, f"{iam}:group/*")
    if allowed_groups != ():  # an empty allowlist: no group may be joined, so no membership at all
        groups = group_resources(iam, allowed_groups)
        allow("ManageGroupMembership" if allowed_groups is None else "ManageAllowedGroupMembership", Scope.GROUP, _one_or_list(groups))
    created = {"Null": {REQUEST_MARKER: "false"}, **tag_keys}
    if boundary:
        allow("CreateMarkedUsersOnlyWithBoundary", Scope.NEW_USER, own_users, {**created, "ArnEquals": {"iam:PermissionsBoundary": boundary}})
    else:
        allow("CreateMarkedUsers", Scope.NEW_USER, own_users, created)
    allow("TagOnlyWhileCreating", Scope.TAG_ON_CREATE, own_users, created)
    marked = {"Null": {RESOURCE_MARKER: "false"}}
    allow("ManageOwnUsers", Scope.OWN_USER, own_users, marked)
    if boundary:
        allow("GrantOwnUsersOnlyWithBoundary", Scope.BOUNDED_USER, own_users, {**marked, "ArnEquals": {"iam:PermissionsBoundary": boundary}})
    else:
        allow("GrantOwnUsers", Scope.BOUNDED_USER, own_users, marked)
    # A virtual device cannot be narrowed to the bot's users: its name is chosen by the user (module docstring).
    allow("DeleteVirtualMFADevices", Scope.MFA_DEVICE, f"{iam}:mfa/*")
    # Read-only; lets `iam-bot doctor` ask IAM whether this very policy suffices.
    allow("CheckOwnPermissions", Scope.PRINCIPAL, "*")

    # The marker is what the writes above trust: the bot may never remove it, nor rewrite it.
    deny("DenyMarkerRemoval", "iam:UntagUser", "*", {"ForAnyValue:StringEquals": {"aws:TagKeys": [MARKER_TAG]}})
    deny("DenyMarkerChange", "iam:TagUser", "*", {"Null": {RESOURCE_MARKER: "false"}, "ForAnyValue:StringEquals": {"aws:TagKeys": [MARKER_TAG]}})
    if boundary:
        deny("DenyBoundaryRemoval", "iam:DeleteUserPermissionsBoundary", "*")
        deny("DenyOtherBoundaries", "iam:PutUserPermissionsBoundary", "*", {"ArnNotEquals": {"iam:PermissionsBoundary": boundary}})
        editable = [b for b, m in zip(boundaries, matches) if m and m["account"] != "aws"]  # only AWS can change an AWS managed policy
        if editable:
            deny("DenyBoundaryPolicyChanges", sorted(BOUNDARY_POLICY_CHANGES), _one_or_list(editable))  # type: ignore[arg-type]
    if kms_key_id:
        statements.append(kms_statement(kms_key_id, partition=partition, account=account))
    return {"Version": "2012-10-17", "Statement": statements}


def rendering_for(settings: Any, guardrails: Any) -> dict[str, Any]:
    """render_policy's keyword arguments (account aside) from the settings and the rules file's guardrails."""
    return {
        "path_prefix": settings.user_path_prefix,
        "boundary_arn": settings.permissions_boundary or None,
        "required_boundaries": tuple(guardrails.required_boundaries),
        "allowed_tag_keys": guardrails.allowed_tag_keys,
        "allowed_groups": guardrails.allowed_groups,
        "kms_key_id": settings.kms_key_id or None,
    }


def policy_warnings(
    *,
    path_prefix: str,
    boundary_arn: str | None,
    required_boundaries: Sequence[tuple[str, str]] = (),
    allowed_groups: Sequence[str] | None = None,
) -> list[str]:
    """What the rendered policy cannot prevent with these settings, for `iam-bot policy`."""
    out = []
    if not boundaries_for(path_prefix=path_prefix, boundary_arn=boundary_arn, required_boundaries=required_boundaries):
        out.append(
            "IAM_BOT_PERMISSIONS_BOUNDARY is not set: this policy confines the bot to its path prefix and its own users but "
            "cannot stop it from attaching AdministratorAccess to a user it creates; set a boundary"
        )
    if path_prefix == "/":
        out.append(
            "IAM_BOT_USER_PATH_PREFIX is /: the bot may create users anywhere, and could tag an existing untagged user "
            "with its marker (IAM cannot tell that from tagging a new user) and then manage it; use e.g. /iam-bot/"
        )
    if allowed_groups is None:
        out.append(
            "group membership is authorized on the group alone: list the groups requesters may join in the rules "
            "file's guardrails.allowed_groups to narrow group/* to them"
        )
    return out


def render_json(policy: dict[str, Any]) -> str:
    """The exact text of deploy/iam-policy.json."""
    return json.dumps(policy, indent=2) + "\n"


# ---------------------------------------------------------------- AWS KMS (IAM_BOT_KMS_KEY_ID)

# What bot/iam/kms.py calls (tests/unit/test_deploy_artifacts.py reads them from the code): a data key
# per envelope, and unwrapping it to reveal. Only on the configured key, and only with the request's
# short id as encryption context (bot.credentials.vault.CONTEXT_KEY).
KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
KMS_CONTEXT_KEY = "iam-bot:request"
_KMS_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<name>.+)$")


def kms_statement(key_id: str, *, partition: str = "aws", account: str = "*") -> dict[str, Any]:
    """The statement letting the bot use its KMS key: the key's ARN as written, or built from a key id;
    an alias cannot name a key in a policy, so any key of the account used through that alias (kms:RequestAlias)."""
    m = _KMS_ARN.match(key_id)
    condition: dict[str, Any] = {"Null": {f"kms:EncryptionContext:{KMS_CONTEXT_KEY}": "false"}}
    if m and m["kind"] == "key":
        resource = key_id
    elif m or key_id.startswith("alias/"):
        region, owner = (m["region"], m["account"]) if m else ("*", account)
        resource = f"arn:{m['partition'] if m else partition}:kms:{region}:{owner}:key/*"
        condition["StringEquals"] = {"kms:RequestAlias": f"alias/{m['name']}" if m else key_id}
    else:
        resource = f"arn:{partition}:kms:*:{account}:key/{key_id}"
    return {"Sid": "UseOwnKmsKey", "Effect": "Allow", "Action": list(KMS_ACTIONS), "Resource": resource, "Condition": condition}


# ---------------------------------------------------------------- member accounts (IAM_BOT_ACCOUNTS)

# The bot assumes a role in each member account; the role holds the same contained policy as the bot's
# own identity holds in a single account. A policy in account B only ever governs B's IAM, so the
# role's policy names no account (`*`): one rendering serves every account of a StackSet.


def _role_name_and_path(role: str) -> tuple[str, str]:
    """`ops/iam-bot` -> ("iam-bot", "/ops/"); `iam-bot` -> ("iam-bot", "/")."""
    *path, name = role.split("/")
    return name, "/" + "".join(p + "/" for p in path if p)


def trust_policy(*, principal: str, external_id: str | None) -> dict[str, Any]:
    """Who may assume the member-account role: the bot's own identity, with the external id when one is set."""
    statement: dict[str, Any] = {"Sid": "TheBotAssumesThisRole", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def in_member_account(policy: Any, *, own_account: str | None, member: Any) -> Any:
    """The policy with the boundary's account (`own_account`) replaced: a user's boundary must be a policy of
    the user's own account, so each member account holds the boundary under the same name. `member` is an
    account id, or a function making the replacement for a string (CloudFormation's Fn::Sub)."""
    if not own_account:
        return policy
    needle = f":iam::{own_account}:"
    if isinstance(policy, dict):
        return {k: in_member_account(v, own_account=own_account, member=member) for k, v in policy.items()}
    if isinstance(policy, list):
        return [in_member_account(v, own_account=own_account, member=member) for v in policy]
    if isinstance(policy, str) and needle in policy:
        return member(policy) if callable(member) else policy.replace(needle, f":iam::{member}:")
    return policy


def render_member_role(*, role: str, principal: str, external_id: str | None, policy: dict[str, Any]) -> dict[str, Any]:
    """The role to create in each member account, as `aws iam create-role` / `put-role-policy` take it."""
    name, path = _role_name_and_path(role)
    return {
        "RoleName": name,
        "Path": path,
        "AssumeRolePolicyDocument": trust_policy(principal=principal, external_id=external_id),
        "PolicyName": "iam-bot",
        "PolicyDocument": policy,
    }


def render_member_stackset(*, role: str, policy: dict[str, Any], own_account: str | None = None) -> str:
    """A CloudFormation template (for a StackSet over an OU) creating the role in every account it reaches.

    The bot's principal and the external id are the stack set's parameters, so one template serves any
    deployment with these settings; the boundary is named in each account's own (`own_account`: the
    boundary setting's account, replaced by ${AWS::AccountId})."""
    name, path = _role_name_and_path(role)
    policy = in_member_account(policy, own_account=own_account, member=lambda s: {"Fn::Sub": s.replace(f":iam::{own_account}:", ":iam::${AWS::AccountId}:")})
    statement: dict[str, Any] = {"Sid": "TheBotAssumesThisRole", "Effect": "Allow", "Principal": {"AWS": {"Ref": "BotPrincipalArn"}}, "Action": "sts:AssumeRole"}
    statement["Condition"] = {"Fn::If": ["HasExternalId", {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}, {"Ref": "AWS::NoValue"}]}
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "iam-bot's role in a member account (rendered by `iam-bot policy --member-account --stackset`)",
        "Parameters": {
            "BotPrincipalArn": {"Type": "String", "Description": "ARN of the role or user iam-bot runs as (in its own account)"},
            "ExternalId": {"Type": "String", "Default": "", "Description": "IAM_BOT_ACCOUNT_EXTERNAL_ID, if the bot sets one"},
        },
        "Conditions": {"HasExternalId": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExternalId"}, ""]}]}},
        "Resources": {
            "IamBotRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": name,
                    "Path": path,
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [statement]},
                    "Policies": [{"PolicyName": "iam-bot", "PolicyDocument": policy}],
                },
            }
        },
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["IamBotRole", "Arn"]}}},
    }
    return json.dumps(template, indent=2) + "\n"  # JSON is YAML too: CloudFormation reads either


def assume_statements(*, role: str, account_ids: Sequence[str], organization: bool, partition: str = "aws") -> list[dict[str, Any]]:
    """What the bot's own identity needs beside its policy to act in member accounts: assume their role
    (in the listed accounts; in any account with IAM_BOT_ORGANIZATION), and list the organization's accounts."""
    accounts = ["*"] if organization else list(account_ids)
    out: list[dict[str, Any]] = [
        {"Sid": "AssumeTheMemberAccountRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": _one_or_list([f"arn:{partition}:iam::{a}:role/{role}" for a in accounts])}
    ]
    if organization:
        out.append({"Sid": "ListTheOrganizationsAccounts", "Effect": "Allow", "Action": "organizations:ListAccounts", "Resource": "*"})
    return out
