"""The whole journey over signed HTTP: request -> review -> approve -> user in IAM -> reveal -> status."""

from __future__ import annotations

import json

from sqlalchemy import select

from models import AccessRequest, AuditEvent, CredentialEnvelope
from tests.support.harness import wait_until
from tests.support.journeys import (
    APPROVER,
    REQUESTER,
    approval_messages,
    click,
    credentials_dm,
    request_user,
)


def _seed(iam) -> dict[str, str]:
    iam.create_group(GroupName="developers")
    iam.create_group(GroupName="readers")
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    policy = iam.create_policy(PolicyName="s3-read", PolicyDocument=doc)["Policy"]["Arn"]
    boundary = iam.create_policy(PolicyName="dev-boundary", PolicyDocument=doc)["Policy"]["Arn"]
    return {"policy": policy, "boundary": boundary}


def test_request_approve_provision_reveal_status(bot, iam, moto):
    arns = _seed(iam)
    moto.start_recording()
    short_id = request_user(
        bot,
        user_name="developer01",
        groups=["developers", "readers"],
        policies=[arns["policy"], "arn:aws:iam::aws:policy/ReadOnlyAccess"],
        path="/engineering/",
        tags="team=payments\ncost-center=1234",
        boundary=arns["boundary"],
    )
    standin = bot.standin
    # The requester is told, with the short id.
    standin.wait_for("chat.postMessage", lambda c: short_id in c.args["text"] and "sent for approval" in c.args["text"])
    # Each approver got the request by DM, with everything asked for.
    messages = approval_messages(bot, short_id)
    assert {m.args["channel"] for m in messages} == {"DAPPROVER1", "DAPPROVER2"}
    shown = json.dumps(messages[0].args["blocks"])
    for expected in ("developer01", "developers", "readers", "s3-read", "ReadOnlyAccess", "/engineering/", "team=payments", "dev-boundary", "Needs to deploy"):
        assert expected in shown

    # While pending, an approver's status shows what awaits them.
    bot.slack.dm(APPROVER, "status")
    bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DAPPROVER1" and "Waiting for your decision" in json.dumps(c.args["blocks"]) and short_id in json.dumps(c.args["blocks"]))

    resp = click(bot, APPROVER, "approve_request", short_id, messages[0])
    assert resp.status_code == 200

    dm = credentials_dm(bot, short_id)
    assert dm.args["channel"] == "D" + REQUESTER[1:]

    # IAM has the user exactly as requested.
    user = iam.get_user(UserName="developer01")["User"]
    assert user["Path"] == "/engineering/"
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="developer01")["Tags"]}
    assert tags["team"] == "payments" and tags["cost-center"] == "1234" and tags["iam-bot:request"] == short_id
    assert {g["GroupName"] for g in iam.list_groups_for_user(UserName="developer01")["Groups"]} == {"developers", "readers"}
    attached = {p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="developer01")["AttachedPolicies"]}
    assert attached == {arns["policy"], "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    iam.get_login_profile(UserName="developer01")
    assert len(iam.list_access_keys(UserName="developer01")["AccessKeyMetadata"]) == 1
    # moto drops the boundary and the reset flag: check what the bot sent instead.
    sent = moto.recorded()
    create = [r for r in sent if r.get("Action") == "CreateUser"]
    assert len(create) == 1 and create[0]["PermissionsBoundary"] == arns["boundary"]
    assert create[0]["Path"] == "/engineering/"
    login = [r for r in sent if r.get("Action") == "CreateLoginProfile"]
    assert len(login) == 1 and login[0]["PasswordResetRequired"] == "true"
    password = login[0]["Password"]

    # Every approval message now shows the outcome and who decided, without buttons.
    def updated() -> bool:
        ups = [u for u in standin.calls_to("chat.update") if short_id in u.args["text"]]
        return {u.args["channel"] for u in ups if "Approved" in json.dumps(u.args["blocks"]) and "approve_request" not in json.dumps(u.args["blocks"])} == {"DAPPROVER1", "DAPPROVER2"}

    wait_until(updated, what="approval messages updated")

    # Only the owner can reveal.
    click(bot, APPROVER, "reveal_credentials", short_id, dm)
    standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER and "owner" in c.args["text"])

    opened_before = len(standin.calls_to("views.open"))
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)
    reveal = wait_until(lambda: standin.calls_to("views.open")[opened_before:], what="reveal modal")[0]
    view_text = json.dumps(reveal.args["view"])
    key = iam.list_access_keys(UserName="developer01")["AccessKeyMetadata"][0]["AccessKeyId"]
    account = bot.deps.iam.account_id()
    assert password in view_text and key in view_text
    assert f"https://{account}.signin.aws.amazon.com/console" in view_text
    assert "User name,Password,Access key ID,Secret access key,Console login link" in view_text

    # Once only: the ciphertext is gone and the DM says so (updated after the destruction commits:
    # the modal opening is seen before it, so checking the database at once would race the handler).
    standin.wait_for("chat.update", lambda c: c.args["ts"] == dm.response["ts"] and "revealed" in c.args["text"] + json.dumps(c.args["blocks"]))
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalars(select(CredentialEnvelope)).first() is None  # the row is deleted, not its ciphertext nulled
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)
    standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == REQUESTER and "already revealed" in c.args["text"])

    # Status, three ways.
    bot.slack.dm(REQUESTER, "status")
    standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and short_id in json.dumps(c.args["blocks"]) and "user created" in json.dumps(c.args["blocks"]))
    bot.slack.mention(REQUESTER, "status developer01")
    # In a channel, only the asker sees the answer.
    standin.wait_for("chat.postEphemeral", lambda c: c.args["channel"] == "C0GENERAL" and c.args["user"] == REQUESTER and short_id in json.dumps(c.args["blocks"]))
    resp = bot.slack.command(REQUESTER, f"status {short_id}")
    assert resp.status_code == 200
    standin.wait_for("response_url", lambda c: short_id in json.dumps(c.args.get("blocks")) and c.args.get("response_type") == "ephemeral")

    # Secrets appear in the reveal modal only: nowhere else Slack got, in no log line, not in the database.
    secret = _shown(reveal.args["view"], "Secret access key")
    assert _shown(reveal.args["view"], "Password") == password
    assert len(secret) == 40
    others = "\n".join(json.dumps(c.args) for c in standin.calls if c is not reveal)
    for value in (password, secret):
        assert value not in others
        assert value not in bot.logs.text()
    _assert_not_in_database(bot, [password, secret])
    assert standin.problems == []

    with bot.deps.sessionmaker.begin() as s:
        req = s.scalars(select(AccessRequest)).one()
        assert req.state.value == "completed" and req.decided_by == APPROVER
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[:4] == ["reviewed", "requested", "planned", "approved"] and "completed" in actions and actions[-1] == "credentials_revealed"


def _shown(view: dict, label: str) -> str:
    """The value the reveal modal shows under `label` (a ```code``` block)."""
    for block in view["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        if text.startswith(f"*{label}*\n```"):
            return text.split("```")[1]
    raise AssertionError(f"{label} not shown")


def _assert_not_in_database(bot, secrets: list[str]) -> None:
    from sqlalchemy import text

    engine = bot.deps.engine
    with engine.connect() as c:
        for table in ("access_requests", "audit_events", "credential_envelopes", "request_drafts", "jobs", "plans", "policy_documents", "decisions"):
            rows = c.execute(text(f"SELECT * FROM {table}")).fetchall()
            dump = repr(rows)
            for s in secrets:
                assert s not in dump, f"secret found in {table}"
    url = bot.settings.database_url
    if url.startswith("sqlite:///"):
        # The raw database file and its write-ahead log, byte for byte.
        from pathlib import Path

        base = Path(url.removeprefix("sqlite:///"))
        for path in (base, Path(str(base) + "-wal")):
            if path.exists():
                raw = path.read_bytes()
                for s in secrets:
                    assert s.encode() not in raw, f"secret found in {path.name}"
