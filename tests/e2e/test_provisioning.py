"""Provisioning: copied permissions, password policy, failures rolled back and explained, expiry."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.credentials.passwords import PasswordPolicy, satisfies
from models import AccessRequest, AuditEvent, CredentialEnvelope
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, click, credentials_dm, request_user

DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]})


def _request(bot, short_id: str) -> AccessRequest:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest).where(AccessRequest.short_id == short_id)).one()


def _envelope(bot) -> CredentialEnvelope:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(CredentialEnvelope)).one()


def test_copy_from_copies_groups_policies_inline_and_boundary(bot, iam, moto):
    boundary = iam.create_policy(PolicyName="boundary", PolicyDocument=DOC)["Policy"]["Arn"]
    iam.create_group(GroupName="deployers")
    iam.create_user(UserName="template-user", PermissionsBoundary=boundary)
    iam.add_user_to_group(UserName="template-user", GroupName="deployers")
    iam.attach_user_policy(UserName="template-user", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.put_user_policy(UserName="template-user", PolicyName="inline-s3", PolicyDocument=DOC)
    moto.start_recording()
    short_id = request_user(bot, user_name="copycat", access=["access_key"], copy_from="template-user")
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="copycat")["Groups"]] == ["deployers"]
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="copycat")["AttachedPolicies"]] == [
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    ]
    assert iam.list_user_policies(UserName="copycat")["PolicyNames"] == ["inline-s3"]
    # Console access was not asked for, so no login profile.
    assert not [r for r in moto.recorded() if r.get("Action") == "CreateLoginProfile"]
    # The source user's boundary cannot be checked here: moto does not keep a user's
    # PermissionsBoundary, so GetUser on the template returns none to copy.


def test_password_honours_the_account_policy(bot, iam, moto):
    iam.update_account_password_policy(
        MinimumPasswordLength=40, RequireSymbols=True, RequireNumbers=True, RequireUppercaseCharacters=True, RequireLowercaseCharacters=True
    )
    moto.start_recording()
    short_id = request_user(bot, user_name="strong01", access=["console"])
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    login = [r for r in moto.recorded() if r.get("Action") == "CreateLoginProfile"][0]
    assert len(login["Password"]) >= 40
    assert satisfies(login["Password"], PasswordPolicy(40, True, True, True, True))
    assert login["PasswordResetRequired"] == "true"


def test_failure_is_rolled_back_and_explained(bot, iam):
    iam.create_group(GroupName="temporary")
    short_id = request_user(bot, user_name="doomed01", groups=["temporary"])
    iam.delete_group(GroupName="temporary")  # deleted between request and approval
    click(bot, APPROVER, "approve_request", short_id)
    wait_until(lambda: _request(bot, short_id).state.value == "failed", what="failed")
    req = _request(bot, short_id)
    # Checked just before AddUserToGroup (is the group still what was approved?), and found gone.
    assert "NoSuchEntity" in req.failure_reason and "group temporary" in req.failure_reason
    # Nothing left half-made in IAM.
    assert iam.list_users()["Users"] == []
    # Requester and approver are told what happened and what to do; the approval message shows it.
    for channel in ("DREQUESTER1", "DAPPROVER1"):
        dm = bot.standin.wait_for("chat.postMessage", lambda c, ch=channel: c.args["channel"] == ch and "failed" in c.args["text"])
        assert "no longer exists" in json.dumps(dm.args["blocks"])
    bot.standin.wait_for("chat.update", lambda c: "creating the user failed" in json.dumps(c.args["blocks"]))
    with bot.deps.sessionmaker.begin() as s:
        env = s.scalars(select(CredentialEnvelope)).first()
        assert env is None or env.ciphertext is None
    assert "Traceback" not in bot.standin.all_text()


def test_user_created_outside_the_bot_is_not_touched(bot, iam):
    short_id = request_user(bot, user_name="racer01", access=["console"])
    iam.create_user(UserName="racer01")  # someone made it by hand after the request
    click(bot, APPROVER, "approve_request", short_id)
    wait_until(lambda: _request(bot, short_id).state.value == "failed", what="failed")
    assert "already exists" in _request(bot, short_id).failure_reason
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["racer01"]  # not deleted by the rollback


def test_unrevealed_credentials_expire_and_are_purged(database_url, standin, moto, iam):
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock).start()
    try:
        short_id = request_user(bot, user_name="late01", access=["access_key"])
        click(bot, APPROVER, "approve_request", short_id)
        dm = credentials_dm(bot, short_id)
        assert "late01" in dm.args["text"]
        wait_until(lambda: _envelope(bot).dm_ts == dm.response["ts"], what="delivery recorded")
        clock.advance(hours=24, seconds=1)
        assert bot.deps.delivery.purge_expired() == 1
        with bot.deps.sessionmaker.begin() as s:
            assert s.scalars(select(CredentialEnvelope)).first() is None  # the row is deleted, not its ciphertext nulled
            assert "credentials_expired" in s.scalars(select(AuditEvent.action)).all()
        bot.standin.wait_for("chat.update", lambda c: c.args["ts"] == dm.response["ts"] and "expired" in json.dumps(c.args["blocks"]))
        click(bot, REQUESTER, "reveal_credentials", short_id, dm)
        refusal = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == REQUESTER)
        assert "no longer stored" in refusal.args["text"]
    finally:
        bot.stop()


def test_credentials_dm_that_slack_refused_is_retried_not_dropped(database_url, standin, moto, iam):
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock).start()
    try:
        short_id = request_user(bot, user_name="retry01", access=["access_key"])
        standin.fail_next("chat.postMessage", status=200, error="fatal_error", count=2)  # the decision DM and the credentials DM
        click(bot, APPROVER, "approve_request", short_id)
        wait_until(lambda: _request(bot, short_id).state.value == "completed", what="completed")
        wait_until(lambda: len(standin.calls_to("chat.postMessage")) >= 1 and not standin._failures.get("chat.postMessage"), what="failures used")
        with bot.deps.sessionmaker.begin() as s:
            assert s.scalars(select(CredentialEnvelope)).one().delivered_at is None
        clock.advance(minutes=3)
        assert bot.deps.delivery.deliver_pending() == 1
        credentials_dm(bot, short_id)
        assert bot.deps.delivery.deliver_pending() == 0  # delivered once, never twice
    finally:
        bot.stop()


def test_request_for_someone_else_delivers_to_the_owner_only(bot, iam):
    owner = "UOWNER0001"
    short_id = request_user(bot, user_name="forowner", access=["console"], owner=owner)
    click(bot, APPROVER, "approve_request", short_id)
    dm = credentials_dm(bot, short_id)
    assert dm.args["channel"] == "DOWNER0001"
    bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and "sent to <@UOWNER0001>" in c.args["text"])
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)  # the requester is not the owner
    refusal = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == REQUESTER)
    assert "Only the account's owner" in refusal.args["text"]
    assert _envelope(bot).ciphertext is not None  # still there for the owner


def test_throttling_is_retried_by_botocore_then_by_the_job(database_url, standin, moto, iam, monkeypatch):
    from tests.support.fault_proxy import FaultProxy

    proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # the bot reaches "AWS" through the faulty proxy
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock).start()
    try:
        short_id = request_user(bot, user_name="throttled01", access=["console", "access_key"])
        # Two throttles: botocore's own retry absorbs one, the job must retry the second later.
        proxy.fail("CreateLoginProfile", code="Throttling", times=2)
        proxy.fail("CreateAccessKey", code="ServiceUnavailable", status=503, times=1)
        click(bot, APPROVER, "approve_request", short_id)
        wait_until(lambda: proxy.injected.count("CreateLoginProfile") == 2, what="throttled twice")
        wait_until(lambda: _job_state(bot) == ("queued", "Throttling during CreateLoginProfile"), what="job rescheduled")
        assert _request(bot, short_id).state.value == "provisioning"  # not failed: waiting to retry
        # Partial credentials are never revealed, nor offered on Home, while the job is unfinished.
        bot.slack.block_action(REQUESTER, "reveal_credentials", short_id, channel_id="DREQUESTER1", message_ts="1.1")
        early = standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == REQUESTER)
        assert "still being created" in early.args["text"]
        assert standin.calls_to("views.open")[-1].args["view"]["callback_id"] == "iam_request"
        with bot.deps.sessionmaker.begin() as s:
            from bot.requests import queries

            assert queries.home_data(s, user_id=REQUESTER, approvers=frozenset(), now=clock()).revealable == frozenset()
        clock.advance(seconds=11)
        bot.deps.worker.wake()
        credentials_dm(bot, short_id)
        assert proxy.injected.count("CreateAccessKey") == 1
        assert [u["UserName"] for u in iam.list_users()["Users"]] == ["throttled01"]
        assert len(iam.list_access_keys(UserName="throttled01")["AccessKeyMetadata"]) == 1
        # The resumed job called CreateUser again, got EntityAlreadyExists, and recognised its own user.
        assert proxy.seen.count("CreateUser") == 2
    finally:
        bot.stop()
        proxy.stop()


def _job_state(bot) -> tuple[str, str | None]:
    from models import Job

    with bot.deps.sessionmaker.begin() as s:
        job = s.scalars(select(Job).where(Job.kind == "apply")).one()
        return job.state.value, job.last_error
