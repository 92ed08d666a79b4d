"""Every request is a plan: approvers approve exactly what is applied, against moto over HTTP.

What "copy from" brings is read once, into the plan, so a template user that gains a policy later
passes nothing on; a group or policy that would grant more at apply time than when it was approved
stops the job before that step, undoes what the request made, and asks the approvers again.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from sqlalchemy import select

from models import AccessRequest, AuditEvent, Decision, Plan
from tests.support.harness import RunningBot, wait_until
from tests.support.journeys import APPROVER, APPROVER2, approval_messages, button_value, click, credentials_dm, request_user, submit_request

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
S3_AND_IAM = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "iam:*"], "Resource": "*"}]}


def _req(bot: RunningBot, short_id: str) -> AccessRequest:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest).where(AccessRequest.short_id == short_id)).one()


def _actions(bot: RunningBot, short_id: str) -> list[str]:
    with bot.deps.sessionmaker.begin() as s:
        rid = _req(bot, short_id).id
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.request_id == rid).order_by(AuditEvent.id)))


def _attached(iam, user: str) -> set[str]:
    return {p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]}


def _seed_template(iam) -> str:
    policy = iam.create_policy(PolicyName="s3-read", PolicyDocument=json.dumps(S3))["Policy"]["Arn"]
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn=READONLY)
    iam.create_user(UserName="template")
    iam.add_user_to_group(UserName="template", GroupName="readers")
    iam.attach_user_policy(UserName="template", PolicyArn=policy)
    iam.put_user_policy(UserName="template", PolicyName="read-logs", PolicyDocument=json.dumps(S3))
    return policy


@pytest.fixture
def stopped(database_url, standin, moto, iam) -> Iterator[RunningBot]:
    """A bot whose worker runs only when the test says (`run_jobs`): the test acts between approval and apply."""
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, start_worker=False).start()
    yield bot
    bot.stop()


def run_jobs(bot: RunningBot) -> int:
    return bot.deps.worker.run_until_idle()


def latest_request(bot: RunningBot) -> str:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest.short_id).order_by(AccessRequest.id.desc())).first()


# ---------------------------------------------------------------- the copy is read once


def test_approvers_see_the_plan_and_a_template_change_after_submission_is_not_passed_on(bot, iam):
    s3 = _seed_template(iam)
    short_id = request_user(bot, user_name="copycat", access=["access_key"], copy_from="template")
    shown = json.dumps(approval_messages(bot, short_id)[0].args["blocks"])
    # The approval message shows the plan in plain words, with what the copy brings resolved.
    for words in ("What will be done in IAM", "Add to group `readers`", "copied from template", "Attach `s3-read`", "inline policy `read-logs`", "Create an access key",
                  "through `readers`", "ReadOnlyAccess"):
        assert words in shown, words
    digest = _req(bot, short_id).plan_digest
    assert digest and digest[:12] in shown

    iam.attach_user_policy(UserName="template", PolicyArn=ADMIN)  # the template gains admin after the plan was made
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert _attached(iam, "copycat") == {s3}  # exactly the plan: not AdministratorAccess
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="copycat")["Groups"]] == ["readers"]
    assert iam.list_user_policies(UserName="copycat")["PolicyNames"] == ["read-logs"]
    with bot.deps.sessionmaker.begin() as s:
        decision = s.scalars(select(Decision)).one()
        assert decision.plan_digest == digest  # the approval records what it approved
    req = _req(bot, short_id)
    assert req.approved_digest == digest == req.plan_digest


def test_a_template_change_between_approval_and_apply_is_not_passed_on(stopped, iam):
    bot = stopped
    s3 = _seed_template(iam)
    submit_request(bot, user_name="copycat2", access=["console"], copy_from="template")
    assert run_jobs(bot) == 1  # the plan job: resolved, judged, approvers asked
    short_id = latest_request(bot)
    bot.standin.wait_for("chat.postMessage", lambda c: short_id in c.args["text"] and "sent for approval" in c.args["text"])
    click(bot, APPROVER, "approve_request", short_id)
    wait_until(lambda: _req(bot, short_id).state.value == "approved", what="approved")

    iam.attach_user_policy(UserName="template", PolicyArn=ADMIN)  # approved, not yet applied
    iam.put_user_policy(UserName="template", PolicyName="sneaky", PolicyDocument=json.dumps(S3_AND_IAM))
    assert run_jobs(bot) == 1  # the apply job
    credentials_dm(bot, short_id)
    assert _attached(iam, "copycat2") == {s3}
    assert iam.list_user_policies(UserName="copycat2")["PolicyNames"] == ["read-logs"]


# ---------------------------------------------------------------- drift stops the job and asks again


def test_a_group_policy_whose_default_version_moves_after_approval_stops_the_job_and_asks_again(stopped, iam, moto):
    bot = stopped
    arn = iam.create_policy(PolicyName="deploy", PolicyDocument=json.dumps(S3))["Policy"]["Arn"]
    iam.create_group(GroupName="deployers")
    iam.attach_group_policy(GroupName="deployers", PolicyArn=arn)
    submit_request(bot, user_name="drifter", access=["access_key"], groups=["deployers"])
    run_jobs(bot)
    short_id = latest_request(bot)
    first = approval_messages(bot, short_id)
    old_value = button_value(first[0], "approve_request")
    click(bot, APPROVER, "approve_request", short_id, first[0])
    wait_until(lambda: _req(bot, short_id).state.value == "approved", what="approved")
    approved = _req(bot, short_id).approved_digest

    # The policy gets a broader default version between approval and apply.
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(S3_AND_IAM), SetAsDefault=True)
    moto.start_recording()
    run_jobs(bot)  # the apply job stops before the step, then the plan job makes the plan again
    assert _req(bot, short_id).state.value == "pending"
    # Nothing beyond the approved grant was applied: the user is not there at all (what was made is undone).
    assert iam.list_users()["Users"] == []
    assert not [r for r in moto.recorded() if r.get("Action") in ("AddUserToGroup", "CreateAccessKey")]
    req = _req(bot, short_id)
    assert req.plan_digest != approved and req.approved_digest is None
    assert any("changed its default version from v1 to v2" in c or "v1 -> v2" in c for c in req.plan_changes or []), req.plan_changes
    assert ["plan_drift", "rolled_back", "planned"] == [a for a in _actions(bot, short_id) if a in ("plan_drift", "rolled_back", "planned")][1:]

    # The approvers' messages now show the new plan and what changed, with a reply in their thread.
    def shows_new_plan() -> bool:
        ups = [u for u in bot.standin.calls_to("chat.update") if u.args["ts"] == first[0].response["ts"]]
        return bool(ups) and "The plan was made again" in json.dumps(ups[-1].args["blocks"]) and (req.plan_digest or "")[:12] in json.dumps(ups[-1].args["blocks"])

    wait_until(shows_new_plan, what="approval message updated with the new plan")
    bot.standin.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == first[0].response["ts"] and "checked again" in c.args["text"])

    # A click on a button that still carries the old digest approves nothing.
    bot.slack.block_action(APPROVER2, "approve_request", old_value, channel_id=first[1].response["channel"], message_ts=first[1].response["ts"])
    refused = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER2)
    assert "earlier plan" in refused.args["text"]
    assert _req(bot, short_id).state.value == "pending"

    # Approving the new plan (the updated message's button) applies it.
    update = [u for u in bot.standin.calls_to("chat.update") if u.args["ts"] == first[1].response["ts"]][-1]
    new_value = button_value(update, "approve_request")
    assert new_value and new_value.endswith(req.plan_digest or "?")
    bot.slack.block_action(APPROVER2, "approve_request", new_value, channel_id=first[1].response["channel"], message_ts=first[1].response["ts"])
    wait_until(lambda: _req(bot, short_id).state.value == "approved", what="approved again")
    run_jobs(bot)
    credentials_dm(bot, short_id)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="drifter")["Groups"]] == ["deployers"]
    with bot.deps.sessionmaker.begin() as s:
        plans = s.scalars(select(Plan.digest).where(Plan.request_id == _req(bot, short_id).id)).all()
        assert len(plans) == 2  # both plans kept: what was approved first, and what was applied


def test_a_group_that_gains_a_policy_after_approval_is_not_joined(stopped, iam):
    bot = stopped
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn=READONLY)
    submit_request(bot, user_name="joiner", access=["console"], groups=["readers"])
    run_jobs(bot)
    short_id = latest_request(bot)
    click(bot, APPROVER, "approve_request", short_id)
    wait_until(lambda: _req(bot, short_id).state.value == "approved", what="approved")
    iam.attach_group_policy(GroupName="readers", PolicyArn=ADMIN)
    run_jobs(bot)
    req = _req(bot, short_id)
    assert req.state.value == "pending"
    assert any("now also has `AdministratorAccess` attached" in c or "AdministratorAccess" in c for c in req.plan_changes or [])
    assert iam.list_users()["Users"] == []
    # The requester hears that it went back to the approvers, and why.
    bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and short_id in c.args["text"] and "AdministratorAccess" in json.dumps(c.args.get("blocks")))


def test_a_group_that_changed_before_approval_is_shown_as_is(bot, iam):
    """Before approval nothing drifts: the plan is read at submission and approvers judge what IAM said then."""
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn=READONLY)
    short_id = request_user(bot, user_name="plain01", access=["console"], groups=["readers"])
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert "plan_drift" not in _actions(bot, short_id)
