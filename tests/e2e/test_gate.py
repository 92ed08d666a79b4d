"""The gate holds (issue 11), over signed HTTP against moto and the Slack stand-in, SQLite and PostgreSQL.

Each finding of the security review, reproduced under the shipped example rules (approvers swapped
for the stand-in's people), and closed: what the user would effectively hold is judged, auto-approval
needs the whole plan inside its allowlist, what cannot be read is never waved through, and who may
approve is judged at the click.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from models import AccessRequest, AuditEvent, Job
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import (
    APPROVER,
    APPROVER2,
    approval_messages,
    click,
    credentials_dm,
    request_user,
    submit_form,
    submit_request,
)

APPROVER3 = "UAPPROVER3"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
BOUNDARY_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
EXAMPLE = (
    (Path(__file__).resolve().parents[2] / "deploy" / "rules.example.yml")
    .read_text()
    .replace("U0AAAAAA1", APPROVER)
    .replace("U0BBBBBB2", APPROVER2)
    .replace("S0SECURITY", APPROVER3)
    .replace("S0PLATFORM", APPROVER3)
)


@pytest.fixture
def world(iam) -> Any:
    """The account the example rules expect: its boundary, a group of admins with an admin in it, and plain groups."""
    iam.create_policy(PolicyName="iam-bot-boundary", PolicyDocument=json.dumps(BOUNDARY_DOC))
    iam.create_group(GroupName="admins")
    iam.attach_group_policy(GroupName="admins", PolicyArn=ADMIN)
    iam.create_user(UserName="root-ish")
    iam.add_user_to_group(GroupName="admins", UserName="root-ish")
    iam.create_group(GroupName="devs")
    return iam


@pytest.fixture
def make_bot(database_url, standin, moto, world, tmp_path: Path) -> Iterator[Any]:
    started: list[RunningBot] = []

    def make(rules: str = EXAMPLE, **kw: Any) -> RunningBot:
        path = tmp_path / "rules.yml"
        path.write_text(rules)
        bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"rules_path": str(path)}, **kw).start()
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.stop()


def _req(bot: RunningBot, *, user_name: str) -> AccessRequest | None:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest).where(AccessRequest.user_name == user_name)).first()


def _state(bot: RunningBot, user_name: str) -> str | None:
    req = _req(bot, user_name=user_name)
    return req.state.value if req else None


def test_group_admins_is_refused_in_the_modal(make_bot, world) -> None:
    bot = make_bot()
    answer = submit_form(bot, user_name="via-group01", access=["access_key"], groups=["admins"])
    assert answer["response_action"] == "errors"
    assert answer["errors"]["groups"].startswith("Group `admins` carries AdministratorAccess, which can never be granted through the bot")
    assert _req(bot, user_name="via-group01") is None and bot.standin.problems == []


def test_copying_an_admin_is_denied_after_submission_and_nobody_is_asked(make_bot, world, standin) -> None:
    bot = make_bot()
    submit_request(bot, user_name="copy-admin01", access=["access_key"], copy_from="root-ish")
    wait_until(lambda: _state(bot, "copy-admin01") == "denied", what="denied by the guardrail")
    req = _req(bot, user_name="copy-admin01")
    assert req is not None and req.decided_by == "iam-bot"
    assert req.decision_reason == "Refused by a guardrail: joining group admins (copied from root-ish) would grant AdministratorAccess, which the bot may never grant."
    told = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and req.short_id in c.args["text"] and "denied" in c.args["text"].lower())
    assert "copied from root-ish" in json.dumps(told.args["blocks"])
    bot.settle()
    assert approval_messages(bot, req.short_id) == []  # never offered to an approver
    assert world.list_users()["Users"][0]["UserName"] == "root-ish" and len(world.list_users()["Users"]) == 1


def test_auto_approval_only_for_a_request_wholly_inside_its_allowlist(make_bot, world, standin) -> None:
    bot = make_bot()
    # ReadOnlyAccess with a key, nothing else: the read-only rule approves it (the catch-all after it no longer hides it).
    submit_request(bot, user_name="reader01", access=["access_key"], policies=[READONLY])
    wait_until(lambda: _state(bot, "reader01") in ("approved", "provisioning", "completed"), what="auto-approved")
    reader = _req(bot, user_name="reader01")
    assert reader is not None and (reader.rule_name, reader.decided_by) == ("read-only", "iam-bot")
    credentials_dm(bot, reader.short_id)
    # The same plus a group: a person decides, and is told why it was not automatic.
    short_id = request_user(bot, user_name="mixed01", access=["access_key"], policies=[READONLY], groups=["devs"])
    mixed = _req(bot, user_name="mixed01")
    assert mixed is not None and (mixed.state.value, mixed.rule_name, mixed.auto_approve) == ("pending", "everyone-else", False)
    shown = json.dumps(approval_messages(bot, short_id)[0].args["blocks"])
    assert "Not auto-approved by rule read-only: group `devs` is outside its allowlist" in shown
    # The approver's Home shows the same risk flags next to its Approve button.
    home = standin.wait_for("views.publish", lambda c: c.args["user_id"] == APPROVER and short_id in json.dumps(c.args["view"]))
    assert "Not auto-approved by rule read-only" in json.dumps(home.args["view"])
    assert [u["UserName"] for u in world.list_users()["Users"] if u["UserName"] == "mixed01"] == []


def test_a_throttled_document_makes_it_manual_and_holds_it_until_it_can_be_read(database_url, standin, moto, world, tmp_path, monkeypatch) -> None:
    from tests.support.fault_proxy import FaultProxy

    proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore gives up at once: the bot must fail closed by itself
    rules = tmp_path / "rules.yml"
    rules.write_text(EXAMPLE)
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, extra={"rules_path": str(rules)}).start()
    try:
        proxy.fail("GetPolicyVersion", code="Throttling", times=10_000)
        short_id = request_user(bot, user_name="unread01", access=["access_key"], policies=[READONLY])
        req = _req(bot, user_name="unread01")
        assert req is not None and (req.state.value, req.auto_approve) == ("pending", False)  # manual, never automatic
        shown = json.dumps(approval_messages(bot, short_id)[0].args["blocks"])
        assert "Could not read policy ReadOnlyAccess (Throttling)" in shown
        assert "Not auto-approved by rule read-only: could not check policy ReadOnlyAccess (Throttling)" in shown
        # Approved anyway: the forbidden-actions guardrail could not be checked, so nothing is created yet.
        click(bot, APPROVER, "approve_request", short_id)
        wait_until(lambda: _job(bot, req.id) == ("queued", "Undecided during guardrail check"), what="held back by the guardrail check")
        assert "unread01" not in [u["UserName"] for u in world.list_users()["Users"]]
        # IAM answers again: the document is read, the plan made again and judged whole (now automatically approved).
        proxy.clear("GetPolicyVersion")
        clock.advance(seconds=60)
        bot.deps.worker.wake()
        credentials_dm(bot, short_id)
        with bot.deps.sessionmaker.begin() as s:
            actions = s.scalars(select(AuditEvent.action).where(AuditEvent.request_id == req.id).order_by(AuditEvent.id)).all()
        assert actions.index("plan_drift") < actions.index("auto_approved") < actions.index("applied:create_user")
    finally:
        bot.stop()
        proxy.stop()


def _job(bot: RunningBot, request_id: int) -> tuple[str, str | None] | None:
    with bot.deps.sessionmaker.begin() as s:
        job = s.scalars(select(Job).where(Job.request_id == request_id, Job.kind == "apply")).first()
        return (job.state.value, job.last_error) if job else None


def test_an_approver_removed_from_the_settings_is_refused_after_a_restart(database_url, standin, moto, world) -> None:
    first = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, approvers=f"{APPROVER},{APPROVER2}").start()
    try:
        short_id = request_user(first, user_name="waiting01", access=["access_key"])
        message = next(m for m in approval_messages(first, short_id) if m.args["channel"] == "DAPPROVER2")
    finally:
        first.stop()
    second = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, approvers=APPROVER).start()
    try:
        wait_until(lambda: _audited(second, "rule_reevaluated"), what="pending requests judged again at start")
        click(second, APPROVER2, "approve_request", short_id, message)
        refusal = standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER2)
        assert "designated approver" in refusal.args["text"]
        assert _state(second, "waiting01") == "pending"
        click(second, APPROVER, "approve_request", short_id, message)
        credentials_dm(second, short_id)
    finally:
        second.stop()


def _audited(bot: RunningBot, action: str) -> bool:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AuditEvent.id).where(AuditEvent.action == action)).first() is not None


def test_tag_keys_outside_the_allowlist_are_refused_in_the_modal(make_bot) -> None:
    bot = make_bot()
    answer = submit_form(bot, user_name="tagged01", access=["access_key"], tags="team=payments\nabac-role=admin")
    assert answer["response_action"] == "errors"
    assert answer["errors"]["tags"] == "Tag key `abac-role` may not be set here (allowed: `team`, `project`, `cost-center`)."
    assert submit_form(bot, user_name="tagged02", access=["access_key"], tags="team=payments")["response_action"] == "push"


def test_an_approval_can_be_withdrawn_before_quorum(make_bot, standin) -> None:
    bot = make_bot(f'rules:\n  - {{name: two-eyes, approvers: ["{APPROVER}", "{APPROVER2}", "{APPROVER3}"], quorum: 2}}\n')
    short_id = request_user(bot, user_name="twoeyes01", access=["access_key"])
    click(bot, APPROVER, "approve_request", short_id)
    standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER and "1 of 2" in c.args["text"])
    updated = standin.wait_for("chat.update", lambda c: "withdraw_approval" in json.dumps(c.args.get("blocks")))
    value = next(e["value"] for b in updated.args["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "withdraw_approval")
    bot.slack.block_action(APPROVER, "withdraw_approval", value, channel_id=updated.args["channel"], message_ts=updated.args["ts"])
    said = standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER and "withdrawn" in c.args["text"])
    assert "0 of 2 approvals" in said.args["text"]
    # A second approver alone is now one of two, not a quorum.
    click(bot, APPROVER2, "approve_request", short_id)
    standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER2 and "1 of 2" in c.args["text"])
    assert _state(bot, "twoeyes01") == "pending"
    # Someone with no approval to withdraw is told so.
    bot.slack.block_action(APPROVER3, "withdraw_approval", value, channel_id=updated.args["channel"], message_ts=updated.args["ts"])
    assert "no approval of this plan" in standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER3).args["text"]
    assert _audited(bot, "approval_withdrawn") and standin.problems == []


def test_a_pending_request_the_new_rules_refuse_is_denied_at_start(database_url, standin, moto, world, tmp_path) -> None:
    first = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url).start()
    try:
        short_id = request_user(first, user_name="before01", access=["access_key"], policies=[READONLY])
    finally:
        first.stop()
    rules = tmp_path / "rules.yml"
    rules.write_text(f'guardrails: {{forbidden_policies: ["ReadOnlyAccess"]}}\nrules:\n  - {{name: all, approvers: ["{APPROVER}"]}}\n')
    second = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"rules_path": str(rules)}).start()
    try:
        wait_until(lambda: _state(second, "before01") == "denied", what="denied by the new guardrail at start")
        req = _req(second, user_name="before01")
        assert req is not None and req.decision_reason == (
            "Refused by a guardrail under the current rules: ReadOnlyAccess may never be granted through the bot."
        )
        standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and short_id in c.args["text"] and "denied" in c.args["text"].lower())
        click(second, APPROVER, "approve_request", short_id)
        assert "already denied" in standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER).args["text"]
    finally:
        second.stop()
