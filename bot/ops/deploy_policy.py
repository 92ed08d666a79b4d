"""The bot's own IAM policy, rendered from its settings (pure: no AWS, no I/O).

Least privilege, as AWS documents it:
- every write on a user is confined to users under the bot's path prefix
  (`arn:aws:iam::<account>:user<prefix>*`: a user's ARN carries its path);
- with a permissions boundary configured, CreateUser and the user-policy writes are allowed only
  with `"ArnEquals": {"iam:PermissionsBoundary": <boundary>}` (an ARN-typed key: AWS's examples
  write StringEquals, which works too; parliament expects the ARN operator). The Service Authorization
  Reference lists that condition key for CreateUser, AttachUserPolicy, DetachUserPolicy,
  PutUserPolicy, DeleteUserPolicy, PutUserPermissionsBoundary and DeleteUserPermissionsBoundary;
  on CreateUser it is the boundary in the request, on the others the boundary the user has.
  So the bot cannot create an unbounded user, nor grant policies to a user without the boundary;
- explicit Denies keep the boundary in place: no DeleteUserPermissionsBoundary, no
  PutUserPermissionsBoundary to another policy, no new default version of the boundary policy.

Limits worth knowing (also in the README): AddUserToGroup/RemoveUserFromGroup are authorized on the
group alone, so they cannot be confined to the bot's users; the boundary still caps what a group
grants the bot's users, but the bot could change the membership of other users in the groups it
may use. Narrow `group/*` to the groups requesters may join.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Any


class Scope(enum.Enum):
    """Where an action is allowed; the statements below are built per scope."""

    ACCOUNT = "account"  # actions with no resource type: Resource "*"
    ANY_USER = "any-user"  # reads of any user: copy-from and the name check look outside the prefix
    OWN_USER = "own-user"  # users under the path prefix
    BOUNDED_USER = "bounded-user"  # users under the prefix, only with the boundary (iam:PermissionsBoundary)
    GROUP = "group"  # authorized on the group alone (see the module docstring)
    POLICY = "policy"  # reads of managed policies (customer and AWS managed)
    PRINCIPAL = "principal"  # iam:SimulatePrincipalPolicy, for `iam-bot doctor`


# Every IAM action the bot needs, and where. One line per action: a new call in bot/aws.py adds
# one line here (tests/unit/test_deploy_artifacts.py fails until it does). Examples of scopes for
# reads that may be added: "iam:GetPolicy": Scope.POLICY, "iam:ListAttachedGroupPolicies": Scope.GROUP.
ACTIONS: dict[str, Scope] = {
    "iam:GetAccountPasswordPolicy": Scope.ACCOUNT,
    "iam:ListAccountAliases": Scope.ACCOUNT,
    "iam:ListGroups": Scope.ACCOUNT,
    "iam:ListPolicies": Scope.ACCOUNT,
    "iam:ListUsers": Scope.ACCOUNT,
    "iam:GetUser": Scope.ANY_USER,
    "iam:GetUserPolicy": Scope.ANY_USER,
    "iam:ListAttachedUserPolicies": Scope.ANY_USER,
    "iam:ListGroupsForUser": Scope.ANY_USER,
    "iam:ListUserPolicies": Scope.ANY_USER,
    "iam:ListUserTags": Scope.ANY_USER,  # EntityAlreadyExists: is the existing user ours? (any path)
    "iam:TagUser": Scope.OWN_USER,  # CreateUser with Tags is also authorized as TagUser
    "iam:DeleteUser": Scope.OWN_USER,
    "iam:ListAccessKeys": Scope.OWN_USER,
    "iam:CreateAccessKey": Scope.OWN_USER,
    "iam:DeleteAccessKey": Scope.OWN_USER,
    "iam:CreateLoginProfile": Scope.OWN_USER,
    "iam:UpdateLoginProfile": Scope.OWN_USER,
    "iam:DeleteLoginProfile": Scope.OWN_USER,
    "iam:CreateUser": Scope.BOUNDED_USER,
    "iam:AttachUserPolicy": Scope.BOUNDED_USER,
    "iam:DetachUserPolicy": Scope.BOUNDED_USER,
    "iam:PutUserPolicy": Scope.BOUNDED_USER,
    "iam:DeleteUserPolicy": Scope.BOUNDED_USER,
    "iam:AddUserToGroup": Scope.GROUP,
    "iam:RemoveUserFromGroup": Scope.GROUP,
    "iam:SimulatePrincipalPolicy": Scope.PRINCIPAL,
    # Guardrails and risk flags read what a request would grant (bot/risk.py).
    "iam:GetPolicy": Scope.POLICY,
    "iam:GetPolicyVersion": Scope.POLICY,
    "iam:GetGroupPolicy": Scope.GROUP,
    "iam:ListAttachedGroupPolicies": Scope.GROUP,
    "iam:ListGroupPolicies": Scope.GROUP,
}

# Actions that take the iam:PermissionsBoundary condition key (Service Authorization Reference for
# IAM); a BOUNDED_USER action outside this set would be a mistake in the table above.
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

# The documented example rendered into deploy/iam-policy.json (a test keeps them equal).
EXAMPLE_ACCOUNT = "123456789012"
EXAMPLE_PATH_PREFIX = "/iam-bot/"
EXAMPLE_BOUNDARY = "arn:aws:iam::123456789012:policy/iam-bot-boundary"

_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>aws|\d{12}):policy/\S+$")


def _actions(scope: Scope) -> list[str]:
    return sorted(a for a, s in ACTIONS.items() if s is scope)


def boundary_account(boundary_arn: str | None) -> str | None:
    m = _ARN.match(boundary_arn or "")
    return m["account"] if m and m["account"] != "aws" else None


def render_policy(*, account: str = "*", path_prefix: str = "/", boundary_arn: str | None = None) -> dict[str, Any]:
    """The policy document for the bot's identity. `account` is a 12-digit id or "*"."""
    if account != "*" and not re.fullmatch(r"\d{12}", account):
        raise ValueError("account must be a 12-digit AWS account id or *")
    if not (path_prefix.startswith("/") and path_prefix.endswith("/")):
        raise ValueError("path prefix must start and end with /")
    boundary = boundary_arn or None
    m = _ARN.match(boundary or "")
    if boundary and not m:
        raise ValueError("boundary must be a managed policy ARN")
    bad = sorted(a for a, s in ACTIONS.items() if s is Scope.BOUNDED_USER and a not in BOUNDARY_KEY_ACTIONS)
    if bad:
        raise ValueError(f"iam:PermissionsBoundary does not apply to {bad}")
    partition = m["partition"] if m else "aws"
    iam = f"arn:{partition}:iam::{account}"
    own_users = f"{iam}:user{path_prefix}*"

    statements: list[dict[str, Any]] = []

    def allow(sid: str, scope: Scope, resource: str | list[str], condition: dict[str, Any] | None = None) -> None:
        actions = _actions(scope)
        if not actions:
            return
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)

    allow("ReadAccountWide", Scope.ACCOUNT, "*")
    allow("ReadAnyUser", Scope.ANY_USER, f"{iam}:user/*")
    # The account's own policies and AWS managed ones (account "aws", which parliament cannot parse
    # as an account): "*" in the account field matches both, and these are reads only.
    allow("ReadPolicies", Scope.POLICY, f"arn:{partition}:iam::*:policy/*")
    allow("ManageGroupMembership", Scope.GROUP, f"{iam}:group/*")
    allow("ManageOwnUsers", Scope.OWN_USER, own_users)
    if boundary:
        allow(
            "CreateAndGrantOnlyWithBoundary",
            Scope.BOUNDED_USER,
            own_users,
            {"ArnEquals": {"iam:PermissionsBoundary": boundary}},
        )
    else:
        allow("CreateAndGrantOwnUsers", Scope.BOUNDED_USER, own_users)
    # Read-only; lets `iam-bot doctor` ask IAM whether this very policy suffices.
    allow("CheckOwnPermissions", Scope.PRINCIPAL, "*")

    if boundary:
        statements += [
            {
                "Sid": "DenyBoundaryRemoval",
                "Effect": "Deny",
                "Action": "iam:DeleteUserPermissionsBoundary",
                "Resource": "*",
            },
            {
                "Sid": "DenyOtherBoundaries",
                "Effect": "Deny",
                "Action": "iam:PutUserPermissionsBoundary",
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"iam:PermissionsBoundary": boundary}},
            },
        ]
        if m and m["account"] != "aws":  # only AWS can change an AWS managed policy
            statements.append(
                {
                    "Sid": "DenyBoundaryPolicyChanges",
                    "Effect": "Deny",
                    "Action": sorted(BOUNDARY_POLICY_CHANGES),
                    "Resource": boundary,
                }
            )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_warnings(*, path_prefix: str, boundary_arn: str | None) -> list[str]:
    """What the rendered policy cannot prevent with these settings, for `iam-bot policy`."""
    out = []
    if not boundary_arn:
        out.append(
            "IAM_BOT_PERMISSIONS_BOUNDARY is not set: this policy confines the bot to its path prefix but "
            "cannot stop it from attaching AdministratorAccess to a user it creates; set a boundary"
        )
    if path_prefix == "/":
        out.append("IAM_BOT_USER_PATH_PREFIX is /: the bot may manage every user in the account; use e.g. /iam-bot/")
    out.append(
        "group membership is authorized on the group alone: narrow group/* to the groups requesters may join"
    )
    return out


def render_json(policy: dict[str, Any]) -> str:
    """The exact text of deploy/iam-policy.json."""
    return json.dumps(policy, indent=2) + "\n"
