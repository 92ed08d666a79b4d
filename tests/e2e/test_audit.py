"""The audit trail: every step on record, hash-chained, verifiable and exportable without secrets."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from tests.support.journeys import APPROVER, REQUESTER, click, credentials_dm, request_user

IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def _cli(bot, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "DATABASE_URL": bot.settings.database_url,
        "IAM_BOT_AUDIT_KEY": bot.settings.audit_key_raw,
    }
    return subprocess.run(IAM_BOT + list(args), env=env, capture_output=True, text=True, timeout=60)


def _journey(bot) -> tuple[str, str]:
    short_id = request_user(bot, user_name="audited01", access=["console", "access_key"])
    click(bot, "UOUTSIDER1", "approve_request", short_id)  # a refused click is on record too
    bot.standin.wait_for("chat.postEphemeral")
    click(bot, APPROVER, "approve_request", short_id)
    dm = credentials_dm(bot, short_id)
    before = len(bot.standin.calls_to("views.open"))
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)
    from tests.support.harness import wait_until

    reveal = wait_until(lambda: bot.standin.calls_to("views.open")[before:], what="reveal")[0]
    password = next(
        b["text"]["text"].split("```")[1] for b in reveal.args["view"]["blocks"] if b.get("text", {}).get("text", "").startswith("*Password*")
    )
    wait_until(lambda: "credentials_revealed" in _cli(bot, "audit", "export", "--format", "jsonl").stdout, what="reveal audited")
    return short_id, password


def test_journey_is_exported_complete_and_without_secrets(bot):
    short_id, password = _journey(bot)
    result = _cli(bot, "audit", "export", "--format", "csv", "--since", "2026-01-01")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    anchor = rows.pop()  # the last record is the anchor, not an event
    assert anchor["id"] == "" and anchor["action"] == "audit_anchor" and json.loads(anchor["details"])["count"] == len(rows)
    with bot.deps.engine.connect() as c:
        every = [r[0] for r in c.execute(text("SELECT id FROM audit_events ORDER BY id"))]
    assert [int(r["id"]) for r in rows] == every  # every event, in order
    actions = [r["action"] for r in rows]
    for expected in (
        "reviewed",
        "requested",
        "planned",
        "decision_refused",
        "approved",
        "applied:create_user",
        "applied:create_login_profile",
        "applied:create_access_key",
        "completed",
        "credentials_delivered",
        "credentials_revealed",
    ):
        assert expected in actions
    refused = next(r for r in rows if r["action"] == "decision_refused")
    assert refused["actor"] == "UOUTSIDER1" and "designated approver" in json.loads(refused["details"])["why"]
    assert password not in result.stdout
    user_step = json.loads(next(r for r in rows if r["action"] == "applied:create_user")["details"])
    assert [i.split(":")[0] for i in user_step["aws_request_ids"]] == ["CreateUser"]  # each step names its AWS request
    key_step = json.loads(next(r for r in rows if r["action"] == "applied:create_access_key")["details"])
    assert any(i.startswith("CreateAccessKey:") for i in key_step["aws_request_ids"])
    jsonl = _cli(bot, "audit", "export", "--format", "jsonl").stdout
    assert [json.loads(line)["action"] for line in jsonl.splitlines()] == actions + ["audit_anchor"]
    assert password not in jsonl
    future = _cli(bot, "audit", "export", "--since", "2999-01-01").stdout
    header, last = future.strip().splitlines()  # no event that late; the anchor still ends the file
    assert header == "id,created_at,request_id,actor,action,details,prev_hash,hash,key_id" and ",audit_anchor," in last
    assert _cli(bot, "audit", "verify").returncode == 0


def test_verify_catches_an_edited_a_deleted_and_a_reordered_row(bot):
    _journey(bot)
    ok = _cli(bot, "audit", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout
    engine = bot.deps.engine

    def tamper(sql: str) -> subprocess.CompletedProcess[str]:
        with engine.begin() as c:
            c.execute(text(sql))
        return _cli(bot, "audit", "verify")

    with engine.connect() as c:
        snapshot = c.execute(text("SELECT id, actor, action FROM audit_events ORDER BY id")).fetchall()
    third, fourth = snapshot[2], snapshot[3]

    edited = tamper(f"UPDATE audit_events SET actor = 'UMALLORY' WHERE id = {third.id}")
    assert edited.returncode == 1 and f"BROKEN at event {third.id}" in edited.stdout and "edited" in edited.stdout
    tamper(f"UPDATE audit_events SET actor = '{third.actor}' WHERE id = {third.id}")
    assert _cli(bot, "audit", "verify").returncode == 0

    # Reordered: two events swap places (content and hashes moved together).
    cols = "request_id, actor, action, details, created_at, prev_hash, hash"
    with engine.begin() as c:
        a, b = (
            {k: json.dumps(v) if isinstance(v, dict) else v for k, v in c.execute(text(f"SELECT {cols} FROM audit_events WHERE id = {i}")).one()._asdict().items()}
            for i in (third.id, fourth.id)
        )
        sets = ", ".join(f"{k} = :{k}" for k in a)
        c.execute(text(f"UPDATE audit_events SET {sets} WHERE id = {third.id}"), b)
        c.execute(text(f"UPDATE audit_events SET {sets} WHERE id = {fourth.id}"), a)
    reordered = _cli(bot, "audit", "verify")
    assert reordered.returncode == 1 and f"BROKEN at event {third.id}" in reordered.stdout
    with engine.begin() as c:
        c.execute(text(f"UPDATE audit_events SET {sets} WHERE id = {third.id}"), a)
        c.execute(text(f"UPDATE audit_events SET {sets} WHERE id = {fourth.id}"), b)
    assert _cli(bot, "audit", "verify").returncode == 0

    deleted = tamper(f"DELETE FROM audit_events WHERE id = {third.id}")
    assert deleted.returncode == 1 and f"BROKEN at event {fourth.id}" in deleted.stdout and "deleted" in deleted.stdout


def test_approver_gets_the_export_in_their_dm_and_others_are_refused(bot):
    short_id, password = _journey(bot)
    bot.slack.command(REQUESTER, "audit")
    refusal = bot.standin.wait_for("response_url", lambda c: "Only designated approvers" in c.args.get("text", ""))
    assert refusal.args["response_type"] == "ephemeral"
    bot.slack.command(APPROVER, "audit --since 2026-01-01")
    upload = bot.standin.wait_for("upload_url")
    content = bot.standin.uploaded(upload.args["file_id"]).decode()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert "approved" in [r["action"] for r in rows] and password not in content
    done = bot.standin.wait_for("files.completeUploadExternal")
    assert done.args["channel_id"] == "DAPPROVER1"
    bot.standin.wait_for("response_url", lambda c: "Sent the audit log" in c.args.get("text", ""))
    bot.slack.command(APPROVER, "audit --since yesterday")
    bot.standin.wait_for("response_url", lambda c: "is not a date" in c.args.get("text", ""))


def test_audit_channel_gets_a_line_per_decision_and_created_user(database_url, standin, moto, iam):
    from tests.support.harness import RunningBot

    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"audit_channel": "CAUDIT01"}).start()
    try:
        short_id = request_user(bot, user_name="noticed01", access=["console"])
        click(bot, APPROVER, "approve_request", short_id)
        credentials_dm(bot, short_id)
        approved = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "CAUDIT01" and "approved by" in c.args["text"])
        created = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "CAUDIT01" and "created" in c.args["text"])
        assert short_id in approved.args["text"] and "noticed01" in created.args["text"]
    finally:
        bot.stop()
