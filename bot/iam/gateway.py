"""The only module that talks to AWS. Every write is idempotent against IAM's real state."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from bot.credentials.passwords import PasswordPolicy
from bot.policy.risk import PolicyFact, RiskFacts
from bot.domain.spec import CopiedPermissions

log = logging.getLogger(__name__)
T = TypeVar("T")

MARKER_TAG = "iam-bot:request"

# Retries inside botocore for throttling, 5xx and connection errors; job-level retries add minutes.
# The attempt count is left to boto3's chain (AWS_MAX_ATTEMPTS, default 3 in standard mode).
_WRITE_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)
# Checks made while Slack waits (3 s): one quick try, then give up and check again at provisioning.
_QUICK_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=0.5, read_timeout=0.8)

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceFailure",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

_HINTS = {
    "AccessDenied": "The bot's own IAM permissions do not allow this; an AWS admin must grant it (`iam-bot policy` prints the policy it needs).",
    "LimitExceeded": "An IAM quota was reached (users, groups per user, or policies per user); remove unused ones or raise the quota.",
    "NoSuchEntity": "Something the request names no longer exists in IAM; submit a new request with current groups and policies.",
    "EntityAlreadyExists": "A user with this name already exists and was not created by this request; request a different name.",
    "MalformedPolicyDocument": "A policy document was rejected by IAM.",
    "InvalidInput": "IAM rejected a value of the request.",
    "PasswordPolicyViolation": "The generated password did not satisfy the account's password policy.",
}


class AwsError(Exception):
    def __init__(self, code: str, message: str, *, action: str, request_id: str | None = None):
        super().__init__(f"{action}: {code}: {message}")
        self.code = code
        self.aws_message = message
        self.action = action
        self.request_id = request_id

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES or self.code.startswith("HTTP5") or self.code == "ConnectionError"

    def explain(self) -> str:
        hint = _HINTS.get(self.code, "")
        return f"AWS refused {self.action} ({self.code}: {self.aws_message}). {hint}".strip()


class UserConflict(AwsError):
    """A user with the name exists and does not carry this request's marker tag."""


@dataclass(frozen=True)
class PolicyChoice:
    arn: str
    name: str
    aws_managed: bool


class _TtlCache:
    """Brief cache for IAM listings; a stale entry is served while one thread refreshes it.

    Slack gives an options request 3 s, and listing an account's 1,000+ policies can take
    about that long, so only the very first lookup (or `warm()` at start) waits for IAM.
    """

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, Any]] = {}
        self._refreshing: set[str] = set()

    def get(self, key: str, load: Callable[[], T]) -> T:
        with self._lock:
            hit = self._data.get(key)
            fresh = hit is not None and time.monotonic() - hit[0] < self.ttl
            refresh_in_background = hit is not None and not fresh and key not in self._refreshing
            if refresh_in_background:
                self._refreshing.add(key)
        if fresh:
            return hit[1]  # type: ignore[index]
        if refresh_in_background:
            threading.Thread(target=self._refresh, args=(key, load), daemon=True).start()
            return hit[1]  # type: ignore[index]
        if hit is not None:
            return hit[1]  # stale, and another thread is already refreshing it
        value = load()  # outside the lock: a slow IAM listing must not block other lookups
        with self._lock:
            self._data[key] = (time.monotonic(), value)
        return value

    def _refresh(self, key: str, load: Callable[[], Any]) -> None:
        try:
            value = load()
            with self._lock:
                self._data[key] = (time.monotonic(), value)
        except Exception:
            log.warning("refreshing the IAM %s listing failed; serving the previous one", key)
        finally:
            with self._lock:
                self._refreshing.discard(key)


def _call(action: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """Call IAM and turn botocore's errors into AwsError with a code we can reason about."""
    try:
        return fn(**kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = err.get("Code") or "Unknown"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "Unknown" and status >= 500:
            code = f"HTTP{status}"
        req_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
        raise AwsError(code, err.get("Message", ""), action=action, request_id=req_id) from None
    except (BotoConnectionError, BotoCoreError) as exc:
        raise AwsError("ConnectionError", type(exc).__name__, action=action) from None


class IamGateway:
    def __init__(self, session: boto3.session.Session | None = None, *, cache_seconds: float = 60.0):
        self._session = session or boto3.session.Session()
        self.iam = self._session.client("iam", config=_WRITE_CONFIG)
        self._quick = self._session.client("iam", config=_QUICK_CONFIG)
        self._sts = self._session.client("sts", config=_WRITE_CONFIG)
        self._cache = _TtlCache(cache_seconds)
        # AWS request ids of this thread's write calls, for the audit log (`take_request_ids`).
        self._local = threading.local()
        self.iam.meta.events.register("after-call.iam", self._remember_request_id)

    def _remember_request_id(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name.startswith(("List", "Get")):
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

        return self._cache.get("groups", lambda: _call("ListGroups", load))

    def policies(self) -> list[PolicyChoice]:
        def load() -> list[PolicyChoice]:
            pages = self.iam.get_paginator("list_policies").paginate(Scope="All", PaginationConfig={"PageSize": 1000})
            out = [
                PolicyChoice(arn=p["Arn"], name=p["PolicyName"], aws_managed=":iam::aws:policy/" in p["Arn"])
                for page in pages
                for p in page["Policies"]
            ]
            # Customer-managed first: they are what teams usually grant.
            return sorted(out, key=lambda c: (c.aws_managed, c.name.lower()))

        return self._cache.get("policies", lambda: _call("ListPolicies", load))

    def user_names(self) -> list[str]:
        def load() -> list[str]:
            pages = self.iam.get_paginator("list_users").paginate()
            return sorted((u["UserName"] for p in pages for u in p["Users"]), key=str.lower)

        return self._cache.get("users", lambda: _call("ListUsers", load))

    def warm(self) -> None:
        """Fill the typeahead caches at start, so the first person to type waits for nobody."""
        for load in (self.group_names, self.policies, self.user_names):
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
        try:
            self._quick.get_user(UserName=user_name)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                return None
        except (BotoCoreError, BotoConnectionError):
            return None
        if exact_only:
            return False
        # GetUser may match the exact spelling only: scan the names while time allows.
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
        worst = _QUICK_CONFIG.connect_timeout + _QUICK_CONFIG.read_timeout
        return time.monotonic() + worst <= deadline

    def read_permissions(self, user_name: str) -> CopiedPermissions:
        """What copying from `user_name` would grant: groups, managed and inline policies, boundary."""
        return _call("read permissions of " + user_name, self._read_permissions, user_name=user_name)

    def _read_permissions(self, *, user_name: str) -> CopiedPermissions:
        iam = self.iam
        user = iam.get_user(UserName=user_name)["User"]
        groups = [
            g["GroupName"]
            for page in iam.get_paginator("list_groups_for_user").paginate(UserName=user_name)
            for g in page["Groups"]
        ]
        attached = [
            p["PolicyArn"]
            for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=user_name)
            for p in page["AttachedPolicies"]
        ]
        inline_names = [
            n for page in iam.get_paginator("list_user_policies").paginate(UserName=user_name) for n in page["PolicyNames"]
        ]
        docs: dict[str, str] = {}
        for name in inline_names:
            doc = iam.get_user_policy(UserName=user_name, PolicyName=name)["PolicyDocument"]
            docs[name] = doc if isinstance(doc, str) else json.dumps(doc)
        boundary = (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        return CopiedPermissions(
            source_user=user_name,
            groups=tuple(groups),
            policy_arns=tuple(attached),
            inline_policies=tuple(inline_names),
            permissions_boundary=boundary,
            inline_documents=docs,
        )

    # ---- facts for guardrails and risk (policy documents, what groups and copied users grant) ----

    @staticmethod
    def _document(doc: Any) -> dict[str, Any]:
        # botocore decodes IAM policy documents to dicts; be safe with a JSON string too.
        return json.loads(doc) if isinstance(doc, str) else dict(doc)

    def policy_document(self, arn: str) -> dict[str, Any]:
        """The default version's document of a managed policy (cached briefly, by ARN)."""
        iam = self.iam

        def load() -> dict[str, Any]:
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            return self._document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])

        return self._cache.get("doc:" + arn, lambda: _call("GetPolicyVersion", load))

    def customer_documents_quick(self, arns: list[str], *, deadline: float) -> dict[str, dict[str, Any]]:
        """Documents of the customer-managed policies among `arns` that can be read before `deadline`.

        For the form's guardrail check while Slack waits; what is missing is checked after submission.
        """
        out: dict[str, dict[str, Any]] = {}
        iam = self._quick
        for arn in arns:
            if ":iam::aws:policy/" in arn:
                continue
            try:
                if not self._time_for_one_call(deadline):
                    break
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                if not self._time_for_one_call(deadline):
                    break
                out[arn] = self._document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
            except (ClientError, BotoCoreError, BotoConnectionError):
                continue
        return out

    def _policy_fact(self, arn: str) -> PolicyFact:
        aws = ":iam::aws:policy/" in arn
        # AWS-managed documents are long and known by name; customer ones are read and judged.
        return PolicyFact(name=arn.rsplit("/", 1)[-1], arn=arn, aws_managed=aws, document=None if aws else self.policy_document(arn))

    def group_policies(self, group: str) -> tuple[PolicyFact, ...]:
        def load() -> tuple[PolicyFact, ...]:
            iam = self.iam
            attached = [
                p["PolicyArn"]
                for page in iam.get_paginator("list_attached_group_policies").paginate(GroupName=group)
                for p in page["AttachedPolicies"]
            ]
            inline = [n for page in iam.get_paginator("list_group_policies").paginate(GroupName=group) for n in page["PolicyNames"]]
            facts = [self._policy_fact(a) for a in attached]
            for name in inline:
                doc = iam.get_group_policy(GroupName=group, PolicyName=name)["PolicyDocument"]
                facts.append(PolicyFact(name=name, document=self._document(doc)))
            return tuple(facts)

        return _call("read policies of group " + group, load)

    def risk_facts(self, *, policy_arns: list[str], groups: list[str], copy_from: str | None) -> RiskFacts:
        """What a request would grant, read from IAM; what cannot be read is named in `unknown`."""
        unknown: list[str] = []
        policies: list[PolicyFact] = []
        for arn in policy_arns:
            try:
                policies.append(self._policy_fact(arn))
            except AwsError as exc:
                unknown.append(f"policy {arn.rsplit('/', 1)[-1]} ({exc.code})")
                policies.append(PolicyFact(name=arn.rsplit("/", 1)[-1], arn=arn, aws_managed=":iam::aws:policy/" in arn))
        copied: list[PolicyFact] = []
        copied_groups: tuple[str, ...] = ()
        if copy_from:
            try:
                perms = self.read_permissions(copy_from)
                copied_groups = perms.groups
                copied = [self._policy_fact(a) for a in perms.policy_arns]
                copied += [PolicyFact(name=n, document=self._document(d)) for n, d in perms.inline_documents.items()]
            except AwsError as exc:
                unknown.append(f"the permissions of {copy_from} ({exc.code})")
        group_facts: dict[str, tuple[PolicyFact, ...]] = {}
        for group in dict.fromkeys([*groups, *copied_groups]):
            try:
                group_facts[group] = self.group_policies(group)
            except AwsError as exc:
                unknown.append(f"the policies of group {group} ({exc.code})")
        return RiskFacts(
            policies=tuple(policies),
            groups=group_facts,
            copy_from=copy_from,
            copied=tuple(copied),
            copied_groups=copied_groups,
            unknown=tuple(unknown),
        )

    def account_id(self) -> str:
        return self._cache.get(
            "account", lambda: _call("GetCallerIdentity", self._sts.get_caller_identity)["Account"]
        )

    def caller_identity(self) -> tuple[str, str]:
        """(account id, ARN) of the identity the bot runs as; sts GetCallerIdentity needs no permission."""
        who = _call("GetCallerIdentity", self._sts.get_caller_identity)
        return who["Account"], who["Arn"]

    def simulate(
        self, *, principal_arn: str, actions: list[str], resource_arn: str, context: dict[str, str] | None = None
    ) -> dict[str, str]:
        """{action: "allowed" | "implicitDeny" | "explicitDeny"} for the principal's policies on one resource."""

        def run() -> dict[str, str]:
            kwargs: dict[str, Any] = {"PolicySourceArn": principal_arn, "ActionNames": actions, "ResourceArns": [resource_arn]}
            if context:
                kwargs["ContextEntries"] = [
                    {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"} for k, v in context.items()
                ]
            pages = self.iam.get_paginator("simulate_principal_policy").paginate(**kwargs)
            try:
                return {r["EvalActionName"]: r["EvalDecision"] for page in pages for r in page["EvaluationResults"]}
            except ResponseParserError:
                # Not an AWS answer at all (moto, for one, answers this action with an HTML 500).
                raise AwsError("UnparseableResponse", "the endpoint's answer is not an IAM response", action="SimulatePrincipalPolicy") from None

        return _call("SimulatePrincipalPolicy", run)

    def console_url(self) -> tuple[str, str]:
        """(sign-in URL, account id or alias) for the console credentials."""
        aliases = _call("ListAccountAliases", self.iam.list_account_aliases).get("AccountAliases") or []
        who = aliases[0] if aliases else self.account_id()
        return f"https://{who}.signin.aws.amazon.com/console", who

    def password_policy(self) -> PasswordPolicy:
        try:
            p = _call("GetAccountPasswordPolicy", self.iam.get_account_password_policy)["PasswordPolicy"]
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
        try:
            return _call("CreateUser", self.iam.create_user, **kwargs)["User"]["Arn"]
        except AwsError as exc:
            if exc.code != "EntityAlreadyExists":
                raise
        if self.carries_marker(user_name, marker):
            return _call("GetUser", self.iam.get_user, UserName=user_name)["User"]["Arn"]
        raise UserConflict(
            "EntityAlreadyExists",
            f"a user named {user_name} already exists and was not created by this request",
            action="CreateUser",
        )

    def user_visible(self, user_name: str) -> bool:
        """Whether GetUser sees the user yet: IAM is eventually consistent after CreateUser."""
        try:
            _call("GetUser", self.iam.get_user, UserName=user_name)
            return True
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise

    def carries_marker(self, user_name: str, marker: str) -> bool:
        try:
            tags = _call("ListUserTags", self.iam.list_user_tags, UserName=user_name)["Tags"]
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        return any(t["Key"] == MARKER_TAG and t["Value"] == marker for t in tags)

    def add_to_group(self, *, user_name: str, group: str) -> None:
        _call("AddUserToGroup", self.iam.add_user_to_group, UserName=user_name, GroupName=group)

    def attach_policy(self, *, user_name: str, policy_arn: str) -> None:
        _call("AttachUserPolicy", self.iam.attach_user_policy, UserName=user_name, PolicyArn=policy_arn)

    def put_inline_policy(self, *, user_name: str, name: str, document: str) -> None:
        _call("PutUserPolicy", self.iam.put_user_policy, UserName=user_name, PolicyName=name, PolicyDocument=document)

    def set_login_profile(self, *, user_name: str, password: str) -> None:
        """Create the console login, or replace its password if a crashed attempt created it."""
        try:
            _call(
                "CreateLoginProfile",
                self.iam.create_login_profile,
                UserName=user_name,
                Password=password,
                PasswordResetRequired=True,
            )
        except AwsError as exc:
            if exc.code != "EntityAlreadyExists":
                raise
            _call(
                "UpdateLoginProfile",
                self.iam.update_login_profile,
                UserName=user_name,
                Password=password,
                PasswordResetRequired=True,
            )

    def create_fresh_access_key(self, *, user_name: str) -> tuple[str, str]:
        """Create the user's one access key; keys left by a crashed attempt (secret lost) are deleted."""
        existing = _call("ListAccessKeys", self.iam.list_access_keys, UserName=user_name)["AccessKeyMetadata"]
        for key in existing:
            _call("DeleteAccessKey", self.iam.delete_access_key, UserName=user_name, AccessKeyId=key["AccessKeyId"])
        key = _call("CreateAccessKey", self.iam.create_access_key, UserName=user_name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def delete_user_we_created(self, *, user_name: str, marker: str) -> bool:
        """Undo a failed provisioning: only a user that carries this request's marker is touched."""
        if not self.carries_marker(user_name, marker):
            return False
        iam = self.iam
        for key in _call("ListAccessKeys", iam.list_access_keys, UserName=user_name)["AccessKeyMetadata"]:
            _call("DeleteAccessKey", iam.delete_access_key, UserName=user_name, AccessKeyId=key["AccessKeyId"])
        try:
            _call("DeleteLoginProfile", iam.delete_login_profile, UserName=user_name)
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
        for p in _call("ListAttachedUserPolicies", iam.list_attached_user_policies, UserName=user_name)["AttachedPolicies"]:
            _call("DetachUserPolicy", iam.detach_user_policy, UserName=user_name, PolicyArn=p["PolicyArn"])
        for name in _call("ListUserPolicies", iam.list_user_policies, UserName=user_name)["PolicyNames"]:
            _call("DeleteUserPolicy", iam.delete_user_policy, UserName=user_name, PolicyName=name)
        for g in _call("ListGroupsForUser", iam.list_groups_for_user, UserName=user_name)["Groups"]:
            _call("RemoveUserFromGroup", iam.remove_user_from_group, UserName=user_name, GroupName=g["GroupName"])
        _call("DeleteUser", iam.delete_user, UserName=user_name)
        return True
