"""`iam-bot doctor` as an operator runs it: a subprocess against moto, the Slack stand-in and a real database.

All good -> exit 0; then each setting broken in turn -> exit 1, and exactly the line for that
check fails, saying what to fix. No secret value ever appears in the output.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.runtime.db import alembic_config, make_engine, migrate
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.services import MotoServer, free_port
from bot.demo.standin import DEFAULT_SCOPES, SlackStandIn

ROOT = Path(__file__).resolve().parents[2]
IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
KEY = Fernet.generate_key().decode()
BOUNDARY = "arn:aws:iam::123456789012:policy/iam-bot-boundary"
DB_PASSWORD = "pg-pass-w0rd-never-shown"
LINE = re.compile(r"^(OK|WARN|FAIL|SKIP)\s+([^:]+): (.*)$")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> dict[str, tuple[str, str]]:
        """{check name: (STATUS, rest of line)}."""
        out = {}
        for line in self.stdout.splitlines():
            m = LINE.match(line)
            if m:
                out[m[2]] = (m[1], m[3])
        return out

    def failing(self) -> set[str]:
        return {name for name, (status, _) in self.lines.items() if status == "FAIL"}


def run_doctor(env: dict[str, str], cwd: Path) -> Outcome:
    result = subprocess.run(IAM_BOT + ["doctor"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    out = Outcome(result.returncode, result.stdout, result.stderr)
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    secrets = [env.get(n, "") for n in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "IAM_BOT_ENCRYPTION_KEY", "AWS_SECRET_ACCESS_KEY")]
    for secret in [*secrets, DB_PASSWORD, KEY]:
        if len(secret) >= 10:  # ("testing", moto's fake AWS secret, is too common a word to look for)
            assert secret not in text, f"a secret was printed: {secret[:5]}..."
    return out


def good_env(database_url: str, standin: SlackStandIn, moto: MotoServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL"))}
    env.update(
        PYTHONPATH=str(ROOT),
        AWS_ENDPOINT_URL=moto.url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=standin.url,
        DATABASE_URL=database_url,
        IAM_BOT_APPROVERS="UAPPROVER1,UAPPROVER2",
        IAM_BOT_APPROVAL_CHANNEL="CAPPROVALS",
        IAM_BOT_AUDIT_CHANNEL="GAUDIT",
        IAM_BOT_ENCRYPTION_KEY=KEY,
        IAM_BOT_USER_PATH_PREFIX="/iam-bot/",
        IAM_BOT_PERMISSIONS_BOUNDARY=BOUNDARY,
    )
    return env


@pytest.fixture
def workspace(standin: SlackStandIn) -> SlackStandIn:
    standin.add_channel("CAPPROVALS", "iam-approvals")
    standin.add_channel("GAUDIT", "iam-audit", is_private=True)
    return standin


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doctor-template") / "iam-bot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    with sqlite3.connect(path) as conn:  # back to one file with no WAL beside it: a plain copy is the whole database
        conn.execute("PRAGMA journal_mode=DELETE")
    return path


@pytest.fixture
def sqlite_url(migrated_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of the test's own (a copy: migrating takes a while on a busy machine)."""
    path = tmp_path / "iam-bot.db"
    shutil.copyfile(migrated_template, path)
    return f"sqlite:///{path}"


def test_stand_in_reports_the_manifest_scopes() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yml").read_text())
    assert sorted(DEFAULT_SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])


def test_all_good(database_url: str, workspace: SlackStandIn, moto, iam, tmp_path: Path) -> None:
    migrate(make_engine(database_url))
    out = run_doctor(good_env(database_url, workspace, moto), tmp_path)
    assert out.code == 0, out.stdout + out.stderr
    lines = out.lines
    assert {
        "settings",
        "Slack bot token",
        "Slack scopes",
        "Slack signing secret",
        "Slack app token",
        "database",
        "database schema",
        "encryption key",
        "AWS identity",
        "AWS permissions",
        "contained policy",
        "permissions boundary",
        "approver UAPPROVER1",
        "approver UAPPROVER2",
        "approval channel",
        "audit channel",
        "report channel",
        "MFA requirement",
        "rules",
    } == set(lines)
    not_ok = {name: line for name, line in lines.items() if line[0] != "OK"}
    # moto has neither SimulatePrincipalPolicy nor SimulateCustomPolicy: the doctor says it could not
    # check, never that it passed (tests/unit/test_doctor_checks.py judges real simulator answers).
    assert set(not_ok) == {"AWS permissions", "contained policy"}, not_ok
    for name in ("AWS permissions", "contained policy"):
        assert not_ok[name][0] == "WARN"
        assert "could not check (not supported by this endpoint" in not_ok[name][1]
    assert "account 123456789012" in lines["AWS identity"][1]
    assert "#iam-approvals" in lines["approval channel"][1] and "#iam-audit" in lines["audit channel"][1]
    assert out.stdout.rstrip().endswith("0 failed, 2 warning(s), 17 ok")
    # The doctor only looks: no message, no modal, nothing posted.
    methods = {c.method for c in workspace.calls}
    assert methods == {"auth.test", "users.info", "conversations.info"}, methods


def test_the_mfa_requirement_must_name_what_exists(sqlite_url: str, workspace: SlackStandIn, moto, iam, tmp_path: Path) -> None:
    migrate(make_engine(sqlite_url))
    missing = "policy:arn:aws:iam::123456789012:policy/iam-bot-require-mfa"
    out = run_doctor({**good_env(sqlite_url, workspace, moto), "IAM_BOT_MFA_REQUIRE": missing}, tmp_path)
    status, line = out.lines["MFA requirement"]
    assert out.code == 1 and status == "FAIL" and "does not exist: every new user's plan would fail" in line and "iam-bot policy --mfa" in out.stdout
    iam.create_group(GroupName="require-mfa")
    out = run_doctor({**good_env(sqlite_url, workspace, moto), "IAM_BOT_MFA_REQUIRE": "group:require-mfa"}, tmp_path)
    assert out.lines["MFA requirement"] == ("OK", "every new user gets the group require-mfa; each is watched for MFA"), out.stdout


def test_rules_that_can_never_take_effect_are_warned_about(sqlite_url: str, workspace: SlackStandIn, moto, iam, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n"
        "  - {name: keys-need-a-lead, approvers: [UAPPROVER1], match: {access: key}}\n"
        "  - {name: read-only, auto_approve: true, match: {policies: [ReadOnlyAccess], access: key}}\n"
        "  - {name: everyone, approvers: [UAPPROVER2]}\n"
    )
    migrate(make_engine(sqlite_url))
    out = run_doctor({**good_env(sqlite_url, workspace, moto), "IAM_BOT_RULES": str(rules)}, tmp_path)
    assert out.code == 0, out.stdout + out.stderr  # a warning, not a failure: the bot still works as written
    status, line = out.lines["rule read-only"]
    assert status == "WARN" and line.startswith(
        "rule read-only (automatic) never approves anything: every request it covers also matches rule keys-need-a-lead, which needs a person"
    )


def test_all_good_in_socket_mode(sqlite_url: str, workspace: SlackStandIn, moto, iam, tmp_path: Path) -> None:
    env = good_env(sqlite_url, workspace, moto)
    del env["SLACK_SIGNING_SECRET"]
    env["SLACK_APP_TOKEN"] = workspace.app_token
    workspace.socket_mode_url = "ws://127.0.0.1:9/never-dialled"  # the doctor only asks for a URL
    try:
        out = run_doctor(env, tmp_path)
    finally:
        workspace.socket_mode_url = None
    assert out.code == 0, out.stdout
    assert out.lines["Slack app token"] == ("OK", "valid: Socket Mode connections open")
    assert out.lines["Slack signing secret"][0] == "OK"


# ---------------------------------------------------------------------------------------------
# One setting broken at a time
# ---------------------------------------------------------------------------------------------

Breaker = Callable[[dict[str, str], SlackStandIn, Path], None]


def _set(**values: str) -> Breaker:
    def apply(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
        env.update(values)

    return apply


def _unset(*names: str) -> Breaker:
    def apply(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
        for n in names:
            env.pop(n, None)

    return apply


def _drop_scope(scope: str) -> Breaker:
    def apply(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
        standin.granted_scopes = [s for s in standin.granted_scopes if s != scope]

    return apply


def _approver(user_id: str, **fields: object) -> Breaker:
    def apply(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
        env["IAM_BOT_APPROVERS"] = f"UAPPROVER1,{user_id}"
        if fields:
            standin.set_user(user_id, **fields)

    return apply


def _db_at(revision: str | None) -> Breaker:
    """A database file at an older revision, or (None) an empty one."""

    def apply(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
        from alembic import command

        path = tmp / "other.db"
        sqlite3.connect(path).close()
        env["DATABASE_URL"] = f"sqlite:///{path}"
        if revision:
            cfg = alembic_config()
            with make_engine(env["DATABASE_URL"]).begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)

    return apply


def _credentials_sealed_with_another_key(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
    """A stored envelope the configured key cannot open: the key it was sealed with was dropped."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    token = Fernet(Fernet.generate_key()).encrypt(b'{"user_name": "x"}')
    with sqlite3.connect(path) as conn:  # foreign keys are off in a plain sqlite3 connection
        conn.execute(
            "INSERT INTO credential_envelopes (id, request_id, owner_id, ciphertext, created_at, expires_at) "
            "VALUES (1, 999, 'UOWNER1', ?, '2026-01-01 00:00:00', '2099-01-01 00:00:00')",
            (token,),
        )


def _no_key_with_postgres(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
    del env["IAM_BOT_ENCRYPTION_KEY"]
    env["DATABASE_URL"] = "postgresql://iambot@127.0.0.1:1/none"


def _no_aws_credentials(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
    for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(n, None)
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), AWS_CONFIG_FILE=str(tmp / "none"), AWS_EC2_METADATA_DISABLED="true")


def _aws_unreachable(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there


def _channel(**kwargs: object) -> Breaker:
    def apply(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
        standin.add_channel("CAPPROVALS", "iam-approvals", **kwargs)  # type: ignore[arg-type]

    return apply


def _unknown_channel(env: dict[str, str], standin: SlackStandIn, tmp: Path) -> None:
    env["IAM_BOT_APPROVAL_CHANNEL"] = "CNOSUCH1"


# (id, how to break it, {check that fails: text its line must contain})
BROKEN: list[tuple[str, Breaker, dict[str, str]]] = [
    ("bad-token", _set(SLACK_BOT_TOKEN="xoxb-revoked-or-wrong"), {"Slack bot token": "Slack rejected SLACK_BOT_TOKEN (invalid_auth). Fix: copy the Bot User OAuth Token"}),
    ("not-a-bot-token", _set(SLACK_BOT_TOKEN="xoxp-a-user-token"), {"SLACK_BOT_TOKEN": "must be a bot token starting with xoxb-"}),
    ("no-token", _unset("SLACK_BOT_TOKEN"), {"Slack bot token": "SLACK_BOT_TOKEN is not set"}),
    ("missing-scope", _drop_scope("users:read"), {"Slack scopes": "missing users:read. Fix: add them under OAuth & Permissions"}),
    ("no-signing-secret", _unset("SLACK_SIGNING_SECRET"), {"Slack signing secret": "SLACK_SIGNING_SECRET is not set (HTTP mode). Fix: copy the Signing Secret"}),
    ("bad-app-token", _set(SLACK_APP_TOKEN="xapp-wrong"), {"Slack app token": "Slack rejected SLACK_APP_TOKEN (invalid_auth). Fix: create an app-level token with connections:write"}),
    ("db-unreachable", _set(DATABASE_URL=f"postgresql://iambot:{DB_PASSWORD}@127.0.0.1:1/none"), {"database": "cannot connect to postgresql+psycopg://iambot:***@127.0.0.1:1/none"}),
    ("db-file-missing", _set(DATABASE_URL="sqlite:///no/such/dir/iam-bot.db"), {"database": "no database file at no/such/dir/iam-bot.db. Fix: run `iam-bot migrate`"}),
    ("db-not-migrated", _db_at(None), {"database schema": "not migrated (no iam-bot tables). Fix: run `iam-bot migrate`"}),
    ("db-behind", _db_at("0001"), {"database schema": "at 0001, latest is"}),
    ("bad-key", _set(IAM_BOT_ENCRYPTION_KEY="not-a-fernet-key-but-secret"), {"IAM_BOT_ENCRYPTION_KEY": "key #1 is not a Fernet key"}),
    ("key-rotated-out", _credentials_sealed_with_another_key, {"encryption key": "1 of 1 stored credentials cannot be decrypted"}),
    ("no-key-shared-db", _no_key_with_postgres, {"database": "cannot connect", "encryption key": "IAM_BOT_ENCRYPTION_KEY is not set; it is required with a shared database"}),
    ("no-approvers", _unset("IAM_BOT_APPROVERS"), {"approvers": "IAM_BOT_APPROVERS is not set"}),
    ("approver-not-a-user", _approver("UGONE1"), {"approver UGONE1": "no such user in this workspace. Fix: remove UGONE1"}),
    ("approver-is-a-bot", _approver("UROBOT1", is_bot=True), {"approver UROBOT1": "@urobot1 is a bot, not a person"}),
    ("approver-deactivated", _approver("ULEFT1", deleted=True), {"approver ULEFT1": "@uleft1 is deactivated"}),
    ("channel-without-bot", _channel(is_member=False), {"approval channel": "the bot is not in #iam-approvals. Fix: `/invite @iam-bot`"}),
    ("channel-archived", _channel(is_archived=True), {"approval channel": "#iam-approvals is archived"}),
    ("channel-unknown", _unknown_channel, {"approval channel": "IAM_BOT_APPROVAL_CHANNEL=CNOSUCH1 not found"}),
    ("aws-unreachable", _aws_unreachable, {"AWS identity": "cannot reach AWS STS at http://127.0.0.1:"}),
    ("aws-no-credentials", _no_aws_credentials, {"AWS identity": "no AWS credentials found. Fix: give the bot credentials"}),
    ("no-boundary", _unset("IAM_BOT_PERMISSIONS_BOUNDARY"), {"permissions boundary": "IAM_BOT_PERMISSIONS_BOUNDARY is not set"}),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_each_broken_setting_fails_its_own_line(case, sqlite_url: str, workspace: SlackStandIn, moto, iam, tmp_path: Path) -> None:
    _, breaker, expected = case
    env = good_env(sqlite_url, workspace, moto)
    breaker(env, workspace, tmp_path)
    out = run_doctor(env, tmp_path)
    assert out.code == 1, out.stdout
    assert out.failing() == set(expected), out.stdout
    for name, text in expected.items():
        assert text in out.lines[name][1], out.stdout


def test_trying_it_out_unbounded_is_a_warning_not_a_failure(sqlite_url: str, workspace: SlackStandIn, moto, iam, tmp_path: Path) -> None:
    env = good_env(sqlite_url, workspace, moto)
    del env["IAM_BOT_PERMISSIONS_BOUNDARY"]
    out = run_doctor({**env, "IAM_BOT_ALLOW_UNBOUNDED": "true"}, tmp_path)
    assert out.code == 0, out.stdout
    status, line = out.lines["permissions boundary"]
    assert status == "WARN" and "IAM_BOT_ALLOW_UNBOUNDED=true lets the bot run so, for trying it out only" in line
    failed = run_doctor(env, tmp_path)
    assert failed.failing() == {"permissions boundary"} and "`iam-bot serve` refuses to start" in failed.lines["permissions boundary"][1]
    assert "or set IAM_BOT_ALLOW_UNBOUNDED=true to try the bot out" in failed.lines["permissions boundary"][1]


def test_aws_rejecting_the_credentials(sqlite_url: str, workspace: SlackStandIn, tmp_path: Path, monkeypatch) -> None:
    """A moto server that authenticates requests, as AWS does, answers InvalidClientTokenId."""
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0")  # read by the moto process at start
    strict = MotoServer(tmp_path).start()
    try:
        env = good_env(sqlite_url, workspace, strict)
        env.update(AWS_ACCESS_KEY_ID="AKIANOTAKEY000000000", AWS_SECRET_ACCESS_KEY="testing-secret")
        out = run_doctor(env, tmp_path)
    finally:
        strict.stop()
    assert out.code == 1
    assert out.failing() == {"AWS identity"}, out.stdout
    assert out.lines["AWS identity"][1].startswith("AWS rejected the credentials (InvalidClientTokenId). Fix:")
    assert out.lines["AWS permissions"][0] == "SKIP" and out.lines["contained policy"][0] == "SKIP"


def test_several_broken_settings_each_get_a_line(sqlite_url: str, workspace: SlackStandIn, moto, iam, tmp_path: Path) -> None:
    """A config error is one failed line per setting, not an abort: the other checks still run."""
    env = good_env(sqlite_url, workspace, moto)
    env.update(SLACK_BOT_TOKEN="xoxp-user", IAM_BOT_APPROVERS="alice", IAM_BOT_APPROVAL_CHANNEL="#general")
    out = run_doctor(env, tmp_path)
    assert out.code == 1
    assert {"SLACK_BOT_TOKEN", "IAM_BOT_APPROVERS", "IAM_BOT_APPROVAL_CHANNEL"} == out.failing()
    assert out.lines["Slack bot token"][0] == "SKIP" and out.lines["approvers"][0] == "SKIP"
    assert out.lines["database schema"][0] == "OK" and out.lines["AWS identity"][0] == "OK"
