"""Approval rules over signed HTTP: quorum, user-group approvers, guardrails in the modal, auto-approve,
reminders with back-off and escalation, expiry, break-glass. SQLite and PostgreSQL both."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

from models import AccessRequest, AuditEvent, Decision, Job
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import (
    APPROVER,
    APPROVER2,
    REQUESTER,
    approval_messages,
    click,
    credentials_dm,
    open_request_modal,
    request_user,
    submit_form,
)

APPROVER3 = "UAPPROVER3"
MEMBER1, MEMBER2 = "UMEMBER1", "UMEMBER2"
BACKUP = "UBACKUP1"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"




@pytest.fixture
def make_bot(database_url, standin, moto, iam, tmp_path: Path) -> Iterator[Any]:
    started: list[RunningBot] = []

    def make(rules: str, **kw: Any) -> RunningBot:
        path = tmp_path / "rules.yml"
        path.write_text(textwrap.dedent(rules))
        extra = {"rules_path": str(path), **kw.pop("extra", {})}
        bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra=extra, **kw).start()
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.stop()


def _req(bot: RunningBot, short_id: str) -> AccessRequest:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest).where(AccessRequest.short_id == short_id)).one()


def _count(bot: RunningBot, model: Any, *where: Any) -> int:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def _actions(bot: RunningBot, short_id: str) -> list[str]:
    with bot.deps.sessionmaker.begin() as s:
        req = s.scalars(select(AccessRequest).where(AccessRequest.short_id == short_id)).one()
        return [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.request_id == req.id).order_by(AuditEvent.id))]


def _updates_showing(bot: RunningBot, text: str) -> set[str]:
    return {u.args["channel"] for u in bot.standin.calls_to("chat.update") if text in json.dumps(u.args.get("blocks"))}


QUORUM_RULES = f"""\
rules:
  - name: two-eyes
    approvers: ["{APPROVER}", "{APPROVER2}", "{APPROVER3}"]
    quorum: 2
"""


def test_quorum_of_two_shows_progress_counts_a_person_once_and_provisions_on_the_second(make_bot, iam):
    bot = make_bot(QUORUM_RULES, approvers="")  # IAM_BOT_APPROVERS may be empty: the file has a catch-all rule
    short_id = request_user(bot, user_name="quorum01", access=["console"], policies=[ADMIN])
    messages = approval_messages(bot, short_id)
    assert {m.args["channel"] for m in messages} == {"DAPPROVER1", "DAPPROVER2", "DAPPROVER3"}
    first = json.dumps(messages[0].args["blocks"])
    # Risk is shown to approvers before anyone decides.
    # AdministratorAccess judged by its document, read from IAM like every other one; cloudsplaining's findings follow.
    assert "AWS-managed policy `AdministratorAccess (*)`" in first and "No permissions boundary" in first
    assert "Privilege escalation possible" in first
    assert "0 of 2 approvals" in first and "two-eyes" in first
    confirmation = bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and short_id in c.args["text"])
    assert "needs 2 approvals from" in json.dumps(confirmation.args["blocks"])

    click(bot, APPROVER, "approve_request", short_id, messages[0])
    told = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER)
    assert "1 of 2 approvals: <@UAPPROVER1>" in told.args["text"]
    wait_until(lambda: _updates_showing(bot, "1 of 2 approvals: <@UAPPROVER1>") == {"DAPPROVER1", "DAPPROVER2", "DAPPROVER3"}, what="every message shows 1 of 2")
    assert _req(bot, short_id).state.value == "pending"

    # The same person again counts once, and is told so.
    click(bot, APPROVER, "approve_request", short_id, messages[1])
    again = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER and c is not told)
    assert "already approved this request" in again.args["text"]
    assert _count(bot, Decision) == 1 and _req(bot, short_id).state.value == "pending"

    click(bot, APPROVER2, "approve_request", short_id, messages[1])
    credentials_dm(bot, short_id)
    wait_until(lambda: _req(bot, short_id).state.value == "completed", what="completed")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["quorum01"]
    assert _count(bot, Job, Job.kind == "apply") == 1
    wait_until(lambda: "DAPPROVER3" in _updates_showing(bot, "2 of 2 approvals: <@UAPPROVER1>, <@UAPPROVER2>"), what="final count shown")
    assert _actions(bot, short_id)[:5] == ["requested", "planned", "approval_recorded", "decision_refused", "approved"]
    assert bot.standin.problems == []


def test_concurrent_approvals_are_all_counted_and_approve_once(make_bot, iam):
    bot = make_bot(QUORUM_RULES, approvers="")
    short_id = request_user(bot, user_name="quorum02", access=["access_key"])
    messages = approval_messages(bot, short_id)
    # All three click at once: two approvals reach the quorum, whichever order they land in.
    barrier = threading.Barrier(3, timeout=30)

    def go(user: str, message: Any) -> None:
        barrier.wait()
        click(bot, user, "approve_request", short_id, message)

    threads = [threading.Thread(target=go, args=(u, m)) for u, m in zip((APPROVER, APPROVER2, APPROVER3), messages)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    credentials_dm(bot, short_id)
    wait_until(lambda: _req(bot, short_id).state.value == "completed", what="completed")
    assert _count(bot, Job, Job.kind == "apply") == 1
    assert _count(bot, Decision) == 2  # the third was refused: already approved
    late = bot.standin.wait_for("chat.postEphemeral", lambda c: "already approved by" in c.args["text"])
    assert late.args["user"] in (APPROVER, APPROVER2, APPROVER3)
    assert len(iam.list_access_keys(UserName="quorum02")["AccessKeyMetadata"]) == 1


GROUP_RULES = """\
rules:
  - name: security
    approvers: ["SSECURITY"]
"""


def test_user_group_members_approve_and_leaving_the_group_takes_the_right_away(make_bot, standin):
    standin.set_group_members("SSECURITY", [MEMBER1, MEMBER2, REQUESTER])
    bot = make_bot(GROUP_RULES, approvers="")
    short_id = request_user(bot, user_name="grouped01", access=["console"])
    # Members got it by DM; the requester, though a member, did not.
    assert {m.args["channel"] for m in approval_messages(bot, short_id)} == {"DMEMBER1", "DMEMBER2"}
    review = [c for c in standin.calls_to("views.open") if c.args["view"].get("callback_id") == "iam_request"]
    assert review  # the form was opened; the review named the group:
    pushed = [c for c in standin.calls if c.method == "chat.postMessage" and c.args["channel"] == "DREQUESTER1"]
    assert "<!subteam^SSECURITY>" in json.dumps(pushed[-1].args["blocks"])

    standin.set_group_members("SSECURITY", [MEMBER2])  # MEMBER1 leaves the group
    message = next(m for m in approval_messages(bot, short_id) if m.args["channel"] == "DMEMBER1")
    click(bot, MEMBER1, "approve_request", short_id, message)
    refusal = standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == MEMBER1)
    assert "designated approver" in refusal.args["text"]
    assert _req(bot, short_id).state.value == "pending"

    click(bot, MEMBER2, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert _req(bot, short_id).decided_by == MEMBER2
    assert any(c.args.get("usergroup") == "SSECURITY" for c in standin.calls_to("usergroups.users.list"))


GUARDRAILS = """\
guardrails:
  forbidden_policies: ["AdministratorAccess"]
  forbidden_actions: ["*", "iam:*"]
  required_boundaries: {"/iam-bot/prod/": "BOUNDARY_PROD"}
  max_groups: 1
rules:
  - name: everyone
    approvers: ["UAPPROVER1", "UAPPROVER2"]
"""


def test_guardrails_refuse_in_the_modal_and_fill_in_path_and_boundary(make_bot, iam, standin):
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "iam:*"], "Resource": "*"}]}
    wild = iam.create_policy(PolicyName="wild-iam", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    base = iam.create_policy(PolicyName="base-boundary", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))["Policy"]["Arn"]
    prod = iam.create_policy(PolicyName="prod-boundary", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}))["Policy"]["Arn"]
    for g in ("devs", "ops"):
        iam.create_group(GroupName=g)
    bot = make_bot(
        GUARDRAILS.replace("BOUNDARY_PROD", prod),
        extra={"user_path_prefix": "/iam-bot/", "permissions_boundary": base},
    )
    # The form opens with the path prefix and the required boundary filled in.
    view = open_request_modal(bot)
    path_block = next(b for b in view["blocks"] if b.get("block_id") == "path")
    boundary_block = next(b for b in view["blocks"] if b.get("block_id") == "boundary")
    assert path_block["element"]["initial_value"] == "/iam-bot/"
    assert boundary_block["element"]["initial_option"]["value"] == base

    answer = submit_form(bot, user_name="guarded01", policies=[ADMIN], groups=["devs", "ops"], path="/elsewhere/", boundary=base)
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert "AdministratorAccess can never be granted" in errors["policies"]
    assert "At most 1 group" in errors["groups"]
    assert "/iam-bot/" in errors["path"]

    answer = submit_form(bot, user_name="guarded01", policies=[wild], boundary=base)
    assert answer["response_action"] == "errors" and "wild-iam allows iam:*" in answer["errors"]["policies"]

    # Under /iam-bot/prod/ the file's boundary is required, not the setting's.
    answer = submit_form(bot, user_name="guarded01", path="/iam-bot/prod/", boundary=base)
    assert answer["response_action"] == "errors" and "prod-boundary" in answer["errors"]["boundary"]

    # Left empty, path and boundary are filled in; the review says which rule applies and who is asked.
    answer = submit_form(bot, user_name="guarded01", path="", boundary=None)
    assert answer["response_action"] == "push", answer
    review = json.dumps(answer["view"], ensure_ascii=False)
    assert "/iam-bot/" in review and "base-boundary" in review
    assert "Rule: *everyone* · needs 1 approval from <@UAPPROVER1>, <@UAPPROVER2>" in review
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalar(select(func.count()).select_from(AccessRequest)) == 0
    assert standin.problems == []


def test_policy_documents_not_read_in_the_form_are_judged_after_submission(make_bot, iam, standin):
    """Copying from a user whose inline policy allows `*`: refused by the bot once IAM is read."""
    iam.create_user(UserName="root-ish")
    iam.put_user_policy(UserName="root-ish", PolicyName="everything", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    bot = make_bot(GUARDRAILS.replace("BOUNDARY_PROD", "arn:aws:iam::123456789012:policy/x"))
    answer = submit_form(bot, user_name="copier01", copy_from="root-ish")
    assert answer["response_action"] == "push"
    resp = bot.slack.view_submission(REQUESTER, answer["view"], {})
    assert resp.json() == {"response_action": "clear"}
    told = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and "Denied" in json.dumps(c.args.get("blocks")))
    assert "copying from root-ish would grant everything, which allows *" in json.dumps(told.args["blocks"])
    with bot.deps.sessionmaker.begin() as s:
        req = s.scalars(select(AccessRequest)).one()
        assert (req.state.value, req.decided_by) == ("denied", "iam-bot")
    assert not [m for m in standin.calls_to("chat.postMessage") if "approve_request" in json.dumps(m.args.get("blocks"))]


ALLOWED_GROUPS = """\
guardrails:
  allowed_groups: ["developers", "read-*"]
rules:
  - name: everyone
    approvers: ["UAPPROVER1"]
"""


def test_groups_outside_allowed_groups_are_refused_on_the_form_and_when_copied(make_bot, iam, standin):
    """The bot's IAM policy lists only these groups: a requested one is a field error, a copied one a denial."""
    for g in ("developers", "read-only", "admins"):
        iam.create_group(GroupName=g)
    iam.create_user(UserName="template")
    iam.add_user_to_group(UserName="template", GroupName="admins")
    bot = make_bot(ALLOWED_GROUPS)

    answer = submit_form(bot, user_name="grouped01", groups=["developers", "admins"])
    assert answer["response_action"] == "errors"
    assert answer["errors"]["groups"] == "Group `admins` may not be joined through the bot (allowed: `developers`, `read-*`)."
    assert submit_form(bot, user_name="grouped01", groups=["developers", "read-only"])["response_action"] == "push"

    # Copying brings group admins: only the plan can know, and it is denied by iam-bot with the reason.
    answer = submit_form(bot, user_name="copier02", copy_from="template")
    assert answer["response_action"] == "push"
    bot.slack.view_submission(REQUESTER, answer["view"], {})
    told = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and "Denied" in json.dumps(c.args.get("blocks")))
    assert "group admins (copied from template) is not one the bot may add users to" in json.dumps(told.args["blocks"])
    with bot.deps.sessionmaker.begin() as s:
        req = s.scalars(select(AccessRequest)).one()
        assert (req.state.value, req.decided_by) == ("denied", "iam-bot")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["template"]
    assert standin.problems == []


AUTO_RULES = """\
rules:
  - name: read-only
    match: {policies: ["ReadOnlyAccess"]}
    auto_approve: true
"""


def test_low_risk_request_is_approved_automatically_audited_and_announced(make_bot, iam, standin):
    bot = make_bot(AUTO_RULES, extra={"audit_channel": "CAUDIT"})
    answer = submit_form(bot, user_name="reader01", access=["access_key"], policies=[READONLY])
    assert "approved automatically" in json.dumps(answer["view"])
    bot.slack.view_submission(REQUESTER, answer["view"], {})
    dm = credentials_dm(bot, _only_request(bot).short_id)
    assert dm.args["channel"] == "DREQUESTER1"
    short_id = _only_request(bot).short_id
    wait_until(lambda: _req(bot, short_id).state.value == "completed", what="completed")
    assert _req(bot, short_id).decided_by == "iam-bot"
    assert "auto_approved" in _actions(bot, short_id)
    # Approvers are told (no buttons), and so is the audit channel.
    for approver in ("DAPPROVER1", "DAPPROVER2"):
        notice = standin.wait_for("chat.postMessage", lambda c, a=approver: c.args["channel"] == a and "approved automatically" in c.args["text"])
        assert "approve_request" not in json.dumps(notice.args["blocks"])
    standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "CAUDIT" and "iam-bot (rule read-only)" in c.args["text"])
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["reader01"]
    assert standin.problems == []


def _only_request(bot: RunningBot) -> AccessRequest:
    return wait_until(lambda: _first(bot), what="the request")


def _first(bot: RunningBot) -> AccessRequest | None:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest)).first()


REMINDER_RULES = f"""\
reminders: {{first_after_hours: 4, backoff: 2, max: 2, escalate_to: ["{BACKUP}"], escalation_approves: true}}
rules:
  - name: everyone
    approvers: ["{APPROVER}", "{APPROVER2}"]
"""


def _replies(bot: RunningBot) -> list[Any]:
    return [c for c in bot.standin.calls_to("chat.postMessage") if c.args.get("thread_ts")]


def test_reminders_back_off_in_the_thread_escalate_and_two_workers_send_each_once(make_bot, database_url, standin):
    clock = FakeClock()
    bot = make_bot(REMINDER_RULES, clock=clock, housekeeping=False)
    other = make_bot(REMINDER_RULES, clock=clock, housekeeping=False, worker_id="replica-2")  # a second replica, same database
    short_id = request_user(bot, user_name="slow01", access=["console"])
    messages = {(m.response["channel"], m.response["ts"]) for m in approval_messages(bot, short_id)}

    def both_workers() -> None:
        barrier = threading.Barrier(2, timeout=30)

        def run(b: RunningBot) -> None:
            barrier.wait()
            b.deps.reminders.run_due()

        threads = [threading.Thread(target=run, args=(b,)) for b in (bot, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    clock.advance(hours=3, minutes=59)
    both_workers()
    assert _replies(bot) == []

    clock.advance(minutes=2)  # 4 h: the first reminder, as a reply in each approval message's thread
    both_workers()
    first = _replies(bot)
    assert {(c.args["channel"], c.args["thread_ts"]) for c in first} == messages and len(first) == len(messages)
    assert "Reminder 1" in first[0].args["text"] or "Reminder 1" in json.dumps(first[0].args["blocks"])

    clock.advance(hours=7)  # back-off: the second comes 8 h after the first, not 4
    both_workers()
    assert len(_replies(bot)) == len(messages)

    clock.advance(hours=1, minutes=1)  # the last reminder escalates to the backup approver
    both_workers()
    assert len(_replies(bot)) == 2 * len(messages)
    escalated = [m for m in approval_messages(bot, short_id) if m.args["channel"] == "DBACKUP1"]
    assert len(escalated) == 1
    assert _actions(bot, short_id).count("reminded") == 2 and _actions(bot, short_id).count("escalated") == 1

    clock.advance(hours=30)  # no more reminders after the last
    both_workers()
    assert len(_replies(bot)) == 2 * len(messages)

    # The backup can now decide.
    click(bot, BACKUP, "approve_request", short_id, escalated[0])
    wait_until(lambda: _req(bot, short_id).decided_by == BACKUP and _req(bot, short_id).state.value != "pending", what="approved by the backup")
    assert standin.problems == []


def test_escalation_asks_to_act_but_never_lowers_the_bar(make_bot, standin):
    clock = FakeClock()
    rules = f"""\
reminders: {{first_after_hours: 4, max: 1, escalate_to: ["{BACKUP}"]}}
rules:
  - {{name: two-eyes, approvers: ["{APPROVER}", "{APPROVER2}"], quorum: 2}}
"""
    bot = make_bot(rules, clock=clock, housekeeping=False)
    short_id = request_user(bot, user_name="strict01", access=["console"])
    message = approval_messages(bot, short_id)[0]
    clock.advance(hours=4, minutes=1)  # the first reminder is the last: it escalates
    bot.deps.reminders.run_due()
    notice = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DBACKUP1")
    assert "escalation contact" in json.dumps(notice.args["blocks"]) and "Only they can approve it" in json.dumps(notice.args["blocks"])
    assert [m for m in approval_messages(bot, short_id) if m.args["channel"] == "DBACKUP1"] == []  # no buttons for them
    assert _actions(bot, short_id).count("escalated") == 1
    # Clicking an approver's button anyway is refused: the rule keeps its quorum among the people it names.
    click(bot, BACKUP, "approve_request", short_id, message)
    refusal = standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == BACKUP)
    assert "designated approver" in refusal.args["text"]
    assert _req(bot, short_id).state.value == "pending"
    assert standin.problems == []


def test_pending_request_expires_after_72_hours(make_bot, standin):
    clock = FakeClock()
    bot = make_bot("rules: []\n", clock=clock, housekeeping=False)
    short_id = request_user(bot, user_name="never01", access=["console"])
    clock.advance(hours=71, minutes=59)
    assert bot.deps.reminders.run_due() == (0, 0)
    assert _req(bot, short_id).state.value == "pending"
    clock.advance(minutes=2)
    assert bot.deps.reminders.run_due() == (1, 0)
    assert bot.deps.reminders.run_due() == (0, 0)  # once
    assert _req(bot, short_id).state.value == "expired"
    wait_until(lambda: _updates_showing(bot, "Expired") == {"DAPPROVER1", "DAPPROVER2"}, what="approval messages updated")
    standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and "expired" in c.args["text"])
    assert "expired" in _actions(bot, short_id)
    click(bot, APPROVER, "approve_request", short_id)
    late = standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER)
    assert "expired" in late.args["text"]


BREAK_GLASS = f"""\
break_glass: {{requesters: ["{REQUESTER}"]}}
rules:
  - name: everyone
    approvers: ["{APPROVER}", "{APPROVER2}"]
    quorum: 2
"""


def test_break_glass_needs_a_reason_and_confirmation_tells_every_approver_and_is_flagged(make_bot, iam, standin):
    bot = make_bot(BREAK_GLASS, extra={"audit_channel": "CAUDIT"})
    short_id = request_user(bot, user_name="oncall01", access=["console"])
    confirmation = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and "break_glass" in json.dumps(c.args.get("blocks")))
    before = len(standin.calls_to("views.open"))
    bot.slack.block_action(REQUESTER, "break_glass", short_id, channel_id="DREQUESTER1", message_ts=confirmation.response["ts"])
    modal = wait_until(lambda: standin.calls_to("views.open")[before:], what="break-glass modal")[0].response["view"]
    assert modal["callback_id"] == "iam_break_glass"

    no_confirm = {"bg_reason": {"value": {"type": "plain_text_input", "value": "Prod is down"}}, "bg_confirm": {"value": {"type": "checkboxes", "selected_options": []}}}
    resp = bot.slack.view_submission(REQUESTER, modal, no_confirm)
    assert resp.json()["response_action"] == "errors" and set(resp.json()["errors"]) == {"bg_confirm"}
    confirmed = {**no_confirm, "bg_confirm": {"value": {"type": "checkboxes", "selected_options": [{"value": "confirmed", "text": {"type": "plain_text", "text": "x"}}]}}}
    assert bot.slack.view_submission(REQUESTER, modal, confirmed).status_code == 200

    credentials_dm(bot, short_id)
    req = _req(bot, short_id)
    assert req.break_glass and req.decided_by == REQUESTER and req.decision_reason == "Prod is down"
    for approver in ("DAPPROVER1", "DAPPROVER2"):
        standin.wait_for("chat.postMessage", lambda c, a=approver: c.args["channel"] == a and "Break-glass" in c.args["text"])
    standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "CAUDIT" and "BREAK-GLASS" in c.args["text"])
    assert "break_glass" in _actions(bot, short_id)

    # Someone not listed gets no such right.
    other = request_user(bot, APPROVER, user_name="notlisted01", access=["console"], owner=APPROVER)
    bot.slack.block_action(APPROVER, "break_glass", other, channel_id="DAPPROVER1", message_ts="1.1")
    refusal = standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER and "break-glass" in c.args["text"])
    assert "Only a requester listed" in refusal.args["text"]
    assert _req(bot, other).state.value == "pending"
    assert standin.problems == []
