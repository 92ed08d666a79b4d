"""`iam-bot doctor`: check a real deployment's settings one by one, one line each with the fix.

Each check is a small function of the shared `Context` returning Results; nothing here changes
anything (no migration, no key generated, no message posted). Secrets are never printed: a line
names the setting, never its value.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from bot.policy.rule_lint import never_effective
from bot.runtime.settings import FIELD_ENV, ConfigError, Settings, load_settings, local_key_file, rulebook_for
from bot.slack.probe import SlackProbe, SlackProblem
from bot.slack.scopes import BOT_SCOPES

Status = Literal["ok", "warn", "fail", "skip"]


_REJECTED_TOKEN = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type"}
_BAD_AWS_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "AuthFailure",
}


@dataclass(frozen=True)
class Result:
    name: str
    status: Status
    found: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status.upper():<4}  {self.name}: {self.found}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


def ok(name: str, found: str) -> Result:
    return Result(name, "ok", found)


def warn(name: str, found: str, fix: str = "") -> Result:
    return Result(name, "warn", found, fix)


def fail(name: str, found: str, fix: str) -> Result:
    return Result(name, "fail", found, fix)


def skip(name: str, why: str) -> Result:
    return Result(name, "skip", f"not checked: {why}")


@dataclass
class Context:
    """What the checks share: the settings, which of them are broken, and what earlier checks learnt."""

    settings: Settings
    broken: dict[str, str]  # env var -> what is wrong with it
    slack_ok: bool = False
    granted_scopes: frozenset[str] | None = None
    engine: object | None = None
    schema_ok: bool = False
    iam: object | None = None
    caller_arn: str | None = None
    account: str | None = None

    def broken_among(self, *names: str) -> str | None:
        bad = [n for n in names if n in self.broken]
        return f"{', '.join(bad)} is invalid (see above)" if bad else None

    @property
    def slack(self) -> SlackProbe:
        return SlackProbe(base_url=self.settings.slack_api_url)


def parse_settings() -> tuple[Settings, dict[str, str]]:
    """The settings, with every invalid one reset to its default and reported instead of aborting."""
    try:
        return load_settings(), {}
    except ConfigError as exc:
        broken: dict[str, str] = {}
        for line in str(exc).splitlines():
            env, _, why = line.partition(": ")
            broken[env] = why
        fields = {f: Settings.model_fields[f].default for f, env in FIELD_ENV.items() if env in broken}
        return load_settings(**fields), broken


# ---------------------------------------------------------------------------------------------
# The checks, in the order they print
# ---------------------------------------------------------------------------------------------


def check_settings(ctx: Context) -> list[Result]:
    if not ctx.broken:
        return [ok("settings", "every value is well-formed")]
    return [fail(env, why, f"correct {env}") for env, why in ctx.broken.items()]


def check_slack_token(ctx: Context) -> list[Result]:
    name = "Slack bot token"
    s = ctx.settings
    why = ctx.broken_among("SLACK_BOT_TOKEN", "SLACK_API_URL")
    if why:
        return [skip(name, why)]
    if not s.slack_bot_token:
        return [fail(name, "SLACK_BOT_TOKEN is not set", "copy the Bot User OAuth Token (xoxb-...) from your Slack app's OAuth & Permissions page")]
    try:
        me = ctx.slack.identity(s.slack_bot_token)
    except SlackProblem as exc:
        if exc.unreachable:
            return [fail(name, f"cannot reach Slack at {s.slack_api_url} ({exc.code})", "check SLACK_API_URL and that this host can reach it")]
        if exc.code in _REJECTED_TOKEN:
            return [fail(name, f"Slack rejected SLACK_BOT_TOKEN ({exc.code})", "copy the Bot User OAuth Token again from OAuth & Permissions; reinstall the app if it was revoked")]
        return [fail(name, f"auth.test failed ({exc.code})", "check SLACK_BOT_TOKEN and SLACK_API_URL")]
    ctx.slack_ok = True
    ctx.granted_scopes = me.scopes
    return [ok(name, f"valid: bot @{me.user} in workspace {me.team}")]


def check_slack_scopes(ctx: Context) -> list[Result]:
    name = "Slack scopes"
    if not ctx.slack_ok:
        return [skip(name, "the bot token does not work")]
    if ctx.granted_scopes is None:
        return [warn(name, "Slack did not report the token's scopes (no x-oauth-scopes header)", "compare the app's scopes with deploy/slack-app-manifest.yml")]
    missing = [s for s in BOT_SCOPES if s not in ctx.granted_scopes]
    if missing:
        return [fail(name, f"missing {', '.join(missing)}", "add them under OAuth & Permissions > Bot Token Scopes (or re-create the app from deploy/slack-app-manifest.yml), then reinstall the app")]
    return [ok(name, f"all {len(BOT_SCOPES)} scopes the bot uses are granted")]


def check_signing_secret(ctx: Context) -> list[Result]:
    name = "Slack signing secret"
    s = ctx.settings
    if "SLACK_APP_TOKEN" in ctx.broken:
        return [skip(name, "SLACK_APP_TOKEN is invalid (see above): HTTP or Socket Mode is unknown")]
    if s.socket_mode:
        return [ok(name, "not needed: Socket Mode (SLACK_APP_TOKEN is set)")]
    if not s.slack_signing_secret:
        return [fail(name, "SLACK_SIGNING_SECRET is not set (HTTP mode)", "copy the Signing Secret from your Slack app's Basic Information page, or set SLACK_APP_TOKEN to use Socket Mode")]
    # Slack never tells an app its secret; a wrong one shows up as 401s on /slack/events.
    return [ok(name, "set (a wrong one makes every Slack request fail with 401; see Troubleshooting)")]


def check_app_token(ctx: Context) -> list[Result]:
    name = "Slack app token"
    s = ctx.settings
    why = ctx.broken_among("SLACK_APP_TOKEN", "SLACK_API_URL")
    if why:
        return [skip(name, why)]
    if not s.slack_app_token:
        return [ok(name, f"unset: HTTP mode, Slack posts to /slack/events on port {s.port}")]
    try:
        ctx.slack.open_socket_mode(s.slack_app_token)
    except SlackProblem as exc:
        if exc.unreachable:
            return [fail(name, f"cannot reach Slack at {s.slack_api_url} ({exc.code})", "check SLACK_API_URL and that this host can reach it")]
        if exc.code in _REJECTED_TOKEN:
            return [fail(name, f"Slack rejected SLACK_APP_TOKEN ({exc.code})", "create an app-level token with connections:write (Basic Information > App-Level Tokens) and set it")]
        return [fail(name, f"apps.connections.open failed ({exc.code})", "turn on Socket Mode in the app's settings (Socket Mode page)")]
    return [ok(name, "valid: Socket Mode connections open")]


def _scrub(text: str, secret: str | None) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text.replace(secret, "***") if secret else text


def check_database(ctx: Context) -> list[Result]:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from bot.runtime.db import make_engine, normalize_url

    name = "database"
    try:
        url = make_url(normalize_url(ctx.settings.database_url))
    except ArgumentError:
        return [fail(name, "DATABASE_URL is not a database URL", "use sqlite:///path/iam-bot.db or postgresql://user:password@host/db")]
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).exists():  # connecting would create an empty file
            return [fail(name, f"no database file at {url.database}", "run `iam-bot migrate` (or fix DATABASE_URL)")]
    try:
        engine = make_engine(ctx.settings.database_url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except ModuleNotFoundError as exc:
        return [fail(name, f"{shown}: the driver {exc.name} is not installed", "pip install the project (it brings psycopg)")]
    except SQLAlchemyError as exc:
        cause = _scrub(str(getattr(exc, "orig", None) or type(exc).__name__), url.password)
        return [fail(name, f"cannot connect to {shown} ({cause})", "check DATABASE_URL and that the server is running and reachable")]
    ctx.engine = engine
    return [ok(name, f"reachable: {shown}")]


def check_schema(ctx: Context) -> list[Result]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.runtime.db import alembic_config

    name = "database schema"
    if ctx.engine is None:
        return [skip(name, "the database is not reachable")]
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with ctx.engine.connect() as conn:  # type: ignore[attr-defined]
        current = set(MigrationContext.configure(conn).get_current_heads())
    if not current:
        return [fail(name, "not migrated (no iam-bot tables)", "run `iam-bot migrate` (the release step)")]
    if current == heads:
        ctx.schema_ok = True
        return [ok(name, f"at the latest migration ({', '.join(sorted(heads))})")]
    script = ScriptDirectory.from_config(alembic_config())
    known = {r.revision for r in script.walk_revisions()}
    if current - known:
        return [fail(name, f"at {', '.join(sorted(current))}, which this version of iam-bot does not know", "upgrade iam-bot: the database was migrated by a newer version")]
    return [fail(name, f"at {', '.join(sorted(current))}, latest is {', '.join(sorted(heads))}", "run `iam-bot migrate` (the release step)")]


def check_encryption_key(ctx: Context) -> list[Result]:
    from sqlalchemy import select

    from bot.credentials.vault import Vault, VaultError
    from bot.iam.errors import AwsError
    from bot.iam.kms import KmsDataKeys
    from models.entities import AccessRequest, CredentialEnvelope

    name = "encryption key"
    s = ctx.settings
    if "IAM_BOT_ENCRYPTION_KEY" in ctx.broken or "IAM_BOT_KMS_KEY_ID" in ctx.broken:
        return [skip(name, ctx.broken_among("IAM_BOT_ENCRYPTION_KEY", "IAM_BOT_KMS_KEY_ID") or "invalid (see above)")]
    keys = s.encryption_keys
    if keys:
        source = f"{len(keys)} key(s) from IAM_BOT_ENCRYPTION_KEY"
    elif s.kms_key_id:
        path = local_key_file(s)
        keys = [path.read_text().strip()] if s.generated_key_allowed and path.exists() else []
        source = ""
    else:
        gen = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        if not s.generated_key_allowed:
            return [fail(name, "IAM_BOT_ENCRYPTION_KEY is not set; it is required with a shared database (a generated key is only for the local default SQLite file)", f"generate one with `{gen}` and keep it in your secret store (or set IAM_BOT_KMS_KEY_ID)")]
        path = local_key_file(s)
        if not path.exists():
            return [warn(name, "IAM_BOT_ENCRYPTION_KEY is not set; a local key will be generated at first start", f"fine for local use; for a deployment set one made with `{gen}`")]
        keys = [path.read_text().strip()]
        source = f"the generated local key in {path}"
    if s.kms_key_id:
        source = f"AWS KMS key {s.kms_key_id}" + (f" (and {source} for older credentials)" if source else "")
        try:
            data_keys = KmsDataKeys(s.kms_key_id)
        except AwsError as exc:
            return [fail(name, f"cannot use AWS KMS ({exc.code})", "set AWS_DEFAULT_REGION (or give the key's ARN) and credentials the boto3 way")]
    vault = Vault(keys, data_keys=data_keys if s.kms_key_id else None)
    try:
        vault.open(vault.seal(_probe(), request="RDOCTOR"), request="RDOCTOR")
    except VaultError as exc:  # AWS KMS refused (the key's policy, the bot's policy, a disabled key)
        return [fail(name, f"{source}: a sample could not be sealed and opened ({exc.code})", "let the bot use the key: kms:GenerateDataKey and kms:Decrypt (`iam-bot policy`), and check the key is enabled")]
    if not ctx.schema_ok:
        return [ok(name, f"{source}: valid (stored credentials not checked: database not ready)")]
    with ctx.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = list(
            conn.execute(
                select(CredentialEnvelope.ciphertext, AccessRequest.short_id)
                .outerjoin(AccessRequest, AccessRequest.id == CredentialEnvelope.request_id)
                .where(CredentialEnvelope.ciphertext.is_not(None))
                .limit(50)
            )
        )
    unreadable = 0
    for token, short_id in stored:
        try:
            vault.open(token, request=short_id)  # decrypted in memory only to prove it can be; never shown
        except (VaultError, TypeError, ValueError):
            unreadable += 1
    if unreadable:
        return [fail(name, f"{unreadable} of {len(stored)} stored credentials cannot be decrypted with {source}", "a key still in use was removed: put the old key back after the new one (comma-separated, newest first); `iam-bot keys rotate` lists them")]
    if not stored:
        return [ok(name, f"{source}: valid (no stored credentials yet; a sample sealed and opened)")]
    return [ok(name, f"{source}: opens all {len(stored)} stored credentials checked")]


def _probe():  # type: ignore[no-untyped-def]
    from bot.credentials.vault import Credentials

    return Credentials(user_name="iam-bot-doctor", console_url="https://example.invalid/", account="000000000000")


def check_aws_identity(ctx: Context) -> list[Result]:
    from bot.iam.gateway import AwsError, IamGateway

    name = "AWS identity"
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    where = f" at {endpoint}" if endpoint else ""
    try:
        gateway = IamGateway()
        account, arn = gateway.caller_identity()
    except AwsError as exc:
        if exc.action == IamGateway.SETUP:  # e.g. NoRegionError when the clients are made
            return [fail(name, f"cannot use AWS ({exc.code})", "set AWS_DEFAULT_REGION (any region: IAM is global) and credentials")]
        if exc.code in _BAD_AWS_CREDENTIALS:
            return [fail(name, f"AWS rejected the credentials ({exc.code})", "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the profile or the instance role the bot runs with")]
        if exc.aws_message in ("NoCredentialsError", "PartialCredentialsError"):
            return [fail(name, "no AWS credentials found", "give the bot credentials the boto3 way: an instance/task role, a profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
        if exc.code == "ConnectionError":
            return [fail(name, f"cannot reach AWS STS{where} ({exc.aws_message})", "check the network, AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL if you set it")]
        return [fail(name, f"GetCallerIdentity failed ({exc.code})", "check the bot's AWS credentials")]
    ctx.iam, ctx.account, ctx.caller_arn = gateway, account, arn
    if arn.endswith(":root"):
        return [warn(name, f"account {account} as the root user", "run the bot with a role or user that has the policy from `iam-bot policy`, never as root")]
    return [ok(name, f"account {account} as {arn}")]


def principal_for(caller_arn: str) -> str | None:
    """The IAM ARN that SimulatePrincipalPolicy takes for a caller ARN from GetCallerIdentity.

    An assumed-role ARN does not carry the role's path, so a role with a path cannot be
    simulated from it (IAM answers NoSuchEntity, reported as "could not check").
    """
    parts = caller_arn.split(":", 5)
    if len(parts) != 6:
        return None
    _, partition, service, _, account, resource = parts
    if resource.startswith("user/"):
        return f"arn:{partition}:iam::{account}:{resource}"  # IAM users (moto answers with :sts:)
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    if service == "iam" and resource.startswith("role/"):
        return caller_arn
    return None


PROBE = "iam-bot-doctor-probe"


def _sample(glob: str) -> str:
    """A group name an allowlist glob matches (IAM's `*` and `?`), to simulate membership on."""
    return glob.replace("*", "x").replace("?", "x")


def probes(
    *,
    partition: str,
    account: str,
    prefix: str,
    boundary: str | None,
    principal: str,
    allowed_groups: tuple[str, ...] | None = None,
) -> list[tuple[list[str], str, dict[str, str | list[str]]]]:
    """(actions, sample resource, context) per scope of the bot's policy: what the bot needs, as it calls it.

    Writes on existing users are made on users carrying the bot's marker (iam:ResourceTag), CreateUser
    and its TagUser with the marker and the boundary in the request. With `allowed_groups` empty no
    group membership is needed at all.
    """
    from bot.common.constants import MARKER_TAG
    from bot.ops.deploy_policy import ACTIONS, REQUEST_MARKER, RESOURCE_MARKER, Scope

    iam = f"arn:{partition}:iam::{account}"
    own = f"{iam}:user{prefix}{PROBE}"
    group = _sample(allowed_groups[0]) if allowed_groups else PROBE
    resource = {
        Scope.ACCOUNT: "*",
        Scope.ANY_USER: f"{iam}:user/{PROBE}",
        Scope.NEW_USER: own,
        Scope.TAG_ON_CREATE: own,
        Scope.OWN_USER: own,
        Scope.BOUNDED_USER: own,
        Scope.GROUP: f"{iam}:group/{group}",
        Scope.GROUP_READ: f"{iam}:group/{PROBE}",
        Scope.POLICY: f"{iam}:policy/{PROBE}",
        Scope.PRINCIPAL: principal,
        Scope.MFA_DEVICE: f"{iam}:mfa/{PROBE}",
    }
    bounded: dict[str, str | list[str]] = {"iam:PermissionsBoundary": boundary} if boundary else {}
    creating: dict[str, str | list[str]] = {REQUEST_MARKER: PROBE, "aws:TagKeys": [MARKER_TAG]}
    marked: dict[str, str | list[str]] = {RESOURCE_MARKER: PROBE}
    context: dict[Scope, dict[str, str | list[str]]] = {
        Scope.NEW_USER: {**creating, **bounded},
        Scope.TAG_ON_CREATE: creating,
        Scope.OWN_USER: marked,
        Scope.BOUNDED_USER: {**marked, **bounded},
    }
    out = []
    for scope in Scope:
        if scope is Scope.GROUP and allowed_groups == ():
            continue
        actions = sorted(a for a, s in ACTIONS.items() if s is scope)
        if actions:
            out.append((actions, resource[scope], context.get(scope, {})))
    return out


def containment_probes(
    *,
    partition: str,
    account: str,
    prefix: str,
    boundary: str | None,
    allowed_tag_keys: tuple[str, ...] | None = None,
    allowed_groups: tuple[str, ...] | None = None,
) -> list[tuple[str, str, str, dict[str, str | list[str]]]]:
    """(what a denial shows, action, resource, context): what a compromised bot must NOT be able to do.

    Each is asked of the simulator and must come back denied. A user "not created by the bot" is
    one without the marker tag; the boundary probes only exist when a boundary is configured.
    """
    from bot.common.constants import MARKER_TAG
    from bot.ops.deploy_policy import REQUEST_MARKER, RESOURCE_MARKER

    iam = f"arn:{partition}:iam::{account}"
    own = f"{iam}:user{prefix}{PROBE}"
    bounded: dict[str, str | list[str]] = {"iam:PermissionsBoundary": boundary} if boundary else {}
    creating: dict[str, str | list[str]] = {REQUEST_MARKER: PROBE, "aws:TagKeys": [MARKER_TAG]}
    marked: dict[str, str | list[str]] = {RESOURCE_MARKER: PROBE}
    out: list[tuple[str, str, str, dict[str, str | list[str]]]] = [
        ("an access key for a user it did not create", "iam:CreateAccessKey", own, {}),
        ("a new password for a user it did not create", "iam:UpdateLoginProfile", own, {}),
        ("a policy for a user it did not create", "iam:AttachUserPolicy", own, dict(bounded)),
        ("deleting a user it did not create", "iam:DeleteUser", own, {}),
        ("a user without its marker tag", "iam:CreateUser", own, {**bounded, "aws:TagKeys": ["team"]}),
        ("changing the marker of a user it created", "iam:TagUser", own, {**marked, **creating}),
        ("removing the marker of a user it created", "iam:UntagUser", own, {**marked, "aws:TagKeys": [MARKER_TAG]}),
    ]
    if prefix != "/":
        out.append(("an access key for a user outside its path prefix", "iam:CreateAccessKey", f"{iam}:user/{PROBE}", dict(marked)))
    if boundary:
        out.append(("a user without the permissions boundary", "iam:CreateUser", own, creating))
        out.append(("removing a user's permissions boundary", "iam:DeleteUserPermissionsBoundary", own, {**marked, **bounded}))
    if allowed_tag_keys is not None:
        out.append(("a tag key outside allowed_tag_keys", "iam:CreateUser", own, {**creating, **bounded, "aws:TagKeys": [MARKER_TAG, "iam-bot-doctor:not-allowed"]}))
    if allowed_groups is not None and not any(fnmatchcase(PROBE, g) for g in allowed_groups):
        out.append(("a group outside allowed_groups", "iam:AddUserToGroup", f"{iam}:group/{PROBE}", {}))
    return out


def _uncontained(containment: Mapping[str, str]) -> list[str]:
    return [label for label, decision in containment.items() if decision == "allowed"]


def judge_permissions(decisions: Mapping[str, str], containment: Mapping[str, str] | None = None, *, name: str = "AWS permissions") -> Result:
    """One line from the simulator's decisions on the bot's own identity.

    `decisions` are the actions the bot needs ({action: decision}); `containment` what a
    compromised bot must not do ({what: decision}, from `containment_probes`).
    """
    denied = sorted(a for a, d in decisions.items() if d != "allowed")
    if denied:
        return fail(name, f"not allowed: {', '.join(denied)}", "attach the policy printed by `iam-bot policy` to the bot's role or user")
    if loose := _uncontained(containment or {}):
        return warn(name, f"all {len(decisions)} actions allowed, but so is {'; '.join(loose)}", "use the policy from `iam-bot policy`: it ties every write to the bot's own users and its boundary")
    return ok(name, f"all {len(decisions)} actions the bot uses are allowed")


def judge_contained(decisions: Mapping[str, str], containment: Mapping[str, str]) -> Result:
    """One line from the simulator's decisions on the policy `iam-bot policy` renders for these settings."""
    name = "contained policy"
    denied = sorted(a for a, d in decisions.items() if d != "allowed")
    if denied:
        return fail(name, f"IAM's simulator says the rendered policy does not allow {', '.join(denied)}", "report this as a bug, with the output of `iam-bot policy`")
    if loose := _uncontained(containment):
        return fail(name, f"IAM's simulator says the rendered policy allows {'; '.join(loose)}", "report this as a bug, with the output of `iam-bot policy`")
    return ok(name, f"IAM's simulator allows the {len(decisions)} actions the bot uses and denies {'; '.join(containment)}")


def _could_not_check(name: str, exc: Any, action: str) -> Result:
    if exc.code == "AccessDenied":
        return warn(name, f"could not check: the caller may not call iam:{action}", "grant it (it is in `iam-bot policy`), or run doctor with an admin's credentials")
    return warn(name, f"could not check (not supported by this endpoint: {exc.code} {exc.aws_message})".rstrip(), "check the policy by hand against `iam-bot policy`")


def _simulate_all(
    simulate: Callable[..., dict[str, str]],
    needed: list[tuple[list[str], str, dict[str, str | list[str]]]],
    containment: list[tuple[str, str, str, dict[str, str | list[str]]]],
) -> tuple[dict[str, str], dict[str, str]]:
    decisions: dict[str, str] = {}
    for actions, resource, context in needed:
        decisions.update(simulate(actions=actions, resource_arn=resource, context=context))
    contained = {label: simulate(actions=[action], resource_arn=resource, context=context).get(action, "implicitDeny") for label, action, resource, context in containment}
    return decisions, contained


def _policy_settings(ctx: Context, *, settings_alone: bool = False) -> tuple[dict[str, Any], str | None] | None:
    """render_policy's keyword arguments for these settings and rules file, and the first boundary.

    None if the rules file is broken, unless `settings_alone`: then the settings without the file.
    """
    from bot.ops.deploy_policy import boundaries_for, rendering_for
    from bot.policy.guardrails import Guardrails

    try:
        guardrails = rulebook_for(ctx.settings).guardrails
    except ConfigError:
        if not settings_alone:
            return None
        guardrails = Guardrails()
    kwargs = rendering_for(ctx.settings, guardrails)
    boundaries = boundaries_for(**{k: kwargs[k] for k in ("path_prefix", "boundary_arn", "required_boundaries")})
    return kwargs, (boundaries[0] if boundaries else None)


def check_aws_permissions(ctx: Context) -> list[Result]:
    if ctx.iam is None or not ctx.caller_arn:
        return [skip("AWS permissions", "no working AWS identity")]
    return [_permissions(ctx, "AWS permissions", ctx.iam, caller_arn=ctx.caller_arn, account=ctx.account or "*")]


def _permissions(ctx: Context, name: str, gateway: Any, *, caller_arn: str, account: str) -> Result:
    """The simulator's decisions on an identity the bot acts as: its own, or its role in a member account."""
    from bot.iam.gateway import AwsError

    principal = principal_for(caller_arn)
    if principal is None:
        return warn(name, f"could not check: {caller_arn} cannot be simulated", "run `iam-bot doctor` as the role or user the bot runs as")
    found = _policy_settings(ctx, settings_alone=True)
    assert found is not None
    kwargs, boundary = found
    partition = caller_arn.split(":")[1]
    where = dict(partition=partition, account=account, prefix=kwargs["path_prefix"], boundary=boundary)
    needed = probes(**where, principal=principal, allowed_groups=kwargs["allowed_groups"])
    containment = containment_probes(**where, allowed_tag_keys=kwargs["allowed_tag_keys"], allowed_groups=kwargs["allowed_groups"])
    try:
        decisions, contained = _simulate_all(functools.partial(gateway.simulate, principal_arn=principal), needed, containment)
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            return warn(name, f"could not check: IAM does not know {principal} (a role with a path?)", "check the policy by hand against `iam-bot policy`")
        return _could_not_check(name, exc, "SimulatePrincipalPolicy")
    return judge_permissions(decisions, contained, name=name)


def check_contained_policy(ctx: Context) -> list[Result]:
    """The policy `iam-bot policy` prints, asked of IAM's simulator: the bot's needs allowed, a takeover denied."""
    from bot.iam.gateway import AwsError
    from bot.ops.deploy_policy import render_policy

    name = "contained policy"
    if ctx.iam is None or not ctx.caller_arn:
        return [skip(name, "no working AWS identity")]
    if why := ctx.broken_among("IAM_BOT_USER_PATH_PREFIX", "IAM_BOT_PERMISSIONS_BOUNDARY", "IAM_BOT_RULES"):
        return [skip(name, why)]
    found = _policy_settings(ctx)
    if found is None:
        return [skip(name, "the IAM_BOT_RULES file has errors (see rules)")]
    kwargs, boundary = found
    partition = ctx.caller_arn.split(":")[1]
    account = ctx.account or "*"
    try:
        policy = render_policy(account=account, **kwargs)
    except ValueError as exc:
        return [fail(name, f"cannot render the policy: {exc}", "correct the settings or the rules file")]
    where = dict(partition=partition, account=account, prefix=kwargs["path_prefix"], boundary=boundary)
    needed = probes(**where, principal="*", allowed_groups=kwargs["allowed_groups"])
    containment = containment_probes(**where, allowed_tag_keys=kwargs["allowed_tag_keys"], allowed_groups=kwargs["allowed_groups"])
    try:
        decisions, contained = _simulate_all(functools.partial(ctx.iam.simulate_custom, policy=policy), needed, containment)  # type: ignore[attr-defined]
    except AwsError as exc:
        return [_could_not_check(name, exc, "SimulateCustomPolicy")]
    return [judge_contained(decisions, contained)]


def check_boundary(ctx: Context) -> list[Result]:
    name = "permissions boundary"
    s = ctx.settings
    if "IAM_BOT_PERMISSIONS_BOUNDARY" in ctx.broken:
        return [skip(name, "IAM_BOT_PERMISSIONS_BOUNDARY is invalid (see above)")]
    try:
        covered = s.boundary_for_every_user(rulebook_for(s))
    except ConfigError:
        covered = bool(s.permissions_boundary)
    if not covered:
        found = "IAM_BOT_PERMISSIONS_BOUNDARY is not set (nor a required_boundaries entry of IAM_BOT_RULES for the path prefix): created users get no boundary, and the bot's policy cannot stop an admin grant"
        fix = "create a boundary policy and set IAM_BOT_PERMISSIONS_BOUNDARY to its ARN (see Security model)"
        if s.allow_unbounded:
            return [warn(name, found + "; IAM_BOT_ALLOW_UNBOUNDED=true lets the bot run so, for trying it out only", fix)]
        return [fail(name, found + "; `iam-bot serve` refuses to start", fix + ", or set IAM_BOT_ALLOW_UNBOUNDED=true to try the bot out")]
    if not s.permissions_boundary:
        return [ok(name, f"set by IAM_BOT_RULES for users under {s.user_path_prefix}")]
    return [ok(name, f"{s.permissions_boundary}, users under {s.user_path_prefix}")]


def check_approvers(ctx: Context) -> list[Result]:
    name = "approvers"
    s = ctx.settings
    if "IAM_BOT_APPROVERS" in ctx.broken:
        return [skip(name, "IAM_BOT_APPROVERS is invalid (see above)")]
    if not s.approvers:
        return [fail(name, "IAM_BOT_APPROVERS is not set", "give the Slack member IDs (profile > ... > Copy member ID) of the people who may approve, comma-separated")]
    if not ctx.slack_ok:
        return [skip(name, "the bot token does not work")]
    out = []
    for user_id in sorted(s.approvers):
        label = f"approver {user_id}"
        try:
            user = ctx.slack.user(s.slack_bot_token, user_id)
        except SlackProblem as exc:
            if exc.unreachable:
                out.append(fail(label, f"cannot reach Slack ({exc.code})", "check SLACK_API_URL"))
            elif exc.code == "user_not_found":
                out.append(fail(label, "no such user in this workspace", f"remove {user_id} from IAM_BOT_APPROVERS or use the member ID from the person's profile"))
            elif exc.code == "missing_scope":
                out.append(fail(label, "cannot look it up: the token lacks users:read", "add users:read and reinstall the app"))
            else:
                out.append(fail(label, f"users.info failed ({exc.code})", "check the ID and the bot token"))
            continue
        who = f"@{user.get('name', '?')}"
        if user.get("deleted"):
            out.append(fail(label, f"{who} is deactivated", f"remove {user_id} from IAM_BOT_APPROVERS"))
        elif user.get("is_bot") or user.get("is_app_user"):
            out.append(fail(label, f"{who} is a bot, not a person", f"remove {user_id} from IAM_BOT_APPROVERS; approvers must be people"))
        else:
            out.append(ok(label, f"{who} is an active person"))
    return out


def _check_channel(ctx: Context, *, name: str, setting: str, channel: str, unset: str) -> list[Result]:
    if setting in ctx.broken:
        return [skip(name, f"{setting} is invalid (see above)")]
    if not channel:
        return [ok(name, unset)]
    if not ctx.slack_ok:
        return [skip(name, "the bot token does not work")]
    try:
        info = ctx.slack.channel(ctx.settings.slack_bot_token, channel)
    except SlackProblem as exc:
        if exc.unreachable:
            return [fail(name, f"cannot reach Slack ({exc.code})", "check SLACK_API_URL")]
        if exc.code == "channel_not_found":
            return [fail(name, f"{setting}={channel} not found (a private channel looks so until the bot is in it)", "check the channel ID, and invite the bot: `/invite @iam-bot` in that channel")]
        if exc.code == "missing_scope":
            return [fail(name, "cannot look it up: the token lacks channels:read / groups:read", "add them and reinstall the app")]
        return [fail(name, f"conversations.info failed ({exc.code})", f"check {setting}")]
    label = f"#{info.get('name', channel)}"
    if info.get("is_archived"):
        return [fail(name, f"{label} is archived", f"unarchive it or set {setting} to another channel")]
    if not info.get("is_member"):
        return [fail(name, f"the bot is not in {label}", f"`/invite @iam-bot` in {label}")]
    return [ok(name, f"{label}: the bot is a member")]


def check_approval_channel(ctx: Context) -> list[Result]:
    s = ctx.settings
    return _check_channel(ctx, name="approval channel", setting="IAM_BOT_APPROVAL_CHANNEL", channel=s.approval_channel, unset="unset: each approver gets approval requests by DM")


def check_audit_channel(ctx: Context) -> list[Result]:
    s = ctx.settings
    return _check_channel(ctx, name="audit channel", setting="IAM_BOT_AUDIT_CHANNEL", channel=s.audit_channel, unset="unset: no audit lines in Slack")


def check_report_channel(ctx: Context) -> list[Result]:
    s = ctx.settings
    return _check_channel(ctx, name="report channel", setting="IAM_BOT_REPORT_CHANNEL", channel=s.report_channel, unset="unset: the hygiene report only on demand (/iam report)")


def check_mfa_requirement(ctx: Context) -> list[Result]:
    """IAM_BOT_MFA_REQUIRE names a group or policy that exists: else every new user's plan would fail."""
    from bot.iam.gateway import AwsError

    name = "MFA requirement"
    s = ctx.settings
    if "IAM_BOT_MFA_REQUIRE" in ctx.broken:
        return [skip(name, "IAM_BOT_MFA_REQUIRE is invalid (see above)")]
    if not s.mfa_require:
        return [ok(name, "unset: console users are watched for MFA; no group or policy is added to new users")]
    if ctx.iam is None:
        return [skip(name, "AWS is not reachable (see above)")]
    what = f"group {s.mfa_group}" if s.mfa_group else f"policy {s.mfa_policy}"
    try:
        if s.mfa_group:
            ctx.iam.read_group(s.mfa_group)  # type: ignore[attr-defined]
        else:
            ctx.iam.read_policy(s.mfa_policy)  # type: ignore[attr-defined]
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            make = "create it (`iam-bot policy --mfa` prints the policy that requires MFA)" if s.mfa_policy else "create the group, with the MFA policy attached"
            return [fail(name, f"the {what} does not exist: every new user's plan would fail", make)]
        return [fail(name, f"could not read the {what} ({exc.code})", "give the bot the read permissions of `iam-bot policy`")]
    return [ok(name, f"every new user gets the {what}; each is watched for MFA")]


def check_member_accounts(ctx: Context) -> list[Result]:
    """With IAM_BOT_ACCOUNTS or IAM_BOT_ORGANIZATION: in every account, the role is assumed, acts in that
    account, and is allowed what the bot does there (one line per account)."""
    from bot.iam.accounts import RoleNotAssumed
    from bot.iam.gateway import AwsError
    from bot.runtime.app import accounts_for

    s = ctx.settings
    name = "accounts"
    if not s.accounts_raw and not s.organization:
        return []
    if why := ctx.broken_among("IAM_BOT_ACCOUNTS", "IAM_BOT_ACCOUNT_ROLE", "IAM_BOT_ACCOUNT_EXTERNAL_ID", "IAM_BOT_ORGANIZATION"):
        return [skip(name, why)]
    if ctx.iam is None or not ctx.caller_arn:
        return [skip(name, "no working AWS identity")]
    accounts = accounts_for(s)
    try:
        members = accounts.members()
    except AwsError as exc:
        return [fail(name, f"cannot list the organization's accounts ({exc.code} on organizations:ListAccounts)",
                     "run the bot in the management account or a delegated administrator account, allow it organizations:ListAccounts, "
                     "or list the accounts in IAM_BOT_ACCOUNTS instead")]
    if not members:
        return [fail(name, "no accounts: IAM_BOT_ORGANIZATION=true and AWS Organizations lists none", "list the accounts in IAM_BOT_ACCOUNTS")]
    trusted = principal_for(ctx.caller_arn) or ctx.caller_arn
    external = " with the external id of IAM_BOT_ACCOUNT_EXTERNAL_ID" if s.account_external_id else ""
    results = [ok(name, f"{len(members)}: {', '.join(a.label for a in members)}; the bot assumes role {s.account_role}{external} in each")]
    for account in members:
        line = f"account {account.name}"
        try:
            found, arn = accounts.gateway(account.name).caller_identity()
        except RoleNotAssumed as exc:
            results.append(fail(line, f"the bot cannot act in {account.name}: {exc.code} on sts:AssumeRole for {exc.role_arn}",
                                f"create the role in {account.id} trusting {trusted}{external}: `iam-bot policy --member-account` prints it, "
                                "deploy/member-account-stackset.yml creates it in every account of an OU"))
            continue
        except AwsError as exc:
            results.append(fail(line, f"GetCallerIdentity as the role failed ({exc.code})", "check the role's trust policy and the account id in IAM_BOT_ACCOUNTS"))
            continue
        if found != account.id:
            results.append(fail(line, f"the role's credentials act in account {found}, not {account.id}", "correct the account id in IAM_BOT_ACCOUNTS"))
            continue
        judged = _permissions(ctx, line, accounts.gateway(account.name), caller_arn=arn, account=account.id)
        results.append(replace(judged, found=f"acting as {arn}; {judged.found}"))
    return results


def check_rules(ctx: Context) -> list[Result]:
    """The rules file loads, and no rule in it is dead: an automatic rule always overridden, a path no user can have."""
    name = "rules"
    s = ctx.settings
    if not s.rules_path:
        return [ok(name, "no IAM_BOT_RULES file: IAM_BOT_APPROVERS approve every request, one approval each")]
    if "IAM_BOT_RULES" in ctx.broken:
        return [skip(name, "IAM_BOT_RULES is invalid (see above)")]
    try:
        book = rulebook_for(s)
    except ConfigError as exc:
        return [fail(name, str(exc).splitlines()[0], "correct the rules file; `iam-bot doctor` names every line")]
    dead = never_effective(book, path_prefix=s.user_path_prefix)
    if not dead:
        return [ok(name, f"{len(book.rules)} rule(s) loaded from {Path(s.rules_path).name}; each can take effect")]
    return [warn("rule " + line.split()[1].rstrip(":"), line, "change or remove the rule; README, \"How rules combine\"") for line in dead]


CHECKS: tuple[Callable[[Context], list[Result]], ...] = (
    check_settings,
    check_slack_token,
    check_slack_scopes,
    check_signing_secret,
    check_app_token,
    check_database,
    check_schema,
    check_encryption_key,
    check_aws_identity,
    check_aws_permissions,
    check_contained_policy,
    check_member_accounts,
    check_rules,
    check_boundary,
    check_approvers,
    check_approval_channel,
    check_audit_channel,
    check_report_channel,
    check_mfa_requirement,
)


def run_checks() -> list[Result]:
    settings, broken = parse_settings()
    ctx = Context(settings=settings, broken=broken)
    results: list[Result] = []
    for check in CHECKS:
        try:
            results.extend(check(ctx))
        except Exception as exc:  # a check that breaks must not hide the others; the type only (no values)
            results.append(fail(check.__name__.removeprefix("check_").replace("_", " "), f"the check itself failed ({type(exc).__name__})", "report this as a bug"))
    if ctx.engine is not None:
        ctx.engine.dispose()  # type: ignore[attr-defined]
    return results


def main() -> int:
    from bot.runtime.logsetup import clamp_library_loggers

    clamp_library_loggers()
    results = run_checks()
    for r in results:
        print(r.line())
    failed = sum(r.status == "fail" for r in results)
    warned = sum(r.status == "warn" for r in results)
    print(f"iam-bot doctor: {failed} failed, {warned} warning(s), {sum(r.status == 'ok' for r in results)} ok")
    sys.stdout.flush()
    return 1 if failed else 0
