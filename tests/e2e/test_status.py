"""Status in plain words, by DM and @mention, with the request's timeline."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import AccessRequest
from tests.support.harness import wait_until
from tests.support.journeys import APPROVER, OUTSIDER, REQUESTER, click, credentials_dm, request_user


def _reply(bot, channel: str, before: int):
    from tests.support.harness import wait_until

    def new():
        return [c for c in bot.standin.calls_to("chat.postMessage")[before:] if c.args["channel"] == channel]

    return wait_until(new, what=f"a reply in {channel}")[0]


def test_status_phrasings_in_dm_and_mentions(bot):
    pending_id = request_user(bot, user_name="waiting01", access=["console"])
    done_id = request_user(bot, user_name="finished01", access=["access_key"])
    click(bot, APPROVER, "approve_request", done_id)
    credentials_dm(bot, done_id)
    with bot.deps.sessionmaker.begin() as s:
        numeric = s.scalars(select(AccessRequest.id).where(AccessRequest.short_id == done_id)).one()

    def ask(text: str, user: str = REQUESTER) -> str:
        before = len(bot.standin.calls_to("chat.postMessage"))
        bot.slack.dm(user, text)
        return json.dumps(_reply(bot, "D" + user[1:], before).args["blocks"])

    mine = ask("my requests")
    assert pending_id in mine and done_id in mine
    timeline = ask("status finished01")
    for words in ("Requested by", "Approved by", "IAM user created", "Access key created", "Credentials sent"):
        assert words in timeline
    assert done_id in ask(f"status #{numeric}")
    pending = ask("what's pending")
    assert pending_id in pending and done_id not in pending
    assert "Waiting for your decision" in ask("what's pending", APPROVER)
    assert "/iam request" in ask("help")
    assert "don't know what" in ask("make me an admin please")
    # Someone else's request is not shown to an outsider.
    assert "No request of yours matches" in ask("status finished01", OUTSIDER)

    bot.slack.mention(REQUESTER, f"status {pending_id}")
    reply = bot.standin.wait_for("chat.postEphemeral", lambda c: pending_id in json.dumps(c.args["blocks"]))
    assert reply.args["channel"] == "C0GENERAL" and reply.args["user"] == REQUESTER
    assert bot.standin.problems == []


def _deny(bot, short_id: str, reason: str) -> None:
    before = len(bot.standin.calls_to("views.open"))
    click(bot, APPROVER, "deny_request", short_id)
    modal = wait_until(lambda: bot.standin.calls_to("views.open")[before:], what="deny modal")[0].response["view"]
    resp = bot.slack.view_submission(APPROVER, modal, {"deny_reason": {"value": {"type": "plain_text_input", "value": reason}}})
    assert resp.status_code == 200, resp.text
    bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and reason in json.dumps(c.args["blocks"]))


def test_mention_in_a_channel_is_answered_to_the_asker_alone(bot):
    """A timeline (deny reasons included) is the asker's business: in a channel it is ephemeral, in the
    thread the mention was in; only the bot's DM gets a plain message."""
    reason = "Contractor access needs a signed NDA first"
    denied_id = request_user(bot, user_name="denied01", access=["console"])
    _deny(bot, denied_id, reason)

    def postings_in(channel: str, since: int) -> list[str]:
        return [json.dumps(c.args) for c in bot.standin.calls_to("chat.postMessage")[since:] if c.args["channel"] == channel]

    posts, ephemerals = len(bot.standin.calls_to("chat.postMessage")), len(bot.standin.calls_to("chat.postEphemeral"))
    # A mention at the top of a channel: an ephemeral to the asker there, outside any thread.
    bot.slack.mention(REQUESTER, f"status {denied_id}", channel="C0GENERAL")
    top = bot.standin.wait_for("chat.postEphemeral", lambda c: denied_id in json.dumps(c.args["blocks"]))
    assert (top.args["channel"], top.args["user"], top.args.get("thread_ts")) == ("C0GENERAL", REQUESTER, None)
    shown = json.dumps(top.args["blocks"])
    assert "Denied by" in shown and reason in shown and top.response["ok"]
    # A mention in a thread: the ephemeral goes to that thread.
    bot.slack.mention(REQUESTER, "my requests", channel="C0TEAM", thread_ts="1700000000.000100")
    threaded = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["channel"] == "C0TEAM")
    assert threaded.args["user"] == REQUESTER and threaded.args["thread_ts"] == "1700000000.000100"
    assert denied_id in json.dumps(threaded.args["blocks"])
    # Someone else asking in a channel gets their own (empty) answer, privately too.
    bot.slack.mention(OUTSIDER, f"status {denied_id}", channel="C0GENERAL")
    other = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == OUTSIDER)
    assert other.args["channel"] == "C0GENERAL" and reason not in json.dumps(other.args)

    bot.settle()
    assert len(bot.standin.calls_to("chat.postEphemeral")) == ephemerals + 3
    assert postings_in("C0GENERAL", posts) == [] and postings_in("C0TEAM", posts) == []
    assert not any(reason in p for c in ("C0GENERAL", "C0TEAM") for p in postings_in(c, 0))

    # The DM with the bot is private already: a plain message there, no ephemeral.
    bot.slack.dm(REQUESTER, f"status {denied_id}")
    dm = wait_until(
        lambda: [c for c in bot.standin.calls_to("chat.postMessage")[posts:] if c.args["channel"] == "DREQUESTER1" and "Denied by" in json.dumps(c.args["blocks"])],
        what="the status reply in the DM",
    )[0]
    assert reason in json.dumps(dm.args["blocks"])
    bot.settle()
    assert len(bot.standin.calls_to("chat.postEphemeral")) == ephemerals + 3
    assert bot.standin.problems == []
