"""The doctor's pure parts: how it reads the IAM simulator's answers, which ARN it simulates, its scopes."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.ops.deploy_policy import ACTIONS, Scope
from bot.slack.scopes import BOT_SCOPES
from bot.ops.doctor import PROBE, Result, judge_permissions, principal_for, probes

ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = "arn:aws:iam::123456789012:policy/b"


def test_required_scopes_are_the_manifests() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yml").read_text())
    assert sorted(BOT_SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])


def test_principal_for_each_kind_of_caller() -> None:
    assert principal_for("arn:aws:iam::123456789012:user/ops/iam-bot") == "arn:aws:iam::123456789012:user/ops/iam-bot"
    assert principal_for("arn:aws:sts::123456789012:assumed-role/iam-bot-task/abc123") == "arn:aws:iam::123456789012:role/iam-bot-task"
    assert principal_for("arn:aws-us-gov:sts::123456789012:assumed-role/r/s") == "arn:aws-us-gov:iam::123456789012:role/r"
    assert principal_for("arn:aws:sts::123456789012:user/moto") == "arn:aws:iam::123456789012:user/moto"
    assert principal_for("arn:aws:iam::123456789012:root") is None
    assert principal_for("arn:aws:sts::123456789012:federated-user/bob") is None
    assert principal_for("nonsense") is None


def test_probes_cover_every_action_once_on_a_resource_of_its_scope() -> None:
    found = probes(partition="aws", account="123456789012", prefix="/iam-bot/", boundary=BOUNDARY, principal="arn:aws:iam::123456789012:role/r")
    seen = [a for actions, _, _ in found for a in actions]
    assert sorted(seen) == sorted(ACTIONS) and len(seen) == len(set(seen))
    by_action = {a: (resource, context) for actions, resource, context in found for a in actions}
    assert by_action["iam:CreateUser"] == (f"arn:aws:iam::123456789012:user/iam-bot/{PROBE}", {"iam:PermissionsBoundary": BOUNDARY})
    assert by_action["iam:CreateAccessKey"] == (f"arn:aws:iam::123456789012:user/iam-bot/{PROBE}", {})
    assert by_action["iam:GetUser"] == (f"arn:aws:iam::123456789012:user/{PROBE}", {})
    assert by_action["iam:ListUsers"] == ("*", {})
    assert by_action["iam:AddUserToGroup"][0] == f"arn:aws:iam::123456789012:group/{PROBE}"
    assert by_action["iam:SimulatePrincipalPolicy"][0] == "arn:aws:iam::123456789012:role/r"
    unbounded = probes(partition="aws", account="1", prefix="/", boundary=None, principal="p")
    assert all(context == {} for _, _, context in unbounded)
    assert {s for s in ACTIONS.values()} <= set(Scope)


def test_judge_permissions() -> None:
    allowed = {a: "allowed" for a in ACTIONS}
    assert judge_permissions(allowed, unbounded_create="implicitDeny", boundary=BOUNDARY).status == "ok"
    assert judge_permissions(allowed, unbounded_create=None, boundary=None).status == "ok"

    denied = {**allowed, "iam:CreateUser": "implicitDeny", "iam:AttachUserPolicy": "explicitDeny"}
    result = judge_permissions(denied, unbounded_create=None, boundary=BOUNDARY)
    assert result.status == "fail"
    assert result.found == "not allowed: iam:AttachUserPolicy, iam:CreateUser"
    assert "iam-bot policy" in result.fix

    loose = judge_permissions(allowed, unbounded_create="allowed", boundary=BOUNDARY)
    assert loose.status == "warn" and "without the boundary" in loose.found


def test_result_line() -> None:
    assert Result("database", "ok", "reachable").line() == "OK    database: reachable"
    assert Result("approvers", "fail", "not set", "set them").line() == "FAIL  approvers: not set. Fix: set them"
