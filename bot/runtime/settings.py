"""Settings, validated once at start; every problem is reported as one line naming the setting."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.audit.keys import KEY_HELP as AUDIT_KEY_HELP, MIN_KEY_LENGTH as AUDIT_KEY_MIN
from bot.common.errors import ConfigError
from bot.common.slack_ids import is_channel, is_user
from bot.domain.accounts import MemberAccount, parse_accounts, valid_external_id, valid_role
from bot.policy.rulebook import Rulebook
from bot.policy.rules_file import load_rulebook

__all__ = ["ConfigError", "FIELD_ENV", "Settings", "load_settings", "local_audit_key_file", "local_key_file", "rulebook_for"]

DEFAULT_DATABASE_URL = "sqlite:///iam-bot.db"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    slack_bot_token: str = Field("", validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: str = Field("", validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_app_token: str = Field("", validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    port: int = Field(3000, validation_alias=_env("PORT"), ge=1, le=65535)
    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias=_env("DATABASE_URL"))
    approvers_raw: str = Field("", validation_alias=_env("IAM_BOT_APPROVERS"))
    approval_channel: str = Field("", validation_alias=_env("IAM_BOT_APPROVAL_CHANNEL"))
    audit_channel: str = Field("", validation_alias=_env("IAM_BOT_AUDIT_CHANNEL"))
    encryption_key_raw: str = Field("", validation_alias=_env("IAM_BOT_ENCRYPTION_KEY"), repr=False)
    # With it, every envelope gets its own data key from AWS KMS (bot.credentials.vault); Fernet keys then only open older ones.
    kms_key_id: str = Field("", validation_alias=_env("IAM_BOT_KMS_KEY_ID"))
    audit_key_raw: str = Field("", validation_alias=_env("IAM_BOT_AUDIT_KEY"), repr=False)  # HMAC keys of the audit chain, newest first
    credentials_ttl_hours: float = Field(24.0, validation_alias=_env("IAM_BOT_CREDENTIALS_TTL_HOURS"), gt=0, le=24 * 30)
    # A rotated key: deactivated this many days after the new one is issued, deleted as many days later.
    key_rotation_grace_days: float = Field(7.0, validation_alias=_env("IAM_BOT_KEY_ROTATION_GRACE_DAYS"), gt=0, le=90)
    worker_poll_seconds: float = Field(5.0, validation_alias=_env("IAM_BOT_WORKER_POLL_SECONDS"), gt=0, le=300)
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    job_lease_seconds: float = Field(10.0, validation_alias=_env("IAM_BOT_JOB_LEASE_SECONDS"), ge=1, le=3600)
    user_path_prefix: str = Field("/", validation_alias=_env("IAM_BOT_USER_PATH_PREFIX"))
    permissions_boundary: str = Field("", validation_alias=_env("IAM_BOT_PERMISSIONS_BOUNDARY"))
    # For trying the bot out only: `serve` refuses to start without a boundary unless this is true.
    allow_unbounded: bool = Field(False, validation_alias=_env("IAM_BOT_ALLOW_UNBOUNDED"))
    rules_path: str = Field("", validation_alias=_env("IAM_BOT_RULES"))
    request_ttl_hours: float = Field(72.0, validation_alias=_env("IAM_BOT_REQUEST_TTL_HOURS"), gt=0, le=24 * 30)
    # Hygiene (issue 15): the report's channel and beat, its thresholds, the owners' nudge before a key gets old.
    report_channel: str = Field("", validation_alias=_env("IAM_BOT_REPORT_CHANNEL"))
    report_every_days: float = Field(7.0, validation_alias=_env("IAM_BOT_REPORT_EVERY_DAYS"), gt=0, le=90)
    key_max_age_days: int = Field(90, validation_alias=_env("IAM_BOT_KEY_MAX_AGE_DAYS"), ge=1, le=3650)
    unused_days: int = Field(90, validation_alias=_env("IAM_BOT_UNUSED_DAYS"), ge=1, le=3650)
    key_nudge_days: int = Field(14, validation_alias=_env("IAM_BOT_KEY_NUDGE_DAYS"), ge=0, le=365)
    # MFA: `group:<name>` or `policy:<arn>` put every new user under it; the owner is reminded, then the approvers told.
    mfa_require: str = Field("", validation_alias=_env("IAM_BOT_MFA_REQUIRE"))
    mfa_remind_days: float = Field(3.0, validation_alias=_env("IAM_BOT_MFA_REMIND_DAYS"), ge=0, le=365)
    mfa_escalate_days: float = Field(7.0, validation_alias=_env("IAM_BOT_MFA_ESCALATE_DAYS"), ge=0, le=365)
    # A user with an end date is disabled on it and deleted this many days later, unless an extension is approved.
    expiry_grace_days: float = Field(30.0, validation_alias=_env("IAM_BOT_EXPIRY_GRACE_DAYS"), ge=0, le=365)
    # Many accounts: `name=account_id` entries, the role the bot assumes in each (and its external id), or the
    # organization's accounts listed by AWS Organizations. Without either, the bot acts in its own account.
    accounts_raw: str = Field("", validation_alias=_env("IAM_BOT_ACCOUNTS"))
    account_role: str = Field("iam-bot", validation_alias=_env("IAM_BOT_ACCOUNT_ROLE"))
    account_external_id: str = Field("", validation_alias=_env("IAM_BOT_ACCOUNT_EXTERNAL_ID"), repr=False)
    organization: bool = Field(False, validation_alias=_env("IAM_BOT_ORGANIZATION"))
    # How long each AssumeRole session lasts (STS allows 900 s to the role's maximum); it is renewed before it ends.
    account_session_seconds: int = Field(3600, validation_alias=_env("IAM_BOT_ACCOUNT_SESSION_SECONDS"), ge=900, le=43200)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, v: str) -> str:
        if v and not v.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb- (Slack app > OAuth & Permissions)")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: str) -> str:
        if v and not v.startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp- (Slack app > Basic Information)")
        return v

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not re.match(r"^https?://", v):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return v if v.endswith("/") else v + "/"

    @field_validator("approvers_raw")
    @classmethod
    def _approvers(cls, v: str) -> str:
        bad = [a for a in _split(v) if not is_user(a)]
        if bad:
            raise ValueError(f"not Slack user IDs: {', '.join(bad)} (expected IDs like U012ABCDEF, comma-separated)")
        return v

    @field_validator("approval_channel", "audit_channel", "report_channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        v = v.strip()
        if v and not is_channel(v):
            raise ValueError("must be a channel ID like C012ABCDEF, not a channel name")
        return v

    @field_validator("encryption_key_raw")
    @classmethod
    def _keys(cls, v: str) -> str:
        for i, key in enumerate(_split(v), start=1):
            try:
                Fernet(key.encode())
            except Exception:
                # Never echo the value: it is a secret.
                raise ValueError(
                    f"key #{i} is not a Fernet key (32 url-safe base64 bytes); generate one with "
                    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
                ) from None
        return v

    @field_validator("audit_key_raw")
    @classmethod
    def _audit_keys(cls, v: str) -> str:
        for i, key in enumerate(_split(v), start=1):
            if len(key) < AUDIT_KEY_MIN:
                # Never echo the value: it is a secret.
                raise ValueError(f"key #{i} is too short (at least {AUDIT_KEY_MIN} characters); {AUDIT_KEY_HELP}")
        return v

    @field_validator("kms_key_id")
    @classmethod
    def _kms_key(cls, v: str) -> str:
        v = v.strip()
        if v and not _KMS_KEY.fullmatch(v):
            raise ValueError(
                "must be an AWS KMS key ARN (arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab), "
                "a key id, or an alias (alias/iam-bot or its ARN)"
            )
        return v

    @field_validator("user_path_prefix")
    @classmethod
    def _path_prefix(cls, v: str) -> str:
        v = v.strip() or "/"
        if not re.fullmatch(r"/([\x21-\x7e]+/)*", v) or len(v) > 512:
            raise ValueError("must be an IAM path that starts and ends with /, such as /iam-bot/")
        return v

    @field_validator("permissions_boundary")
    @classmethod
    def _boundary(cls, v: str) -> str:
        v = v.strip()
        if v and not re.fullmatch(r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/\S+", v):
            raise ValueError("must be a managed policy ARN such as arn:aws:iam::123456789012:policy/iam-bot-boundary")
        return v

    @field_validator("rules_path")
    @classmethod
    def _rules_path(cls, v: str) -> str:
        v = v.strip()
        if v and not Path(v).is_file():
            raise ValueError(f"no such file: {v} (a .yml, .yaml or .toml rules file)")
        return v

    @field_validator("mfa_require")
    @classmethod
    def _mfa(cls, v: str) -> str:
        v = v.strip()
        kind, _, value = v.partition(":")
        if not v:
            return v
        if kind == "group" and re.fullmatch(r"[\w+=,.@-]{1,128}", value):
            return v
        if kind == "policy" and re.fullmatch(r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/\S+", value):
            return v
        raise ValueError(
            "must be group:<group name> or policy:<managed policy ARN>, e.g. policy:arn:aws:iam::123456789012:policy/iam-bot-require-mfa "
            "(`iam-bot policy --mfa` prints that policy)"
        )

    @field_validator("accounts_raw")
    @classmethod
    def _accounts(cls, v: str) -> str:
        parse_accounts(v)  # ValueError names the entry
        return v

    @field_validator("account_role")
    @classmethod
    def _account_role(cls, v: str) -> str:
        v = v.strip() or "iam-bot"
        if not valid_role(v):
            raise ValueError("must be an IAM role name (with an optional path, such as ops/iam-bot), not an ARN")
        return v

    @field_validator("account_external_id")
    @classmethod
    def _external_id(cls, v: str) -> str:
        v = v.strip()
        if v and not valid_external_id(v):
            raise ValueError("must be 2 to 1224 characters of letters, digits and +=,.@:/-_")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v

    @property
    def mfa_group(self) -> str | None:
        return self.mfa_require.partition(":")[2] if self.mfa_require.startswith("group:") else None

    @property
    def mfa_policy(self) -> str | None:
        return self.mfa_require.partition(":")[2] if self.mfa_require.startswith("policy:") else None

    @property
    def accounts(self) -> tuple[MemberAccount, ...]:
        return parse_accounts(self.accounts_raw)

    @property
    def approvers(self) -> frozenset[str]:
        return frozenset(_split(self.approvers_raw))

    @property
    def encryption_keys(self) -> list[str]:
        return _split(self.encryption_key_raw)

    @property
    def audit_keys(self) -> list[str]:
        return _split(self.audit_key_raw)

    @property
    def generated_key_allowed(self) -> bool:
        """A generated encryption key (iam-bot.key beside the database) only for the local default SQLite
        file: anywhere else it would sit with the database, in its volume and in its backups."""
        return self.database_url == DEFAULT_DATABASE_URL

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def uses_default_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_for_serving(self) -> None:
        """What `serve` needs beyond well-formed values; raises ConfigError listing every gap."""
        problems = []
        if not self.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN: not set; copy the Bot User OAuth Token (xoxb-...) from your Slack app")
        if not self.socket_mode and not self.slack_signing_secret:
            problems.append("SLACK_SIGNING_SECRET: not set; copy it from your Slack app's Basic Information page")
        try:
            book = rulebook_for(self)
        except ConfigError as exc:
            problems.extend(str(exc).splitlines())
            book = None
        # With a broken rules file, whether it has a catch-all rule is unknown: its own errors say enough.
        if not self.approvers and book is not None and not book.has_catch_all:
            problems.append(
                "IAM_BOT_APPROVERS: not set; give the Slack user IDs allowed to approve, comma-separated "
                "(or a catch-all rule, one without `match`, in the IAM_BOT_RULES file)"
            )
        if not self.encryption_keys and not self.kms_key_id and not self.generated_key_allowed:
            problems.append(
                f"IAM_BOT_ENCRYPTION_KEY: required unless DATABASE_URL is the local default ({DEFAULT_DATABASE_URL}): a generated "
                "key would sit beside the database and in its backups; generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` (or set IAM_BOT_KMS_KEY_ID)"
            )
        if not self.audit_keys and not self.generated_key_allowed:
            problems.append(
                f"IAM_BOT_AUDIT_KEY: required unless DATABASE_URL is the local default ({DEFAULT_DATABASE_URL}): it signs the "
                f"audit log and must live outside the database; {AUDIT_KEY_HELP}"
            )
        # With a broken rules file, whether its required_boundaries cover the prefix is unknown: its own errors say enough.
        if book is not None and not self.allow_unbounded and not self.boundary_for_every_user(book):
            problems.append(
                f"IAM_BOT_PERMISSIONS_BOUNDARY: not set, and no required_boundaries entry of IAM_BOT_RULES covers "
                f"IAM_BOT_USER_PATH_PREFIX ({self.user_path_prefix}): without a boundary a compromised bot could grant "
                "AdministratorAccess; create a boundary policy and set IAM_BOT_PERMISSIONS_BOUNDARY to its ARN "
                "(README, Security model), or set IAM_BOT_ALLOW_UNBOUNDED=true to try the bot out"
            )
        # IAM cannot tell tagging a new user from tagging an existing one: under `/` a stolen bot could
        # put its marker on an existing administrator and then mint a key for them. A dedicated prefix
        # keeps every user it may tag to the ones it made.
        if self.user_path_prefix == "/" and not self.allow_unbounded:
            problems.append(
                "IAM_BOT_USER_PATH_PREFIX: / would let a compromised bot tag any existing user as its own and then "
                "create keys for it; set a prefix only the bot's users live under, such as /iam-bot/ "
                "(or IAM_BOT_ALLOW_UNBOUNDED=true to try the bot out)"
            )
        if problems:
            raise ConfigError("\n".join(problems))

    def boundary_for_every_user(self, book: Rulebook) -> bool:
        """Whether every user the bot may create gets a permissions boundary (the setting, or the rules file's for the whole prefix)."""
        return bool(self.permissions_boundary or book.required_boundary(self.user_path_prefix))


_KMS_KEY = re.compile(
    r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250})"
    r"|(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|alias/[A-Za-z0-9/_-]{1,250}"
)


def _split(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


FIELD_ENV = {
    name: (field.validation_alias.choices[0] if isinstance(field.validation_alias, AliasChoices) else name.upper())
    for name, field in Settings.model_fields.items()
}


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise ConfigError with one line per bad setting (values never echoed)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = str(err["loc"][0]) if err["loc"] else "?"
            env = FIELD_ENV.get(loc, loc)
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{env}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def local_key_file(settings: Settings) -> Path:
    """Where a local/dev SQLite deployment keeps its generated encryption key."""
    db_path = settings.database_url.split("///", 1)[-1] or "iam-bot.db"
    return Path(db_path).resolve().parent / "iam-bot.key"


def local_audit_key_file(settings: Settings) -> Path:
    """Where a local/dev SQLite deployment keeps its generated audit key: next to the encryption key's file."""
    return local_key_file(settings).with_name("iam-bot.audit-key")


def rulebook_for(settings: Settings) -> Rulebook:
    """The rules in force: the file named by IAM_BOT_RULES, else the one rule made of IAM_BOT_APPROVERS."""
    if settings.rules_path:
        return load_rulebook(settings.rules_path, default_approvers=settings.approvers)
    return Rulebook.default(settings.approvers)
