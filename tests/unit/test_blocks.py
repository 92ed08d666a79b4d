"""bot.slack.ui: every view and message validates with slack_sdk, stays in Slack's limits, escapes user
text, and shows approvers the plan they approve (by its digest) in plain words.

The builders take plain values (bot.domain: RequestSpec, Plan, RequestView, HomeData, TimelineEvent);
plans here are made by the real planner (bot.requests.planner.plan_create_user) from IamFacts,
including a worst case: the largest spec validate_form accepts, copying from a user with many inline
policies, ten groups each with many managed and inline policies, and ARNs as long as IAM allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

from bot.common.constants import BOT_ACTOR, MARKER_TAG
from bot.credentials.vault import Credentials
from bot.demo.contract import MODAL_LABELS
from bot.domain.facts import (
    GroupFacts,
    IamFacts,
    InlinePolicy,
    ManagedPolicy,
    UserFacts,
)
from bot.domain.plan import (
    EffectiveGrant,
    Granted,
    Plan,
    PlanKind,
    Step,
    StepKind,
    changes,
)
from bot.domain.spec import RequestSpec
from bot.domain.views import HomeData, RequestView, TimelineEvent
from bot.policy.risk import assess, facts_from_plan
from bot.requests.planner import plan_create_user
from bot.requests.validation import RawForm, validate_form
from bot.slack import ui
from bot.slack.ui import ids
from models import RequestState

S = RequestState
ALL_STATES = list(RequestState)
REQUESTER, OWNER, APPROVER = "UREQUESTER1", "UOWNER00001", "UAPPROVER01"
SHORT_ID = "R7KQ2ZX"
ACCOUNT = "123456789012"
HOSTILE = "<!channel> & <@U123> <https://evil.example|click> *bold* `code`"
HOSTILE_ESCAPED = "&lt;!channel&gt; &amp; &lt;@U123&gt; &lt;https://evil.example|click&gt;"
RAW_HOSTILE = ["<!channel>", "<@U123>", "<https://evil.example"]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READ_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}]}


# ---------------------------------------------------------------- specs


def _long_arn(i: int, size: int = 400) -> str:
    name = f"team-{i:03d}/" + "P" * size
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


@cache
def worst_spec() -> RequestSpec:
    """The largest request the validator accepts, with mrkdwn-hostile text wherever it is allowed."""
    reason = (HOSTILE + " ") * 100
    raw = RawForm(
        user_name="U" * 64,
        access_types=("console", "access_key"),
        groups=tuple(f"{i:02d}" + "g" * 126 for i in range(10)),
        policy_arns=tuple(_long_arn(i) for i in range(19)) + (_long_arn(19, 1480),),
        copy_from="C" * 64,
        path="/" + "p" * 510 + "/",
        tags="\n".join(f"{i:02d}" + "k" * 126 + "=" + "v=" * 128 for i in range(49)),
        permissions_boundary=_long_arn(99, 1480),
        owner_id=OWNER,
        reason=reason[:3000],
    )
    spec, errors = validate_form(raw)
    assert errors == {}, errors
    assert spec is not None
    assert len(spec.reason) == 3000 and len(spec.tags) == 49 and len(spec.policy_arns) == 20 and len(spec.groups) == 10
    return spec


def small_spec(**overrides: Any) -> RequestSpec:
    fields: dict[str, Any] = {
        "user_name": "jane.doe",
        "console_access": True,
        "access_key": False,
        "owner_id": OWNER,
        "reason": "Payments audit",
        "groups": ("dev",),
        "policy_arns": ("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        "tags": (("team", "payments"),),
    }
    fields.update(overrides)
    return RequestSpec(**fields)


# ---------------------------------------------------------------- facts and plans (made by the real planner)


def small_facts(spec: RequestSpec) -> IamFacts:
    users = {}
    if spec.copy_from:
        users[spec.copy_from] = UserFacts(
            name=spec.copy_from,
            groups=("ops",),
            attached=(f"arn:aws:iam::{ACCOUNT}:policy/billing/InvoiceReader",),
            inline=(InlinePolicy("s3-reports", READ_S3),),
            boundary=f"arn:aws:iam::{ACCOUNT}:policy/DevBoundary",
        )
    return IamFacts(
        account=ACCOUNT,
        users=users,
        groups={
            "dev": GroupFacts("dev", attached=("arn:aws:iam::aws:policy/AWSCodeCommitPowerUser",), inline=(InlinePolicy("dev-extra", READ_S3),)),
            "ops": GroupFacts("ops", attached=("arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess",)),
        },
        policies={
            "arn:aws:iam::aws:policy/ReadOnlyAccess": ManagedPolicy("arn:aws:iam::aws:policy/ReadOnlyAccess", "v107", ALLOW_ALL),
            "arn:aws:iam::aws:policy/AWSCodeCommitPowerUser": ManagedPolicy("arn:aws:iam::aws:policy/AWSCodeCommitPowerUser", "v9", READ_S3),
            "arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess": ManagedPolicy("arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess", "v3", READ_S3),
            f"arn:aws:iam::{ACCOUNT}:policy/billing/InvoiceReader": ManagedPolicy(f"arn:aws:iam::{ACCOUNT}:policy/billing/InvoiceReader", "v2", READ_S3),
            f"arn:aws:iam::{ACCOUNT}:policy/DevBoundary": ManagedPolicy(f"arn:aws:iam::{ACCOUNT}:policy/DevBoundary", "v1", ALLOW_ALL),
        },
    )


def small_plan(spec: RequestSpec | None = None) -> Plan:
    spec = spec or small_spec()
    plan, _documents = plan_create_user(spec, small_facts(spec), marker=SHORT_ID)
    return plan


HOSTILE_GROUP = "copied-" + HOSTILE


@cache
def worst_facts() -> IamFacts:
    """IAM at its worst for worst_spec: ten groups of 20 managed (long ARNs) and 10 inline policies each, a copy
    source with 20 managed and 40 inline policies, a hostile group and hostile inline names, gaps, and unknowns."""
    spec = worst_spec()
    assert spec.copy_from
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    groups = {
        name: GroupFacts(
            name,
            attached=tuple(_long_arn(200 + 20 * gi + j) for j in range(19)) + (admin,),
            inline=tuple(InlinePolicy(f"g{gi:02d}-inline-{j:02d}-" + "n" * 100, ALLOW_ALL if j == 0 else READ_S3) for j in range(10)),
        )
        for gi, name in enumerate(spec.groups)
    }
    groups[HOSTILE_GROUP] = GroupFacts(HOSTILE_GROUP, attached=(_long_arn(900),), inline=(InlinePolicy(HOSTILE, ALLOW_ALL),))
    copied = UserFacts(
        name=spec.copy_from,
        groups=(spec.groups[0], spec.groups[1], HOSTILE_GROUP),
        attached=tuple(_long_arn(100 + i) for i in range(20)),
        inline=tuple(InlinePolicy(f"inline-{i:02d}-{HOSTILE}", ALLOW_ALL if i % 2 else READ_S3) for i in range(40)),
        boundary=_long_arn(98),
    )
    arns = {a for g in groups.values() for a in g.attached} | set(spec.policy_arns) | set(copied.attached)
    arns |= {spec.permissions_boundary or "", copied.boundary or ""}
    policies = {a: ManagedPolicy(a, None if i % 7 == 0 else f"v{i}", None if i % 7 == 0 else READ_S3) for i, a in enumerate(sorted(arns))}
    return IamFacts(
        account=ACCOUNT,
        users={spec.copy_from: copied},
        groups=groups,
        policies=policies,
        unknown=tuple(f"policy {'Q' * 200}-{i} (AccessDenied: {HOSTILE})" for i in range(10)),
    )


@cache
def worst_plan_and_documents() -> tuple[Plan, dict[str, Any]]:
    return plan_create_user(worst_spec(), worst_facts(), marker=SHORT_ID)


def worst_plan() -> Plan:
    plan = worst_plan_and_documents()[0]
    assert len(plan.steps) > 90 and len(plan.grant.policies) > 300
    return plan


# ---------------------------------------------------------------- views


def make_view(state: RequestState, spec: RequestSpec | None = None, *, plan: Plan | None | str = "auto", **overrides: Any) -> RequestView:
    """A request in `state`; by default it has its plan (except SUBMITTED: still being checked)."""
    spec = spec or small_spec()
    if plan == "auto":
        plan = None if state is S.SUBMITTED else small_plan(spec)
    assert not isinstance(plan, str)
    decided = state in (S.APPROVED, S.PROVISIONING, S.COMPLETED, S.DENIED, S.FAILED)
    fields: dict[str, Any] = {
        "id": 42,
        "short_id": SHORT_ID,
        "state": state,
        "requester_id": REQUESTER,
        "spec": spec,
        "created_at": T0,
        "updated_at": T0 + timedelta(hours=1),
        "decided_by": APPROVER if decided else None,
        "decided_at": T0 + timedelta(minutes=30) if decided else None,
        "rule_name": "default",
        "risk_flags": ("No permissions boundary",),
        "risk_summary": "Grants s3 (Get*, List*) :warning:",
        "expires_at": T0 + timedelta(days=3) if state is S.PENDING else None,
        "plan": plan,
        "plan_digest": plan.digest if plan is not None else None,
    }
    if state is S.DENIED:
        fields["decision_reason"] = "No business need. " + HOSTILE
    if state is S.FAILED:
        fields["failure_reason"] = "AWS refused CreateUser (LimitExceeded). " + HOSTILE
    if state is S.COMPLETED:
        fields["user_arn"] = f"arn:aws:iam::{ACCOUNT}:user/{spec.user_name}"
    fields.update(overrides)
    return RequestView(**fields)


def worst_view(state: RequestState, **overrides: Any) -> RequestView:
    spec = worst_spec()
    plan, documents = worst_plan_and_documents()
    risk = assess(spec, facts_from_plan(plan, documents))
    fields: dict[str, Any] = {
        "rule_name": "r" * 200 + HOSTILE,
        "quorum": 3,
        "approvals": (APPROVER, "UAPPROVER02"),
        "risk_flags": (f"flag 0 {HOSTILE} " + "f" * 300,) + tuple(risk["flags"]) + tuple(f"flag {i} {HOSTILE} " + "f" * 300 for i in range(1, 20)),
        "risk_summary": risk["summary"] + " " + HOSTILE * 60,
        "expires_at": T0 + timedelta(days=3),
        "plan_changes": tuple(f"change {i}: {HOSTILE} " + "c" * 300 for i in range(30)) if state in (S.PENDING, S.SUBMITTED) else (),
        "user_arn": f"arn:aws:iam::{ACCOUNT}:user/" + "p" * 510 + "/" + "U" * 64 if state is S.COMPLETED else None,
    }
    if state is S.DENIED:
        fields["decision_reason"] = (HOSTILE * 40)[:1000]
    if state is S.FAILED:
        fields["failure_reason"] = HOSTILE * 200
    fields.update(overrides)
    return make_view(state, spec, plan=None if state is S.SUBMITTED else plan, **fields)


def credentials(password: bool = True, key: bool = True) -> Credentials:
    return Credentials(
        user_name="U" * 64,
        console_url=f"https://{ACCOUNT}.signin.aws.amazon.com/console",
        account=ACCOUNT,
        password="Zq7!pW2#mN9$kL4^Zq7!pW2#" if password else None,
        access_key_id="AKIAIOSFODNN7EXAMPLE" if key else None,
        secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" if key else None,
    )


# ---------------------------------------------------------------- checks


def check_limits(blocks: list[dict[str, Any]]) -> None:
    """Slack's documented limits, checked here as well as by slack_sdk (whose checks may be incomplete)."""
    for b in blocks:
        assert len(b.get("block_id", "")) <= 255
        if b["type"] == "section":
            if "text" in b:
                assert 0 < len(b["text"]["text"]) <= 3000
            fields = b.get("fields") or []
            assert len(fields) <= 10
            assert all(0 < len(f["text"]) <= 2000 for f in fields)
            assert "text" in b or fields
        elif b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and 0 < len(b["text"]["text"]) <= 150
        elif b["type"] == "context":
            assert 0 < len(b["elements"]) <= 10
            assert all(len(e.get("text", "")) <= 3000 for e in b["elements"])
        elif b["type"] == "actions":
            assert 0 < len(b["elements"]) <= 25
        for e in list(b.get("elements") or []) + ([b["accessory"]] if b.get("accessory") else []) + ([b["element"]] if b.get("element") else []):
            if e.get("type") == "button":
                assert len(e["text"]["text"]) <= 75 and len(e.get("value", "")) <= 2000
                if "confirm" in e:
                    assert len(e["confirm"]["title"]["text"]) <= 100 and len(e["confirm"]["text"]["text"]) <= 300
            for o in e.get("options") or []:
                assert len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150
            if e.get("initial_option"):
                assert len(e["initial_option"]["text"]["text"]) <= 75 and len(e["initial_option"]["value"]) <= 150


def check_view(view: dict[str, Any], kind: str = "modal") -> dict[str, Any]:
    json.dumps(view)
    parsed = View(**view)
    parsed.validate_json()
    assert parsed.to_dict() == view
    assert view["type"] == kind
    assert 0 < len(view["blocks"]) <= 100
    if kind == "modal":
        assert len(view["title"]["text"]) <= 24
        for button in ("submit", "close"):
            if button in view:
                assert len(view[button]["text"]) <= 24
        assert len(view.get("private_metadata", "")) <= 3000
    check_limits(view["blocks"])
    check_escaped(view)
    return view


def check_message(msg: dict[str, Any]) -> dict[str, Any]:
    assert set(msg) == {"text", "blocks"}
    assert isinstance(msg["text"], str) and 0 < len(msg["text"]) <= 3000
    assert 0 < len(msg["blocks"]) <= 50
    for b in msg["blocks"]:
        parsed = Block.parse(b)
        assert parsed is not None, b
        parsed.validate_json()
        assert parsed.to_dict() == b
    assert Block.parse_all(msg["blocks"]) and len(Block.parse_all(msg["blocks"])) == len(msg["blocks"])
    json.dumps(msg)
    check_limits(msg["blocks"])
    check_escaped(msg)
    return msg


def check_escaped(obj: Any) -> None:
    dumped = json.dumps(obj, ensure_ascii=False)
    for raw in RAW_HOSTILE:
        assert raw not in dumped, f"unescaped user text {raw!r}"
    assert MARKER_TAG not in dumped, "the bot's own marker tag is shown"


def all_text(obj: Any) -> str:
    """Every mrkdwn/plain text string in a view or message, joined."""
    found: list[str] = []

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            if isinstance(o.get("text"), str):
                found.append(o["text"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(obj)
    return "\n".join(found)


def buttons(obj: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for b in obj["blocks"]:
        if b["type"] == "actions":
            out += [e for e in b["elements"] if e["type"] == "button"]
        if b.get("accessory", {}).get("type") == "button":
            out.append(b["accessory"])
    return out


def decide_values(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b["action_id"], b["value"]) for b in buttons(obj) if b["action_id"] in (ids.A_APPROVE, ids.A_DENY)]


def reading_text() -> str:
    """What stands in for a plan not read yet (its wording is the builder's; test_plan_blocks_while_... checks its sense)."""
    return str(ui.plan_blocks(None)[0].text.text)


def held(name: str, *, aws: bool, version: str | None) -> str:
    """A regex for one managed policy in "What the user will hold": its name, AWS or customer, and its version
    (or that the version is unknown). Tolerant of the builder's punctuation, strict on the facts."""
    kind = r"AWS(?:-managed)?" if aws else r"customer(?:-managed)?"
    ver = re.escape(version) if version else r"\(?version unknown\)?"
    return rf"`{re.escape(name)}` \({kind},? (?:version )?{ver}\)"


def assert_lines(text: str, patterns: list[str]) -> None:
    lines = text.split("\n")
    assert len(lines) == len(patterns), lines
    for line, pattern in zip(lines, patterns):
        assert re.fullmatch(pattern, line), (line, pattern)


def short(digest: str) -> str:
    return digest[:12]


def all_messages(view: RequestView) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every message built from one request view."""
    yield "approval", ui.approval_message(view)
    yield "decision", ui.decision_message(view)
    yield "submitted", ui.submitted_message(view, approvers=[APPROVER, "UAPPROVER02", "SAPPROVERS"])
    yield "submitted+bg", ui.submitted_message(view, approvers=[APPROVER], break_glass=True)
    yield "expired", ui.expired_message(view)
    yield "ready", ui.credentials_ready_message(view, expires_at=T0 + timedelta(days=1))
    yield "gone", ui.credentials_gone_message(view, revealed_at=T0)
    yield "gone-unrevealed", ui.credentials_gone_message(view, revealed_at=None)
    yield "failure-approver", ui.failure_message(view, for_approver=True)
    yield "failure-requester", ui.failure_message(view, for_approver=False)
    yield "notice", ui.notice_to_approvers(view)
    yield "notice+bg", ui.notice_to_approvers(replace(view, break_glass=True, decision_reason=HOSTILE * 30))
    yield "reminder", ui.reminder_message(view, number=3, escalated_to=["UBOSS00001", "SSECURITY1"])
    yield "timeline", ui.timeline_message(view, events=timeline_events(hostile=True))
    yield "status", ui.status_message(mine=[view], awaiting=[view], query=None)


def timeline_events(*, hostile: bool = False, n_extra: int = 0) -> list[TimelineEvent]:
    reason = HOSTILE * 20 if hostile else "no need"
    target = f"arn:aws:iam::{ACCOUNT}:policy/team/{HOSTILE if hostile else 'Reader'}"
    events = [
        TimelineEvent("requested", REQUESTER, T0),
        TimelineEvent("planned", BOT_ACTOR, T0, {"digest": "a" * 64}),
        TimelineEvent("decision_refused", APPROVER, T0),  # not shown
        TimelineEvent("approval_recorded", APPROVER, T0),
        TimelineEvent("applied:attach_policy", BOT_ACTOR, T0, {"target": target}),
        TimelineEvent("applied:add_to_group", BOT_ACTOR, T0, {"target": "dev"}),
        TimelineEvent("denied", "UAPPROVER02", T0, {"reason": reason}),
    ]
    events += [TimelineEvent("reminded", BOT_ACTOR, T0 + timedelta(minutes=i)) for i in range(n_extra)]
    return events


# ---------------------------------------------------------------- request modal and options


def test_request_modal_labels_and_options() -> None:
    view = check_view(ui.request_modal(requester_id=REQUESTER))
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b["label"]["text"] for b in inputs] == MODAL_LABELS
    access = next(b for b in inputs if b["block_id"] == ids.B_ACCESS_TYPE)
    assert [o["text"]["text"] for o in access["element"]["options"]] == ["Console access", "Access key"]
    assert [o["value"] for o in access["element"]["options"]] == [ids.ACCESS_CONSOLE, ids.ACCESS_KEY]
    owner = next(b for b in inputs if b["block_id"] == ids.B_OWNER)
    assert owner["element"]["initial_user"] == REQUESTER
    assert view["callback_id"] == ids.REQUEST_VIEW
    required = {b["label"]["text"] for b in inputs if not b.get("optional")}
    assert required == {"User name", "Access type", "Account owner", "Reason"}
    actions = {b["block_id"]: b["element"]["action_id"] for b in inputs}
    assert actions[ids.B_GROUPS] == ids.A_GROUPS and actions[ids.B_POLICIES] == ids.A_POLICIES
    assert actions[ids.B_COPY_FROM] == ids.A_COPY_FROM and actions[ids.B_BOUNDARY] == ids.A_BOUNDARY


def test_request_modal_limits_match_validation() -> None:
    view = ui.request_modal(requester_id=REQUESTER)
    by_id = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert by_id[ids.B_USER_NAME]["element"]["max_length"] == 64
    assert by_id[ids.B_PATH]["element"]["max_length"] == 512
    assert by_id[ids.B_REASON]["element"]["max_length"] == 3000


def test_request_modal_with_defaults_and_notes() -> None:
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/boundaries/" + "B" * 90
    view = check_view(
        ui.request_modal(requester_id=REQUESTER, default_path="/engineering/", default_boundary=boundary, notes=["n" * 2000, "m" * 2000])
    )
    by_id = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert by_id[ids.B_PATH]["element"]["initial_value"] == "/engineering/"
    initial = by_id[ids.B_BOUNDARY]["element"]["initial_option"]
    assert initial["value"] == boundary and initial["text"]["text"].startswith("boundaries/B") and len(initial["text"]["text"]) == 75
    assert "Required here" in by_id[ids.B_BOUNDARY]["hint"]["text"]
    assert [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"] == MODAL_LABELS


def test_options_cap_at_100_and_drop_long_values() -> None:
    items = [(f"label {i}", f"value-{i}") for i in range(150)]
    out = ui.options(items)
    assert len(out) == 100
    assert [o["value"] for o in out] == [f"value-{i}" for i in range(100)]


def test_options_drop_values_longer_than_150() -> None:
    items = [("ok", "v" * 150), ("too long", "v" * 151), ("long label " + "x" * 200, "short")]
    out = ui.options(items)
    assert [o["value"] for o in out] == ["v" * 150, "short"]
    assert len(out[1]["text"]["text"]) == 75
    assert out[1]["text"]["text"].endswith("…")


def test_options_cap_counts_only_kept_items() -> None:
    items = [("bad", "x" * 151)] * 30 + [(f"l{i}", f"v{i}") for i in range(120)]
    out = ui.options(items)
    assert len(out) == 100
    assert out[0]["value"] == "v0"


def test_options_are_valid_for_external_select() -> None:
    out = ui.options([(HOSTILE, "arn:aws:iam::aws:policy/ReadOnlyAccess")] + [(f"g{i}", f"g{i}") for i in range(5)])
    assert ui.options([]) == []
    assert len(out) == 6
    assert out[0]["text"]["type"] == "plain_text" and out[0]["text"]["text"] == HOSTILE  # plain text: shown as typed, never parsed
    for o in out:
        Option(text=o["text"]["text"], value=o["value"]).validate_json()
        assert set(o) == {"text", "value"}
        assert o["text"]["type"] == "plain_text"
        assert len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150


# ---------------------------------------------------------------- review modal


@pytest.mark.parametrize("spec_kind", ["small", "worst"])
@pytest.mark.parametrize("copy", [False, True], ids=["no-copy", "copy"])
@pytest.mark.parametrize("plan_state", ["reading", "planned", "error"])
def test_review_modal(spec_kind: str, copy: bool, plan_state: str) -> None:
    spec = small_spec(reason="Payments audit " + HOSTILE) if spec_kind == "small" else worst_spec()
    if not copy:
        spec = replace(spec, copy_from=None)
    elif spec.copy_from is None:
        spec = replace(spec, copy_from="john.smith")
    plan = None
    if plan_state == "planned":
        plan = small_plan(spec) if spec_kind == "small" else plan_create_user(spec, worst_facts(), marker="(on submission)")[0]
    error = f"AWS refused GetUser (AccessDenied: {HOSTILE})." if plan_state == "error" else None
    approvers = [f"UAPPROVER{i:02d}" for i in range(30)]
    view = check_view(
        ui.review_modal(spec=spec, draft_id="d" * 16, requester_id=REQUESTER, approvers=approvers, plan=plan, plan_error=error)
    )
    assert view["private_metadata"] == "d" * 16
    assert view["external_id"] == ids.review_external_id("d" * 16)
    assert view["callback_id"] == ids.REVIEW_VIEW
    assert buttons(view) == []  # nothing to approve in the requester's own review
    text = all_text(view)
    assert "*User name*" in text and f"`{spec.user_name}`" in text
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in text  # the reason, escaped
    assert "Will be sent for approval to: <@UAPPROVER00>" in text
    assert (reading_text() in text) is (plan_state == "reading")
    assert ("Could not read the plan from IAM" in text) is (plan_state == "error")
    assert ("*What will be done in IAM*" in text) is (plan_state == "planned")
    if plan_state == "error":
        assert f"AccessDenied: {HOSTILE_ESCAPED}" in text
    if plan_state == "planned":
        assert plan is not None
        assert "1. Create the user at `/" in text
        # A preview: the steps, not yet what groups grant (read from IAM at submission, shown to approvers).
        assert "*What the user will hold*" not in text and "is read from IAM when you submit" in text
        assert short(plan.digest) not in text  # the review is not what is approved: no digest yet
        if spec_kind == "small":
            assert (f"_(copied from {spec.copy_from})_" in text) is copy
        else:  # the worst plan takes several sections, and says what it could not show (see test_worst_plan_...)
            steps = [b["text"]["text"] for b in view["blocks"] if b.get("text", {}).get("text", "").startswith("*What will be done")]
            assert steps and all(len(t) <= 3000 for t in steps)


def test_review_modal_without_permissions_says_so() -> None:
    spec = small_spec(groups=(), policy_arns=())
    text = all_text(check_view(ui.review_modal(spec=spec, draft_id="d1", requester_id=REQUESTER, approvers=[])))
    assert "No permissions" in text
    assert "no approver is configured" in text
    assert reading_text() in text


def test_review_modal_with_long_plan_error() -> None:
    spec = small_spec(copy_from="john.smith")
    view = check_view(ui.review_modal(spec=spec, draft_id="d1", requester_id=REQUESTER, approvers=[], plan_error="<" * 1000))
    text = all_text(view)
    assert "&lt;" * 100 in text and "<<" not in text


def test_review_modal_shows_the_rule_instead_of_the_approvers() -> None:
    rule = ui.rule_text(rule_name=HOSTILE, quorum=2, approvers=[APPROVER, "SSECURITY1"])
    text = all_text(check_view(ui.review_modal(spec=small_spec(), draft_id="d1", requester_id=REQUESTER, approvers=[APPROVER], rule=rule, plan=small_plan())))
    assert f"Rule: *{HOSTILE_ESCAPED}" in text
    assert f"needs 2 approvals from <@{APPROVER}>, <!subteam^SSECURITY1>" in text
    assert "Will be sent for approval to" not in text


def test_rule_text() -> None:
    assert ui.rule_text(rule_name="admin", quorum=1, approvers=[APPROVER]) == f"Rule: *admin* · needs 1 approval from <@{APPROVER}>"
    assert ui.rule_text(rule_name="x", quorum=2, approvers=[]) == "Rule: *x* · needs 2 approvals from _no approver is configured_"
    assert "approved automatically" in ui.rule_text(rule_name="low", quorum=1, approvers=[], auto_approve=True)


# ---------------------------------------------------------------- the plan in plain words


def test_step_words_name_every_kind_of_step() -> None:
    create = Step(
        StepKind.CREATE_USER,
        path="/engineering/",
        tags=(("team", "payments"), (MARKER_TAG, SHORT_ID)),
        boundary=f"arn:aws:iam::{ACCOUNT}:policy/boundaries/DevBoundary",
        origin="copied from john.smith",
    )
    assert ui.step_words(create) == (
        "Create the user at `/engineering/` with the permissions boundary `boundaries/DevBoundary` _(copied from john.smith)_, "
        "tagged `team=payments`"
    )
    assert ui.step_words(Step(StepKind.CREATE_USER, path=None, tags=((MARKER_TAG, SHORT_ID),))) == "Create the user at `/`"
    assert ui.step_words(Step(StepKind.ADD_TO_GROUP, target="dev")) == "Add to group `dev`"
    assert ui.step_words(Step(StepKind.ADD_TO_GROUP, target="ops", origin="copied from john.smith")) == "Add to group `ops` _(copied from john.smith)_"
    assert ui.step_words(Step(StepKind.ATTACH_POLICY, target="arn:aws:iam::aws:policy/ReadOnlyAccess")) == "Attach `ReadOnlyAccess` (AWS-managed)"
    assert (
        ui.step_words(Step(StepKind.ATTACH_POLICY, target=f"arn:aws:iam::{ACCOUNT}:policy/billing/InvoiceReader", origin="copied from x"))
        == "Attach `billing/InvoiceReader` (customer-managed) _(copied from x)_"
    )
    assert ui.step_words(Step(StepKind.PUT_USER_POLICY, target="s3-reports", origin="copied from x")) == "Put the inline policy `s3-reports` _(copied from x)_"
    assert ui.step_words(Step(StepKind.CREATE_LOGIN_PROFILE)) == "Create a console password (to be changed at first sign-in)"
    assert ui.step_words(Step(StepKind.CREATE_ACCESS_KEY)) == "Create an access key"


def test_step_words_escape_names_tags_and_origins() -> None:
    steps = [
        Step(StepKind.CREATE_USER, path=f"/{HOSTILE}/", tags=((HOSTILE, HOSTILE),), boundary=f"arn:aws:iam::{ACCOUNT}:policy/{HOSTILE}", origin=HOSTILE),
        Step(StepKind.ADD_TO_GROUP, target=HOSTILE, origin=HOSTILE),
        Step(StepKind.ATTACH_POLICY, target=f"arn:aws:iam::{ACCOUNT}:policy/{HOSTILE}"),
        Step(StepKind.PUT_USER_POLICY, target=HOSTILE),
    ]
    for step in steps:
        words = ui.step_words(step)
        assert HOSTILE_ESCAPED in words, words
        check_escaped(words)


def test_plan_blocks_for_a_small_plan_with_a_copy() -> None:
    spec = small_spec(copy_from="john.smith", access_key=True)
    plan = small_plan(spec)
    out = check_message({"text": "plan", "blocks": [b.to_dict() for b in ui.plan_blocks(plan, digest=plan.digest)]})
    text = all_text(out)
    assert [b["type"] for b in out["blocks"]] == ["section", "section", "context"]
    assert "*What will be done in IAM* (user `jane.doe`)" in text
    steps = out["blocks"][0]["text"]["text"].split("\n")[1:]
    assert steps == [
        "1. Create the user at `/` with the permissions boundary `DevBoundary` _(copied from john.smith)_, tagged `team=payments`",
        "2. Add to group `dev`",
        "3. Add to group `ops` _(copied from john.smith)_",
        "4. Attach `ReadOnlyAccess` (AWS-managed)",
        "5. Attach `billing/InvoiceReader` (customer-managed) _(copied from john.smith)_",
        "6. Put the inline policy `s3-reports` _(copied from john.smith)_",
        "7. Create a console password (to be changed at first sign-in)",
        "8. Create an access key",
    ]
    assert_lines(
        out["blocks"][1]["text"]["text"],
        [
            re.escape("*What the user will hold*"),
            "• directly: " + held("ReadOnlyAccess", aws=True, version="v107") + ", " + held("InvoiceReader", aws=False, version="v2") + ", inline `s3-reports`",
            "• through `dev`: " + held("AWSCodeCommitPowerUser", aws=True, version="v9") + ", inline `dev-extra`",
            "• through `ops`: " + held("CloudWatchReadOnlyAccess", aws=True, version="v3"),
            "• capped by the boundary " + held("DevBoundary", aws=False, version="v1"),
        ],
    )
    footer = out["blocks"][2]["elements"][0]["text"]
    assert footer == f"AWS account {ACCOUNT} · plan `{short(plan.digest)}`: approving approves exactly this"
    assert plan.digest not in text  # only the short digest is shown
    assert MARKER_TAG not in text and SHORT_ID not in text  # the marker tag (its value is the short id) is the bot's own


def test_grant_words_show_unknown_versions_empty_groups_and_what_could_not_be_read() -> None:
    plan = Plan(
        kind=PlanKind.CREATE_USER,
        account="",
        user_name="jane.doe",
        steps=(Step(StepKind.CREATE_USER, path="/"), Step(StepKind.ADD_TO_GROUP, target="empty"), Step(StepKind.ADD_TO_GROUP, target=HOSTILE)),
        grant=EffectiveGrant(
            policies=(Granted(name=HOSTILE, group=HOSTILE, arn=f"arn:aws:iam::{ACCOUNT}:policy/x"),),
            unknown=(f"group {HOSTILE} (AccessDenied)",),
        ),
    )
    words = ui.grant_words(plan)
    assert_lines(
        words,
        [
            "• directly: _nothing_",
            "• through `empty`: _nothing_",
            f"• through `{re.escape(ui.esc(HOSTILE))}`: " + held(ui.esc(HOSTILE), aws=False, version=None),
            re.escape(f"• :warning: could not read group {ui.esc(HOSTILE)} (AccessDenied)"),
        ],
    )
    out = check_message({"text": "plan", "blocks": [b.to_dict() for b in ui.plan_blocks(plan)]})
    assert "AWS account" not in all_text(out) and out["blocks"][-1]["type"] == "section"  # no account, no digest: no footer to show
    assert "approving approves" not in all_text(out)  # no digest, no claim


def test_plan_blocks_while_the_plan_is_being_read() -> None:
    (block,) = [b.to_dict() for b in ui.plan_blocks(None)]
    assert re.search(r"(?i)\bread(ing)?\b.*\bIAM\b|\bIAM\b.*\bread\b", block["text"]["text"]), block  # says the plan is being read
    assert block["text"]["text"] == reading_text()
    (block,) = [b.to_dict() for b in ui.plan_blocks(None, pending_text="x" * 4000)]
    assert len(block["text"]["text"]) == 3000


def test_plan_blocks_show_changes_escaped_and_first() -> None:
    old = small_plan()
    new_spec = small_spec(copy_from="john.smith")
    new = small_plan(new_spec)
    words = changes(old, new) + [f"group `{HOSTILE}` now also has `X` attached"]
    out = check_message({"text": "plan", "blocks": [b.to_dict() for b in ui.plan_blocks(new, digest=new.digest, changes=words)]})
    first = out["blocks"][0]["text"]["text"]
    assert first.startswith("*:warning: The plan was made again")
    assert "• new step: add to group:ops" in first
    assert "• now grants `CloudWatchReadOnlyAccess` through group `ops`" in first
    assert HOSTILE_ESCAPED in first
    many = check_message({"text": "p", "blocks": [b.to_dict() for b in ui.plan_blocks(new, digest=new.digest, changes=[f"change-{i:02d}" for i in range(40)])]})
    shown = many["blocks"][0]["text"]["text"]
    assert "change-00" in shown and "change-14" in shown and "change-15" not in shown


def test_worst_plan_stays_in_limits_and_escapes() -> None:
    plan = worst_plan()
    changed = tuple(f"{HOSTILE} " * 40 for _ in range(30))
    out = check_message({"text": "plan", "blocks": [b.to_dict() for b in ui.plan_blocks(plan, digest=plan.digest, changes=changed)]})
    kinds = [b["type"] for b in out["blocks"]]
    assert kinds[0] == "section" and kinds[-2:] == ["context", "context"] and len(kinds) <= 2 + 5 + 5 + 2  # changes, steps, holdings, note and footer
    texts = [b["text"]["text"] for b in out["blocks"] if b["type"] == "section"]
    assert "… and 15 more" in "\n".join(t for t in texts if "The plan was made again" in t)  # 30 changes: 15 listed, the rest counted
    steps = [t for t in texts if t.startswith("*What will be done")]
    held_parts = [t for t in texts if t.startswith("*What the user will hold*")]
    # Split into whole lines over several sections, none over Slack's limit, continued ones titled so.
    assert len(steps) > 1 and len(held_parts) > 1 and all(len(t) <= 3000 for t in texts)
    assert all("_(continued)_" in t for t in steps[1:] + held_parts[1:])
    assert f"1. Create the user at `/{'p' * 510}/` with the permissions boundary `team-099/" in steps[0]
    assert "with the 49 tags listed under *Tags*" in steps[0]
    # What does not fit is counted and said, and the footer claims no more than the truth.
    note, footer = (b["elements"][0]["text"] for b in out["blocks"][-2:])
    assert "not shown in full here" in note and f"{len(plan.steps)} steps" in note
    assert "approving approves the whole plan, shown or not" in footer and "exactly this" not in footer
    assert f"`{short(plan.digest)}`" in all_text(out)
    # every line of the steps, and of what is held, is in words (nothing raw from IAM)
    words = ui.grant_words(plan)
    assert words.count("• through `") == 11 and ":warning: could not read policy" in words
    assert HOSTILE_ESCAPED in "\n".join(ui.step_words(s) for s in plan.steps)
    check_escaped(words)


def test_plan_shows_copied_boundary_and_marks_it() -> None:
    spec = small_spec(copy_from="john.smith")
    plan = small_plan(spec)
    assert plan.step(StepKind.CREATE_USER) is not None
    words = ui.grant_words(plan)
    assert re.search("• capped by the boundary " + held("DevBoundary", aws=False, version="v1"), words)
    spec_b = replace(spec, permissions_boundary=f"arn:aws:iam::{ACCOUNT}:policy/Mine")
    plan_b, _ = plan_create_user(spec_b, small_facts(spec_b), marker=SHORT_ID)
    create = ui.step_words(plan_b.steps[0])
    assert "with the permissions boundary `Mine`," in create and "copied" not in create  # asked for: no origin


# ---------------------------------------------------------------- approval message


@pytest.mark.parametrize("worst", [False, True], ids=["small", "worst"])
@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_approval_message_in_every_state(state: RequestState, worst: bool) -> None:
    view = worst_view(state) if worst else make_view(state)
    msg = check_message(ui.approval_message(view))
    text = all_text(msg).replace("*", "")
    found = decide_values(msg)
    if state is S.PENDING:
        assert view.plan_digest
        value = f"{SHORT_ID}:{view.plan_digest}"
        withdraw = [("Withdraw my approval", ids.A_WITHDRAW, value)] if view.quorum > 1 and view.approvals else []
        assert [(b["text"]["text"], b["action_id"], b["value"]) for b in buttons(msg)] == [
            ("Approve", ids.A_APPROVE, value),
            ("Deny", ids.A_DENY, value),
            *withdraw,
        ]
        assert ids.parse_approval_value(value) == (SHORT_ID, view.plan_digest)
        assert "Approved by" not in text and "Denied by" not in text
        assert "expires <!date^" in text
    else:
        assert buttons(msg) == [] and found == []
    if state in (S.APPROVED, S.PROVISIONING, S.COMPLETED, S.FAILED):
        assert f"Approved by <@{APPROVER}>" in text
    if state is S.DENIED:
        assert f"Denied by <@{APPROVER}>" in text
    if state is S.CANCELLED:
        assert "Cancelled by the requester" in text
    if state is S.EXPIRED:
        assert "Expired" in text
    if state is S.SUBMITTED:
        assert "Being checked against IAM again" in text
    assert f"<@{REQUESTER}>" in text
    assert ui.STATE_WORDS[state] in msg["text"] or (state is S.PENDING and worst and "2 of 3 approvals" in msg["text"])
    header = msg["blocks"][0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    if view.plan is not None:
        assert "What will be done in IAM" in text and f"plan `{short(view.plan.digest)}`" in text
    else:
        assert reading_text() in text
    if worst:
        assert "Risk" in text and "flag 0 " + ui.esc(HOSTILE).replace("*", "") in text


def test_approval_message_without_a_plan_has_no_buttons() -> None:
    view = make_view(S.PENDING, plan=None)
    assert view.plan_digest is None
    msg = check_message(ui.approval_message(view))
    assert buttons(msg) == []
    assert reading_text() in all_text(msg)


def test_approval_message_escapes_reason_and_shows_fields_and_plan() -> None:
    spec = small_spec(reason=HOSTILE, copy_from="john.smith")
    view = make_view(S.PENDING, spec, risk_flags=(f"Customer policy `{HOSTILE}` allows wildcard actions: `*`",), risk_summary=f"Grants {HOSTILE}")
    msg = check_message(ui.approval_message(view))
    text = all_text(msg)
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in text
    for expected in ("`jane.doe`", "`dev`", "`ReadOnlyAccess`", "`team=payments`", "*Copy permissions from*\n`john.smith`"):
        assert expected in text
    assert "Add to group `ops` _(copied from john.smith)_" in text
    assert re.search("• through `dev`: " + held("AWSCodeCommitPowerUser", aws=True, version="v9"), text)
    assert f"*:warning: Risk*\n• Customer policy `{HOSTILE_ESCAPED}" in text
    assert f"Grants {HOSTILE_ESCAPED}" in text


def test_denied_message_shows_escaped_reason() -> None:
    text = all_text(check_message(ui.approval_message(make_view(S.DENIED))))
    assert "No business need. &lt;!channel&gt;" in text


def test_replanned_pending_view_shows_what_changed() -> None:
    old, new = small_plan(), small_plan(small_spec(copy_from="john.smith"))
    what = tuple(changes(old, new)) + (f"the inline policy `{HOSTILE}` of group `dev` was changed",)
    pending = make_view(S.PENDING, plan=new, plan_changes=what)
    text = all_text(check_message(ui.approval_message(pending)))
    assert "The plan was made again" in text
    assert "• new step: add to group:ops" in text and HOSTILE_ESCAPED in text
    assert decide_values(ui.approval_message(pending))[0] == (ids.A_APPROVE, f"{SHORT_ID}:{new.digest}")
    # the requester's confirmation says so too
    assert "The plan was made again" in all_text(check_message(ui.submitted_message(pending, approvers=[APPROVER])))
    # once decided, the old changes are history: approvers are not shown them again
    for state in (S.APPROVED, S.COMPLETED, S.DENIED):
        decided = replace(make_view(state, plan=new), plan_changes=what)
        assert "The plan was made again" not in all_text(check_message(ui.approval_message(decided)))


def test_approval_message_with_quorum_shows_progress() -> None:
    view = make_view(S.PENDING, quorum=2, approvals=(APPROVER,), rule_name=f"admin {HOSTILE}")
    msg = check_message(ui.approval_message(view))
    context = msg["blocks"][-1]["elements"][0]["text"]
    assert context.startswith(f"*1 of 2 approvals: <@{APPROVER}>* · Requested <!date^")
    assert f"rule *admin {HOSTILE_ESCAPED}" in context
    assert "1 of 2 approvals" in msg["text"]
    done = check_message(ui.approval_message(make_view(S.APPROVED, quorum=2, approvals=(APPROVER, "UAPPROVER02"))))
    assert "2 of 2 approvals" in all_text(done)


def test_approval_message_break_glass_and_bot_decisions() -> None:
    bg = make_view(S.APPROVED, decided_by=REQUESTER, break_glass=True, decision_reason="prod down " + HOSTILE)
    text = all_text(check_message(ui.approval_message(bg)))
    assert f":rotating_light: *Break-glass*: <@{REQUESTER}> approved this request themself" in text
    assert "*Why:* prod down " + HOSTILE_ESCAPED in text
    assert "*break-glass*, to be reviewed" in text
    auto = make_view(S.COMPLETED, decided_by=BOT_ACTOR, rule_name="low-risk")
    assert "Approved* by iam-bot (rule low-risk)" in all_text(check_message(ui.approval_message(auto)))
    guard = make_view(S.DENIED, decided_by=BOT_ACTOR, decision_reason="forbidden: iam:*")
    assert "Denied* by iam-bot (guardrail)" in all_text(check_message(ui.approval_message(guard)))


def test_outcome_text_for_a_failure_before_any_decision() -> None:
    view = make_view(S.FAILED, decided_by=None, decided_at=None, failure_reason="group dev does not exist " + HOSTILE)
    out = ui.outcome_text(view)
    assert out.startswith(":x: *Could not be done*: group dev does not exist &lt;!channel&gt;")
    assert "Nothing was done in AWS. Submit a new request" in all_text(check_message(ui.failure_message(view, for_approver=False)))


@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_outcome_text_in_every_state(state: RequestState) -> None:
    out = ui.outcome_text(make_view(state))
    assert out and "None" not in out
    check_escaped(out)
    expected = {
        S.SUBMITTED: "Being checked against IAM",
        S.PENDING: "waiting for approval",
        S.APPROVED: "creating the user",
        S.PROVISIONING: "creating the user",
        S.COMPLETED: f"credentials sent to <@{OWNER}>",
        S.DENIED: "*Denied*",
        S.CANCELLED: "*Cancelled*",
        S.EXPIRED: "*Expired*",
        S.FAILED: "creating the user failed",
    }
    assert expected[state] in out


# ---------------------------------------------------------------- other messages, in every state


@pytest.mark.parametrize("worst", [False, True], ids=["small", "worst"])
@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_every_message_in_every_state(state: RequestState, worst: bool) -> None:
    view = worst_view(state) if worst else make_view(state)
    for name, msg in all_messages(view):
        try:
            check_message(msg)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    line = ui.audit_line(view)
    assert SHORT_ID in line and "None" not in line
    check_escaped(line)
    assert len(ui.outcome_text(view)) <= 3000


@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_submitted_message_buttons(state: RequestState) -> None:
    view = make_view(state)
    plain = check_message(ui.submitted_message(view, approvers=[APPROVER]))
    glass = check_message(ui.submitted_message(view, approvers=[APPROVER], break_glass=True))
    if state is S.PENDING:
        assert [(b["action_id"], b["value"]) for b in buttons(plain)] == [(ids.A_CANCEL, SHORT_ID)]
        assert [(b["action_id"], b["value"]) for b in buttons(glass)] == [(ids.A_CANCEL, SHORT_ID), (ids.A_BREAK_GLASS, SHORT_ID)]
        assert buttons(plain)[0]["confirm"]["text"]["text"] == f"Withdraw request *{SHORT_ID}* for `jane.doe`?"
    else:
        assert buttons(plain) == [] and buttons(glass) == []
    text = all_text(plain)
    assert f"sent for approval to <@{APPROVER}>" in text and f"`/iam status {SHORT_ID}`" in text
    assert decide_values(plain) == []  # the requester never gets Approve


def test_submitted_message_names_a_rule_with_quorum() -> None:
    view = make_view(S.PENDING, rule_name="admin-grants", quorum=2)
    text = all_text(check_message(ui.submitted_message(view, approvers=[APPROVER, "SSECURITY1"])))
    assert f"Rule: *admin-grants* · needs 2 approvals from <@{APPROVER}>, <!subteam^SSECURITY1>" in text
    default = all_text(check_message(ui.submitted_message(make_view(S.PENDING), approvers=[APPROVER])))
    assert "Rule:" not in default


def test_decision_message_for_denial_suggests_a_new_request() -> None:
    text = all_text(check_message(ui.decision_message(make_view(S.DENIED)))).replace("*", "")
    assert f"Denied by <@{APPROVER}>" in text
    assert "/iam request" in text
    assert "No business need. &lt;!channel&gt;" in text


def test_credentials_ready_message_has_only_a_reveal_button() -> None:
    view = make_view(S.COMPLETED)
    msg = check_message(ui.credentials_ready_message(view, expires_at=T0 + timedelta(days=1)))
    assert [(b["action_id"], b["value"]) for b in buttons(msg)] == [(ids.A_REVEAL, SHORT_ID)]
    assert f"approved by <@{APPROVER}>" in all_text(msg)


def test_credentials_gone_messages() -> None:
    view = make_view(S.COMPLETED)
    assert "were revealed <!date^" in all_text(check_message(ui.credentials_gone_message(view, revealed_at=T0)))
    assert "expired unrevealed" in all_text(check_message(ui.credentials_gone_message(view, revealed_at=None)))


def test_expired_message() -> None:
    text = all_text(check_message(ui.expired_message(make_view(S.EXPIRED))))
    assert f"*{SHORT_ID}* for `jane.doe` expired <!date^" in text and "/iam request" in text


def test_failure_message_escapes_the_error() -> None:
    approver = all_text(check_message(ui.failure_message(make_view(S.FAILED), for_approver=True)))
    assert "LimitExceeded" in approver and "&lt;!channel&gt;" in approver
    assert "ask the requester to submit a new request" in approver
    requester = all_text(check_message(ui.failure_message(make_view(S.FAILED), for_approver=False)))
    assert "an approver has been told too" in requester


def test_notice_to_approvers() -> None:
    auto = check_message(ui.notice_to_approvers(make_view(S.COMPLETED, decided_by=BOT_ACTOR, rule_name=f"low {HOSTILE}")))
    text = all_text(auto)
    assert f"was approved automatically by rule *low {ui.esc(HOSTILE)}*." in text
    assert "What will be done in IAM" in text and "No permissions boundary" in text
    assert buttons(auto) == []
    bg = check_message(ui.notice_to_approvers(make_view(S.APPROVED, decided_by=REQUESTER, break_glass=True, decision_reason=HOSTILE)))
    text = all_text(bg)
    assert f"<@{REQUESTER}> approved their own request *{SHORT_ID}*" in text and f"*Why:* {HOSTILE_ESCAPED}" in text
    assert "Break-glass" in bg["text"]


def test_reminder_message() -> None:
    view = make_view(S.PENDING, quorum=2, approvals=(APPROVER,))
    msg = check_message(ui.reminder_message(view, number=2, escalated_to=["UBOSS00001", "SSECURITY1", HOSTILE]))
    text = msg["blocks"][0]["text"]["text"]
    assert msg["text"] == f"Reminder: request {SHORT_ID} for jane.doe still waits for a decision"
    assert text.startswith(f":bell: Reminder 2: request *{SHORT_ID}* for `jane.doe` still waits for a decision (1 of 2 approvals: <@{APPROVER}>).")
    assert "It expires <!date^" in text
    assert f"Escalated to <@UBOSS00001>, <!subteam^SSECURITY1>, {ui.esc(HOSTILE)}." in text
    plain = check_message(ui.reminder_message(make_view(S.PENDING, expires_at=None), number=1))
    assert plain["blocks"][0]["text"]["text"].endswith(f"*{SHORT_ID}* for `jane.doe` still waits for a decision.")


def test_timeline_message() -> None:
    view = make_view(S.FAILED)
    msg = check_message(ui.timeline_message(view, events=timeline_events(hostile=True)))
    text = all_text(msg)
    assert f"*{SHORT_ID}* `jane.doe` — {ui.STATE_WORDS[S.FAILED]}" in text
    assert f"Requested by <@{REQUESTER}>" in text
    assert "Checked against IAM: plan `aaaaaaaaaaaa` made" in text and "a" * 13 not in text
    assert "decision_refused" not in text and text.count("\n• ") == 6
    assert f"Policy `{ui.esc(HOSTILE.rsplit('/', 1)[-1])}` attached" in text
    assert "Added to group `dev`" in text
    assert "Denied by <@UAPPROVER02>: " + HOSTILE_ESCAPED in text
    assert "*Why it failed:* AWS refused CreateUser" in text
    long = check_message(ui.timeline_message(make_view(S.PENDING), events=timeline_events(n_extra=100)))
    assert all_text(long).count("Approvers reminded") == 30
    empty = check_message(ui.timeline_message(make_view(S.SUBMITTED), events=[]))
    assert "_no events yet_" in all_text(empty) and "being checked against IAM" in all_text(empty)


@pytest.mark.parametrize("worst", [False, True], ids=["small", "worst"])
def test_status_message(worst: bool) -> None:
    make = worst_view if worst else make_view
    mine = [make(s) for s in ALL_STATES] * 2  # more than the 10 shown
    awaiting = [make(S.PENDING) for _ in range(12)]
    msg = check_message(ui.status_message(mine=mine, awaiting=awaiting, query=None))
    assert msg["text"] == f"{len(mine)} request(s), 12 waiting for you"
    text = all_text(msg)
    assert "*Your recent requests*" in text and "*Waiting for your decision*" in text
    assert ui.STATE_WORDS[S.SUBMITTED] in text
    one = check_message(ui.status_message(mine=mine[:1], awaiting=[], query="jane.doe"))
    assert "*Requests matching `jane.doe`*" in all_text(one) and one["text"] == "1 request(s)"
    nothing = check_message(ui.status_message(mine=[], awaiting=[], query=None))
    assert "no IAM user requests yet" in all_text(nothing)
    no_match = check_message(ui.status_message(mine=[], awaiting=awaiting, query=HOSTILE))
    assert "No request of yours matches" in all_text(no_match) and HOSTILE_ESCAPED in all_text(no_match)


@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_status_line(state: RequestState) -> None:
    line = ui.status_line(make_view(state))
    assert line.startswith(f"• *{SHORT_ID}* `jane.doe` — {ui.STATE_WORDS[state]}")
    assert (f"decided by <@{APPROVER}>" in line) is (state in (S.APPROVED, S.PROVISIONING, S.COMPLETED, S.DENIED, S.FAILED))
    check_escaped(line)
    assert "decided by iam-bot" in ui.status_line(make_view(S.COMPLETED, decided_by=BOT_ACTOR))


def test_help_and_unknown_phrase_messages() -> None:
    msg = check_message(ui.help_message())
    assert [b["action_id"] for b in buttons(msg)] == [ids.A_OPEN_REQUEST]
    unknown = check_message(ui.unknown_phrase_message(HOSTILE * 10))
    assert "I don't know what `&lt;!channel&gt;" in all_text(unknown)


# ---------------------------------------------------------------- App Home


def test_home_for_a_requester() -> None:
    mine = (
        make_view(S.PENDING),
        replace(make_view(S.COMPLETED), id=43, short_id="R2"),
        replace(make_view(S.COMPLETED), id=44, short_id="R3"),
    )
    view = check_view(ui.home_view(user_id=REQUESTER, data=HomeData(mine=mine)), kind="home")
    assert [(b["action_id"], b.get("value")) for b in buttons(view)] == [(ids.A_OPEN_REQUEST, None), (ids.A_CANCEL, SHORT_ID)]
    text = all_text(view)
    assert "Waiting for me" not in text and "Recently decided" not in text
    assert f"`arn:aws:iam::{ACCOUNT}:user/jane.doe`" in text
    # the owner sees Reveal on the one whose credentials wait for them
    owner = check_view(ui.home_view(user_id=OWNER, data=HomeData(mine=mine, revealable=frozenset({44}))), kind="home")
    assert [(b["action_id"], b.get("value")) for b in buttons(owner)][1:] == [(ids.A_REVEAL, "R3")]
    empty = check_view(ui.home_view(user_id=REQUESTER, data=HomeData()), kind="home")
    assert "_None yet._" in all_text(empty)


def test_home_waiting_for_me_shows_plan_and_risk_next_to_approve() -> None:
    waiting = make_view(S.PENDING, spec=small_spec(copy_from="john.smith", reason=HOSTILE), risk_flags=("No permissions boundary", f"Group `{HOSTILE}` grants `X`"))
    data = HomeData(awaiting=(waiting,), recently_decided=(make_view(S.DENIED), make_view(S.COMPLETED)), is_approver=True)
    view = check_view(ui.home_view(user_id=APPROVER, data=data), kind="home")
    blocks = view["blocks"]
    headers = [b["text"]["text"] for b in blocks if b["type"] == "header"]
    assert headers == ["AWS IAM user requests", "My requests", "Waiting for me", "Recently decided"]
    start = next(i for i, b in enumerate(blocks) if b["type"] == "header" and b["text"]["text"] == "Waiting for me")
    summary, plan, risk = blocks[start + 1 : start + 4]
    actions = next(b for b in blocks[start + 4 :] if b["type"] == "actions")
    assert summary["text"]["text"].startswith(f"*{SHORT_ID}* `jane.doe` for <@{OWNER}>, requested by <@{REQUESTER}>")
    assert f"_{HOSTILE_ESCAPED}" in summary["text"]["text"] and "copy from `john.smith`" in summary["text"]["text"]
    assert waiting.plan is not None
    assert plan["text"]["text"].startswith(f"*Plan* `{short(waiting.plan.digest)}`\n1. Create the user at `/`")
    assert "Add to group `ops` _(copied from john.smith)_" in plan["text"]["text"]
    assert re.search("• through `dev`: " + held("AWSCodeCommitPowerUser", aws=True, version="v9"), plan["text"]["text"])
    assert risk["type"] == "section" and risk["text"]["text"].startswith("*:warning: Risk*\n• No permissions boundary\n• Group `&lt;!channel&gt;")
    # The same flags as the approval message shows next to its Approve button.
    assert risk["text"]["text"] in [b.get("text", {}).get("text") for b in ui.approval_message(waiting)["blocks"]]
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        (ids.A_APPROVE, f"{SHORT_ID}:{waiting.plan_digest}"),
        (ids.A_DENY, f"{SHORT_ID}:{waiting.plan_digest}"),
    ]
    recent = all_text(blocks[-1])
    assert f"denied, decided by <@{APPROVER}>" in recent and "user created" in recent
    nothing = check_view(ui.home_view(user_id=APPROVER, data=HomeData(is_approver=True)), kind="home")
    assert "_Nothing waits for your decision._" in all_text(nothing) and "_Nothing decided yet._" in all_text(nothing)


def test_home_never_offers_approve_without_a_pending_plan() -> None:
    no_plan = make_view(S.PENDING, plan=None)
    checking = replace(make_view(S.SUBMITTED), id=43, short_id="R2")
    view = check_view(ui.home_view(user_id=APPROVER, data=HomeData(awaiting=(no_plan, checking), is_approver=True)), kind="home")
    assert decide_values(view) == []
    assert f"*{SHORT_ID}* `jane.doe`" in all_text(view)  # still listed


@pytest.mark.parametrize("worst", [False, True], ids=["small", "worst"])
def test_home_with_every_state_and_the_most_it_lists(worst: bool) -> None:
    make = worst_view if worst else make_view
    mine = tuple(replace(make(s), id=i, short_id=f"R{i:06d}") for i, s in enumerate(ALL_STATES * 2))[:15]
    awaiting = tuple(replace(make(S.PENDING), id=100 + i, short_id=f"W{i:06d}") for i in range(15))
    recent = tuple(make(s) for s in ALL_STATES)[:10]
    for user in (REQUESTER, OWNER, APPROVER):
        data = HomeData(mine=mine, revealable=frozenset(v.id for v in mine), awaiting=awaiting, recently_decided=recent, is_approver=user == APPROVER)
        view = check_view(ui.home_view(user_id=user, data=data), kind="home")
        approve = [v for a, v in decide_values(view) if a == ids.A_APPROVE]
        if user == APPROVER:
            assert approve == [f"W{i:06d}:{awaiting[0].plan_digest}" for i in range(15)]
            assert all_text(view).count("*Plan* `") == 15
        else:
            assert approve == []


# ---------------------------------------------------------------- other modals


@pytest.mark.parametrize("user_name", ["jane.doe", "U" * 64, HOSTILE])
def test_deny_modal(user_name: str) -> None:
    view = check_view(ui.deny_modal(short_id=SHORT_ID, user_name=user_name))
    assert view["private_metadata"] == SHORT_ID
    assert view["callback_id"] == ids.DENY_VIEW
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [ids.B_DENY_REASON]
    assert f"`{ui.esc(user_name)}`" in all_text(view)


@pytest.mark.parametrize("user_name", ["jane.doe", "U" * 64, HOSTILE])
def test_break_glass_modal(user_name: str) -> None:
    view = check_view(ui.break_glass_modal(short_id=SHORT_ID, user_name=user_name))
    assert view["private_metadata"] == SHORT_ID
    assert view["callback_id"] == ids.BREAK_GLASS_VIEW
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert [b["block_id"] for b in inputs] == [ids.B_BG_REASON, ids.B_BG_CONFIRM]
    assert inputs[0]["element"]["max_length"] == 1000
    assert [o["value"] for o in inputs[1]["element"]["options"]] == [ids.BG_CONFIRMED]
    assert f"*{SHORT_ID}* for `{ui.esc(user_name)}`" in all_text(view)


@pytest.mark.parametrize("password,key", [(True, True), (True, False), (False, True)])
def test_reveal_modal(password: bool, key: bool) -> None:
    creds = credentials(password=password, key=key)
    view = check_view(ui.reveal_modal(creds))
    assert view["callback_id"] == ids.REVEAL_VIEW
    text = all_text(view)
    assert creds.console_url in text
    assert ("Zq7!pW2#mN9$kL4^" in text) is password
    assert ("AKIAIOSFODNN7EXAMPLE" in text) is key
    assert ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" in text) is key
    assert "User name,Password,Access key ID,Secret access key,Console login link" in text
    assert ("set a new password" in text) is password


def test_notice_modal_clips_title_and_message() -> None:
    view = check_view(ui.notice_modal("A very long title that Slack would reject", "m" * 5000))
    assert len(view["title"]["text"]) == 24
    assert len(view["blocks"][0]["text"]["text"]) == 3000


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    "raw,escaped",
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),  # escaped once, not reinterpreted
        ("<@U123|x>", "&lt;@U123|x&gt;"),
        ("plain", "plain"),
    ],
)
def test_esc(raw: str, escaped: str) -> None:
    assert ui.esc(raw) == escaped
    assert not re.search(r"[<>]", ui.esc(raw))


@pytest.mark.parametrize("n,limit", [(0, 5), (5, 5), (6, 5), (4000, 3000)])
def test_clip(n: int, limit: int) -> None:
    out = ui.clip("x" * n, limit)
    assert len(out) == min(n, limit)
    assert out.endswith("…") is (n > limit)


def test_when_renders_a_slack_date_with_fallback() -> None:
    assert ui.when(None) == "—"
    assert ui.when(T0) == f"<!date^{int(T0.timestamp())}^{{date_short_pretty}} at {{time}}|2024-05-01 12:00 UTC>"


def test_mention() -> None:
    assert ui.mention(APPROVER) == f"<@{APPROVER}>"
    assert ui.mention("SSECURITY1") == "<!subteam^SSECURITY1>"
    assert ui.mention(BOT_ACTOR) == "iam-bot"
    assert ui.mention(HOSTILE) == HOSTILE_ESCAPED + " *bold* `code`"


def test_approval_value_round_trips_and_is_bounded() -> None:
    digest = small_plan().digest
    assert ids.approval_value(SHORT_ID, digest) == f"{SHORT_ID}:{digest}"
    assert ids.parse_approval_value(ids.approval_value(SHORT_ID, digest)) == (SHORT_ID, digest)
    assert ids.approval_value(SHORT_ID, None) == SHORT_ID
    assert ids.parse_approval_value(SHORT_ID) == (SHORT_ID, None)
    assert ids.parse_approval_value("X" * 500 + ":" + "d" * 500) == ("X" * 20, None)  # the colon is past the bound
    assert ids.parse_approval_value("R1:" + "d" * 500) == ("R1", "d" * 64)


@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_audit_line_names_who_did_what(state: RequestState) -> None:
    view = make_view(state)
    line = ui.audit_line(view)
    assert SHORT_ID in line and "None" not in line
    assert f"requested by <@{REQUESTER}> for <@{OWNER}>" in line
    if state is S.CANCELLED:
        assert "cancelled by the requester" in line
    if state is S.COMPLETED:
        assert f"created (arn:aws:iam::{ACCOUNT}:user/jane.doe), approved by <@{APPROVER}>" in line
    if state is S.DENIED:
        assert f"denied by <@{APPROVER}>" in line
    if state is S.FAILED:
        assert "failed (AWS refused CreateUser (LimitExceeded). &lt;!channel&gt;" in line
    if state is S.EXPIRED:
        assert "expired without a decision" in line


def test_audit_line_flags_break_glass_and_drift() -> None:
    bg = ui.audit_line(make_view(S.APPROVED, decided_by=REQUESTER, break_glass=True))
    assert "BREAK-GLASS, review it" in bg
    drift = ui.audit_line(make_view(S.SUBMITTED, plan_changes=("new step: add to group:ops",)))
    assert "IAM drifted from the plan approved" in drift


@pytest.mark.parametrize(
    ("kind", "steps", "done"),
    [
        (PlanKind.CHANGE, (Step(StepKind.ADD_TO_GROUP, "operators"),), "done (change to the user)"),
        (PlanKind.CHANGE, (Step(StepKind.CREATE_ACCESS_KEY),), f"done (change to the user), credentials sent to <@{OWNER}>"),
        (PlanKind.OFFBOARD, (Step(StepKind.DELETE_USER),), "done (offboarding (the user is deleted))"),
        (PlanKind.ROTATE_KEY, (Step(StepKind.ADD_ACCESS_KEY, "AKIAKEPT"),), f"done (new access key), credentials sent to <@{OWNER}>"),
        (PlanKind.RESET_PASSWORD, (Step(StepKind.RESET_PASSWORD),), f"done (new console password), credentials sent to <@{OWNER}>"),
    ],
    ids=["change", "change-with-a-key", "offboard", "rotation", "password-reset"],
)
def test_outcome_text_of_a_day_two_request_says_what_was_done_not_that_a_user_was_created(kind: PlanKind, steps: tuple[Step, ...], done: str) -> None:
    plan = Plan(kind=kind, account=ACCOUNT, user_name=small_spec().user_name, steps=steps)
    approved = ui.outcome_text(make_view(S.APPROVED, plan=plan, kind=kind.value))
    completed = ui.outcome_text(make_view(S.COMPLETED, plan=plan, kind=kind.value))
    assert approved.endswith("— being applied…")
    assert completed.endswith(f"— {done}")
    assert "user created" not in completed and "creating the user" not in approved


def test_a_removal_shows_what_it_does_not_a_new_users_form_and_its_failure_names_the_request() -> None:
    spec = replace(small_spec(), console_access=False, access_key=False, groups=(), policy_arns=())
    plan = Plan(kind=PlanKind.OFFBOARD, account=ACCOUNT, user_name=spec.user_name, steps=(Step(StepKind.DELETE_USER),))
    view = make_view(S.PENDING, spec, plan=plan, kind=PlanKind.OFFBOARD.value)
    fields = ui.spec_fields(spec, requester_id=REQUESTER, kind=view.kind)
    assert "*This request*\noffboarding (the user is deleted)" in fields
    assert not any(f.startswith(("*Access type*", "*Groups*", "*Copy permissions from*")) for f in fields)
    failed = all_text(check_message(ui.failure_message(make_view(S.FAILED, spec, plan=plan, kind=PlanKind.OFFBOARD.value), for_approver=True)))
    assert f"Request *{SHORT_ID}* for `{spec.user_name}` (offboarding (the user is deleted)) failed" in failed
    assert "Creating IAM user" not in failed and f"/iam status {SHORT_ID}" in failed
