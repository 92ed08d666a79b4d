"""`iam-bot demo` as a newcomer runs it: no Slack, no AWS, no settings; every step shown and verified."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bot.demo.render import MASK

IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
STEPS = [
    "1. @alice runs /iam request in #general",
    "2. @alice searches the Groups and Managed policies lists",
    "3. @alice fills in the form and presses Review",
    "4. @alice presses Submit request",
    "5. @bob presses Approve",
    "6. iam-bot creates the user in IAM and DMs @alice",
    "7. @alice presses Reveal credentials",
    "8. @alice presses Reveal credentials again",
    "9. @alice DMs the bot: status",
]
# An AWS secret access key: 40 characters of base64's alphabet, standing alone.
SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _clean_env(**extra: str) -> dict[str, str]:
    """What a newcomer's shell has: none of our settings, no AWS credentials or endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "AWS_", "DATABASE_URL", "LOG_LEVEL"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.update(extra)
    return env


def test_demo_runs_the_whole_journey_and_shows_no_secret(tmp_path: Path) -> None:
    result = subprocess.run(IAM_BOT + ["demo"], env=_clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for step in STEPS:
        assert re.search(rf"── {re.escape(step)} ─+ +\d+ ms\n", out), f"step not shown with its time: {step}"
    assert "FAILED" not in out and "✗" not in out and "Traceback" not in out + result.stderr
    assert out.count("✓") >= 25
    assert "All 9 steps happened and were verified" in out
    assert 'To connect a real workspace: create the Slack app (README.md, "Set up the Slack app")' in out
    # What each person sees, Block Kit as text.
    assert "[ Approve ] [ Deny ]" in out and "[ Reveal credentials ]" in out and "└─ [ Cancel ] [ Review ]" in out
    # The reveal modal really held both secrets, and the transcript masks them, CSV included.
    assert f"│ *Password*\n    │     {MASK}\n" in out
    assert f"│ *Secret access key*\n    │     {MASK}\n" in out
    assert re.search(rf"alice\.dev,{MASK},AKIA[A-Z0-9]{{16}},{MASK},https://", out)
    assert SECRET_LIKE.findall(out + result.stderr) == []
    # Nothing is left behind where it ran.
    assert list(tmp_path.iterdir()) == []


def test_demo_ignores_the_callers_aws_and_bot_settings(tmp_path: Path) -> None:
    """A real profile, endpoint or approver list in the caller's shell must change nothing."""
    env = _clean_env(
        AWS_PROFILE="production",
        AWS_ENDPOINT_URL="https://iam.amazonaws.com",
        AWS_ENDPOINT_URL_IAM="https://iam.amazonaws.com",
        AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true",
        AWS_ACCESS_KEY_ID="AKIAREALLOOKINGKEY00",
        IAM_BOT_APPROVERS="UREAL0001",
        IAM_BOT_APPROVAL_CHANNEL="CREAL0001",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
    )
    result = subprocess.run(IAM_BOT + ["demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "@bob gets a DM (DBOB)" in result.stdout and "127.0.0.1" in result.stdout


def test_demo_logs_are_json_lines_with_ids_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    result = subprocess.run(IAM_BOT + ["demo"], env=_clean_env(LOG_LEVEL="DEBUG"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    entries = [json.loads(line) for line in lines]  # every line, from every library, is JSON
    slack = [e for e in entries if e["logger"] == "bot.slack"]
    assert len(slack) >= 8 and all(e["team"] == "T0TEST" and e["user"] in ("UALICE", "UBOB") for e in slack)
    approve = next(e for e in slack if e["slack"] == "action approve_request")
    assert approve["user"] == "UBOB" and approve["channel"] == "DBOB" and re.fullmatch(r"R[0-9A-Z]{6}", approve["request"])
    worker = [e for e in entries if e.get("job")]
    assert worker and all(e["request"] == approve["request"] for e in worker)
    assert SECRET_LIKE.findall(result.stderr) == []
    assert not any(e["logger"].startswith(("botocore", "urllib3", "werkzeug", "moto")) and e["level"] == "DEBUG" for e in entries)
