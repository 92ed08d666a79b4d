"""The bot's IAM policy (bot/ops/deploy_policy.py, deploy/iam-policy.json) and the Slack manifest stay in step with the code.

The IAM policy must allow every AWS call bot/iam/gateway.py makes and nothing else, confined and bounded as
the README's security model says, and pass parliament's lint; the Slack manifest must grant the
scopes for every Web API method and event the bot uses and nothing else. Both lists are read from
the source with `ast`, so a new call without a deploy change fails here, not in production.
"""

from __future__ import annotations

import ast
import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import yaml
from botocore import xform_name
from slack_sdk import WebClient

from bot.ops import deploy_policy
from bot.ops.deploy_policy import ACTIONS, Scope, render_json, render_policy

ROOT = Path(__file__).resolve().parents[2]
AWS_MODULE = ROOT / "bot" / "iam" / "gateway.py"
POLICY_FILE = ROOT / "deploy" / "iam-policy.json"
MANIFEST_FILE = ROOT / "deploy" / "slack-app-manifest.yml"

# ---------------------------------------------------------------------------------------------
# AWS side
# ---------------------------------------------------------------------------------------------

# Documented by AWS as needing no permission (and an explicit Deny does not stop it).
NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity"}
# Actions AWS authorizes in addition to the one named by the API call, given how the code calls it.
# CreateUser is always called with Tags (the request marker), and tag-on-create is authorized as
# iam:TagUser as well (IAM User Guide, "IAM: Create new users only with specific tags").
DEPENDENT_ACTIONS = {"iam:CreateUser": {"iam:TagUser"}}
# Account-wide actions named like writes that the Service Authorization Reference classes as Read:
# generating the credential report changes no identity.
READS_NAMED_LIKE_WRITES = {"iam:GenerateCredentialReport"}
# Writes IAM authorizes on something no user path or marker can narrow, each with the one resource it
# is allowed on: a virtual MFA device is named by the user who enrols it (bot/ops/deploy_policy.py).
UNCONFINABLE_WRITES = {"iam:DeleteVirtualMFADevice": ":mfa/*"}
# Attributes of a boto3 client that are not API operations.
CLIENT_HELPERS = {"get_paginator", "get_waiter", "can_paginate", "meta", "exceptions", "close"}

EXAMPLE = {
    "account": deploy_policy.EXAMPLE_ACCOUNT,
    "path_prefix": deploy_policy.EXAMPLE_PATH_PREFIX,
    "boundary_arn": deploy_policy.EXAMPLE_BOUNDARY,
}
# Settings the policy is rendered for: the documented example, no boundary, the default prefix,
# an AWS managed policy as the boundary, and GovCloud.
RENDERINGS = {
    "example": EXAMPLE,
    "no-boundary": {"account": "*", "path_prefix": "/iam-bot/", "boundary_arn": None},
    "defaults": {},
    "aws-managed-boundary": {"account": "*", "path_prefix": "/team/a/", "boundary_arn": "arn:aws:iam::aws:policy/PowerUserAccess"},
    "govcloud": {"account": "*", "path_prefix": "/iam-bot/", "boundary_arn": "arn:aws-us-gov:iam::123456789012:policy/b"},
}


def _self_attr(node: ast.AST) -> str | None:
    """'x' for the expression `self.x`, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _boto_clients(tree: ast.AST) -> dict[str, str]:
    """{attribute name: service} for every `self.<attr> = <session>.client("<service>", ...)`."""
    clients: dict[str, str] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        func = node.value.func
        if not (isinstance(func, ast.Attribute) and func.attr == "client" and node.value.args):
            continue
        service = node.value.args[0]
        if not (isinstance(service, ast.Constant) and isinstance(service.value, str)):
            continue
        for target in node.targets:
            attr = _self_attr(target)
            if attr:
                clients[attr] = service.value
    return clients


def _client_uses(tree: ast.AST, clients: dict[str, str]) -> Iterator[tuple[str, str, int]]:
    """(service, attribute, line) for every attribute taken from a client or a local alias of one.

    Attribute references count, not only calls: the code passes bound methods to `_call(...)`.
    `get_paginator("op")` yields the paginated operation.
    """
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        aliases: dict[str, str] = {}  # `iam = self.iam` inside a function
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and _self_attr(node.value) in clients:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        aliases[target.id] = clients[_self_attr(node.value)]  # type: ignore[index]

        def service_of(expr: ast.AST) -> str | None:
            attr = _self_attr(expr)
            if attr is not None:
                return clients.get(attr)
            if isinstance(expr, ast.Name):
                return aliases.get(expr.id)
            return None

        for node in ast.walk(func):
            if not isinstance(node, ast.Attribute):
                continue
            service = service_of(node.value)
            if service is None:
                continue
            yield service, node.attr, node.lineno
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_paginator"
                and service_of(node.func.value)
            ):
                arg = node.args[0] if node.args else None
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"bot/iam/gateway.py:{node.lineno}: get_paginator needs a literal operation name for this test"
                )
                yield service_of(node.func.value), arg.value, node.lineno  # type: ignore[misc]


def _operation_names(service: str) -> dict[str, str]:
    """{snake_case method: OperationName} from botocore's own model (no network)."""
    client = boto3.session.Session().client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return {xform_name(op): op for op in client.meta.service_model.operation_names}


@pytest.fixture(scope="module")
def code_actions() -> set[str]:
    tree = ast.parse(AWS_MODULE.read_text(), filename=str(AWS_MODULE))
    clients = _boto_clients(tree)
    assert {"iam", "_quick", "_sts"} <= set(clients), f"client attributes not found in bot/iam/gateway.py: {clients}"
    models: dict[str, dict[str, str]] = {}
    actions: set[str] = set()
    unknown: list[str] = []
    for service, attr, line in _client_uses(tree, clients):
        if attr in CLIENT_HELPERS:
            continue
        ops = models.setdefault(service, _operation_names(service))
        if attr not in ops:
            unknown.append(f"bot/iam/gateway.py:{line}: {service}.{attr}")
            continue
        actions.add(f"{service}:{ops[attr]}")
    assert not unknown, "not boto3 operations: " + ", ".join(unknown)
    # Sanity: the collector sees the calls it is meant to see.
    assert {"iam:CreateUser", "iam:ListGroups", "iam:ListGroupsForUser", "sts:GetCallerIdentity"} <= actions
    return actions


@pytest.fixture(scope="module", params=sorted(RENDERINGS))
def rendering(request: pytest.FixtureRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, rendered policy) for each configuration in RENDERINGS."""
    kwargs = RENDERINGS[request.param]
    return kwargs, render_policy(**kwargs)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _statements(policy: dict[str, Any], effect: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if s.get("Effect") == effect]


def _granting(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [
        s for s in _statements(policy, "Allow") if any(fnmatchcase(action.lower(), a.lower()) for a in _as_list(s["Action"]))
    ]


def _granted_actions(policy: dict[str, Any]) -> set[str]:
    return {a for s in _statements(policy, "Allow") for a in _as_list(s.get("Action", []))}


def test_deploy_file_is_the_rendered_example() -> None:
    """deploy/iam-policy.json is `iam-bot policy` for the README's example settings, byte for byte."""
    assert POLICY_FILE.read_text() == render_json(render_policy(**EXAMPLE)), (
        "regenerate it: IAM_BOT_USER_PATH_PREFIX=/iam-bot/ "
        "IAM_BOT_PERMISSIONS_BOUNDARY=arn:aws:iam::123456789012:policy/iam-bot-boundary iam-bot policy > deploy/iam-policy.json"
    )


def test_policy_is_well_formed(rendering: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, policy = rendering
    assert policy["Version"] == "2012-10-17"
    sids = [s.get("Sid") for s in policy["Statement"]]
    assert all(sids) and len(set(sids)) == len(sids), f"every statement needs a unique Sid: {sids}"
    for s in policy["Statement"]:
        assert s["Effect"] in ("Allow", "Deny")
        assert "NotAction" not in s and "NotResource" not in s, f"{s['Sid']}: NotAction/NotResource grant too much"
        assert s.get("Action") and s.get("Resource")


def test_the_action_table_is_exactly_what_the_code_calls(code_actions: set[str]) -> None:
    """bot/deploy_policy.ACTIONS is the one list: every IAM call, and nothing the code never makes."""
    needed = set(code_actions) - NO_PERMISSION_NEEDED
    for action in code_actions:
        needed |= DEPENDENT_ACTIONS.get(action, set())
    assert not needed - set(ACTIONS), f"add to bot/deploy_policy.ACTIONS: {sorted(needed - set(ACTIONS))}"
    assert not set(ACTIONS) - needed, f"bot/deploy_policy.ACTIONS grants actions the code never calls: {sorted(set(ACTIONS) - needed)}"


def test_policy_allows_every_action_and_nothing_else(rendering: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, policy = rendering
    missing = sorted(a for a in ACTIONS if not _granting(policy, a))
    assert not missing, f"the rendered policy does not allow: {missing}"
    surplus = sorted(a for a in _granted_actions(policy) if a not in ACTIONS)
    assert not surplus, f"the rendered policy allows actions outside ACTIONS: {surplus}"


def test_policy_has_no_wildcard_actions(rendering: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, policy = rendering
    for s in policy["Statement"]:
        for action in _as_list(s["Action"]):
            assert "*" not in action and "?" not in action, f"{s['Sid']}: wildcard action {action}"


def _partition(kwargs: dict[str, Any]) -> str:
    """The partition a rendering is for: its boundary's, else aws."""
    return (kwargs.get("boundary_arn") or "arn:aws:").split(":")[1]


def test_writes_are_confined_to_the_path_prefix(rendering: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Only reads may reach beyond the bot's users; every user write names `user<prefix>*` (UNCONFINABLE_WRITES aside)."""
    kwargs, policy = rendering
    prefix = kwargs.get("path_prefix", "/")
    for action, scope in ACTIONS.items():
        for s in _granting(policy, action):
            resources = _as_list(s["Resource"])
            name = action.split(":", 1)[1]
            if scope in (Scope.NEW_USER, Scope.TAG_ON_CREATE, Scope.OWN_USER, Scope.BOUNDED_USER):
                assert all(r.endswith(f":user{prefix}*") and r.count("*") <= 2 for r in resources), (s["Sid"], resources)
            elif scope in (Scope.GROUP, Scope.GROUP_READ):
                assert all(r.endswith(":group/*") for r in resources), (s["Sid"], resources)
            elif scope is Scope.MFA_DEVICE:
                assert action in UNCONFINABLE_WRITES, f"{action} is on a user: give it a confined scope"
                iam = f"arn:{_partition(kwargs)}:iam::{kwargs.get('account', '*')}"
                assert resources == [iam + UNCONFINABLE_WRITES[action]], (s["Sid"], resources)
                assert "Condition" not in s and _as_list(s["Action"]) == [action], s["Sid"]  # alone in its statement
            else:
                assert name.startswith(("List", "Get", "Simulate")) or action in READS_NAMED_LIKE_WRITES, (
                    f"{action} is a write: give it a confined scope"
                )


def test_with_a_boundary_no_unbounded_user_can_be_made(rendering: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """CreateUser and every user-policy write carry the iam:PermissionsBoundary condition; the boundary stays put.

    (The marker conditions on the same statements are checked in tests/unit/test_bot_policy.py.)
    """
    kwargs, policy = rendering
    boundary = kwargs.get("boundary_arn")
    bounded = [a for a, scope in ACTIONS.items() if scope in (Scope.NEW_USER, Scope.BOUNDED_USER)]
    assert {"iam:CreateUser", "iam:AttachUserPolicy", "iam:PutUserPolicy"} <= set(bounded)
    for action in bounded:
        for s in _granting(policy, action):
            if boundary:
                assert s["Condition"]["ArnEquals"] == {"iam:PermissionsBoundary": boundary}, s["Sid"]
            else:
                assert "ArnEquals" not in s["Condition"]
    denied = {a for s in _statements(policy, "Deny") for a in _as_list(s["Action"])}
    if boundary:
        assert "iam:DeleteUserPermissionsBoundary" in denied
        (other,) = [s for s in _statements(policy, "Deny") if s["Action"] == "iam:PutUserPermissionsBoundary"]
        assert other["Condition"] == {"ArnNotEquals": {"iam:PermissionsBoundary": boundary}}
        if ":iam::aws:" not in boundary:
            (edit,) = [s for s in _statements(policy, "Deny") if s["Resource"] == boundary]
            assert {"iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"} <= set(edit["Action"])
    else:
        assert denied == {"iam:TagUser", "iam:UntagUser"}  # the marker's own Denies only
    # Nothing grants the boundary actions themselves.
    assert not {"iam:PutUserPermissionsBoundary", "iam:DeleteUserPermissionsBoundary"} & _granted_actions(policy)


def test_bounded_actions_take_the_boundary_condition_key() -> None:
    """What AWS's Service Authorization Reference says (as shipped in parliament's iam_definition.json)."""
    import parliament

    definition = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    # The file holds IAM twice (the service's old and new names); both must agree.
    services = [s for s in definition if s["prefix"] == "iam"]
    assert services
    for iam in services:
        with_key = {
            "iam:" + p["privilege"]
            for p in iam["privileges"]
            for rt in p["resource_types"]
            if "iam:PermissionsBoundary" in rt["condition_keys"]
            and p["privilege"].endswith(("User", "UserPolicy", "UserPermissionsBoundary"))
        }
        assert with_key == deploy_policy.BOUNDARY_KEY_ACTIONS, iam["service_name"]
        # Group membership takes no user resource, so it cannot be confined to the bot's users (README).
        (add,) = [p for p in iam["privileges"] if p["privilege"] == "AddUserToGroup"]
        assert [rt["resource_type"] for rt in add["resource_types"]] == ["group*"]


def test_render_refuses_a_malformed_account() -> None:
    with pytest.raises(ValueError):
        render_policy(account="12345")


# Community auditors (opt-in in parliament, `--include-community-auditors`) flag IAM actions by
# name and ignore Resource and Condition (duo-labs/parliament#66). These are the bot's job: it
# creates users and their credentials. What keeps it safe is what they cannot see: the path-prefix
# resources and the iam:PermissionsBoundary condition above. Anything else they report fails.
INHERENT_COMMUNITY_FINDINGS = {
    ("CREDENTIALS_EXPOSURE", None),
    ("PERMISSIONS_MANAGEMENT_ACTIONS", None),
    *(("PRIVILEGE_ESCALATION", t) for t in ("CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile", "AttachUserPolicy", "PutUserPolicy", "AddUserToGroup")),
}


def _parliament(text: str, *, community: bool) -> list[Any]:
    from parliament import analyze_policy_string

    return analyze_policy_string(text, include_community_auditors=community).findings


def test_parliament_finds_nothing_in_the_deploy_file() -> None:
    findings = _parliament(POLICY_FILE.read_text(), community=False)
    assert not findings, [(f.issue, f.detail, f.location) for f in findings]


def test_parliament_finds_nothing_in_any_rendering(rendering: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, policy = rendering
    findings = _parliament(render_json(policy), community=False)
    assert not findings, [(f.issue, f.detail, f.location) for f in findings]
    # parliament puts the escalation type in the finding's location.
    community = {(f.issue, (f.location or {}).get("type")) for f in _parliament(render_json(policy), community=True)}
    assert community <= INHERENT_COMMUNITY_FINDINGS, sorted(community - INHERENT_COMMUNITY_FINDINGS, key=str)


def test_parliament_would_catch_a_mistake() -> None:
    """The lint is live: a typo'd action and a mistyped condition are findings."""
    broken = render_policy(**EXAMPLE)
    broken["Statement"][0]["Action"].append("iam:ListUserz")
    (bounded,) = [s for s in broken["Statement"] if s["Sid"] == "GrantOwnUsersOnlyWithBoundary"]
    bounded["Condition"] = {"StringEquals": {"iam:PermissionsBoundary": EXAMPLE["boundary_arn"]}}
    issues = {f.issue for f in _parliament(render_json(broken), community=False)}
    assert {"UNKNOWN_ACTION", "MISMATCHED_TYPE_BUT_USABLE"} <= issues, issues


# AWS KMS (IAM_BOT_KMS_KEY_ID): bot/iam/kms.py's calls are deploy_policy.KMS_ACTIONS, granted on that key only.

KMS_MODULE = ROOT / "bot" / "iam" / "kms.py"
KMS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_the_kms_actions_are_exactly_what_the_code_calls() -> None:
    tree = ast.parse(KMS_MODULE.read_text(), filename=str(KMS_MODULE))
    clients = _boto_clients(tree)
    assert set(clients.values()) == {"kms"}, clients
    ops = _operation_names("kms")
    called = {f"kms:{ops[attr]}" for _, attr, _ in _client_uses(tree, clients) if attr not in CLIENT_HELPERS}
    assert called == set(deploy_policy.KMS_ACTIONS)


@pytest.mark.parametrize(
    "key_id,resource,alias",
    [
        (KMS_KEY_ARN, KMS_KEY_ARN, None),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:*:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", None),
        ("alias/iam-bot", "arn:aws:kms:*:123456789012:key/*", "alias/iam-bot"),
        ("arn:aws:kms:eu-west-1:123456789012:alias/iam-bot", "arn:aws:kms:eu-west-1:123456789012:key/*", "alias/iam-bot"),
    ],
)
def test_kms_is_granted_on_the_configured_key_only(key_id: str, resource: str, alias: str | None) -> None:
    from bot.credentials.vault import CONTEXT_KEY

    plain = render_policy(**EXAMPLE)
    assert not any(a.startswith("kms:") for a in _granted_actions(plain)), "no KMS without IAM_BOT_KMS_KEY_ID"
    policy = render_policy(**EXAMPLE, kms_key_id=key_id)
    (kms,) = [s for s in policy["Statement"] if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    assert kms["Effect"] == "Allow" and sorted(kms["Action"]) == sorted(deploy_policy.KMS_ACTIONS)
    assert kms["Resource"] == resource
    # Only for envelopes bound to a request: the encryption context the vault sends.
    assert deploy_policy.KMS_CONTEXT_KEY == CONTEXT_KEY
    assert kms["Condition"]["Null"] == {f"kms:EncryptionContext:{CONTEXT_KEY}": "false"}
    assert kms["Condition"].get("StringEquals") == ({"kms:RequestAlias": alias} if alias else None)
    assert policy["Statement"][: len(plain["Statement"])] == plain["Statement"]  # the rest is unchanged
    for community in (False, True):  # parliament finds nothing in it that it did not find without it
        def kinds(p: dict[str, Any]) -> set[tuple[str, str]]:
            return {(f.issue, str(f.detail)) for f in _parliament(render_json(p), community=community)}

        assert not kinds(policy) - kinds(plain), sorted(kinds(policy) - kinds(plain))


# ---------------------------------------------------------------------------------------------
# Slack side
# ---------------------------------------------------------------------------------------------

# Web API method (slack_sdk name) -> bot scopes it needs. A method missing here fails the test:
# look its scopes up at https://docs.slack.dev/reference/methods and add it.
METHOD_SCOPES: dict[str, set[str]] = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "conversations_open": {"im:write"},  # DMs only; group DMs would need mpim:write
    "conversations_history": {"im:history"},  # only our DMs: finding a credentials DM sent before a crash
    "files_upload_v2": {"files:write"},  # /iam audit: the export lands in the approver's DM
    # The encrypted credentials file, step by step (the file id is recorded before its bytes leave).
    "files_getUploadURLExternal": {"files:write"},
    "files_completeUploadExternal": {"files:write"},
    "views_open": set(),
    "views_update": set(),
    "views_push": set(),
    "views_publish": set(),
    "users_info": {"users:read"},  # iam-bot doctor: approvers are real, active people
    # iam-bot doctor: the approval/audit channel exists and the bot is in it; public channels need
    # channels:read, private ones groups:read.
    "conversations_info": {"channels:read", "groups:read"},
    "auth_test": set(),
    "apps_connections_open": set(),  # called with the app-level token (connections:write), not a bot scope
    "usergroups_users_list": {"usergroups:read"},  # approvers and requesters named by Slack user group
}
# Events the bot subscribes to -> scopes they need.
EVENT_SCOPES = {"app_mention": {"app_mentions:read"}, "message.im": {"im:history"}, "app_home_opened": set(), "user_change": {"users:read"}}
SLASH_COMMAND_SCOPE = "commands"
# `respond(...)` posts to the request's response_url and needs no scope.

SLACK_SOURCES = sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")])


def _is_client(expr: ast.AST) -> bool:
    """`client`, or any `<...>.client` (self.client, deps.client, self.notifier.client)."""
    return (isinstance(expr, ast.Name) and expr.id == "client") or (
        isinstance(expr, ast.Attribute) and expr.attr == "client"
    )


def _trees() -> Iterator[tuple[Path, ast.AST]]:
    for path in SLACK_SOURCES:
        yield path, ast.parse(path.read_text(), filename=str(path))


@pytest.fixture(scope="module")
def slack_methods() -> dict[str, list[str]]:
    """{method: ["file:line", ...]} for every Web API method called on a Slack client."""
    found: dict[str, list[str]] = {}
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_client(node.func.value):
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.setdefault(node.func.attr, []).append(where)
    assert {"chat_postMessage", "conversations_open", "views_open"} <= set(found), found
    return found


def _decorators(name: str) -> list[ast.Call]:
    """Every `@app.<name>(...)` decorator (Bolt listener) in bot/ and handlers/."""
    out: list[ast.Call] = []
    for _path, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == name:
                    out.append(dec)
    return out


def _decorator_args(name: str) -> set[str]:
    """First arguments of `@app.<name>("...")`; each must be a literal string."""
    out: set[str] = set()
    for dec in _decorators(name):
        arg = dec.args[0] if dec.args else None
        assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
            f"line {dec.lineno}: @app.{name} needs a literal string for this test"
        )
        out.add(arg.value)
    return out


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST_FILE.read_text())


def test_manifest_slash_command(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/iam"]
    assert _decorator_args("command") == {"/iam"}
    (iam,) = commands
    assert iam["url"].endswith("/slack/events")
    assert iam["should_escape"] is False
    assert iam["usage_hint"] == "request | status [name or id] | help"
    assert iam["description"]


def test_manifest_events(manifest: dict[str, Any]) -> None:
    subs = manifest["settings"]["event_subscriptions"]
    assert subs["request_url"].endswith("/slack/events")
    events = subs["bot_events"]
    assert sorted(events) == ["app_home_opened", "app_mention", "message.im", "user_change"] and len(events) == len(set(events))
    # Every event the code listens to arrives through a subscription (message -> message.im only).
    listened = _decorator_args("event")
    assert listened == {"app_home_opened", "app_mention", "message", "user_change"}
    for event in listened:
        assert any(e == event or e.startswith(event + ".") for e in events), event


def test_manifest_interactivity_and_options(manifest: dict[str, Any]) -> None:
    inter = manifest["settings"]["interactivity"]
    assert inter["is_enabled"] is True
    assert inter["request_url"].endswith("/slack/events")
    assert _decorators("options"), "the code no longer serves external_select options"
    assert inter["message_menu_options_url"].endswith("/slack/events")


def test_manifest_settings_and_app_home(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    home = manifest["features"]["app_home"]
    assert home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is False
    assert manifest["features"]["bot_user"]["display_name"]
    assert manifest["display_information"]["name"]


def test_every_slack_method_is_known(slack_methods: dict[str, list[str]]) -> None:
    unknown = {m: w for m, w in slack_methods.items() if m not in METHOD_SCOPES}
    assert not unknown, f"add these Web API methods (and their scopes) to METHOD_SCOPES: {unknown}"
    for method in slack_methods:
        assert callable(getattr(WebClient, method, None)), f"WebClient has no method {method}"


def test_manifest_scopes_are_exactly_what_the_code_needs(
    manifest: dict[str, Any], slack_methods: dict[str, list[str]]
) -> None:
    needed = {SLASH_COMMAND_SCOPE}
    for method in slack_methods:
        needed |= METHOD_SCOPES.get(method, set())
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        needed |= EVENT_SCOPES[event]
    granted = manifest["oauth_config"]["scopes"]["bot"]
    assert len(granted) == len(set(granted)), granted
    assert not needed - set(granted), f"manifest lacks scopes: {sorted(needed - set(granted))}"
    assert not set(granted) - needed, f"manifest grants unused scopes: {sorted(set(granted) - needed)}"
    assert "user" not in manifest["oauth_config"]["scopes"], "the bot uses no user-token scopes"
