"""The plan: what a request will do in IAM, resolved once, approved by its digest, applied exactly.

Every kind of request (a new user today; a change, a time-bound grant, an offboarding, a key
rotation next) becomes a Plan: the account, the target user, the ordered IAM steps with every name
resolved, and the effective grant (every policy the user holds afterwards, directly or through each
group, with each document's hash and each managed policy's default version id as read). Rules,
guardrails and risk judge the grant; approvers approve the digest; the worker applies the steps and,
before each step that grants, checks IAM still grants what the plan says (`group_drift`,
`policy_drift`). A new kind of request is a new plan builder (bot.requests.planner), not a new lifecycle.

PURE: documents are stored apart, content-addressed by `document_hash`; the plan names them by hash,
so its digest commits to every document without carrying them.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from bot.domain.facts import is_aws_managed, policy_name

PLAN_FORMAT = 1
HELD = "held now"  # the origin of what a changed user holds already and keeps: judged with what is added


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: what digests are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def document_hash(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


class PlanKind(str, enum.Enum):
    CREATE_USER = "create_user"
    ROTATE_KEY = "rotate_key"  # a second key for an existing user; the old one is retired later
    RESET_PASSWORD = "reset_password"
    HELD_KEY = "held_key"  # the access key an approved request held until the user had MFA on
    DISABLE = "disable"  # console password deleted, access keys deactivated: the user stays
    OFFBOARD = "offboard"  # everything IAM holds for the user removed, then the user
    DISABLE_NOW = "disable_now"  # an approver's "Disable now" while a departed owner's offboarding waits
    EXPIRE = "expire"  # a user's expiry date came: disabled, as its approval said
    EXPIRE_DELETE = "expire_delete"  # the grace period after it ended: offboarded, as its approval said
    EXTEND = "extend"  # a later expiry date for a user: nothing changes in IAM
    CHANGE = "change"  # groups, policies, console access or a key added to or taken from a user the bot made
    REVOKE = "revoke"  # a time-bound grant taken away: its time ended, or its owner is done with it
    EXTEND_GRANT = "extend_grant"  # a time-bound grant given a later end (granted again, judged again)

    @property
    def removal(self) -> bool:
        """Takes away, grants nothing: no credentials to deliver; a person decides (or, for disable_now, asked)."""
        return self in (PlanKind.DISABLE, PlanKind.OFFBOARD, PlanKind.DISABLE_NOW, PlanKind.EXPIRE, PlanKind.EXPIRE_DELETE)

    @property
    def day_two(self) -> bool:
        """About a user the bot created already (everything but creating one)."""
        return self is not PlanKind.CREATE_USER

    @property
    def disables(self) -> bool:
        return self in (PlanKind.DISABLE, PlanKind.DISABLE_NOW, PlanKind.EXPIRE)

    @property
    def deletes(self) -> bool:
        return self in (PlanKind.OFFBOARD, PlanKind.EXPIRE_DELETE)

    @property
    def grants(self) -> bool:
        """May grant something to an existing user: the effective grant after it is judged, as for a new user."""
        return self in (PlanKind.CHANGE, PlanKind.EXTEND_GRANT)

    @property
    def credentials_only(self) -> bool:
        """New credentials for an existing user: nothing is granted, so the grant is not judged again."""
        return self in (PlanKind.ROTATE_KEY, PlanKind.RESET_PASSWORD, PlanKind.HELD_KEY)

    @property
    def title(self) -> str:
        """What a request of this kind is called in a message's title."""
        return {
            PlanKind.ROTATE_KEY: "Key rotation request", PlanKind.RESET_PASSWORD: "Password reset request", PlanKind.HELD_KEY: "Held access key",
            PlanKind.DISABLE: "Disable request", PlanKind.OFFBOARD: "Offboarding request", PlanKind.DISABLE_NOW: "Disable request",
            PlanKind.EXPIRE: "Expiry", PlanKind.EXPIRE_DELETE: "Expiry: deletion", PlanKind.EXTEND: "Extension request",
            PlanKind.CHANGE: "Change request", PlanKind.REVOKE: "Temporary grant ending", PlanKind.EXTEND_GRANT: "Grant extension request",
        }.get(self, "IAM user request")

    @property
    def brings(self) -> str:
        """What a request of this kind brings, in words: "new IAM user", "new access key"..."""
        return {
            PlanKind.ROTATE_KEY: "new access key", PlanKind.RESET_PASSWORD: "new console password", PlanKind.HELD_KEY: "new access key (held until MFA was on)",
            PlanKind.DISABLE: "disabling of the user", PlanKind.OFFBOARD: "offboarding (the user is deleted)",
            PlanKind.DISABLE_NOW: "disabling of the user (its owner left)",
            PlanKind.EXPIRE: "disabling of the user (its expiry date came)", PlanKind.EXPIRE_DELETE: "deletion of the user (its expiry's grace period ended)",
            PlanKind.EXTEND: "later expiry date", PlanKind.CHANGE: "change to the user",
            PlanKind.REVOKE: "end of a temporary grant", PlanKind.EXTEND_GRANT: "longer temporary grant",
        }.get(self, "new IAM user")


class StepKind(str, enum.Enum):
    CREATE_USER = "create_user"
    ADD_TO_GROUP = "add_to_group"
    ATTACH_POLICY = "attach_policy"
    PUT_USER_POLICY = "put_user_policy"
    CREATE_LOGIN_PROFILE = "create_login_profile"
    CREATE_ACCESS_KEY = "create_access_key"
    ADD_ACCESS_KEY = "add_access_key"  # target: the one key the user keeps meanwhile (the key being rotated); "" for none
    RESET_PASSWORD = "reset_password"
    HOLD_ACCESS_KEY = "hold_access_key"  # nothing now: the key is made by a held_key request once MFA is on
    # Removal (disable, offboard), in the order IAM requires before DeleteUser; each target is the item's id or name.
    DELETE_LOGIN_PROFILE = "delete_login_profile"
    DEACTIVATE_ACCESS_KEY = "deactivate_access_key"
    DELETE_ACCESS_KEY = "delete_access_key"
    DELETE_SIGNING_CERTIFICATE = "delete_signing_certificate"
    DELETE_SSH_KEY = "delete_ssh_key"
    DELETE_SERVICE_CREDENTIAL = "delete_service_credential"
    DEACTIVATE_MFA_DEVICE = "deactivate_mfa_device"
    DELETE_VIRTUAL_MFA_DEVICE = "delete_virtual_mfa_device"
    DELETE_INLINE_POLICY = "delete_inline_policy"
    DETACH_POLICY = "detach_policy"
    REMOVE_FROM_GROUP = "remove_from_group"
    DELETE_USER = "delete_user"


# The steps that make a password or a key: sealed at once, and delivered to the owner.
CREDENTIAL_STEPS = (StepKind.CREATE_LOGIN_PROFILE, StepKind.CREATE_ACCESS_KEY, StepKind.ADD_ACCESS_KEY, StepKind.RESET_PASSWORD)


@dataclass(frozen=True)
class Step:
    """One IAM change, with everything it needs resolved (no name is looked up again at apply time).

    `origin` is "" for what was asked for, else where it came from ("copied from <user>").
    """

    kind: StepKind
    target: str = ""  # the group, the policy ARN or the inline policy's name
    origin: str = ""
    path: str | None = None  # create_user
    tags: tuple[tuple[str, str], ...] = ()  # create_user, the bot's marker included
    boundary: str | None = None  # create_user
    document: str | None = None  # put_user_policy: the document's hash
    lasts: str | None = None  # add_to_group, attach_policy: a time-bound grant's length or end (bot.domain.grants)

    @property
    def key(self) -> str:
        """Stable within a plan: what a job records as done."""
        return f"{self.kind.value}:{self.target}" if self.target else self.kind.value

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind.value}
        for name in ("target", "origin", "path", "boundary", "document", "lasts"):
            value = getattr(self, name)
            if value not in (None, ""):
                body[name] = value
        if self.tags:
            body["tags"] = [list(t) for t in self.tags]
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Step:
        return cls(
            kind=StepKind(body["kind"]),
            target=body.get("target", ""),
            origin=body.get("origin", ""),
            path=body.get("path"),
            tags=tuple((k, v) for k, v in body.get("tags") or ()),
            boundary=body.get("boundary"),
            document=body.get("document"),
            lasts=body.get("lasts"),
        )


@dataclass(frozen=True)
class Granted:
    """One policy the user holds after the plan: held directly (`group` None) or through a group.

    `version` is a managed policy's default version id and `document` the hash of that version's
    document (or of the inline document), as read; None where they could not be read.
    """

    name: str
    group: str | None = None
    arn: str | None = None  # None: an inline policy
    version: str | None = None
    document: str | None = None
    origin: str = ""

    @property
    def managed(self) -> bool:
        return self.arn is not None

    @property
    def aws_managed(self) -> bool:
        return self.arn is not None and is_aws_managed(self.arn)

    @property
    def key(self) -> tuple[str, str]:
        return (self.group or "", self.arn or "inline:" + self.name)

    def to_body(self) -> dict[str, Any]:
        return {k: v for k, v in (("name", self.name), ("group", self.group), ("arn", self.arn), ("version", self.version),
                                  ("document", self.document), ("origin", self.origin)) if v not in (None, "")}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Granted:
        return cls(
            name=body["name"], group=body.get("group"), arn=body.get("arn"), version=body.get("version"),
            document=body.get("document"), origin=body.get("origin", ""),
        )


@dataclass(frozen=True)
class EffectiveGrant:
    policies: tuple[Granted, ...] = ()
    boundary: Granted | None = None
    unknown: tuple[str, ...] = ()  # what could not be read, in words

    def via_group(self, group: str) -> tuple[Granted, ...]:
        return tuple(p for p in self.policies if p.group == group)

    @property
    def direct(self) -> tuple[Granted, ...]:
        return tuple(p for p in self.policies if p.group is None)

    @property
    def documents(self) -> frozenset[str]:
        found = {p.document for p in self.policies if p.document}
        if self.boundary is not None and self.boundary.document:
            found.add(self.boundary.document)
        return frozenset(found)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"policies": [p.to_body() for p in self.policies]}
        if self.boundary is not None:
            body["boundary"] = self.boundary.to_body()
        if self.unknown:
            body["unknown"] = list(self.unknown)
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> EffectiveGrant:
        return cls(
            policies=tuple(Granted.from_body(p) for p in body.get("policies") or ()),
            boundary=Granted.from_body(body["boundary"]) if body.get("boundary") else None,
            unknown=tuple(body.get("unknown") or ()),
        )


@dataclass(frozen=True)
class Plan:
    kind: PlanKind
    account: str
    user_name: str
    steps: tuple[Step, ...]
    grant: EffectiveGrant = field(default_factory=EffectiveGrant)
    copied_from: str | None = None  # the user whose permissions were read into the steps, if any
    expires_on: str | None = None  # YYYY-MM-DD: a new user's end (disabled that day), or an extension's new end
    path: str | None = None  # an existing user's IAM path (a change): what rules match on, as a new user's create step
    # What an existing user keeps untouched by a change ("group:<name>", "policy:<arn>", "console", "key"):
    # judged with what is added, so rules see the user as it will be, not only the difference.
    keeps: tuple[str, ...] = ()
    account_name: str = ""  # the member account's name in IAM_BOT_ACCOUNTS ("": the bot's own account)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "format": PLAN_FORMAT,
            "kind": self.kind.value,
            "account": self.account,
            "user_name": self.user_name,
            "steps": [s.to_body() for s in self.steps],
            "grant": self.grant.to_body(),
        }
        if self.copied_from:
            body["copied_from"] = self.copied_from
        if self.expires_on:  # absent when unset: the digests of plans made before expiry dates are unchanged
            body["expires_on"] = self.expires_on
        if self.path:
            body["path"] = self.path
        if self.keeps:
            body["keeps"] = list(self.keeps)
        if self.account_name:
            body["account_name"] = self.account_name
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Plan:
        if body.get("format") != PLAN_FORMAT:
            raise ValueError(f"unknown plan format {body.get('format')!r}")
        return cls(
            kind=PlanKind(body["kind"]),
            account=body["account"],
            user_name=body["user_name"],
            steps=tuple(Step.from_body(s) for s in body["steps"]),
            grant=EffectiveGrant.from_body(body.get("grant") or {}),
            copied_from=body.get("copied_from"),
            expires_on=body.get("expires_on"),
            path=body.get("path"),
            keeps=tuple(body.get("keeps") or ()),
            account_name=body.get("account_name") or "",
        )

    @property
    def digest(self) -> str:
        """What approvers approve: a SHA-256 over the canonical plan, documents included by hash."""
        return plan_digest(self.to_body())

    def step(self, kind: StepKind, target: str = "") -> Step | None:
        return next((s for s in self.steps if s.kind is kind and s.target == target), None)

    def has(self, kind: StepKind) -> bool:
        return any(s.kind is kind for s in self.steps)

    @property
    def makes_credentials(self) -> bool:
        """Whether applying it makes a password or a key for the owner."""
        return any(s.kind in CREDENTIAL_STEPS for s in self.steps)

    @property
    def time_bound(self) -> tuple[Step, ...]:
        """The steps that grant something for a time only."""
        return tuple(s for s in self.steps if s.lasts and s.kind in (StepKind.ADD_TO_GROUP, StepKind.ATTACH_POLICY))


def bundle_digest(digests: Sequence[str]) -> str:
    """What one approval of an ask for several accounts approves: each waiting account's plan, in order."""
    return hashlib.sha256(("bundle:" + ":".join(digests)).encode()).hexdigest()


def plan_digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


# ---------------------------------------------------------------- drift: IAM now versus the plan


def group_drift(plan: Plan, group: str, *, attached: Mapping[str, str | None], inline: Mapping[str, str]) -> list[str]:
    """What joining `group` would grant now beyond the plan, in words (empty: exactly as planned or less).

    `attached` maps each managed policy attached to the group now to its default version id;
    `inline` maps each inline policy's name to its document's hash. A policy the plan could not read
    (version or document None) counts as changed once it can be read: approvers have not seen it.
    Less than planned (a policy detached since) is not drift: it grants nothing unapproved.
    """
    planned = {g.arn or "inline:" + g.name: g for g in plan.grant.via_group(group)}
    out = []
    for arn, version in sorted(attached.items()):
        had = planned.get(arn)
        if had is None:
            out.append(f"group `{group}` now also has `{policy_name(arn)}` attached")
        elif version != had.version:
            out.append(f"`{policy_name(arn)}` (attached to group `{group}`) changed its default version from {had.version or 'unknown'} to {version or 'unknown'}")
    for name, document in sorted(inline.items()):
        had = planned.get("inline:" + name)
        if had is None:
            out.append(f"group `{group}` has a new inline policy `{name}`")
        elif document != had.document:
            out.append(f"the inline policy `{name}` of group `{group}` was changed")
    return out


def policy_drift(plan: Plan, arn: str, *, version: str | None, boundary: bool = False) -> list[str]:
    """A managed policy attached to the user directly (or as its boundary) whose default version moved."""
    had = plan.grant.boundary if boundary else next((g for g in plan.grant.direct if g.arn == arn), None)
    if had is None or had.version == version:
        return []
    what = "the permissions boundary" if boundary else "the policy"
    return [f"{what} `{policy_name(arn)}` changed its default version from {had.version or 'unknown'} to {version or 'unknown'}"]


# ---------------------------------------------------------------- what changed between two plans


def _granted_words(g: Granted) -> str:
    where = f" through group `{g.group}`" if g.group else ""
    return f"`{g.name}`{where}"


def changes(old: Plan, new: Plan) -> list[str]:
    """What a new plan grants or does differently from an earlier one, in words, for approvers asked again."""
    out: list[str] = []
    old_steps, new_steps = {s.key: s for s in old.steps}, {s.key: s for s in new.steps}
    for key in new_steps.keys() - old_steps.keys():
        out.append(f"new step: {key.replace('_', ' ')}")
    for key in old_steps.keys() - new_steps.keys():
        out.append(f"step dropped: {key.replace('_', ' ')}")
    before, after = {g.key: g for g in old.grant.policies}, {g.key: g for g in new.grant.policies}
    for key in sorted(after.keys() - before.keys()):
        out.append(f"now grants {_granted_words(after[key])}")
    for key in sorted(before.keys() - after.keys()):
        out.append(f"no longer grants {_granted_words(before[key])}")
    for key in sorted(after.keys() & before.keys()):
        a, b = before[key], after[key]
        if a.version != b.version:
            out.append(f"{_granted_words(b)}: default version {a.version or 'unknown'} -> {b.version or 'unknown'}")
        elif a.document != b.document:
            out.append(f"{_granted_words(b)}: its document changed")
    ob, nb = old.grant.boundary, new.grant.boundary
    if (ob and (ob.arn, ob.version)) != (nb and (nb.arn, nb.version)):
        out.append(f"permissions boundary: {ob.name if ob else 'none'} -> {nb.name if nb else 'none'}")
    for what in new.grant.unknown:
        if what not in old.grant.unknown:
            out.append(f"could not read {what}")
    return out
