"""`make run`, the README's first command: the demo without Slack settings, the bot with them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("token", "command"), [(None, ".venv/bin/iam-bot demo"), ("", ".venv/bin/iam-bot demo"), ("xoxb-1", ".venv/bin/iam-bot serve")])
def test_make_run_chooses_demo_or_serve(token: str | None, command: str) -> None:
    # Not MAKEFLAGS/MAKELEVEL either: under `make test` a nested make would print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("SLACK_BOT_TOKEN", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    if token is not None:
        env["SLACK_BOT_TOKEN"] = token
    planned = subprocess.run(["make", "--no-print-directory", "-n", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert planned.stdout.strip().splitlines()[-1] == command
