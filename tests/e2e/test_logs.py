"""The running bot's log lines, as a log collector reads them: JSON, with the ids, without secrets."""

from __future__ import annotations

import io
import json
import logging

from bot.runtime.logsetup import make_handler
from tests.support.harness import wait_until
from tests.support.journeys import APPROVER, REQUESTER, approval_messages, click, credentials_dm, request_user


def test_every_line_is_json_names_its_request_and_slack_ids_and_holds_no_secret(bot, iam, moto):
    out = io.StringIO()  # not a terminal: JSON lines, as in a container or under systemd
    handler = make_handler(out)
    root = logging.getLogger()
    root.addHandler(handler)  # the harness set the root logger to DEBUG: our loggers at their most verbose
    try:
        iam.create_group(GroupName="developers")
        moto.start_recording()
        short_id = request_user(bot, user_name="developer01", groups=["developers"])
        message = approval_messages(bot, short_id)[0]
        click(bot, APPROVER, "approve_request", short_id, message)
        dm = credentials_dm(bot, short_id)
        before = len(bot.standin.calls_to("views.open"))
        click(bot, REQUESTER, "reveal_credentials", short_id, dm)
        reveal = wait_until(lambda: bot.standin.calls_to("views.open")[before:], what="reveal modal")[0]
        bot.slack.dm(REQUESTER, "status")
        bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and short_id in json.dumps(c.args["blocks"]))
        # Both are recorded after what the steps above waited for (the DM sent, the modal opened).
        wait_until(lambda: all(f"event {a} by" in out.getvalue() for a in ("credentials_delivered", "credentials_revealed")), what="the last events")
    finally:
        root.removeHandler(handler)

    password = next(r["Password"] for r in moto.recorded() if r.get("Action") == "CreateLoginProfile")
    secret = next(
        b["text"]["text"].split("```")[1] for b in reveal.args["view"]["blocks"] if b.get("text", {}).get("text", "").startswith("*Secret access key*")
    )
    assert password in json.dumps(reveal.args["view"]) and len(secret) == 40  # the secrets are real, and were shown

    text = out.getvalue()
    assert password not in text and secret not in text and bot.settings.slack_bot_token not in text
    entries = [json.loads(line) for line in text.splitlines()]  # every line parses
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)

    slack = [e for e in entries if e["logger"] == "bot.slack"]
    kinds = [e["slack"] for e in slack]
    assert kinds[:3] == ["command /iam", "view_submission iam_request", "view_submission iam_review"], kinds
    assert "action approve_request" in kinds and "action reveal_credentials" in kinds and "event message" in kinds
    assert all(e["team"] == "T0TEST" and e["user"].startswith("U") for e in slack)
    approve = next(e for e in slack if e["slack"] == "action approve_request")
    assert approve["user"] == APPROVER and approve["request"] == short_id and approve["channel"] == message.response["channel"] and approve["trigger"]

    def event(action: str) -> dict:
        return next(e for e in entries if e["logger"] == "bot.audit" and e["message"].startswith(f"event {action} "))

    # Lines written by handlers carry the delivery's ids (Bolt runs them in another thread, after ack).
    assert event("approved")["user"] == APPROVER and event("approved")["request"] == short_id
    assert event("credentials_revealed")["user"] == REQUESTER and event("credentials_revealed")["request"] == short_id
    assert event("requested")["trigger"] and event("requested")["user"] == REQUESTER
    # Lines written by the worker carry the job and the request.
    for action in ("planned", "applied:create_user", "applied:create_access_key", "completed", "credentials_delivered"):
        assert event(action)["request"] == short_id and event(action)["job"], action
        assert "user" not in event(action)  # no Slack delivery's ids leak into the worker
