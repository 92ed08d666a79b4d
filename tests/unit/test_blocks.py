"""bot.slack.ui.blocks: every view and message validates with slack_sdk, stays in Slack's limits, and escapes user text."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

from bot.domain.spec import CopiedPermissions, RequestSpec, spec_columns
from bot.slack.ui import blocks as ui
from bot.slack.ui import ids
from bot.requests.validation import RawForm, validate_form
from bot.credentials.vault import Credentials
from models import AccessRequest, RequestState
from bot.demo.contract import MODAL_LABELS

S = RequestState
ALL_STATES = list(RequestState)
REQUESTER, OWNER, APPROVER = "UREQUESTER1", "UOWNER00001", "UAPPROVER01"
HOSTILE = "<!channel> & <@U123> <https://evil.example|click> *bold* `code`"
RAW_HOSTILE = ["<!channel>", "<@U123>", "<https://evil.example"]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- domain objects

def _long_arn(i: int, size: int = 400) -> str:
    name = f"team-{i:02d}/" + "P" * size
    return f"arn:aws:iam::123456789012:policy/{name}"


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
    assert len(spec.reason) == 3000 and len(spec.tags) == 49 and len(spec.policy_arns) == 20
    return spec


def small_spec(**overrides: Any) -> RequestSpec:
    fields: dict[str, Any] = dict(
        user_name="jane.doe",
        console_access=True,
        access_key=False,
        owner_id=OWNER,
        reason="Payments audit",
        groups=("dev",),
        policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        tags=(("team", "payments"),),
    )
    fields.update(overrides)
    return RequestSpec(**fields)


def make_request(state: RequestState, spec: RequestSpec | None = None, **overrides: Any) -> AccessRequest:
    spec = spec or small_spec()
    decided = state not in (S.PENDING, S.CANCELLED, S.EXPIRED)
    fields: dict[str, Any] = dict(
        id=42,
        short_id="R7KQ2ZX",
        state=state,
        requester_id=REQUESTER,
        **spec_columns(spec),
        created_at=T0,
        updated_at=T0 + timedelta(hours=1),
        decided_by=APPROVER if decided else None,
        decided_at=T0 + timedelta(minutes=30) if decided else None,
        decision_reason=None,
        failure_reason=None,
        user_arn=None,
    )
    if state is S.DENIED:
        fields["decision_reason"] = "No business need. " + HOSTILE
    if state is S.FAILED:
        fields["failure_reason"] = "AWS refused CreateUser (LimitExceeded). " + HOSTILE
    fields.update(overrides)
    return AccessRequest(**fields)


def worst_request(state: RequestState) -> AccessRequest:
    overrides: dict[str, Any] = {}
    if state is S.DENIED:
        overrides["decision_reason"] = (HOSTILE * 40)[:1000]
    if state is S.FAILED:
        overrides["failure_reason"] = HOSTILE * 200
    return make_request(state, worst_spec(), **overrides)


def copied_permissions(big: bool = False) -> CopiedPermissions:
    n = 10 if big else 2
    return CopiedPermissions(
        source_user="C" * 64 if big else "john.smith",
        groups=tuple(f"{i:02d}" + "g" * 126 for i in range(n)),
        policy_arns=tuple(_long_arn(i) for i in range(20 if big else 2)),
        inline_policies=tuple(f"inline-{i}-{HOSTILE}" for i in range(n)),
        permissions_boundary=_long_arn(7) if big else None,
        inline_documents={"inline-0": "{}"},
    )


def credentials(password: bool = True, key: bool = True) -> Credentials:
    return Credentials(
        user_name="U" * 64,
        console_url="https://123456789012.signin.aws.amazon.com/console",
        account="123456789012",
        password="Zq7!pW2#mN9$kL4^Zq7!pW2#" if password else None,
        access_key_id="AKIAIOSFODNN7EXAMPLE" if key else None,
        secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" if key else None,
    )


# ---------------------------------------------------------------- checks

def check_view(view: dict[str, Any]) -> dict[str, Any]:
    json.dumps(view)
    parsed = View(**view)
    parsed.validate_json()
    assert parsed.to_dict() == view
    assert view["type"] == "modal"
    assert len(view["blocks"]) <= 100
    assert len(view["title"]["text"]) <= 24
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
    json.dumps(msg)
    check_escaped(msg)
    return msg


def check_escaped(obj: dict[str, Any]) -> None:
    dumped = json.dumps(obj, ensure_ascii=False)
    for raw in RAW_HOSTILE:
        assert raw not in dumped, f"unescaped user text {raw!r}"


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


def buttons(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"]


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


def test_request_modal_limits_match_validation() -> None:
    view = ui.request_modal(requester_id=REQUESTER)
    by_id = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert by_id[ids.B_USER_NAME]["element"]["max_length"] == 64
    assert by_id[ids.B_PATH]["element"]["max_length"] == 512
    assert by_id[ids.B_REASON]["element"]["max_length"] == 3000


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
    for o in out:
        Option(text=o["text"]["text"], value=o["value"]).validate_json()
        assert set(o) == {"text", "value"}
        assert o["text"]["type"] == "plain_text"
        assert len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150


# ---------------------------------------------------------------- review modal

@pytest.mark.parametrize("spec_kind", ["small", "worst"])
@pytest.mark.parametrize("copy_state", ["none", "loading", "copied", "error"])
def test_review_modal(spec_kind: str, copy_state: str) -> None:
    spec = small_spec(reason="Payments audit " + HOSTILE) if spec_kind == "small" else worst_spec()
    if copy_state == "none":
        spec = replace(spec, copy_from=None)
    elif spec.copy_from is None:
        spec = replace(spec, copy_from="john.smith")
    copied = copied_permissions(big=spec_kind == "worst") if copy_state == "copied" else None
    error = f"AWS refused GetUser (AccessDenied: {HOSTILE})." if copy_state == "error" else None
    approvers = [f"UAPPROVER{i:02d}" for i in range(30)]
    view = check_view(
        ui.review_modal(spec=spec, draft_id="d" * 16, requester_id=REQUESTER, approvers=approvers, copied=copied, copy_error=error)
    )
    assert view["private_metadata"] == "d" * 16
    assert view["external_id"] == ids.review_external_id("d" * 16)
    text = all_text(view)
    assert "*User name*" in text and f"`{spec.user_name}`" in text
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in text  # the reason, escaped
    if copy_state == "loading":
        assert "Reading" in text
    if copy_state == "error":
        assert "Could not read" in text
    if copy_state == "copied":
        assert "Copied from" in text


def test_review_modal_without_permissions_says_so() -> None:
    spec = small_spec(groups=(), policy_arns=())
    text = all_text(check_view(ui.review_modal(spec=spec, draft_id="d1", requester_id=REQUESTER, approvers=[])))
    assert "No permissions" in text
    assert "no approver is configured" in text


def test_review_modal_with_long_copy_error() -> None:
    spec = small_spec(copy_from="john.smith")
    check_view(ui.review_modal(spec=spec, draft_id="d1", requester_id=REQUESTER, approvers=[], copy_error="<" * 1000))


# ---------------------------------------------------------------- approval message

@pytest.mark.parametrize("worst", [False, True], ids=["small", "worst"])
@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_approval_message_in_every_state(state: RequestState, worst: bool) -> None:
    req = worst_request(state) if worst else make_request(state)
    msg = check_message(ui.approval_message(req, copied=copied_permissions(big=worst) if worst else None))
    text = all_text(msg).replace("*", "")
    found = buttons(msg)
    if state is S.PENDING:
        assert [(b["text"]["text"], b["action_id"], b["value"]) for b in found] == [
            ("Approve", ids.A_APPROVE, req.short_id),
            ("Deny", ids.A_DENY, req.short_id),
        ]
        assert "Approved by" not in text and "Denied by" not in text
    else:
        assert found == []
    if state in (S.APPROVED, S.PROVISIONING, S.COMPLETED, S.FAILED):
        assert f"Approved by <@{APPROVER}>" in text
    if state is S.DENIED:
        assert f"Denied by <@{APPROVER}>" in text
    if state is S.CANCELLED:
        assert "Cancelled by the requester" in text
    if state is S.EXPIRED:
        assert "Expired" in text
    assert f"<@{REQUESTER}>" in text
    header = msg["blocks"][0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150


def test_approval_message_escapes_reason_and_shows_fields() -> None:
    req = make_request(S.PENDING, small_spec(reason=HOSTILE, copy_from="john.smith"))
    msg = check_message(ui.approval_message(req, copied=copied_permissions()))
    text = all_text(msg)
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in text
    for expected in ("`jane.doe`", "`dev`", "`ReadOnlyAccess`", "`team=payments`", "Copied from `john.smith`"):
        assert expected in text


def test_denied_message_shows_escaped_reason() -> None:
    text = all_text(check_message(ui.approval_message(make_request(S.DENIED))))
    assert "No business need. &lt;!channel&gt;" in text


# ---------------------------------------------------------------- other messages and views

@pytest.mark.parametrize("worst", [False, True], ids=["small", "worst"])
@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_requester_and_owner_messages(state: RequestState, worst: bool) -> None:
    req = worst_request(state) if worst else make_request(state)
    check_message(ui.decision_message(req))
    check_message(ui.submitted_message(req, approvers=[APPROVER, "UAPPROVER02"]))
    check_message(ui.credentials_ready_message(req, expires_at=T0 + timedelta(days=1)))
    check_message(ui.credentials_gone_message(req, revealed_at=T0))
    check_message(ui.credentials_gone_message(req, revealed_at=None))
    check_message(ui.failure_message(req, for_approver=True))
    check_message(ui.failure_message(req, for_approver=False))


def test_decision_message_for_denial_suggests_a_new_request() -> None:
    text = all_text(check_message(ui.decision_message(make_request(S.DENIED)))).replace("*", "")
    assert f"Denied by <@{APPROVER}>" in text
    assert "/iam request" in text


def test_credentials_ready_message_has_only_a_reveal_button() -> None:
    req = make_request(S.COMPLETED)
    msg = check_message(ui.credentials_ready_message(req, expires_at=T0 + timedelta(days=1)))
    assert [(b["action_id"], b["value"]) for b in buttons(msg)] == [(ids.A_REVEAL, req.short_id)]


def test_failure_message_escapes_the_error() -> None:
    text = all_text(check_message(ui.failure_message(make_request(S.FAILED), for_approver=True)))
    assert "LimitExceeded" in text and "&lt;!channel&gt;" in text


@pytest.mark.parametrize("worst", [False, True], ids=["small", "worst"])
def test_status_message(worst: bool) -> None:
    make = worst_request if worst else make_request
    mine = [make(s) for s in ALL_STATES] * 2  # more than the 10 shown
    awaiting = [make(S.PENDING) for _ in range(12)]
    msg = check_message(ui.status_message(mine=mine, awaiting=awaiting, query=None))
    assert msg["text"] == "16 request(s), 12 waiting for you"
    check_message(ui.status_message(mine=mine[:1], awaiting=[], query="jane.doe"))
    nothing = check_message(ui.status_message(mine=[], awaiting=[], query=None))
    assert "no IAM user requests yet" in all_text(nothing)
    no_match = check_message(ui.status_message(mine=[], awaiting=awaiting, query=HOSTILE))
    assert "No request of yours matches" in all_text(no_match)


def test_help_message() -> None:
    msg = check_message(ui.help_message())
    assert [b["action_id"] for b in buttons(msg)] == [ids.A_OPEN_REQUEST]


@pytest.mark.parametrize("user_name", ["jane.doe", "U" * 64, HOSTILE])
def test_deny_modal(user_name: str) -> None:
    view = check_view(ui.deny_modal(short_id="R7KQ2ZX", user_name=user_name))
    assert view["private_metadata"] == "R7KQ2ZX"
    assert view["callback_id"] == ids.DENY_VIEW
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [ids.B_DENY_REASON]


@pytest.mark.parametrize("password,key", [(True, True), (True, False), (False, True)])
def test_reveal_modal(password: bool, key: bool) -> None:
    creds = credentials(password=password, key=key)
    view = check_view(ui.reveal_modal(creds))
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


@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_audit_line_names_who_did_what(state: RequestState) -> None:
    req = make_request(state)
    line = ui.audit_line(req)
    assert req.short_id in line and "None" not in line
    if state is RequestState.CANCELLED:
        assert "cancelled by the requester" in line
