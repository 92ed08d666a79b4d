"""The managed policy that makes the bot's users enrol MFA before they can do anything else (pure: no AWS, no I/O).

It follows the IAM User Guide's example policies "AWS: Allows MFA-authenticated IAM users to manage
their own MFA device on the Security credentials page" (reference_policies_examples_aws_my-sec-creds-self-manage-mfa-only)
and "IAM: Allows IAM users to self-manage an MFA device" (reference_policies_examples_iam_mfa-selfmanage):
- until the user signs in with MFA, DenyAllExceptListedIfNoMFA denies every action of every service
  except those needed to enrol a device and sign in with it (Deny with NotAction; `BoolIfExists`,
  so a call with long-term access keys, which carries no aws:MultiFactorAuthPresent, is denied too,
  and sts:GetSessionToken is left to trade them and a code for MFA session credentials);
- the Allows let the user create a virtual device (any name: the device is tied to a user only
  when enabled, which is allowed on the user's own ARN, `${aws:username}`) and enable, read, list
  and resync devices of its own user only; deactivating one is allowed too, but the Deny keeps it
  for sessions signed in with MFA. iam:GetMFADevice is allowed as the current examples do (the
  Deny spares it). iam:DeleteVirtualMFADevice is left out on purpose: AWS warns never to let a
  user without MFA delete a device.

iam:ChangePassword and iam:GetAccountPasswordPolicy are allowed, and left out of the Deny, as the
"manage their own credentials" example suggests for first sign-in: the bot creates console users
with a generated password that must be changed at the first sign-in (PasswordResetRequired), and
the console asks for that before the user can reach the page where MFA is enrolled. Without them a
new user could neither change its password nor ever enrol MFA.
"""

from __future__ import annotations

from typing import Any

MFA_POLICY_NAME = "iam-bot-require-mfa"

# What a user without MFA may still do: enrol a device, sign in with it, and change its first password.
ALLOWED_WITHOUT_MFA = (
    "iam:CreateVirtualMFADevice",
    "iam:EnableMFADevice",
    "iam:GetUser",
    "iam:GetMFADevice",
    "iam:ListMFADevices",
    "iam:ListVirtualMFADevices",
    "iam:ResyncMFADevice",
    "sts:GetSessionToken",
    "iam:ChangePassword",
    "iam:GetAccountPasswordPolicy",
)


def render_mfa_policy(*, partition: str = "aws") -> dict[str, Any]:
    """The policy document to attach (as a managed policy, MFA_POLICY_NAME) to the users the bot creates."""
    own_user = f"arn:{partition}:iam::*:user/${{aws:username}}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # ListVirtualMFADevices has no resource type: "*" is the only resource it takes.
                "Sid": "AllowViewAccountInfo",
                "Effect": "Allow",
                "Action": ["iam:GetAccountPasswordPolicy", "iam:ListVirtualMFADevices"],
                "Resource": "*",
            },
            {
                "Sid": "AllowManageOwnPasswords",
                "Effect": "Allow",
                "Action": ["iam:ChangePassword", "iam:GetUser"],
                "Resource": own_user,
            },
            {
                "Sid": "AllowManageOwnVirtualMFADevice",
                "Effect": "Allow",
                "Action": ["iam:CreateVirtualMFADevice"],
                "Resource": f"arn:{partition}:iam::*:mfa/*",
            },
            {
                "Sid": "AllowManageOwnUserMFA",
                "Effect": "Allow",
                "Action": [
                    "iam:DeactivateMFADevice",
                    "iam:EnableMFADevice",
                    "iam:GetMFADevice",
                    "iam:ListMFADevices",
                    "iam:ResyncMFADevice",
                ],
                "Resource": own_user,
            },
            {
                "Sid": "DenyAllExceptListedIfNoMFA",
                "Effect": "Deny",
                "NotAction": list(ALLOWED_WITHOUT_MFA),
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            },
        ],
    }
