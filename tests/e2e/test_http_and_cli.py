"""The process as deployed: signed requests only, health, settings errors, `iam-bot serve` and `migrate`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from tests.support.harness import AUDIT_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.support.services import free_port
from bot.demo.slack_sender import SlackSender

IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def test_unsigned_wrongly_signed_and_replayed_requests_are_rejected(bot):
    body = b"command=%2Fiam&text=request&user_id=UREQUESTER1&trigger_id=1.2.3"
    form = "application/x-www-form-urlencoded"
    assert requests.post(bot.url + "/slack/events", data=body, headers={"Content-Type": form}, timeout=10).status_code == 401
    assert bot.slack.post(body, form, signature="v0=" + "0" * 64).status_code == 401
    assert bot.slack.post(body, form, timestamp=int(time.time()) - 6 * 60).status_code == 401
    other = SlackSender(bot.url, "another-secret")
    assert other.command("UREQUESTER1", "request").status_code == 401
    bot.settle()
    assert bot.standin.calls_to("views.open") == []


def test_healthz_reports_database_and_worker(bot):
    resp = requests.get(bot.url + "/healthz", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"ok": True, "database": "ok", "worker": "ok"}


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(IAM_BOT + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.update(extra)
    return env


def test_missing_and_malformed_settings_stop_start_up_with_one_line_each(tmp_path):
    result = _run(["serve"], _clean_env(), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "IAM_BOT_APPROVERS", "IAM_BOT_PERMISSIONS_BOUNDARY", "IAM_BOT_USER_PATH_PREFIX",
    ]
    assert "Traceback" not in result.stderr

    bad = _clean_env(SLACK_BOT_TOKEN="xoxp-user-token", IAM_BOT_ENCRYPTION_KEY="super-secret-not-a-key", IAM_BOT_APPROVERS="alice")
    result = _run(["serve"], bad, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "SLACK_BOT_TOKEN: must be a bot token" in result.stderr
    assert "IAM_BOT_ENCRYPTION_KEY: key #1 is not a Fernet key" in result.stderr
    assert "IAM_BOT_APPROVERS: not Slack user IDs: alice" in result.stderr
    assert "super-secret-not-a-key" not in result.stderr

    unreachable = _clean_env(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    result = _run(["migrate"], unreachable, tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("iam-bot: DATABASE_URL: cannot connect")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_bad_rules_file_stops_serve_with_its_line_numbers(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: admins\n    approvers: [U012ABCDEF]\n    quorum: 12\n    auto_aprove: true\n")
    env = _clean_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, IAM_BOT_RULES=str(rules), IAM_BOT_USER_PATH_PREFIX="/iam-bot/")
    result = _run(["serve"], env, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "iam-bot: IAM_BOT_RULES: rules.yml:5: rules[0].auto_aprove: unknown key (expected one of: name, match, approvers, quorum, auto_approve)",
        "iam-bot: IAM_BOT_RULES: rules.yml:4: rules[0].quorum: must be a whole number from 1 to 10",
    ]


def test_serve_refuses_to_start_without_a_permissions_boundary(tmp_path):
    """One line naming the setting and the fix; IAM_BOT_ALLOW_UNBOUNDED=true is the only way round it."""
    env = _clean_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        IAM_BOT_APPROVERS="UAPPROVER1",
        IAM_BOT_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        IAM_BOT_AUDIT_KEY=AUDIT_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        IAM_BOT_USER_PATH_PREFIX="/iam-bot/",
    )
    result = _run(["serve"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("iam-bot: IAM_BOT_PERMISSIONS_BOUNDARY: not set, and no required_boundaries entry of IAM_BOT_RULES covers IAM_BOT_USER_PATH_PREFIX (/iam-bot/)")
    assert "set IAM_BOT_PERMISSIONS_BOUNDARY to its ARN" in line and "IAM_BOT_ALLOW_UNBOUNDED=true" in line
    assert not (tmp_path / "bot.db").exists()  # refused before anything was touched

    # A rules file whose required boundary covers the path prefix is a boundary too (no signing secret:
    # serve stops at its check either way, and says which lines it has).
    rules = tmp_path / "rules.yml"
    rules.write_text('guardrails:\n  required_boundaries: {"/iam-bot/": "arn:aws:iam::123456789012:policy/b"}\n')
    unsigned = {k: v for k, v in env.items() if k != "SLACK_SIGNING_SECRET"} | {"IAM_BOT_RULES": str(rules)}
    deeper = _run(["serve"], {**unsigned, "IAM_BOT_USER_PATH_PREFIX": "/iam-bot/team/"}, tmp_path)
    assert [line.split(":")[1].strip() for line in deeper.stderr.strip().splitlines()] == ["SLACK_SIGNING_SECRET"]
    elsewhere = _run(["serve"], {**unsigned, "IAM_BOT_USER_PATH_PREFIX": "/"}, tmp_path)
    # At the root path the prefix itself is refused too: a stolen bot could tag any user as its own.
    assert [line.split(":")[1].strip() for line in elsewhere.stderr.strip().splitlines()] == [
        "SLACK_SIGNING_SECRET", "IAM_BOT_PERMISSIONS_BOUNDARY", "IAM_BOT_USER_PATH_PREFIX",
    ]
    trying = _run(["serve"], {**unsigned, "IAM_BOT_USER_PATH_PREFIX": "/", "IAM_BOT_ALLOW_UNBOUNDED": "true"}, tmp_path)
    assert [line.split(":")[1].strip() for line in trying.stderr.strip().splitlines()] == ["SLACK_SIGNING_SECRET"]
    assert not (tmp_path / "bot.db").exists()


def test_serve_over_http_then_sigterm(tmp_path, standin, moto, iam):
    port = free_port()
    boundary = iam.create_policy(PolicyName="serve-boundary", PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}')["Policy"]["Arn"]
    env = _clean_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=standin.url,
        IAM_BOT_APPROVERS="UAPPROVER1",
        IAM_BOT_PERMISSIONS_BOUNDARY=boundary,
        IAM_BOT_USER_PATH_PREFIX="/iam-bot/",
        IAM_BOT_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        IAM_BOT_AUDIT_KEY=AUDIT_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        PORT=str(port),
    )
    assert _run(["migrate"], env, tmp_path).returncode == 0
    proc = subprocess.Popen(IAM_BOT + ["serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError("iam-bot serve did not become healthy")
        resp = SlackSender(base, SIGNING_SECRET, response_url_base=standin.hooks_url).command("UREQUESTER1", "request")
        assert resp.status_code == 200
        view = standin.wait_for("views.open").args["view"]
        assert view["callback_id"] == "iam_request"
        (block,) = [b for b in view["blocks"] if b.get("block_id") == "boundary"]
        assert block["element"]["initial_option"]["value"] == boundary  # the form fills in the boundary it requires
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.stdout.read() if proc.stdout else ""
    assert "Traceback" not in output


def test_a_broken_database_is_reported_to_the_user_not_swallowed(tmp_path, standin, moto, iam):
    from sqlalchemy import text

    from tests.support.harness import RunningBot
    from tests.support.journeys import REQUESTER, form_values, open_request_modal

    bot = RunningBot(database_url=f"sqlite:///{tmp_path / 'bot.db'}", standin=standin, moto_url=moto.url).start()
    try:
        view = open_request_modal(bot)
        with bot.deps.engine.begin() as c:
            c.execute(text("DROP TABLE request_drafts"))  # a real fault, not a mock
        bot.slack.view_submission(REQUESTER, view, form_values())
        notice = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1")
        assert "went wrong on the bot's side" in notice.args["text"]
        assert "Traceback" not in standin.all_text()
        assert "OperationalError" in bot.logs.text()  # the operator sees the cause
    finally:
        bot.stop()


def test_serve_in_socket_mode(tmp_path, standin, moto, iam):
    from tests.support.socket_mode_server import SocketModeServer

    ws = SocketModeServer()
    standin.socket_mode_url = ws.url
    env = _clean_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=standin.app_token,  # no signing secret needed in Socket Mode
        SLACK_API_URL=standin.url,
        IAM_BOT_APPROVERS="UAPPROVER1",
        IAM_BOT_ALLOW_UNBOUNDED="true",  # trying it out: no boundary
        IAM_BOT_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        IAM_BOT_AUDIT_KEY=AUDIT_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    proc = subprocess.Popen(IAM_BOT + ["serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ws.wait_connected()
        envelope = ws.send(
            "slash_commands",
            {
                "command": "/iam",
                "text": "request",
                "user_id": "UREQUESTER1",
                "channel_id": "C0GENERAL",
                "team_id": "T0TEST",
                "trigger_id": "1.2.socket",
                "response_url": standin.hooks_url + "commands/1",
            },
        )
        ws.wait_ack(envelope)
        assert standin.wait_for("views.open").args["trigger_id"] == "1.2.socket"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.stdout.read() if proc.stdout else ""
        ws.stop()
        standin.socket_mode_url = None
    assert "Traceback" not in output
