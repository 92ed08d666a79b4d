"""The only module that talks to AWS. Every write is idempotent against IAM's real state.

Reads come in three speeds: typeahead listings (cached briefly, `bot.iam.cache.TtlCache`), quick
checks bounded by a deadline while Slack waits, and the facts a plan is made of (`read_user`,
`read_group`, `read_policy`), whose documents are kept by policy version since a version never changes.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from bot.common.constants import MARKER_TAG
from bot.domain.facts import (
    AccessKeyFacts,
    CredentialFacts,
    GroupFacts,
    InlinePolicy,
    ManagedPolicy,
    PasswordPolicy,
    PolicyChoice,
    RemovalFacts,
    UserFacts,
    is_aws_managed,
)
from bot.iam.cache import Immutable, TtlCache
from bot.iam.errors import AwsError, UserConflict, call

__all__ = ["AwsError", "IamGateway", "UserConflict"]

log = logging.getLogger(__name__)

# Retries inside botocore for throttling, 5xx and connection errors; the job retries a step after that.
# Adaptive mode adds a client-side rate limiter that slows every thread of the process down to the
# rate IAM accepts once it throttles, so a burst of approvals is paced instead of hammering IAM.
# The attempt count is left to boto3's chain (AWS_MAX_ATTEMPTS, default 3).
# Each is made afresh for every client: botocore writes the resolved attempt count into the `retries`
# dict it is given, so a shared Config would carry the first client's AWS_MAX_ATTEMPTS to every later one.
def _write_config() -> Config:
    return Config(retries={"mode": "adaptive"}, connect_timeout=5, read_timeout=30)


# Creates that IAM does not make idempotent (CreateUser, CreateLoginProfile, CreateAccessKey) are never
# repeated by botocore: an answer lost after IAM did the work would leave a second key whose secret
# nobody holds. They are tried again here, after reading what IAM did (`_creates`).
# As many tries as botocore gives other calls (AWS_MAX_ATTEMPTS).
def _create_config() -> Config:
    return Config(retries={"mode": "adaptive", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)


# Checks made while Slack waits (3 s): one quick try (a local connection is made in well under 0.3 s;
# a busy IAM may take a second to answer), then give up and check again at provisioning.
QUICK_CONNECT, QUICK_READ = 0.3, 1.0


def _quick_config() -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=QUICK_CONNECT, read_timeout=QUICK_READ)



def _pause(attempt: int) -> None:
    """Before trying a create again: exponential back-off with full jitter (0.5 s, 1 s, ... up to 8 s)."""
    time.sleep(random.uniform(0, min(8.0, 0.5 * 2**attempt)))


# GetCredentialReport's answers while no report can be read yet: none made, one being made, one too
# old (4 hours). Each is answered by generating (again) and polling, within the caller's wait.
_REPORT_PENDING = frozenset({"ReportNotPresent", "ReportInProgress", "ReportExpired"})
_REPORT_FIRST_STEP, _REPORT_MAX_STEP = 1.0, 5.0  # poll after 1 s, then 2, 3, 4 and 5 s at most


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _document(doc: Any) -> dict[str, Any]:
    # botocore decodes IAM policy documents to dicts; be safe with a JSON string too.
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def _context_entries(context: Mapping[str, str | Sequence[str]]) -> list[dict[str, Any]]:
    """The simulator's ContextEntries: a string, or a list of strings (aws:TagKeys) as stringList."""
    return [
        {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
        if isinstance(v, str)
        else {"ContextKeyName": k, "ContextKeyValues": list(v), "ContextKeyType": "stringList"}
        for k, v in context.items()
    ]


def _items(pages: Any, key: str, field: str | None = None) -> tuple[str, ...]:
    """Every item listed under `key` over every page (its `field`, if the items are records)."""
    return tuple(item if field is None else item[field] for page in pages for item in page[key])


# A virtual MFA device's serial is its ARN (arn:aws:iam::<account>:mfa/<path><name>). A hardware
# device's is not an ARN, and a FIDO security key's is one of type u2f: deactivating them removes them.
_VIRTUAL_MFA = re.compile(r"^arn:[^:]+:iam::[^:]*:mfa/")


def _removed(action: str, fn: Callable[..., Any], **kwargs: Any) -> bool:
    """One removal: True if IAM removed something, False if it was gone already (NoSuchEntity), so that
    a removal repeated (a resumed job, a retry after a lost answer) is harmless. Other errors propagate."""
    try:
        call(action, fn, **kwargs)
        return True
    except AwsError as exc:
        if exc.code != "NoSuchEntity":
            raise
        return False


def _decisions(pages: Any, action: str) -> dict[str, str]:
    try:
        return {r["EvalActionName"]: r["EvalDecision"] for page in pages for r in page["EvaluationResults"]}
    except ResponseParserError:
        # Not an AWS answer at all (moto, for one, answers the simulator's actions with an HTML 500).
        raise AwsError("UnparseableResponse", "the endpoint's answer is not an IAM response", action=action) from None


BotoSession = boto3.session.Session  # what build() may be given instead of boto3's default chain


class IamGateway:
    SETUP = "create the AWS clients"  # the action named when that fails (no region, a broken profile)

    def __init__(self, session: BotoSession | None = None, *, cache_seconds: float = 60.0):
        try:
            self._session = session or boto3.session.Session()
            self.iam = self._session.client("iam", config=_write_config())
            self._creates = self._session.client("iam", config=_create_config())
            self._quick = self._session.client("iam", config=_quick_config())
            self._sts = self._session.client("sts", config=_write_config())
        except BotoCoreError as exc:
            raise AwsError(type(exc).__name__, "the AWS clients could not be made", action=self.SETUP) from None
        self._cache = TtlCache(cache_seconds)
        self._documents = Immutable()
        # AWS request ids of this thread's write calls, for the audit log (`take_request_ids`).
        self._local = threading.local()
        self._create_tries = max(1, int(self.iam.meta.config.retries.get("total_max_attempts") or 3))
        for client in (self.iam, self._creates):
            client.meta.events.register("after-call.iam", self._remember_request_id)

    def _remember_request_id(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        # Reads, and the credential report's generation (it changes no user), are not the audit's business.
        if model.name.startswith(("List", "Get")) or model.name == "GenerateCredentialReport":
            return
        rid = (parsed.get("ResponseMetadata") or {}).get("RequestId")
        if rid:
            self._local.__dict__.setdefault("ids", []).append(f"{model.name}:{rid}")

    def take_request_ids(self) -> list[str]:
        """The `Action:RequestId` of every IAM write this thread made since the last call."""
        ids = self._local.__dict__.get("ids", [])
        self._local.ids = []
        return ids

    # ---- reads for the request form (cached briefly, served to external_select) ----

    def group_names(self) -> list[str]:
        def load() -> list[str]:
            pages = self.iam.get_paginator("list_groups").paginate()
            return sorted((g["GroupName"] for p in pages for g in p["Groups"]), key=str.lower)

        return self._cache.get("groups", lambda: call("ListGroups", load))

    def policies(self) -> list[PolicyChoice]:
        def load() -> list[PolicyChoice]:
            pages = self.iam.get_paginator("list_policies").paginate(Scope="All", PaginationConfig={"PageSize": 1000})
            out = [
                PolicyChoice(arn=p["Arn"], name=p["PolicyName"], aws_managed=is_aws_managed(p["Arn"]))
                for page in pages
                for p in page["Policies"]
            ]
            # Customer-managed first: they are what teams usually grant.
            return sorted(out, key=lambda c: (c.aws_managed, c.name.lower()))

        return self._cache.get("policies", lambda: call("ListPolicies", load))

    def user_names(self) -> list[str]:
        def load() -> list[str]:
            pages = self.iam.get_paginator("list_users").paginate()
            return sorted((u["UserName"] for p in pages for u in p["Users"]), key=str.lower)

        return self._cache.get("users", lambda: call("ListUsers", load))

    def warm(self) -> None:
        """Fill the typeahead caches at start, so the first person to type waits for nobody."""
        for load in (self.account_id, self.group_names, self.policies, self.user_names):
            try:
                load()
            except AwsError as exc:
                log.warning("could not pre-load IAM listings (%s); they load on first use", exc.code)
                return

    def user_exists_quick(self, user_name: str, *, deadline: float, exact_only: bool = False) -> bool | None:
        """Whether IAM has this name, compared case-insensitively as IAM does for uniqueness.

        Slack waits 3 s for the form's answer, so a call is only made if it can finish before
        `deadline` (time.monotonic()); None means "could not tell in time" and CreateUser checks
        again at provisioning.
        """
        if not self._time_for_one_call(deadline):
            return None
        if exact_only:
            try:
                self._quick.get_user(UserName=user_name)
                return True
            except ClientError as exc:
                return False if exc.response.get("Error", {}).get("Code") == "NoSuchEntity" else None
            except (BotoCoreError, BotoConnectionError):
                return None
        # GetUser matches the exact spelling only, and IAM's uniqueness ignores case: scan the names.
        # One ListUsers page holds up to 1,000 users, so most accounts are answered in one call.
        wanted = user_name.lower()
        try:
            pages = iter(self._quick.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 1000}))
            while self._time_for_one_call(deadline):
                page = next(pages, None)
                if page is None:
                    return False
                if any(u["UserName"].lower() == wanted for u in page["Users"]):
                    return True
        except (ClientError, BotoCoreError, BotoConnectionError):
            return None
        return None

    @staticmethod
    def _time_for_one_call(deadline: float) -> bool:
        worst = QUICK_CONNECT + QUICK_READ
        return time.monotonic() + worst <= deadline

    def endpoint_urls(self) -> list[str]:
        """Where each client sends its calls (the demo checks they all go to its local IAM)."""
        return [c.meta.endpoint_url for c in (self.iam, self._creates, self._quick, self._sts)]

    # ---- the facts a plan is made of ----

    def read_user(self, user_name: str) -> UserFacts:
        """What copying from `user_name` would bring: its groups, managed and inline policies, boundary."""
        return call("read the permissions of user " + user_name, self._read_user, user_name=user_name)

    def _read_user(self, *, user_name: str) -> UserFacts:
        iam = self.iam
        user = iam.get_user(UserName=user_name)["User"]
        groups = [g["GroupName"] for page in iam.get_paginator("list_groups_for_user").paginate(UserName=user_name) for g in page["Groups"]]
        attached = [
            p["PolicyArn"]
            for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=user_name)
            for p in page["AttachedPolicies"]
        ]
        names = [n for page in iam.get_paginator("list_user_policies").paginate(UserName=user_name) for n in page["PolicyNames"]]
        inline = tuple(
            InlinePolicy(name=n, document=_document(iam.get_user_policy(UserName=user_name, PolicyName=n)["PolicyDocument"])) for n in names
        )
        boundary = (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        return UserFacts(name=user_name, groups=tuple(groups), attached=tuple(attached), inline=inline, boundary=boundary)

    def read_group(self, group: str) -> GroupFacts:
        """A group's attached managed policies (ARNs) and its inline policies with their documents."""
        return call("read the policies of group " + group, self._read_group, group=group)

    def _read_group(self, *, group: str) -> GroupFacts:
        iam = self.iam
        attached = [
            p["PolicyArn"]
            for page in iam.get_paginator("list_attached_group_policies").paginate(GroupName=group)
            for p in page["AttachedPolicies"]
        ]
        names = [n for page in iam.get_paginator("list_group_policies").paginate(GroupName=group) for n in page["PolicyNames"]]
        inline = tuple(
            InlinePolicy(name=n, document=_document(iam.get_group_policy(GroupName=group, PolicyName=n)["PolicyDocument"])) for n in names
        )
        return GroupFacts(name=group, attached=tuple(attached), inline=inline)

    def policy_version(self, arn: str) -> str:
        """A managed policy's default version id, read now (never cached: drift checks rely on it)."""
        return call("GetPolicy", self.iam.get_policy, PolicyArn=arn)["Policy"]["DefaultVersionId"]

    def read_policy(self, arn: str) -> ManagedPolicy:
        """A managed policy's default version, read now, and that version's document (kept by version)."""
        version = self.policy_version(arn)

        def load() -> dict[str, Any]:
            got = call("GetPolicyVersion", self.iam.get_policy_version, PolicyArn=arn, VersionId=version)
            return _document(got["PolicyVersion"]["Document"])

        return ManagedPolicy(arn=arn, version=version, document=self._documents.get((arn, version), load))

    def group_policies_quick(self, groups: list[str], *, deadline: float) -> dict[str, tuple[str, ...]]:
        """The managed policies attached to each of `groups`, for those read before `deadline`.

        For the form's guardrail check while Slack waits; what is missing is judged on the plan.
        """
        out: dict[str, tuple[str, ...]] = {}
        for group in groups:
            if not self._time_for_one_call(deadline):
                break
            try:
                got = self._quick.list_attached_group_policies(GroupName=group, MaxItems=1000)
            except (ClientError, BotoCoreError, BotoConnectionError):
                continue
            out[group] = tuple(p["PolicyArn"] for p in got["AttachedPolicies"])
        return out

    def documents_quick(self, arns: list[str], *, deadline: float) -> dict[str, dict[str, Any]]:
        """Documents of the managed policies among `arns` that can be read before `deadline` (kept by version).

        For the form's guardrail check while Slack waits; what is missing is judged on the plan.
        """
        out: dict[str, dict[str, Any]] = {}
        iam = self._quick
        for arn in arns:
            try:
                if not self._time_for_one_call(deadline):
                    break
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                if not self._time_for_one_call(deadline):
                    break
                out[arn] = self._documents.get(
                    (arn, version), lambda: _document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
                )
            except (ClientError, BotoCoreError, BotoConnectionError):
                continue
        return out

    def account_id(self) -> str:
        return self._cache.get(
            "account", lambda: call("GetCallerIdentity", self._sts.get_caller_identity)["Account"]
        )

    def known_account_id(self) -> str | None:
        """The account id if it was read already (no call: for screens Slack is waiting on)."""
        return self._cache.peek("account")

    def caller_identity(self) -> tuple[str, str]:
        """(account id, ARN) of the identity the bot runs as; sts GetCallerIdentity needs no permission."""
        who = call("GetCallerIdentity", self._sts.get_caller_identity)
        return who["Account"], who["Arn"]

    def simulate(
        self, *, principal_arn: str, actions: list[str], resource_arn: str, context: Mapping[str, str | Sequence[str]] | None = None
    ) -> dict[str, str]:
        """{action: "allowed" | "implicitDeny" | "explicitDeny"} for the principal's policies on one resource."""

        def run() -> dict[str, str]:
            kwargs: dict[str, Any] = {"PolicySourceArn": principal_arn, "ActionNames": actions, "ResourceArns": [resource_arn]}
            if context:
                kwargs["ContextEntries"] = _context_entries(context)
            pages = self.iam.get_paginator("simulate_principal_policy").paginate(**kwargs)
            return _decisions(pages, "SimulatePrincipalPolicy")

        return call("SimulatePrincipalPolicy", run)

    def simulate_custom(
        self, *, policy: Mapping[str, Any], actions: list[str], resource_arn: str, context: Mapping[str, str | Sequence[str]] | None = None
    ) -> dict[str, str]:
        """{action: decision} for a policy document (not attached to anyone) on one resource: what it would allow."""

        def run() -> dict[str, str]:
            kwargs: dict[str, Any] = {"PolicyInputList": [json.dumps(policy)], "ActionNames": actions, "ResourceArns": [resource_arn]}
            if context:
                kwargs["ContextEntries"] = _context_entries(context)
            pages = self.iam.get_paginator("simulate_custom_policy").paginate(**kwargs)
            return _decisions(pages, "SimulateCustomPolicy")

        return call("SimulateCustomPolicy", run)

    def console_url(self) -> tuple[str, str]:
        """(sign-in URL, account id or alias) for the console credentials; the alias is read once a minute at most."""
        aliases = self._cache.get("aliases", lambda: call("ListAccountAliases", self.iam.list_account_aliases).get("AccountAliases") or [])
        who = aliases[0] if aliases else self.account_id()
        return f"https://{who}.signin.aws.amazon.com/console", who

    def password_policy(self, *, fresh: bool = False) -> PasswordPolicy:
        """The account's password policy, read once a minute at most (`fresh`: read now, e.g. after IAM
        refused a password made for an older one)."""
        if fresh:
            policy = self._read_password_policy()
            self._cache.put("password-policy", policy)
            return policy
        return self._cache.get("password-policy", self._read_password_policy)

    def _read_password_policy(self) -> PasswordPolicy:
        try:
            p = call("GetAccountPasswordPolicy", self.iam.get_account_password_policy)["PasswordPolicy"]
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return PasswordPolicy()  # the account has none: AWS's default rules apply
            raise
        return PasswordPolicy(
            minimum_length=int(p.get("MinimumPasswordLength", 8)),
            require_symbols=bool(p.get("RequireSymbols")),
            require_numbers=bool(p.get("RequireNumbers")),
            require_uppercase=bool(p.get("RequireUppercaseCharacters")),
            require_lowercase=bool(p.get("RequireLowercaseCharacters")),
        )

    # ---- account hygiene: the credential report and MFA enrolment ----

    def credential_report(
        self, *, wait_seconds: float = 20.0, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
    ) -> tuple[bytes, datetime]:
        """IAM's credential report (CSV bytes) and when IAM generated it (aware, UTC).

        IAM makes the report asynchronously: GenerateCredentialReport starts it (or answers COMPLETE
        when a recent one exists), so it is asked again, once per poll step, until the report can be
        read or `wait_seconds` have passed on `clock` (IAM's answers count too): then AwsError ReportInProgress.
        """
        start, step = clock(), _REPORT_FIRST_STEP
        while True:
            got = self._ready_credential_report()
            if got is not None:
                return got
            left = wait_seconds - (clock() - start)
            if left <= 0:
                raise AwsError("ReportInProgress", "IAM is still generating the credential report", action="GetCredentialReport")
            pause = min(step, left)
            sleep(pause)
            step = min(_REPORT_MAX_STEP, step + 1.0)

    def _ready_credential_report(self) -> tuple[bytes, datetime] | None:
        """One poll step: one GenerateCredentialReport, then the report if IAM says it is complete."""
        state = call("GenerateCredentialReport", self.iam.generate_credential_report).get("State")
        if state != "COMPLETE":
            return None
        try:
            got = call("GetCredentialReport", self.iam.get_credential_report)
        except AwsError as exc:
            if exc.code in _REPORT_PENDING:  # expired or replaced meanwhile: generate again next step
                return None
            raise
        return bytes(got["Content"]), _utc(got["GeneratedTime"])

    def mfa_enabled(self, user_name: str) -> bool:
        """Whether the user has any MFA device enrolled (NoSuchEntity if there is no such user)."""

        def load() -> bool:
            pages = self.iam.get_paginator("list_mfa_devices").paginate(UserName=user_name)
            return any(page["MFADevices"] for page in pages)

        return call("ListMFADevices", load)

    # ---- idempotent writes for provisioning ----

    def ensure_user(
        self, *, user_name: str, path: str, tags: list[tuple[str, str]], boundary: str | None, marker: str
    ) -> str:
        """Create the user with path, tags and boundary in one call; a user carrying our marker is ours."""
        kwargs: dict[str, Any] = {
            "UserName": user_name,
            "Path": path,
            "Tags": [{"Key": k, "Value": v} for k, v in tags] + [{"Key": MARKER_TAG, "Value": marker}],
        }
        if boundary:
            kwargs["PermissionsBoundary"] = boundary
        ours = False
        for attempt in range(self._create_tries):
            try:
                return call("CreateUser", self._creates.create_user, **kwargs)["User"]["Arn"]
            except AwsError as exc:
                if exc.code == "EntityAlreadyExists":
                    break
                if not exc.transient or attempt == self._create_tries - 1:
                    raise
            _pause(attempt)  # then: did IAM make it, and only its answer was lost? The marker says.
            if ours := self.carries_marker(user_name, marker):
                break
        if ours or self.carries_marker(user_name, marker):
            return call("GetUser", self.iam.get_user, UserName=user_name)["User"]["Arn"]
        raise UserConflict(
            "EntityAlreadyExists",
            f"a user named {user_name} already exists and was not created by this request",
            action="CreateUser",
        )

    def user_visible(self, user_name: str) -> bool:
        """Whether GetUser sees the user yet: IAM is eventually consistent after CreateUser."""
        try:
            call("GetUser", self.iam.get_user, UserName=user_name)
            return True
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise

    def carries_marker(self, user_name: str, marker: str) -> bool:
        try:
            tags = call("ListUserTags", self.iam.list_user_tags, UserName=user_name)["Tags"]
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        return any(t["Key"] == MARKER_TAG and t["Value"] == marker for t in tags)

    def add_to_group(self, *, user_name: str, group: str) -> None:
        call("AddUserToGroup", self.iam.add_user_to_group, UserName=user_name, GroupName=group)

    def attach_policy(self, *, user_name: str, policy_arn: str) -> None:
        call("AttachUserPolicy", self.iam.attach_user_policy, UserName=user_name, PolicyArn=policy_arn)

    def put_inline_policy(self, *, user_name: str, name: str, document: Mapping[str, Any]) -> None:
        call("PutUserPolicy", self.iam.put_user_policy, UserName=user_name, PolicyName=name, PolicyDocument=json.dumps(document))

    def set_login_profile(self, *, user_name: str, password: str) -> None:
        """Create the console login, or replace its password if an earlier try (or a crashed job) made it."""
        for attempt in range(self._create_tries):
            try:
                call("CreateLoginProfile", self._creates.create_login_profile, UserName=user_name, Password=password, PasswordResetRequired=True)
                return
            except AwsError as exc:
                if exc.code == "EntityAlreadyExists":
                    break
                if not exc.transient or attempt == self._create_tries - 1:
                    raise
            _pause(attempt)
        # UpdateLoginProfile sets the same password however often it is repeated: botocore may retry it.
        call("UpdateLoginProfile", self.iam.update_login_profile, UserName=user_name, Password=password, PasswordResetRequired=True)

    def create_fresh_access_key(self, *, user_name: str) -> tuple[str, str]:
        """Create the user's one access key. A key already there is one whose secret nobody holds (a crashed
        job, or an answer lost on the way): it is deleted first, each try, so one request leaves one key."""

        def clear(_attempt: int) -> None:
            for key in call("ListAccessKeys", self.iam.list_access_keys, UserName=user_name)["AccessKeyMetadata"]:
                call("DeleteAccessKey", self.iam.delete_access_key, UserName=user_name, AccessKeyId=key["AccessKeyId"])

        return self._create_key(user_name, clear)

    def _create_key(self, user_name: str, clear: Callable[[int], None]) -> tuple[str, str]:
        """CreateAccessKey, never retried by botocore: tried again here, after `clear(attempt)` removed
        what a try whose answer was lost may have made."""
        for attempt in range(self._create_tries):
            clear(attempt)
            try:
                made = call("CreateAccessKey", self._creates.create_access_key, UserName=user_name)["AccessKey"]
                return made["AccessKeyId"], made["SecretAccessKey"]
            except AwsError as exc:
                if not exc.transient or attempt == self._create_tries - 1:
                    raise
            _pause(attempt)
        raise AssertionError("unreachable")  # the loop returns or raises

    # ---- day two: an existing user's credentials ----

    def read_credentials(self, user_name: str) -> CredentialFacts:
        """The user's access keys, whether it can sign in to the console, and the bot's marker if it made it."""
        return call("read the credentials of user " + user_name, self._read_credentials, user_name=user_name)

    def _read_credentials(self, *, user_name: str) -> CredentialFacts:
        marker, keys = self._marker_and_keys(user_name)
        return CredentialFacts(user_name=user_name, keys=keys, console=self._has_login_profile(user_name), marker=marker)

    def _marker_and_keys(self, user_name: str) -> tuple[str | None, tuple[AccessKeyFacts, ...]]:
        """The bot's marker on the user (None if absent) and its access keys. The tags are read first:
        a missing user is NoSuchEntity there, not a missing login profile read after."""
        iam = self.iam
        tags = [t for page in iam.get_paginator("list_user_tags").paginate(UserName=user_name) for t in page["Tags"]]
        keys = tuple(
            AccessKeyFacts(key_id=k["AccessKeyId"], active=k["Status"] == "Active")
            for page in iam.get_paginator("list_access_keys").paginate(UserName=user_name)
            for k in page["AccessKeyMetadata"]
        )
        return next((t["Value"] for t in tags if t["Key"] == MARKER_TAG), None), keys

    def _has_login_profile(self, user_name: str) -> bool:
        """Whether the user has a console password. Read after the user's tags: their NoSuchEntity is
        the user missing, so this one's is the login profile missing."""
        try:
            self.iam.get_login_profile(UserName=user_name)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
            return False

    def add_access_key(self, *, user_name: str, keep: str, tried: bool) -> tuple[str, str]:
        """A second key beside `keep` (the one being rotated). The plan saw `keep` alone, so once a create
        was sent (`tried`, or an earlier loop here) another key is one whose answer was lost: deleted
        first, each try. Before that, another key was added by hand meanwhile: KeyDrift, nothing touched."""

        def clear(attempt: int) -> None:
            for key in call("ListAccessKeys", self.iam.list_access_keys, UserName=user_name)["AccessKeyMetadata"]:
                if key["AccessKeyId"] == keep:
                    continue
                if not tried and attempt == 0:
                    raise AwsError("KeyDrift", f"{user_name} gained the key {key['AccessKeyId']} after the rotation was planned", action="ListAccessKeys")
                call("DeleteAccessKey", self.iam.delete_access_key, UserName=user_name, AccessKeyId=key["AccessKeyId"])

        return self._create_key(user_name, clear)

    def reset_password(self, *, user_name: str, password: str) -> None:
        """A new console password, to be changed at the next sign-in; repeating it sets the same one."""
        call("UpdateLoginProfile", self.iam.update_login_profile, UserName=user_name, Password=password, PasswordResetRequired=True)

    def deactivate_key(self, *, user_name: str, key_id: str) -> bool:
        """False if the key (or user) is gone already: nothing left to deactivate."""
        return _removed("UpdateAccessKey", self.iam.update_access_key, UserName=user_name, AccessKeyId=key_id, Status="Inactive")

    def delete_key(self, *, user_name: str, key_id: str) -> bool:
        return _removed("DeleteAccessKey", self.iam.delete_access_key, UserName=user_name, AccessKeyId=key_id)

    def delete_user_we_created(self, *, user_name: str, marker: str) -> bool:
        """Undo a failed provisioning: only a user that carries this request's marker is touched."""
        if not self.carries_marker(user_name, marker):
            return False
        iam = self.iam
        for key in call("ListAccessKeys", iam.list_access_keys, UserName=user_name)["AccessKeyMetadata"]:
            self.delete_key(user_name=user_name, key_id=key["AccessKeyId"])
        self.delete_login_profile(user_name=user_name)
        for p in call("ListAttachedUserPolicies", iam.list_attached_user_policies, UserName=user_name)["AttachedPolicies"]:
            self.detach_policy(user_name=user_name, policy_arn=p["PolicyArn"])
        for name in call("ListUserPolicies", iam.list_user_policies, UserName=user_name)["PolicyNames"]:
            self.delete_inline_policy(user_name=user_name, name=name)
        for g in call("ListGroupsForUser", iam.list_groups_for_user, UserName=user_name)["Groups"]:
            self.remove_from_group(user_name=user_name, group=g["GroupName"])
        # Not delete_user: a user gone since the marker was read stays an error here, as it always was.
        call("DeleteUser", iam.delete_user, UserName=user_name)
        return True

    # ---- disabling and offboarding: what IAM holds for a user, each removal idempotent ----

    def read_removal(self, user_name: str) -> RemovalFacts:
        """Everything IAM requires removed before DeleteUser, and the bot's marker if it made the user
        (NoSuchEntity if there is no such user)."""
        return call("read what user " + user_name + " holds", self._read_removal, user_name=user_name)

    def _read_removal(self, *, user_name: str) -> RemovalFacts:
        iam = self.iam
        user = {"UserName": user_name}
        marker, keys = self._marker_and_keys(user_name)
        return RemovalFacts(
            user_name=user_name,
            marker=marker,
            console=self._has_login_profile(user_name),
            keys=keys,
            signing_certificates=_items(iam.get_paginator("list_signing_certificates").paginate(**user), "Certificates", "CertificateId"),
            ssh_keys=_items(iam.get_paginator("list_ssh_public_keys").paginate(**user), "SSHPublicKeys", "SSHPublicKeyId"),
            service_credentials=self._service_credentials(user_name),
            mfa_devices=_items(iam.get_paginator("list_mfa_devices").paginate(**user), "MFADevices", "SerialNumber"),
            inline_policies=_items(iam.get_paginator("list_user_policies").paginate(**user), "PolicyNames"),
            attached_policies=_items(iam.get_paginator("list_attached_user_policies").paginate(**user), "AttachedPolicies", "PolicyArn"),
            groups=_items(iam.get_paginator("list_groups_for_user").paginate(**user), "Groups", "GroupName"),
        )

    def _service_credentials(self, user_name: str) -> tuple[str, ...]:
        """Every service's (CodeCommit, Keyspaces, Bedrock...). IAM pages them by Marker; botocore has no paginator for it."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {"UserName": user_name}
        while True:
            page = self.iam.list_service_specific_credentials(**kwargs)
            ids += [c["ServiceSpecificCredentialId"] for c in page["ServiceSpecificCredentials"]]
            if not (page.get("IsTruncated") and page.get("Marker")):
                return tuple(ids)
            kwargs["Marker"] = page["Marker"]

    def delete_login_profile(self, *, user_name: str) -> bool:
        return _removed("DeleteLoginProfile", self.iam.delete_login_profile, UserName=user_name)

    def delete_signing_certificate(self, *, user_name: str, certificate_id: str) -> bool:
        return _removed("DeleteSigningCertificate", self.iam.delete_signing_certificate, UserName=user_name, CertificateId=certificate_id)

    def delete_ssh_public_key(self, *, user_name: str, key_id: str) -> bool:
        return _removed("DeleteSSHPublicKey", self.iam.delete_ssh_public_key, UserName=user_name, SSHPublicKeyId=key_id)

    def delete_service_credential(self, *, user_name: str, credential_id: str) -> bool:
        return _removed(
            "DeleteServiceSpecificCredential", self.iam.delete_service_specific_credential, UserName=user_name, ServiceSpecificCredentialId=credential_id
        )

    def deactivate_mfa_device(self, *, user_name: str, serial: str) -> bool:
        """Take the device from the user. A virtual one stays in the account, unassigned, until
        `delete_virtual_mfa_device`: the user's ListMFADevices no longer shows it, so keep its serial."""
        return _removed("DeactivateMFADevice", self.iam.deactivate_mfa_device, UserName=user_name, SerialNumber=serial)

    def delete_virtual_mfa_device(self, *, serial: str) -> bool:
        """Delete a virtual device once deactivated (DeleteConflict while still assigned). Any other
        serial (a hardware device's, a FIDO key's) names nothing to delete: False, and no call."""
        if not _VIRTUAL_MFA.match(serial):
            return False
        return _removed("DeleteVirtualMFADevice", self.iam.delete_virtual_mfa_device, SerialNumber=serial)

    def delete_inline_policy(self, *, user_name: str, name: str) -> bool:
        return _removed("DeleteUserPolicy", self.iam.delete_user_policy, UserName=user_name, PolicyName=name)

    def detach_policy(self, *, user_name: str, policy_arn: str) -> bool:
        return _removed("DetachUserPolicy", self.iam.detach_user_policy, UserName=user_name, PolicyArn=policy_arn)

    def remove_from_group(self, *, user_name: str, group: str) -> bool:
        return _removed("RemoveUserFromGroup", self.iam.remove_user_from_group, UserName=user_name, GroupName=group)

    def delete_user(self, *, user_name: str) -> bool:
        """The last step: DeleteConflict (an AwsError) while IAM still holds anything attached to the user."""
        return _removed("DeleteUser", self.iam.delete_user, UserName=user_name)
