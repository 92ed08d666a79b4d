"""App Home: my requests (Cancel, Reveal), and for approvers Waiting for me / Recently decided."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import AccessRequest
from tests.support.harness import wait_until
from tests.support.journeys import APPROVER, OUTSIDER, REQUESTER, approval_messages, request_user


def _open_home(bot, user: str) -> dict:
    before = len(bot.standin.calls_to("views.publish"))
    bot.slack.event({"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home", "event_ts": "1.1"})
    return _next_home(bot, user, before)


def _next_home(bot, user: str, before: int) -> dict:
    def published():
        return [c for c in bot.standin.calls_to("views.publish")[before:] if c.args["user_id"] == user]

    return wait_until(published, what=f"home of {user}")[-1].args["view"]


def _buttons(view: dict, short_id: str) -> list[str]:
    out = []
    for block in view["blocks"]:
        for el in [block.get("accessory") or {}, *(block.get("elements") or [])]:
            # Approve and Deny carry the plan's digest after the request's short id.
            if el.get("type") == "button" and str(el.get("value")).split(":", 1)[0] == short_id:
                out.append(el["action_id"])
    return out


def _state(bot, short_id: str) -> str:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest.state).where(AccessRequest.short_id == short_id)).one().value


def test_requester_and_approver_act_from_home(bot):
    short_id = request_user(bot, user_name="homely01", access=["access_key"])
    mine = _open_home(bot, REQUESTER)
    assert "My requests" in json.dumps(mine) and _buttons(mine, short_id) == ["cancel_request"]
    assert "Waiting for me" not in json.dumps(mine)  # not an approver

    approver_home = _open_home(bot, APPROVER)
    assert _buttons(approver_home, short_id) == ["approve_request", "deny_request"]

    # Approve from the Home tab, exactly as from the message.
    before = len(bot.standin.calls_to("views.publish"))
    value = next(el["value"] for b in approver_home["blocks"] for el in b.get("elements") or [] if el.get("action_id") == "approve_request")
    bot.slack.block_action(APPROVER, "approve_request", value, view=approver_home)
    wait_until(lambda: _state(bot, short_id) == "completed", what="completed")
    refreshed = _next_home(bot, APPROVER, before)
    assert _buttons(refreshed, short_id) == [] and "Recently decided" in json.dumps(refreshed) and short_id in json.dumps(refreshed)

    # The owner's Home offers the one reveal; it works from there and then disappears.
    def reveal_offered():
        view = _next_home(bot, REQUESTER, before)
        return view if _buttons(view, short_id) == ["reveal_credentials"] else None

    home = wait_until(reveal_offered, what="reveal button on Home")
    assert ":user/homely01" in json.dumps(home)  # the created user's ARN
    opened = len(bot.standin.calls_to("views.open"))
    after_reveal = len(bot.standin.calls_to("views.publish"))
    bot.slack.block_action(REQUESTER, "reveal_credentials", short_id, view=home)
    reveal = wait_until(lambda: bot.standin.calls_to("views.open")[opened:], what="reveal modal")[0]
    assert reveal.args["view"]["callback_id"] == "iam_reveal"
    # A Home read before the click may still be on its way: the one read after it has no button.
    wait_until(lambda: _buttons(_next_home(bot, REQUESTER, after_reveal), short_id) == [], what="the reveal button gone from Home")
    assert bot.standin.problems == []


def test_cancel_from_home_and_from_the_confirmation_dm(bot):
    first = request_user(bot, user_name="cancel01", access=["console"])
    second = request_user(bot, user_name="cancel02", access=["console"])
    home = _open_home(bot, REQUESTER)

    # Someone else cannot cancel it.
    bot.slack.block_action(OUTSIDER, "cancel_request", first, view=home)
    refusal = bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DOUTSIDER1")
    assert "Only the person who made this request" in refusal.args["text"]
    assert _state(bot, first) == "pending"

    bot.slack.block_action(REQUESTER, "cancel_request", first, view=home)
    wait_until(lambda: _state(bot, first) == "cancelled", what="cancelled from Home")
    wait_until(
        lambda: {u.args["channel"] for u in bot.standin.calls_to("chat.update") if "Cancelled" in json.dumps(u.args["blocks"])}
        >= {m.args["channel"] for m in approval_messages(bot, first)},
        what="approval messages show the cancellation",
    )

    confirmation = bot.standin.wait_for("chat.postMessage", lambda c: second in c.args["text"] and "sent for approval" in c.args["text"])
    bot.slack.block_action(
        REQUESTER, "cancel_request", second, channel_id=confirmation.response["channel"], message_ts=confirmation.response["ts"]
    )
    wait_until(lambda: _state(bot, second) == "cancelled", what="cancelled from the DM")
    bot.standin.wait_for("chat.update", lambda c: c.args["ts"] == confirmation.response["ts"] and "Cancelled" in json.dumps(c.args["blocks"]))
    # A late approval is told, and nothing is created.
    bot.slack.block_action(APPROVER, "approve_request", second, channel_id="DAPPROVER1", message_ts=approval_messages(bot, second)[0].response["ts"])
    late = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER)
    assert "cancelled by the requester" in late.args["text"]
    assert bot.standin.problems == []
