"""bot.runtime.settings and bot.runtime.db.normalize_url: one line per bad setting, secrets never echoed."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.runtime.db import normalize_url
from bot.runtime.settings import FIELD_ENV, ConfigError, Settings, load_settings

ENV_NAMES = sorted(FIELD_ENV.values())
# Fixed, not generated: test ids carry it, and pytest-xdist's workers must collect the same ids.
GOOD_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.urlsafe_b64encode(bytes(range(32, 64))).decode()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)


def config_error(**overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    lines = str(info.value).split("\n")
    assert all(line.strip() for line in lines)
    return lines


def test_env_names_are_the_documented_ones() -> None:
    """Every setting is in the README's settings table, and the table names no setting that is not read."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.M))
    assert set(ENV_NAMES) == documented


def test_defaults_load() -> None:
    s = load_settings()
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.port == 3000
    assert s.approvers == frozenset()
    assert s.encryption_keys == []
    assert not s.socket_mode
    assert s.uses_default_sqlite


BAD = [
    ("slack_bot_token", "xoxp-123-456", "SLACK_BOT_TOKEN", "xoxb-"),
    ("slack_bot_token", "xapp-1-AAA", "SLACK_BOT_TOKEN", "xoxb-"),
    ("slack_app_token", "xoxb-123-456", "SLACK_APP_TOKEN", "xapp-"),
    ("slack_api_url", "slack.com/api", "SLACK_API_URL", "http(s) URL"),
    ("slack_api_url", "ftp://slack.com/api/", "SLACK_API_URL", "http(s) URL"),
    ("port", "abc", "PORT", "integer"),
    ("port", "0", "PORT", "greater than or equal to 1"),
    ("port", "70000", "PORT", "less than or equal to 65535"),
    ("approvers_raw", "U012ABCDEF,bob", "IAM_BOT_APPROVERS", "bob"),
    ("approvers_raw", "u012abcdef", "IAM_BOT_APPROVERS", "u012abcdef"),
    ("approvers_raw", "<@U012ABCDEF>", "IAM_BOT_APPROVERS", "Slack user IDs"),
    ("approval_channel", "#general", "IAM_BOT_APPROVAL_CHANNEL", "not a channel name"),
    ("approval_channel", "general", "IAM_BOT_APPROVAL_CHANNEL", "channel ID"),
    ("approval_channel", "U012ABCDEF", "IAM_BOT_APPROVAL_CHANNEL", "channel ID"),
    ("encryption_key_raw", "not-a-key", "IAM_BOT_ENCRYPTION_KEY", "key #1 is not a Fernet key"),
    ("encryption_key_raw", f"{GOOD_KEY},not-a-key", "IAM_BOT_ENCRYPTION_KEY", "key #2 is not a Fernet key"),
    ("credentials_ttl_hours", "0", "IAM_BOT_CREDENTIALS_TTL_HOURS", "greater than 0"),
    ("credentials_ttl_hours", "721", "IAM_BOT_CREDENTIALS_TTL_HOURS", "less than or equal to 720"),
    ("worker_poll_seconds", "-1", "IAM_BOT_WORKER_POLL_SECONDS", "greater than 0"),
    ("log_level", "verbose", "LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR"),
]


@pytest.mark.parametrize("field,value,env,fragment", BAD, ids=[f"{b[0]}={b[1][:20]}" for b in BAD])
def test_bad_setting_by_keyword_is_one_line_named_by_env_var(field: str, value: str, env: str, fragment: str) -> None:
    lines = config_error(**{field: value})
    assert len(lines) == 1
    assert lines[0].startswith(f"{env}: ")
    assert fragment in lines[0]


@pytest.mark.parametrize("field,value,env,fragment", BAD, ids=[f"{b[0]}={b[1][:20]}" for b in BAD])
def test_bad_setting_from_environment(monkeypatch: pytest.MonkeyPatch, field: str, value: str, env: str, fragment: str) -> None:
    monkeypatch.setenv(env, value)
    lines = config_error()
    assert len(lines) == 1
    assert lines[0].startswith(f"{env}: ")
    assert fragment in lines[0]


def test_every_bad_setting_gets_its_own_line() -> None:
    overrides = {field: value for field, value, _, _ in BAD}  # the last bad value per field wins
    lines = config_error(**overrides)
    expected = {env for field, _, env, _ in BAD if field in overrides}
    assert len(lines) == len(expected)
    assert {line.split(":", 1)[0] for line in lines} == expected


@pytest.mark.parametrize(
    "raw",
    [
        "this-is-my-very-secret-key-value",
        GOOD_KEY[:-2],  # almost a key
        GOOD_KEY[:20] + "!!" + GOOD_KEY[22:],  # one bad character
        f"{GOOD_KEY},super-secret-second-key",
    ],
)
def test_bad_fernet_key_is_never_echoed(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for lines in (config_error(encryption_key_raw=raw), _from_env(monkeypatch, "IAM_BOT_ENCRYPTION_KEY", raw)):
        message = "\n".join(lines)
        assert message.startswith("IAM_BOT_ENCRYPTION_KEY: ")
        for part in raw.split(","):
            assert part not in message
            assert part[:12] not in message


def _from_env(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> list[str]:
    monkeypatch.setenv(env, value)
    try:
        return config_error()
    finally:
        monkeypatch.delenv(env)


@pytest.mark.parametrize("field,value", [("slack_bot_token", "xoxp-SECRET-TOKEN-VALUE"), ("slack_app_token", "xoxb-SECRET-APP-VALUE")])
def test_bad_tokens_are_not_echoed(field: str, value: str) -> None:
    message = "\n".join(config_error(**{field: value}))
    assert "SECRET" not in message


def test_settings_repr_hides_the_encryption_key() -> None:
    s = load_settings(encryption_key_raw=GOOD_KEY)
    assert GOOD_KEY not in repr(s)


@pytest.mark.parametrize(
    "field,value",
    [
        ("slack_bot_token", "xoxb-123-456"),
        ("slack_bot_token", ""),
        ("slack_app_token", "xapp-1-A111"),
        ("slack_app_token", ""),
        ("approval_channel", "C012ABCDEF"),
        ("approval_channel", "G012ABCDEF"),
        ("approval_channel", ""),
        ("approvers_raw", " U012ABCDEF , W0456DEF ,"),
        ("encryption_key_raw", f" {GOOD_KEY} , {OTHER_KEY} "),
    ],
)
def test_good_values_accepted(field: str, value: str) -> None:
    load_settings(**{field: value})


def test_parsed_values() -> None:
    k2 = Fernet.generate_key().decode()
    s = load_settings(
        approvers_raw=" U012ABCDEF , W0456DEF ,",
        encryption_key_raw=f"{GOOD_KEY}, {k2}",
        approval_channel="  C012ABCDEF ",
        log_level="debug",
        slack_app_token="xapp-1-A",
    )
    assert s.approvers == frozenset({"U012ABCDEF", "W0456DEF"})
    assert s.encryption_keys == [GOOD_KEY, k2]  # newest first, as given
    assert s.approval_channel == "C012ABCDEF"
    assert s.log_level == "DEBUG"
    assert s.socket_mode


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("https://slack.example/api", "https://slack.example/api/"),
        ("https://slack.example/api/", "https://slack.example/api/"),
        ("http://127.0.0.1:9999", "http://127.0.0.1:9999/"),
    ],
)
def test_slack_api_url_gains_trailing_slash(raw: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(slack_api_url=raw).slack_api_url == expected
    monkeypatch.setenv("SLACK_API_URL", raw)
    assert load_settings().slack_api_url == expected


# ---------------------------------------------------------------- check_for_serving

def serving_problems(**overrides: object) -> list[str]:
    s = load_settings(**overrides)
    try:
        s.check_for_serving()
    except ConfigError as exc:
        return str(exc).split("\n")
    return []


def test_check_for_serving_lists_every_missing_setting() -> None:
    lines = serving_problems()
    assert [line.split(":", 1)[0] for line in lines] == [
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "IAM_BOT_APPROVERS", "IAM_BOT_PERMISSIONS_BOUNDARY", "IAM_BOT_USER_PATH_PREFIX",
    ]


def test_check_for_serving_with_shared_database_needs_a_key() -> None:
    lines = serving_problems(database_url="postgresql://u@db/iam")
    assert [line.split(":", 1)[0] for line in lines] == [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "IAM_BOT_APPROVERS",
        "IAM_BOT_ENCRYPTION_KEY",
        "IAM_BOT_AUDIT_KEY",
        "IAM_BOT_PERMISSIONS_BOUNDARY",
        "IAM_BOT_USER_PATH_PREFIX",
    ]


def test_socket_mode_needs_no_signing_secret() -> None:
    assert serving_problems(
        slack_bot_token="xoxb-1", slack_app_token="xapp-1", approvers_raw="U012ABCDEF", permissions_boundary=BOUNDARY, user_path_prefix="/iam-bot/"
    ) == []


def test_complete_http_configuration_serves() -> None:
    assert (
        serving_problems(
            slack_bot_token="xoxb-1",
            slack_signing_secret="s3cret",
            approvers_raw="U012ABCDEF",
            database_url="postgres://u@db/iam",
            encryption_key_raw=GOOD_KEY,
            audit_key_raw="a" * 32,
            permissions_boundary=BOUNDARY,
            user_path_prefix="/iam-bot/",
        )
        == []
    )


def test_check_for_serving_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("IAM_BOT_ALLOW_UNBOUNDED", "true")
    assert [line.split(":", 1)[0] for line in serving_problems()] == ["IAM_BOT_APPROVERS"]


# ---------------------------------------------------------------- a permissions boundary, or trying it out

BOUNDARY = "arn:aws:iam::123456789012:policy/iam-bot-boundary"
READY = dict(slack_bot_token="xoxb-1", slack_signing_secret="s", approvers_raw="U012ABCDEF", user_path_prefix="/iam-bot/")


def test_serving_without_a_boundary_is_refused_in_one_line_naming_the_setting_and_the_fix() -> None:
    (line,) = serving_problems(**READY)
    assert line.startswith("IAM_BOT_PERMISSIONS_BOUNDARY: not set, and no required_boundaries entry of IAM_BOT_RULES covers IAM_BOT_USER_PATH_PREFIX (/iam-bot/)")
    assert "set IAM_BOT_PERMISSIONS_BOUNDARY to its ARN" in line and "IAM_BOT_ALLOW_UNBOUNDED=true to try the bot out" in line
    assert serving_problems(**READY, permissions_boundary=BOUNDARY) == []
    assert serving_problems(**READY, allow_unbounded=True) == []


def test_serving_users_at_the_root_path_is_refused_unless_trying_it_out() -> None:
    (line,) = serving_problems(**{**READY, "user_path_prefix": "/", "permissions_boundary": BOUNDARY})
    assert line.startswith("IAM_BOT_USER_PATH_PREFIX: / would let a compromised bot tag any existing user as its own")
    assert "such as /iam-bot/" in line and "IAM_BOT_ALLOW_UNBOUNDED=true to try the bot out" in line
    assert serving_problems(**{**READY, "user_path_prefix": "/", "permissions_boundary": BOUNDARY, "allow_unbounded": True}) == []


@pytest.mark.parametrize("raw,expected", [("true", True), ("1", True), ("false", False), ("", None)])
def test_allow_unbounded_reads_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool | None) -> None:
    monkeypatch.setenv("IAM_BOT_ALLOW_UNBOUNDED", raw)
    if expected is None:
        assert config_error() == ["IAM_BOT_ALLOW_UNBOUNDED: Input should be a valid boolean, unable to interpret input"]
    else:
        assert load_settings().allow_unbounded is expected


@pytest.mark.parametrize(
    "prefix,file_prefix,covered",
    [("/", "/", True), ("/iam-bot/", "/", True), ("/iam-bot/team/", "/iam-bot/", True), ("/", "/iam-bot/", False), ("/iam-bot/", "/prod/", False)],
)
def test_a_required_boundary_in_the_rules_file_covering_the_prefix_is_a_boundary(tmp_path, prefix: str, file_prefix: str, covered: bool) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(f'guardrails:\n  required_boundaries: {{"{file_prefix}": "{BOUNDARY}"}}\n')
    lines = [line for line in serving_problems(**{**READY, "rules_path": str(rules), "user_path_prefix": prefix}) if not line.startswith("IAM_BOT_USER_PATH_PREFIX")]
    assert lines == ([] if covered else [lines[0]]) and all(line.startswith("IAM_BOT_PERMISSIONS_BOUNDARY: not set") for line in lines)


def test_a_broken_rules_file_says_enough_without_the_boundary_line(tmp_path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("guardrails: {required_boundaries: {'/': 12}}\n")
    lines = serving_problems(**READY, rules_path=str(rules))
    assert [line.split(":", 1)[0] for line in lines] == ["IAM_BOT_RULES"]


# ---------------------------------------------------------------- database URLs

@pytest.mark.parametrize(
    "url,expected",
    [
        ("postgres://u:p@db:5432/iam", "postgresql+psycopg://u:p@db:5432/iam"),
        ("postgresql://u:p@db:5432/iam", "postgresql+psycopg://u:p@db:5432/iam"),
        ("postgresql+psycopg://u@db/iam", "postgresql+psycopg://u@db/iam"),
        ("sqlite:///iam-bot.db", "sqlite:///iam-bot.db"),
        ("sqlite:////var/lib/iam-bot.db", "sqlite:////var/lib/iam-bot.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected
    assert normalize_url(normalize_url(url)) == expected


def test_settings_class_is_the_one_load_settings_returns() -> None:
    assert isinstance(load_settings(), Settings)


# ---------------------------------------------------------------- IAM_BOT_RULES


def test_rules_file_must_exist(tmp_path) -> None:
    lines = config_error(rules_path=str(tmp_path / "nope.yml"))
    assert lines == [f"IAM_BOT_RULES: no such file: {tmp_path / 'nope.yml'} (a .yml, .yaml or .toml rules file)"]


def test_rules_file_errors_stop_serving_with_their_lines(tmp_path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: a\n    approvers: [U012ABCDEF]\n    quorum: 0\n")
    lines = serving_problems(**READY, rules_path=str(rules))
    assert lines == ["IAM_BOT_RULES: rules.yml:4: rules[0].quorum: must be a whole number from 1 to 10"]


def test_a_catch_all_rule_replaces_iam_bot_approvers(tmp_path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: admins\n    match: {policies: ['*Admin*']}\n    approvers: [U012ABCDEF]\n")
    base = dict(slack_bot_token="xoxb-1", slack_signing_secret="s", rules_path=str(rules), permissions_boundary=BOUNDARY, user_path_prefix="/iam-bot/")
    assert [line.split(":", 1)[0] for line in serving_problems(**base)] == ["IAM_BOT_APPROVERS"]
    rules.write_text("rules:\n  - name: everyone\n    approvers: [U012ABCDEF, S012SECOPS]\n")
    assert serving_problems(**base) == []
