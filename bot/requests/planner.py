"""Requests resolved into plans: read the facts from IAM once (`gather_facts`), then build the plan
from them with a pure function, one per kind of request (`plan_create_user` is the first).

A new kind of request (change a user, revoke a grant, offboard, rotate a key) is a new builder here
that turns its ask and the facts into steps and an effective grant; the lifecycle, the approval of
the digest and the worker that applies the steps stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from typing import Any, Mapping, Protocol, Sequence

from bot.common.constants import MARKER_TAG
from bot.domain.accounts import arn_in
from bot.domain.facts import CredentialFacts, GroupFacts, IamFacts, InlinePolicy, ManagedPolicy, RemovalFacts, UserFacts, policy_name
from bot.domain.plan import HELD, EffectiveGrant, Granted, Plan, PlanKind, Step, StepKind, document_hash
from bot.domain.spec import RequestSpec
from bot.iam.errors import AwsError


class IamReader(Protocol):
    def read_user(self, user_name: str) -> UserFacts: ...
    def read_group(self, group: str) -> GroupFacts: ...
    def read_policy(self, arn: str) -> ManagedPolicy: ...
    def account_id(self) -> str: ...


@dataclass(frozen=True)
class Required:
    """What every new user gets whatever was asked (the MFA requirement, IAM_BOT_MFA_REQUIRE): planned,
    shown to approvers with its origin, and judged like the rest."""

    groups: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    origin: str = "required: MFA (IAM_BOT_MFA_REQUIRE)"

    def in_account(self, account_id: str) -> Required:
        """The same requirement in a member account: its own copy of the MFA policy."""
        return replace(self, policy_arns=tuple(arn_in(a, account_id) for a in self.policy_arns)) if account_id else self


NOTHING_REQUIRED = Required()


def gather_facts(iam: IamReader, spec: RequestSpec, required: Required = NOTHING_REQUIRED) -> IamFacts:
    """Everything a create-user plan needs, read now: the copy source first, then every group and
    every managed policy the user would hold (asked for, copied, through groups, and the boundary).

    A name IAM does not have goes in `missing`; what IAM would not tell goes in `unknown`, in words.
    Transient errors (throttling, 5xx) reading a user or a group are raised: the caller retries later
    rather than plan without knowing what they hold. A policy's document that stays unreadable is
    `unknown`: never approved automatically, and read again before anything is applied.
    """
    missing: list[str] = []
    unknown: list[str] = []

    def read(what: str, fn: Any, key: str, *, judged_later: bool = False) -> Any:
        try:
            return fn(key)
        except AwsError as exc:
            if exc.transient and not judged_later:
                raise
            if exc.code == "NoSuchEntity":
                missing.append(what)
            else:
                unknown.append(f"{what} ({exc.code})")
            return None

    users: dict[str, UserFacts] = {}
    if spec.copy_from and (user := read(f"the permissions of {spec.copy_from}", iam.read_user, spec.copy_from)) is not None:
        users[spec.copy_from] = user
    copied = users.get(spec.copy_from or "")

    groups: dict[str, GroupFacts] = {}
    for name in dict.fromkeys([*spec.groups, *(copied.groups if copied else ()), *required.groups]):
        if (group := read(f"group {name}", iam.read_group, name)) is not None:
            groups[name] = group

    boundary = spec.permissions_boundary or (copied.boundary if copied else None)
    arns = [*spec.policy_arns, *(copied.attached if copied else ()), *required.policy_arns, *(a for g in groups.values() for a in g.attached)]
    if boundary:
        arns.append(boundary)
    policies: dict[str, ManagedPolicy] = {}
    for arn in dict.fromkeys(arns):
        # A policy IAM is too busy to show (after botocore's retries) is planned as unknown rather than
        # waited for: the request goes to a person, flagged, and the apply job reads it again first.
        found = read(f"policy {policy_name(arn)}", iam.read_policy, arn, judged_later=True)
        policies[arn] = found if found is not None else ManagedPolicy(arn=arn)
    return IamFacts(
        account=iam.account_id(),
        users=users,
        groups=groups,
        policies=policies,
        missing=tuple(missing),
        unknown=tuple(unknown),
    )


def plan_create_user(
    spec: RequestSpec, facts: IamFacts, *, marker: str, required: Required = NOTHING_REQUIRED, hold_key: bool = False
) -> tuple[Plan, dict[str, Mapping[str, Any]]]:
    """The plan for a new user, and the documents it names by hash. Pure.

    What "copy from" brings is taken from `facts` as read: its groups, managed and inline policies
    and boundary become steps of their own, so nothing is read from the source user again.
    Asked-for items come first and win over the same item copied.
    """
    documents: dict[str, Mapping[str, Any]] = {}

    def keep(document: Mapping[str, Any] | None) -> str | None:
        if document is None:
            return None
        h = document_hash(document)
        documents[h] = document
        return h

    def managed(arn: str, *, group: str | None = None, origin: str = "") -> Granted:
        p = facts.policies.get(arn) or ManagedPolicy(arn=arn)
        return Granted(name=p.name, group=group, arn=arn, version=p.version, document=keep(p.document), origin=origin)

    def inline(p: InlinePolicy, *, group: str | None = None, origin: str = "") -> Granted:
        return Granted(name=p.name, group=group, document=keep(p.document), origin=origin)

    copied = facts.users.get(spec.copy_from) if spec.copy_from else None
    from_copy = f"copied from {spec.copy_from}" if spec.copy_from else ""

    boundary = spec.permissions_boundary or (copied.boundary if copied else None)
    steps = [Step(StepKind.CREATE_USER, path=spec.path, tags=(*spec.tags, (MARKER_TAG, marker)), boundary=boundary,
                  origin="" if spec.permissions_boundary or not boundary else from_copy)]

    group_origin = {g: "" for g in spec.groups}
    policy_origin = {p: "" for p in spec.policy_arns}
    if copied:
        for g in copied.groups:
            group_origin.setdefault(g, from_copy)
        for p in copied.attached:
            policy_origin.setdefault(p, from_copy)
    for g in required.groups:
        group_origin.setdefault(g, required.origin)
    for p in required.policy_arns:
        policy_origin.setdefault(p, required.origin)

    lasts = spec.grant_for  # only what was asked for is time-bound: never what is copied or required
    grants: list[Granted] = []
    for name, origin in group_origin.items():
        steps.append(Step(StepKind.ADD_TO_GROUP, target=name, origin=origin, lasts=None if origin else lasts))
        group = facts.groups.get(name)
        for arn in group.attached if group else ():
            grants.append(managed(arn, group=name, origin=origin))
        for p in group.inline if group else ():
            grants.append(inline(p, group=name, origin=origin))
    for arn, origin in policy_origin.items():
        steps.append(Step(StepKind.ATTACH_POLICY, target=arn, origin=origin, lasts=None if origin else lasts))
        grants.append(managed(arn, origin=origin))
    for p in copied.inline if copied else ():
        g = inline(p, origin=from_copy)
        steps.append(Step(StepKind.PUT_USER_POLICY, target=p.name, origin=from_copy, document=g.document))
        grants.append(g)
    if spec.console_access:
        steps.append(Step(StepKind.CREATE_LOGIN_PROFILE))
    if spec.access_key:
        # The rules may hold the key until MFA is on: approved now, made by a held_key request later.
        steps.append(Step(StepKind.HOLD_ACCESS_KEY if hold_key else StepKind.CREATE_ACCESS_KEY))

    plan = Plan(
        kind=PlanKind.CREATE_USER,
        account=facts.account,
        user_name=spec.user_name,
        steps=tuple(steps),
        grant=EffectiveGrant(
            policies=tuple(grants),
            boundary=managed(boundary, origin=steps[0].origin) if boundary else None,
            unknown=facts.unknown,
        ),
        copied_from=spec.copy_from,
        expires_on=spec.expires_on,
    )
    return plan, documents


class Unplannable(Exception):
    """The ask cannot be served as IAM stands; the message says why and what to do, for people."""


def _same_user(user: str, *, found: str | None, marker: str) -> None:
    """A day-two plan touches only the user its creating request made: IAM's marker tag must still say so."""
    if found != marker:
        raise Unplannable(f"`{user}` in IAM is not the user the bot created for request {marker}; it was replaced by hand, so the bot leaves it alone.")


def plan_new_credentials(kind: PlanKind, facts: CredentialFacts, *, account: str, marker: str) -> Plan:
    """A key rotation or a password reset for a user the bot created (for request `marker`). Pure.

    Rotation adds a second key beside the one in use (IAM allows two) and names that one, so the
    apply job can tell a key of its own lost try from one added by hand; the old key is retired later.
    """
    user = facts.user_name
    _same_user(facts.user_name, found=facts.marker, marker=marker)
    if kind is PlanKind.ROTATE_KEY:
        if not facts.keys:
            raise Unplannable(f"`{user}` has no access key, so there is nothing to rotate. A first key is a change to the user: ask an approver.")
        if len(facts.keys) > 1:
            ids = ", ".join(f"{k.key_id} ({'active' if k.active else 'inactive'})" for k in facts.keys)
            raise Unplannable(
                f"`{user}` already has two access keys ({ids}), IAM's limit. Delete the one no longer in use "
                "(IAM > Users > Security credentials), or wait for an earlier rotation to retire its old key, then ask again."
            )
        step = Step(StepKind.ADD_ACCESS_KEY, target=facts.keys[0].key_id)
    elif kind is PlanKind.HELD_KEY:
        if facts.keys:
            raise Unplannable(
                f"`{user}` already has an access key ({facts.keys[0].key_id}), made since its request was approved, so the key held "
                "until MFA was on is not made. Use that key, or delete it and ask an approver for a new one."
            )
        step = Step(StepKind.ADD_ACCESS_KEY)  # no key to keep: a key found after a try is this request's own, lost
    elif kind is PlanKind.RESET_PASSWORD:
        if not facts.console:
            raise Unplannable(f"`{user}` cannot sign in to the console, so it has no password to reset. Console access is a change to the user: ask an approver.")
        step = Step(StepKind.RESET_PASSWORD)
    else:
        raise ValueError(f"not a credentials plan: {kind}")
    return Plan(kind=kind, account=account, user_name=user, steps=(step,))


def removal_steps(kind: PlanKind, facts: RemovalFacts, *, origin: str = "") -> list[Step]:
    """What disabling or offboarding `facts`' user takes, in the order IAM requires before DeleteUser. Pure.

    Disabling stops every way in (the console password, active keys) and keeps the user; offboarding
    removes everything IAM holds for it, MFA devices deactivated (virtual ones deleted), then the user.
    """
    def step(k: StepKind, target: str = "") -> Step:
        return Step(k, target=target, origin=origin)

    out = [step(StepKind.DELETE_LOGIN_PROFILE)] if facts.console else []
    if kind.disables:
        return out + [step(StepKind.DEACTIVATE_ACCESS_KEY, k.key_id) for k in facts.keys if k.active]
    out += [step(StepKind.DELETE_ACCESS_KEY, k.key_id) for k in facts.keys]
    out += [step(StepKind.DELETE_SIGNING_CERTIFICATE, c) for c in facts.signing_certificates]
    out += [step(StepKind.DELETE_SSH_KEY, k) for k in facts.ssh_keys]
    out += [step(StepKind.DELETE_SERVICE_CREDENTIAL, c) for c in facts.service_credentials]
    out += [step(StepKind.DEACTIVATE_MFA_DEVICE, d) for d in facts.mfa_devices]
    out += [step(StepKind.DELETE_VIRTUAL_MFA_DEVICE, d) for d in facts.mfa_devices if ":mfa/" in d]  # a virtual device; a FIDO key (u2f) is only deactivated
    out += [step(StepKind.DELETE_INLINE_POLICY, p) for p in facts.inline_policies]
    out += [step(StepKind.DETACH_POLICY, p) for p in facts.attached_policies]
    out += [step(StepKind.REMOVE_FROM_GROUP, g) for g in facts.groups]
    return out


def plan_removal(kind: PlanKind, facts: RemovalFacts, *, account: str, marker: str) -> Plan:
    """Disable or offboard a user the bot created (for request `marker`). Pure."""
    user = facts.user_name
    _same_user(facts.user_name, found=facts.marker, marker=marker)
    steps = removal_steps(kind, facts)
    if kind in (PlanKind.DISABLE, PlanKind.DISABLE_NOW) and not steps:  # an expiry finds it disabled already: nothing to do, not an error
        raise Unplannable(f"`{user}` is already disabled: it has no console password and no active access key. Offboard it to delete it.")
    if kind.deletes:
        steps.append(Step(StepKind.DELETE_USER))
    return Plan(kind=kind, account=account, user_name=user, steps=tuple(steps))


def plan_extension(facts: CredentialFacts, *, account: str, marker: str, expires_on: str) -> Plan:
    """A later end date for a user the bot created (for request `marker`): nothing changes in IAM. Pure."""
    _same_user(facts.user_name, found=facts.marker, marker=marker)
    return Plan(kind=PlanKind.EXTEND, account=account, user_name=facts.user_name, steps=(), expires_on=expires_on)


# ---------------------------------------------------------------- a change to an existing user


@dataclass(frozen=True)
class ChangeFacts:
    """What a change is planned on: the user's permissions and credentials, and the groups and
    policies it would hold afterwards (read as for a new user)."""

    user: UserFacts
    credentials: CredentialFacts
    iam: IamFacts


def gather_change_facts(iam: IamReader, credentials: Any, spec: RequestSpec) -> ChangeFacts:
    """Read the user (NoSuchEntity if it is gone: raised), then every group and policy it would hold."""
    user = iam.read_user(spec.user_name)
    creds = credentials(spec.user_name)
    removed_groups, removed_policies = set(spec.removes("group")), set(spec.removes("policy"))
    after = RequestSpec(
        user_name=spec.user_name, console_access=False, access_key=False, owner_id=spec.owner_id, reason="",
        groups=tuple(dict.fromkeys([*(g for g in user.groups if g not in removed_groups), *spec.groups])),
        policy_arns=tuple(dict.fromkeys([*(p for p in user.attached if p not in removed_policies), *spec.policy_arns])),
        permissions_boundary=user.boundary,
    )
    return ChangeFacts(user=user, credentials=creds, iam=gather_facts(iam, after))


def plan_change(
    spec: RequestSpec, facts: ChangeFacts, *, marker: str, path: str, temporary: Mapping[tuple[str, str], str] | None = None,
    expires_on: str | None = None,
) -> tuple[Plan, dict[str, Mapping[str, Any]]]:
    """The difference a change makes to a user the bot created (for request `marker`), and the user's
    whole effective grant afterwards, kept and added alike (judged as a new user's is). Pure.
    `expires_on`: the user's end date on record, named so the rules that want one for what is added see it.

    Groups and policies taken away come first, so the user never holds the old and the new together;
    then those added; then the console password or keys deleted (what cannot be put back); new
    credentials last, as for a new user. `temporary`: the user's time-bound grants now, (kind, target) -> end, in words.
    Unplannable if nothing would change, or what is asked cannot be done as IAM stands.
    """
    user, creds, name = facts.user, facts.credentials, spec.user_name
    _same_user(name, found=creds.marker, marker=marker)
    for kind, asked, held in (("group", spec.groups, user.groups), ("policy", spec.policy_arns, user.attached)):
        for target in asked:
            if target in held and (ends := (temporary or {}).get((kind, target))):
                label = target if kind == "group" else policy_name(target)
                raise Unplannable(f"`{name}` has `{label}` for a time already (until {ends}). Extend that grant (Home, or the reminder before it ends) instead.")
    if spec.access_key and creds.keys and "key" not in spec.remove:
        raise Unplannable(f"`{name}` already has an access key ({creds.keys[0].key_id}). A new one replacing it is a rotation: `/iam rotate-key {name}`.")
    if spec.grant_for and not (set(spec.groups) - set(user.groups) or set(spec.policy_arns) - set(user.attached)):
        raise Unplannable(f"A time limit applies to groups and policies the change adds, and `{name}` already has every one asked for.")

    removed_groups = [g for g in spec.removes("group") if g in user.groups]
    removed_policies = [p for p in spec.removes("policy") if p in user.attached]
    added_groups = [g for g in spec.groups if g not in user.groups]
    added_policies = [p for p in spec.policy_arns if p not in user.attached]
    steps = [Step(StepKind.REMOVE_FROM_GROUP, g) for g in removed_groups] + [Step(StepKind.DETACH_POLICY, p) for p in removed_policies]
    steps += [Step(StepKind.ADD_TO_GROUP, g, lasts=spec.grant_for) for g in added_groups]
    steps += [Step(StepKind.ATTACH_POLICY, p, lasts=spec.grant_for) for p in added_policies]
    # What cannot be put back comes after what can: a change that fails before it is undone whole.
    if "console" in spec.remove and creds.console:
        steps.append(Step(StepKind.DELETE_LOGIN_PROFILE))
    removed_keys = [k.key_id for k in creds.keys] if "key" in spec.remove else []
    steps += [Step(StepKind.DELETE_ACCESS_KEY, k) for k in removed_keys]
    if spec.console_access and not creds.console:
        steps.append(Step(StepKind.CREATE_LOGIN_PROFILE))
    if spec.access_key and (not creds.keys or removed_keys):
        steps.append(Step(StepKind.ADD_ACCESS_KEY))  # no key kept: one found after a try is this request's own, lost
    if not steps:
        raise Unplannable(f"Nothing would change: `{name}` already has everything the change adds and none of what it takes away.")

    keeps, grant, documents = _after(
        facts, groups=added_groups, policies=added_policies, dropped_groups=removed_groups, dropped_policies=removed_policies,
        console=creds.console and "console" not in spec.remove, key=bool(creds.keys) and not removed_keys,
    )
    return Plan(kind=PlanKind.CHANGE, account=facts.iam.account, user_name=name, steps=tuple(steps), grant=grant, path=path, keeps=tuple(keeps),
                expires_on=expires_on), documents


def _after(
    facts: ChangeFacts, *, groups: Sequence[str], policies: Sequence[str], dropped_groups: Sequence[str] = (), dropped_policies: Sequence[str] = (),
    console: bool, key: bool,
) -> tuple[list[str], EffectiveGrant, dict[str, Mapping[str, Any]]]:
    """An existing user after `groups` and `policies` are (re)granted and the dropped ones taken away: what
    it keeps untouched (Plan.keeps) and its whole effective grant, kept (HELD) and granted alike."""
    user = facts.user
    kept_groups = [g for g in user.groups if g not in groups and g not in dropped_groups]
    kept_policies = [p for p in user.attached if p not in policies and p not in dropped_policies]
    keeps = [*(f"group:{g}" for g in kept_groups), *(f"policy:{p}" for p in kept_policies)] + (["console"] if console else []) + (["key"] if key else [])
    grant, documents = _granted_after(
        facts.iam, groups=[(g, HELD) for g in kept_groups] + [(g, "") for g in groups],
        policies=[(p, HELD) for p in kept_policies] + [(p, "") for p in policies], inline=user.inline, boundary=user.boundary,
    )
    return keeps, grant, documents


def _granted_after(
    facts: IamFacts, *, groups: list[tuple[str, str]], policies: list[tuple[str, str]], inline: tuple[InlinePolicy, ...], boundary: str | None,
) -> tuple[EffectiveGrant, dict[str, Mapping[str, Any]]]:
    """Everything a user holds with these groups, direct policies, inline policies and boundary, each
    with the origin given (HELD: it has it now), read from `facts`."""
    documents: dict[str, Mapping[str, Any]] = {}

    def keep(document: Mapping[str, Any] | None) -> str | None:
        if document is None:
            return None
        documents[h := document_hash(document)] = document
        return h

    def managed(arn: str, *, group: str | None = None, origin: str = "") -> Granted:
        p = facts.policies.get(arn) or ManagedPolicy(arn=arn)
        return Granted(name=p.name, group=group, arn=arn, version=p.version, document=keep(p.document), origin=origin)

    out: list[Granted] = []
    for group_name, origin in groups:
        group = facts.groups.get(group_name)
        out += [managed(arn, group=group_name, origin=origin) for arn in (group.attached if group else ())]
        out += [Granted(name=p.name, group=group_name, document=keep(p.document), origin=origin) for p in (group.inline if group else ())]
    out += [managed(arn, origin=origin) for arn, origin in policies]
    out += [Granted(name=p.name, document=keep(p.document), origin=HELD) for p in inline]
    grant = EffectiveGrant(policies=tuple(out), boundary=managed(boundary, origin=HELD) if boundary else None, unknown=facts.unknown)
    return grant, documents


def plan_grant_extension(
    spec: RequestSpec, facts: ChangeFacts, *, marker: str, path: str, ends: str, expires_on: str | None = None
) -> tuple[Plan, dict[str, Mapping[str, Any]]]:
    """A time-bound grant kept until `ends` (a moment, bot.domain.grants.moment): its group or policy
    granted again (IAM takes that as a no-op if it is still there) with the new end, and the user's
    whole grant judged again, as a change's is. Pure."""
    creds, name = facts.credentials, spec.user_name
    _same_user(name, found=creds.marker, marker=marker)
    steps = [Step(StepKind.ADD_TO_GROUP, g, lasts=ends) for g in spec.groups] + [Step(StepKind.ATTACH_POLICY, p, lasts=ends) for p in spec.policy_arns]
    keeps, grant, documents = _after(facts, groups=spec.groups, policies=spec.policy_arns, console=creds.console, key=bool(creds.keys))
    return Plan(kind=PlanKind.EXTEND_GRANT, account=facts.iam.account, user_name=name, steps=tuple(steps), grant=grant, path=path, keeps=tuple(keeps),
                expires_on=expires_on), documents


def plan_revoke(spec: RequestSpec, facts: CredentialFacts | None, *, account: str, marker: str, why: str) -> Plan:
    """Take away exactly the time-bound grants a revoke request names (spec.remove), nothing else. Pure.

    Each is a step even if it was removed by hand meanwhile (the apply job records it as already
    gone); a user deleted (`facts` None) or replaced by hand meanwhile gets no step: there is nothing
    of the bot's left to take away.
    """
    if facts is None or facts.marker != marker:
        return Plan(kind=PlanKind.REVOKE, account=account, user_name=spec.user_name, steps=())
    steps = [Step(StepKind.REMOVE_FROM_GROUP, g, origin=why) for g in spec.removes("group")]
    steps += [Step(StepKind.DETACH_POLICY, p, origin=why) for p in spec.removes("policy")]
    return Plan(kind=PlanKind.REVOKE, account=account, user_name=spec.user_name, steps=tuple(steps))
