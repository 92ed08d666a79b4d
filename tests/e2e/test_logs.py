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


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _both_formats() -> tuple[logging.Handler, logging.Handler, io.StringIO, io.StringIO]:
    """The real log handlers: JSON lines (off a terminal) and text (at one), both on the root logger."""
    json_out, text_out = io.StringIO(), _Tty()
    json_handler, text_handler = make_handler(json_out), make_handler(text_out)
    assert type(json_handler.formatter).__name__ == "JsonFormatter" and type(text_handler.formatter).__name__ == "TextFormatter"
    for handler in (json_handler, text_handler):
        logging.getLogger().addHandler(handler)
    return json_handler, text_handler, json_out, text_out


def test_a_failing_listener_logs_its_type_and_place_and_no_secret_from_its_traceback(bot):
    """An exception raised in a listener with a token and a password in its message, its cause's
    message, a note and its locals: the log names the type and where, and holds none of them."""
    import secrets

    from bot.credentials.passwords import PasswordPolicy, generate_password
    from handlers.errors import SORRY

    token = "xoxb-" + secrets.token_hex(12)  # made here, so no source line could hold them either
    password = generate_password(PasswordPolicy())

    def leaky_listener(ack, body):
        ack()
        credentials = {"token": token, "password": password}  # a local holding both
        try:
            raise KeyError(f"no profile for password {credentials['password']}")
        except KeyError as exc:
            exc.add_note(f"token was {token}")
            raise RuntimeError(f"Slack refused token {token} and password {password}") from exc

    bot.app.action("leaky_test_action")(leaky_listener)
    json_handler, text_handler, json_out, text_out = _both_formats()
    try:
        resp = bot.slack.block_action(REQUESTER, "leaky_test_action", "x")
        assert resp.status_code == 200
        # The error handler's DM to the person is sent after it logged: waiting for it is waiting for the log.
        bot.standin.wait_for("chat.postMessage", lambda c: c.args.get("channel") == "DREQUESTER1" and c.args.get("text") == SORRY)
        bot.settle()
    finally:
        logging.getLogger().removeHandler(json_handler)
        logging.getLogger().removeHandler(text_handler)

    entries = [json.loads(line) for line in json_out.getvalue().splitlines()]
    failed = [e for e in entries if e["message"].startswith("listener failed:")]
    assert len(failed) == 1 and failed[0]["level"] == "ERROR", entries
    assert failed[0]["message"].startswith("listener failed: RuntimeError at tests/e2e/test_logs.py:")
    assert "in leaky_listener" in failed[0]["message"] and "exception" not in failed[0]  # the place, no traceback
    text = text_out.getvalue()
    assert "listener failed: RuntimeError at tests/e2e/test_logs.py:" in text
    for output in (json_out.getvalue(), text, bot.logs.text()):
        assert token not in output and password not in output
        assert "xoxb-" not in output and "Slack refused" not in output and "no profile for" not in output


def test_an_apply_job_that_crashes_after_the_password_was_made_logs_no_secret(tmp_path, standin, moto, iam):
    """A real fault (the database refuses to store the sealed credentials) while the new password is a
    local of the job: the log names the exception and its frames, and none of its text (the database's
    message, the SQL) nor any value reaches it. (The engine also hides SQL parameters: hide_parameters.)"""
    from sqlalchemy import text

    from tests.support.harness import RunningBot

    bot = RunningBot(database_url=f"sqlite:///{tmp_path / 'bot.db'}", standin=standin, moto_url=moto.url).start()
    json_handler, text_handler, json_out, text_out = _both_formats()
    try:
        with bot.deps.engine.begin() as c:  # the first seal (no secret yet) goes in; sealing the password does not
            c.execute(text(
                "CREATE TRIGGER refuse_sealed BEFORE UPDATE OF ciphertext ON credential_envelopes "
                "WHEN OLD.ciphertext IS NOT NULL AND NEW.ciphertext IS NOT NULL BEGIN SELECT RAISE(ABORT, 'storage refused'); END"
            ))
        moto.start_recording()
        short_id = request_user(bot, user_name="crashes01", access=["console"])
        click(bot, APPROVER, "approve_request", short_id, approval_messages(bot, short_id)[0])
        wait_until(lambda: "request " + short_id + " failed" in json_out.getvalue(), what="the job failed")
        bot.settle()
    finally:
        logging.getLogger().removeHandler(json_handler)
        logging.getLogger().removeHandler(text_handler)
        bot.stop()

    password = next(r["Password"] for r in moto.recorded() if r.get("Action") == "CreateLoginProfile")
    entries = [json.loads(line) for line in json_out.getvalue().splitlines()]
    crashed = next(e for e in entries if e["message"].startswith("apply job") and e["message"].endswith("crashed"))
    assert "sqlalchemy.exc.IntegrityError" in crashed["exception"] and "bot/jobs/applying.py" in crashed["exception"]
    for output in (json_out.getvalue(), text_out.getvalue(), bot.logs.text()):
        assert password not in output
        assert "gAAAAA" not in output  # a Fernet token (the ciphertext), whole or cut
        assert "[parameters:" not in output and "storage refused" not in output
