"""The doctor's pure parts: how it reads the IAM simulator's answers, which ARN it simulates, its scopes."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.ops.deploy_policy import ACTIONS, Scope
from bot.slack.scopes import BOT_SCOPES
from bot.common.constants import MARKER_TAG
from bot.ops.deploy_policy import REQUEST_MARKER, RESOURCE_MARKER
from bot.ops.doctor import PROBE, Result, containment_probes, judge_contained, judge_permissions, principal_for, probes

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
    own = f"arn:aws:iam::123456789012:user/iam-bot/{PROBE}"
    creating = {REQUEST_MARKER: PROBE, "aws:TagKeys": [MARKER_TAG]}
    # As the bot calls them: CreateUser with its marker and the boundary, writes on users carrying the marker.
    assert by_action["iam:CreateUser"] == (own, {**creating, "iam:PermissionsBoundary": BOUNDARY})
    assert by_action["iam:TagUser"] == (own, creating)
    assert by_action["iam:CreateAccessKey"] == (own, {RESOURCE_MARKER: PROBE})
    assert by_action["iam:AttachUserPolicy"] == (own, {RESOURCE_MARKER: PROBE, "iam:PermissionsBoundary": BOUNDARY})
    assert by_action["iam:GetUser"] == (f"arn:aws:iam::123456789012:user/{PROBE}", {})
    assert by_action["iam:ListUsers"] == ("*", {})
    assert by_action["iam:AddUserToGroup"][0] == f"arn:aws:iam::123456789012:group/{PROBE}"
    assert by_action["iam:SimulatePrincipalPolicy"][0] == "arn:aws:iam::123456789012:role/r"
    unbounded = probes(partition="aws", account="1", prefix="/", boundary=None, principal="p")
    assert all("iam:PermissionsBoundary" not in context for _, _, context in unbounded)
    assert {s for s in ACTIONS.values()} <= set(Scope)
    # With an allowlist, membership is asked on an allowed group; with an empty one it is not needed at all.
    listed = probes(partition="aws", account="1", prefix="/", boundary=None, principal="p", allowed_groups=("read-*",))
    assert {a: r for actions, r, _ in listed for a in actions}["iam:AddUserToGroup"] == "arn:aws:iam::1:group/read-x"
    none = probes(partition="aws", account="1", prefix="/", boundary=None, principal="p", allowed_groups=())
    assert "iam:AddUserToGroup" not in [a for actions, _, _ in none for a in actions]


def test_containment_probes_are_what_a_compromised_bot_must_not_do() -> None:
    strict = containment_probes(partition="aws", account="1", prefix="/iam-bot/", boundary=BOUNDARY, allowed_tag_keys=("team",), allowed_groups=("devs",))
    by_label = {label: (action, resource, context) for label, action, resource, context in strict}
    assert by_label["an access key for a user it did not create"] == ("iam:CreateAccessKey", f"arn:aws:iam::1:user/iam-bot/{PROBE}", {})
    assert by_label["a user without the permissions boundary"] == ("iam:CreateUser", f"arn:aws:iam::1:user/iam-bot/{PROBE}", {REQUEST_MARKER: PROBE, "aws:TagKeys": [MARKER_TAG]})
    assert by_label["an access key for a user outside its path prefix"][1] == f"arn:aws:iam::1:user/{PROBE}"
    assert by_label["a group outside allowed_groups"] == ("iam:AddUserToGroup", f"arn:aws:iam::1:group/{PROBE}", {})
    assert by_label["changing the marker of a user it created"][2][RESOURCE_MARKER] == PROBE
    assert "iam-bot-doctor:not-allowed" in by_label["a tag key outside allowed_tag_keys"][2]["aws:TagKeys"]
    loose = {label for label, *_ in containment_probes(partition="aws", account="1", prefix="/", boundary=None)}
    assert loose == {
        "an access key for a user it did not create",
        "a new password for a user it did not create",
        "a policy for a user it did not create",
        "deleting a user it did not create",
        "a user without its marker tag",
        "changing the marker of a user it created",
        "removing the marker of a user it created",
    }
    # An allowlist glob that matches the probe group itself cannot be probed with it.
    assert "a group outside allowed_groups" not in {label for label, *_ in containment_probes(partition="aws", account="1", prefix="/", boundary=None, allowed_groups=("*",))}


def test_judge_permissions() -> None:
    allowed = {a: "allowed" for a in ACTIONS}
    contained = {"an access key for a user it did not create": "implicitDeny", "a user without the permissions boundary": "explicitDeny"}
    assert judge_permissions(allowed, contained).status == "ok"
    assert judge_permissions(allowed).status == "ok"

    denied = {**allowed, "iam:CreateUser": "implicitDeny", "iam:AttachUserPolicy": "explicitDeny"}
    result = judge_permissions(denied, contained)
    assert result.status == "fail"
    assert result.found == "not allowed: iam:AttachUserPolicy, iam:CreateUser"
    assert "iam-bot policy" in result.fix

    loose = judge_permissions(allowed, {**contained, "a user without the permissions boundary": "allowed"})
    assert loose.status == "warn" and loose.found.endswith("but so is a user without the permissions boundary")


def test_judge_contained() -> None:
    """The rendered policy, as IAM's simulator answered about it: what the bot needs allowed, a takeover denied."""
    allowed = {a: "allowed" for a in ACTIONS}
    contained = {"an access key for a user it did not create": "implicitDeny", "changing the marker of a user it created": "explicitDeny"}
    good = judge_contained(allowed, contained)
    assert good.status == "ok" and good.name == "contained policy"
    assert good.found == (
        f"IAM's simulator allows the {len(ACTIONS)} actions the bot uses and denies "
        "an access key for a user it did not create; changing the marker of a user it created"
    )
    short = judge_contained({**allowed, "iam:TagUser": "implicitDeny"}, contained)
    assert short.status == "fail" and "does not allow iam:TagUser" in short.found
    leaky = judge_contained(allowed, {**contained, "an access key for a user it did not create": "allowed"})
    assert leaky.status == "fail" and leaky.found == "IAM's simulator says the rendered policy allows an access key for a user it did not create"


def test_result_line() -> None:
    assert Result("database", "ok", "reachable").line() == "OK    database: reachable"
    assert Result("approvers", "fail", "not set", "set them").line() == "FAIL  approvers: not set. Fix: set them"
