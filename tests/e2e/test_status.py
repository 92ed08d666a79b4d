"""Status in plain words, by DM and @mention, with the request's timeline."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import AccessRequest
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

    before = len(bot.standin.calls_to("chat.postMessage"))
    bot.slack.mention(REQUESTER, f"status {pending_id}")
    reply = _reply(bot, "C0GENERAL", before)
    assert reply.args["thread_ts"] and pending_id in json.dumps(reply.args["blocks"])
    assert bot.standin.problems == []
