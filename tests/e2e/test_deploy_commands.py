"""Deployment commands as an operator runs them: `iam-bot policy`, and the Dockerfile's own health check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.ops.deploy_policy import render_json, render_policy
from tests.support.services import free_port
from tests.unit.test_dockerfile import args_of

ROOT = Path(__file__).resolve().parents[2]
IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL", "PORT"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def test_policy_command_prints_the_deploy_file_for_the_documented_example(tmp_path: Path) -> None:
    env = _env(IAM_BOT_USER_PATH_PREFIX="/iam-bot/", IAM_BOT_PERMISSIONS_BOUNDARY="arn:aws:iam::123456789012:policy/iam-bot-boundary")
    result = subprocess.run(IAM_BOT + ["policy"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "deploy" / "iam-policy.json").read_text()
    assert "IAM_BOT_PERMISSIONS_BOUNDARY is not set" not in result.stderr


def test_policy_command_without_a_boundary_warns_it_cannot_stop_an_admin_grant(tmp_path: Path) -> None:
    result = subprocess.run(IAM_BOT + ["policy", "--account", "210987654321"], env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    policy = json.loads(result.stdout)
    assert result.stdout == render_json(render_policy(account="210987654321"))
    assert "iam:PermissionsBoundary" not in result.stdout  # no boundary to hold the bot to, only its marker
    assert {s["Sid"] for s in policy["Statement"] if s["Effect"] == "Deny"} == {"DenyMarkerRemoval", "DenyMarkerChange"}
    assert "iam-bot: warning: IAM_BOT_PERMISSIONS_BOUNDARY is not set" in result.stderr
    assert "cannot stop it from attaching AdministratorAccess" in result.stderr
    assert "IAM_BOT_USER_PATH_PREFIX is /" in result.stderr

    bad = subprocess.run(IAM_BOT + ["policy", "--account", "12"], env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("iam-bot: --account:") and "Traceback" not in bad.stderr


def test_policy_command_follows_the_rules_file(tmp_path: Path) -> None:
    """The rules file's required boundaries, allowed tag keys and allowed groups are in the printed policy."""
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "guardrails:\n"
        '  required_boundaries: {"/iam-bot/": "arn:aws:iam::123456789012:policy/iam-bot-boundary"}\n'
        '  allowed_tag_keys: ["team", "cost-*"]\n'
        '  allowed_groups: ["developers", "read-*"]\n'
    )
    env = _env(IAM_BOT_USER_PATH_PREFIX="/iam-bot/", IAM_BOT_RULES=str(rules))
    result = subprocess.run(IAM_BOT + ["policy"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == render_json(
        render_policy(
            account="123456789012",  # the boundary's
            path_prefix="/iam-bot/",
            required_boundaries=(("/iam-bot/", "arn:aws:iam::123456789012:policy/iam-bot-boundary"),),
            allowed_tag_keys=("team", "cost-*"),
            allowed_groups=("developers", "read-*"),
        )
    )
    policy = json.loads(result.stdout)
    (groups,) = [s for s in policy["Statement"] if "iam:AddUserToGroup" in s["Action"]]
    assert groups["Resource"] == [
        "arn:aws:iam::123456789012:group/developers",
        "arn:aws:iam::123456789012:group/*/developers",
        "arn:aws:iam::123456789012:group/read-*",
        "arn:aws:iam::123456789012:group/*/read-*",
    ]
    assert result.stderr == ""  # bounded, a dedicated prefix, groups listed: nothing left to warn about

    rules.write_text("guardrails:\n  allowed_groups: ['admins[0]']\n")
    bad = subprocess.run(IAM_BOT + ["policy"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "IAM_BOT_RULES: rules.yml:2: guardrails.allowed_groups[0]" in bad.stderr and "Traceback" not in bad.stderr


def _healthcheck() -> list[str]:
    (check,) = args_of("HEALTHCHECK")
    return json.loads(check.split("CMD", 1)[1].strip())


def test_the_images_health_check_command_against_a_running_bot(bot) -> None:
    cmd = [sys.executable if c == "python" else c for c in _healthcheck()]
    port = bot.url.rsplit(":", 1)[1]
    healthy = subprocess.run(cmd, env=_env(PORT=port), capture_output=True, text=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr

    nothing_there = subprocess.run(cmd, env=_env(PORT=str(free_port())), capture_output=True, text=True, timeout=30)
    assert nothing_there.returncode != 0

    bot.deps.worker.stop(timeout=5)  # /healthz answers 503 when the worker is gone
    unhealthy = subprocess.run(cmd, env=_env(PORT=port), capture_output=True, text=True, timeout=30)
    assert unhealthy.returncode != 0 and "503" in unhealthy.stderr
