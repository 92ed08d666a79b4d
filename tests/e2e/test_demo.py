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
    "10. @carol registers her age public key: /iam key set",
    "11. @alice asks for an IAM user owned by @carol",
    "12. @bob presses Approve on @carol's user",
    "13. iam-bot creates the user and sends @carol an encrypted file",
    "14. @carol decrypts the file with her own key",
]
# An AWS secret access key: 40 characters of base64's alphabet, standing alone.
SECRET_LIKE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
# An age identity (the private half of @carol's key): bech32 after the prefix; "AGE-SECRET-KEY-1…" alone is only named.
AGE_IDENTITY = re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{20,}")


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
    assert out.count("✓") >= 50
    assert "All 14 steps happened and were verified" in out
    assert 'To connect a real workspace: create the Slack app (README.md, "Set up the Slack app")' in out
    # What each person sees, Block Kit as text.
    assert "[ Approve ] [ Deny ]" in out and "[ Reveal credentials ]" in out and "└─ [ Cancel ] [ Review ]" in out
    # The reveal modal really held both secrets, and the transcript masks them, CSV included.
    assert f"│ *Password*\n    │     {MASK}\n" in out
    assert f"│ *Secret access key*\n    │     {MASK}\n" in out
    assert re.search(rf"alice\.dev,{MASK},AKIA[A-Z0-9]{{16}},{MASK},https://", out)
    assert SECRET_LIKE.findall(out + result.stderr) == []
    # @carol's credentials travel the other way: a file encrypted to her key, opened with it, masked here too.
    assert re.search(r"/iam key set age1[0-9a-z]{58}\n", out)
    assert re.search(r"✓ the answer names the key by its fingerprint, age1[0-9a-z]{8}…[0-9a-z]{6}\n", out)
    assert re.search(r"📎 carol\.dev-credentials\.csv\.age  \(\d+ bytes\)\n", out)
    assert "    age -d -i key.txt carol.dev-credentials.csv.age  # key.txt" in out  # the command, as the DM shows it
    assert "$ age -d -i key.txt carol.dev-credentials.csv.age\n    User name,Password,Access key ID,Secret access key,Console login link\n" in out
    assert re.search(rf"\n    carol\.dev,{MASK},AKIA[A-Z0-9]{{16}},{MASK},https://\d+\.signin\.aws\.amazon\.com/console\n", out)
    for check in (
        "✓ once Slack confirmed the file, the sealed credentials are destroyed: no row is left in the database",
        "✓ the audit trail records one delivery, as an encrypted file",
        "✓ no Reveal button was sent: the file is the only way they travel",
        "is the user's only key in IAM",
        "✓ any other key fails to open it",
        "✓ Slack saw ciphertext only: neither secret is in the message, the upload calls or the uploaded bytes",
    ):
        assert check in out, check
    assert out.count("[ Reveal credentials ]") == 1  # alice's DM only
    assert AGE_IDENTITY.findall(out + result.stderr) == []
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
    assert len(slack) >= 8 and all(e["team"] == "T0TEST" and e["user"] in ("UALICE", "UBOB", "UCAROL") for e in slack)
    approves = [e for e in slack if e["slack"] == "action approve_request"]
    assert len(approves) == 2  # @alice's user, then @carol's
    for approve in approves:
        assert approve["user"] == "UBOB" and approve["channel"] == "DBOB" and re.fullmatch(r"R[0-9A-Z]{6}", approve["request"])
    assert any(e["slack"] == "command /iam" and e["user"] == "UCAROL" for e in slack)  # /iam key set
    worker = [e for e in entries if e.get("job")]
    assert worker and {e["request"] for e in worker} == {a["request"] for a in approves}
    assert AGE_IDENTITY.findall(result.stderr) == []
    assert SECRET_LIKE.findall(result.stderr) == []
    assert not any(e["logger"].startswith(("botocore", "urllib3", "werkzeug", "moto")) and e["level"] == "DEBUG" for e in entries)
