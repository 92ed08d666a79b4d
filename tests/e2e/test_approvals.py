"""Who may decide, one decision however many clicks, deny with a reason."""

from __future__ import annotations

import json
import threading

from sqlalchemy import func, select

from models import AccessRequest, AuditEvent, Decision, Job
from tests.support.harness import RunningBot, wait_until
from tests.support.journeys import APPROVER, APPROVER2, OUTSIDER, approval_messages, click, credentials_dm, request_user


def _state(bot, short_id: str) -> str:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest.state).where(AccessRequest.short_id == short_id)).one().value


def test_non_approver_is_refused_and_nothing_changes(bot):
    short_id = request_user(bot, access=["console"])
    click(bot, OUTSIDER, "approve_request", short_id)
    refusal = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == OUTSIDER)
    assert "designated approver" in refusal.args["text"]
    click(bot, OUTSIDER, "deny_request", short_id)
    bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == OUTSIDER and c is not refusal)
    assert _state(bot, short_id) == "pending"
    with bot.deps.sessionmaker.begin() as s:
        actors = [e.actor for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "decision_refused"))]
        assert actors == [OUTSIDER, OUTSIDER]
    assert bot.standin.calls_to("views.open")[-1].args["view"]["callback_id"] == "iam_request"  # no deny modal opened


def test_approver_cannot_decide_own_request(database_url, standin, moto, iam):
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, approvers=f"{APPROVER},{APPROVER2}").start()
    try:
        short_id = request_user(bot, APPROVER, access=["console"], owner=APPROVER)
        # The requester is not even asked: only the other approver gets the buttons.
        assert [m.args["channel"] for m in approval_messages(bot, short_id)] == ["DAPPROVER2"]
        click(bot, APPROVER, "approve_request", short_id)
        refusal = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER)
        assert "your own request" in refusal.args["text"]
        assert _state(bot, short_id) == "pending"
    finally:
        bot.stop()


def test_four_concurrent_approvals_make_one_user_and_one_dm(bot, iam):
    short_id = request_user(bot, user_name="race01", access=["console", "access_key"])
    messages = approval_messages(bot, short_id)
    assert len(messages) == 2
    barrier = threading.Barrier(4, timeout=30)
    statuses: list[int] = []

    def go(user: str, message) -> None:
        barrier.wait()
        statuses.append(click(bot, user, "approve_request", short_id, message).status_code)

    threads = [threading.Thread(target=go, args=(u, m)) for u in (APPROVER, APPROVER2) for m in messages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    credentials_dm(bot, short_id)
    wait_until(lambda: _state(bot, short_id) == "completed", what="completed")
    # Three losers were told who won, ephemerally.
    winner = None
    with bot.deps.sessionmaker.begin() as s:
        winner = s.scalars(select(AccessRequest.decided_by)).one()
        assert s.scalar(select(func.count()).select_from(Decision)) == 1
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "apply")) == 1
    wait_until(lambda: len(bot.standin.calls_to("chat.postEphemeral")) == 3, what="three refusals")
    for refusal in bot.standin.calls_to("chat.postEphemeral"):
        assert f"already approved by <@{winner}>" in refusal.args["text"]
    with bot.deps.sessionmaker.begin() as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.action == "decision_refused")).all()
        assert len(refused) == 3  # the late clicks are on record, with who made them
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["race01"]
    assert len(iam.list_access_keys(UserName="race01")["AccessKeyMetadata"]) == 1
    dms = [c for c in bot.standin.calls_to("chat.postMessage") if "reveal_credentials" in json.dumps(c.args.get("blocks"))]
    assert len(dms) == 1
    assert bot.standin.problems == []


def test_deny_asks_for_a_reason_and_tells_everyone(bot, iam):
    short_id = request_user(bot, user_name="nope01", access=["access_key"])
    before = len(bot.standin.calls_to("views.open"))
    click(bot, APPROVER, "deny_request", short_id)
    modal = wait_until(lambda: bot.standin.calls_to("views.open")[before:], what="deny modal")[0].response["view"]
    assert modal["callback_id"] == "iam_deny"
    # An empty reason is refused in the modal.
    resp = bot.slack.view_submission(APPROVER, modal, {"deny_reason": {"value": {"type": "plain_text_input", "value": "  "}}})
    assert resp.json()["response_action"] == "errors" and "deny_reason" in resp.json()["errors"]
    resp = bot.slack.view_submission(APPROVER, modal, {"deny_reason": {"value": {"type": "plain_text_input", "value": "Use the shared CI role instead"}}})
    assert resp.status_code == 200
    bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and "Use the shared CI role" in json.dumps(c.args["blocks"]))
    wait_until(lambda: _state(bot, short_id) == "denied", what="denied")

    def all_updated() -> bool:
        ups = {u.args["channel"] for u in bot.standin.calls_to("chat.update") if "Denied" in json.dumps(u.args["blocks"])}
        return ups == {"DAPPROVER1", "DAPPROVER2"}

    wait_until(all_updated, what="both approval messages show the denial")
    # A late approve gets told it was denied, and no user appears.
    click(bot, APPROVER2, "approve_request", short_id)
    late = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER2)
    assert f"already denied by <@{APPROVER}>" in late.args["text"]
    assert iam.list_users()["Users"] == []


def test_approval_channel_gets_one_message(database_url, standin, moto, iam):
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, approval_channel="CAPPROVALS").start()
    try:
        short_id = request_user(bot, access=["console"])
        assert [m.args["channel"] for m in approval_messages(bot, short_id)] == ["CAPPROVALS"]
        click(bot, APPROVER2, "approve_request", short_id)
        credentials_dm(bot, short_id)
        bot.standin.wait_for("chat.update", lambda c: c.args["channel"] == "CAPPROVALS" and "user created" in json.dumps(c.args["blocks"]))
    finally:
        bot.stop()
