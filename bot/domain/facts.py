"""What was read from IAM, as plain values: the input of a plan and of the typeahead lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

AWS_MANAGED_MARK = ":iam::aws:policy/"


def is_aws_managed(arn: str) -> bool:
    return AWS_MANAGED_MARK in arn


def policy_name(arn: str) -> str:
    """The name at the end of a managed policy's ARN (after its path)."""
    return arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PolicyChoice:
    """One managed policy in the typeahead list."""

    arn: str
    name: str
    aws_managed: bool


@dataclass(frozen=True)
class PasswordPolicy:
    """The account's password policy; AWS's rules when it sets none: 8+ characters, three of the four classes."""

    minimum_length: int = 8
    require_symbols: bool = False
    require_numbers: bool = False
    require_uppercase: bool = False
    require_lowercase: bool = False


@dataclass(frozen=True)
class ManagedPolicy:
    """A managed policy as read: its default version and that version's document.

    `version` and `document` are None when they could not be read (the reason is in IamFacts.unknown).
    """

    arn: str
    version: str | None = None
    document: Mapping[str, Any] | None = None

    @property
    def name(self) -> str:
        return policy_name(self.arn)

    @property
    def aws_managed(self) -> bool:
        return is_aws_managed(self.arn)


@dataclass(frozen=True)
class InlinePolicy:
    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class GroupFacts:
    """A group as read: the managed policies attached to it (ARNs) and its inline policies."""

    name: str
    attached: tuple[str, ...] = ()
    inline: tuple[InlinePolicy, ...] = ()


@dataclass(frozen=True)
class UserFacts:
    """An existing user as read (the source of "Copy permissions from existing user")."""

    name: str
    groups: tuple[str, ...] = ()
    attached: tuple[str, ...] = ()
    inline: tuple[InlinePolicy, ...] = ()
    boundary: str | None = None


@dataclass(frozen=True)
class IamFacts:
    """Everything a plan needs, read at one moment.

    `missing` names what the request refers to and IAM does not have (the request cannot be done as
    asked); `unknown` names what could not be read (throttled, denied): shown to approvers, never
    silently dropped.
    """

    account: str = ""
    users: Mapping[str, UserFacts] = field(default_factory=dict)
    groups: Mapping[str, GroupFacts] = field(default_factory=dict)
    policies: Mapping[str, ManagedPolicy] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessKeyFacts:
    key_id: str
    active: bool


@dataclass(frozen=True)
class CredentialFacts:
    """An existing user's sign-in credentials as read: what rotation and password reset are planned on."""

    user_name: str
    keys: tuple[AccessKeyFacts, ...] = ()
    console: bool = False
    marker: str | None = None  # the short id of the request that created the user, if the bot did


@dataclass(frozen=True)
class RemovalFacts:
    """Everything attached to an IAM user that IAM requires removed before DeleteUser."""

    user_name: str
    marker: str | None  # the bot's marker tag value (MARKER_TAG), None if absent
    console: bool  # has a login profile
    keys: tuple[AccessKeyFacts, ...] = ()
    signing_certificates: tuple[str, ...] = ()  # certificate ids
    ssh_keys: tuple[str, ...] = ()  # SSH public key ids
    service_credentials: tuple[str, ...] = ()  # service-specific credential ids
    mfa_devices: tuple[str, ...] = ()  # serial numbers; a virtual device's serial is its ARN (arn:...:mfa/...)
    inline_policies: tuple[str, ...] = ()
    attached_policies: tuple[str, ...] = ()  # ARNs
    groups: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing left but the user itself: DeleteUser can go ahead (the marker and tags go with it)."""
        return not (
            self.console
            or self.keys
            or self.signing_certificates
            or self.ssh_keys
            or self.service_credentials
            or self.mfa_devices
            or self.inline_policies
            or self.attached_policies
            or self.groups
        )
