"""The policy requiring MFA of the bot's users (bot/ops/mfa_policy.py, deploy/mfa-policy.json, `iam-bot policy --mfa`).

It is AWS's documented "manage their own MFA device" example, with the first password change
allowed: the deploy file stays the rendering, the command prints it without any settings, and
parliament and the Service Authorization Reference (as parliament ships it) find nothing wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.ops.deploy_policy import render_json
from bot.ops.mfa_policy import ALLOWED_WITHOUT_MFA, MFA_POLICY_NAME, render_mfa_policy

ROOT = Path(__file__).resolve().parents[2]
MFA_FILE = ROOT / "deploy" / "mfa-policy.json"
OWN_USER = "arn:aws:iam::*:user/${aws:username}"


def _statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in policy["Statement"] if s["Sid"] == sid]
    return found


def test_deploy_file_is_the_rendering() -> None:
    assert MFA_FILE.read_text() == render_json(render_mfa_policy()), "regenerate it: iam-bot policy --mfa > deploy/mfa-policy.json"


def test_the_policy_statement_by_statement() -> None:
    assert MFA_POLICY_NAME == "iam-bot-require-mfa"
    policy = render_mfa_policy()
    assert policy["Version"] == "2012-10-17"
    assert [s["Sid"] for s in policy["Statement"]] == [
        "AllowViewAccountInfo", "AllowManageOwnPasswords", "AllowManageOwnVirtualMFADevice", "AllowManageOwnUserMFA", "DenyAllExceptListedIfNoMFA",
    ]
    assert _statement(policy, "AllowViewAccountInfo") == {
        "Sid": "AllowViewAccountInfo", "Effect": "Allow", "Action": ["iam:GetAccountPasswordPolicy", "iam:ListVirtualMFADevices"], "Resource": "*",
    }
    assert _statement(policy, "AllowManageOwnPasswords")["Action"] == ["iam:ChangePassword", "iam:GetUser"]
    assert _statement(policy, "AllowManageOwnVirtualMFADevice")["Resource"] == "arn:aws:iam::*:mfa/*"
    assert _statement(policy, "AllowManageOwnUserMFA")["Action"] == [
        "iam:DeactivateMFADevice", "iam:EnableMFADevice", "iam:GetMFADevice", "iam:ListMFADevices", "iam:ResyncMFADevice",
    ]
    for sid in ("AllowManageOwnPasswords", "AllowManageOwnUserMFA"):
        assert _statement(policy, sid)["Resource"] == OWN_USER  # the signed-in user's own, nobody else's
    deny = _statement(policy, "DenyAllExceptListedIfNoMFA")
    assert deny == {
        "Sid": "DenyAllExceptListedIfNoMFA",
        "Effect": "Deny",
        "NotAction": list(ALLOWED_WITHOUT_MFA),
        "Resource": "*",
        # IfExists: a call with long-term access keys has no aws:MultiFactorAuthPresent, and is denied too.
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    }
    assert set(deny["NotAction"]) == {
        "iam:CreateVirtualMFADevice", "iam:EnableMFADevice", "iam:GetUser", "iam:GetMFADevice", "iam:ListMFADevices",
        "iam:ListVirtualMFADevices", "iam:ResyncMFADevice", "sts:GetSessionToken", "iam:ChangePassword", "iam:GetAccountPasswordPolicy",
    }


def test_without_mfa_a_user_can_change_its_first_password_and_enrol_but_never_remove_a_device() -> None:
    policy = render_mfa_policy()
    allowed = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}
    spared = set(_statement(policy, "DenyAllExceptListedIfNoMFA")["NotAction"])
    usable_without_mfa = allowed & spared
    assert {"iam:ChangePassword", "iam:GetAccountPasswordPolicy", "iam:CreateVirtualMFADevice", "iam:EnableMFADevice"} <= usable_without_mfa
    # Deactivating is allowed only once signed in with MFA (the Deny covers it); deleting a device, never.
    assert "iam:DeactivateMFADevice" in allowed - spared
    assert not {"iam:DeleteVirtualMFADevice", "iam:DeactivateMFADevice"} & spared
    assert "iam:DeleteVirtualMFADevice" not in allowed
    # Everything spared is either allowed here or needs no IAM permission (GetSessionToken).
    assert spared - allowed == {"sts:GetSessionToken"}


def test_another_partition() -> None:
    text = json.dumps(render_mfa_policy(partition="aws-us-gov"))
    assert "arn:aws-us-gov:iam::*:user/${aws:username}" in text and "arn:aws-us-gov:iam::*:mfa/*" in text
    assert "arn:aws:" not in text


def test_every_action_and_resource_type_is_in_the_service_authorization_reference() -> None:
    """Each action exists (NotAction too, which parliament does not check) and is authorized on the resource given."""
    import parliament

    definition = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    privileges = {f"{s['prefix']}:{p['privilege']}": p for s in definition if s["prefix"] in ("iam", "sts") for p in s["privileges"]}
    policy = render_mfa_policy()
    for s in policy["Statement"]:
        for action in s.get("Action", []) + s.get("NotAction", []):
            assert action in privileges, (s["Sid"], action)
            if s["Effect"] != "Allow":
                continue
            types = {rt["resource_type"].rstrip("*") for rt in privileges[action]["resource_types"]}
            if s["Resource"] == "*":
                assert "" in types, (s["Sid"], action, types)  # an action without a resource type
            else:
                kind = s["Resource"].split(":")[5].split("/")[0]  # user or mfa
                assert kind in types, (s["Sid"], action, types)


def test_parliament_finds_nothing() -> None:
    from parliament import analyze_policy_string

    findings = analyze_policy_string(MFA_FILE.read_text()).findings
    assert not findings, [(f.issue, f.detail, f.location) for f in findings]
    # The community auditors flag credential self-management by action name (they ignore the
    # user's-own-ARN resources): that is this policy's purpose; nothing else may show up.
    community = analyze_policy_string(MFA_FILE.read_text(), include_community_auditors=True).findings
    assert {f.issue for f in community} <= {"PERMISSIONS_MANAGEMENT_ACTIONS"}, [(f.issue, f.detail) for f in community]


# ---------------------------------------------------------------- `iam-bot policy --mfa`


def test_policy_mfa_prints_the_policy_without_any_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key in list(os.environ):
        if key.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL", "AWS_")):
            monkeypatch.delenv(key)
    # A setting that would stop `iam-bot policy`: --mfa never reads the settings.
    monkeypatch.setenv("IAM_BOT_USER_PATH_PREFIX", "not-a-path")
    assert main(["policy", "--mfa"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == render_mfa_policy()
    assert out.out == MFA_FILE.read_text() and out.err == ""
    assert main(["policy"]) == 2  # the same environment, without --mfa: the setting is read and refused
    assert "IAM_BOT_USER_PATH_PREFIX" in capsys.readouterr().err


def test_policy_mfa_as_an_operator_runs_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL", "AWS_"))}
    env["PYTHONPATH"] = str(ROOT)
    iam_bot = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
    result = subprocess.run(iam_bot + ["policy", "--mfa"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == render_mfa_policy()
    helped = subprocess.run(iam_bot + ["policy", "--help"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "--mfa" in helped.stdout and "MFA" in helped.stdout
