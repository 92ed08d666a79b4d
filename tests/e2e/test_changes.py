"""Day two: `/iam change <user>` (the difference, judged on the user's whole grant afterwards) and
time-bound grants (For 1 hour … until a date; reminded before with Extend and I'm done; taken away at
the end by the worker, once, across a restart; removed-by-hand is not an error). Against moto over
HTTP, the Slack stand-in and real SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from models import AccessRequest, AuditEvent, TemporaryGrant
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import (
    APPROVER, OUTSIDER, REQUESTER, approval_messages, change_form, change_values, click, command, credentials_dm, dms_to, everything, request_user, submit_request,
)

READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
VIEWER = "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"


def seed(iam: Any) -> None:
    iam.create_group(GroupName="developers")
    iam.create_group(GroupName="operators")
    iam.attach_group_policy(GroupName="operators", PolicyArn=READONLY)


def created(bot: RunningBot, user_name: str, **fields: Any) -> str:
    short_id = request_user(bot, user_name=user_name, **fields)
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    return short_id


def submit_change(bot: RunningBot, view: dict[str, Any], user: str = REQUESTER, **values: Any) -> dict[str, Any]:
    resp = bot.slack.view_submission(user, view, change_values(**values))
    assert resp.status_code == 200, resp.text
    return resp.json() if resp.text else {}


def requests_of(bot: RunningBot, kind: str) -> list[AccessRequest]:
    with bot.deps.sessionmaker.begin() as s:
        rows = list(s.scalars(select(AccessRequest).where(AccessRequest.kind == kind).order_by(AccessRequest.id)))
        s.expunge_all()
        return rows


def asked_for(bot: RunningBot, kind: str, n: int = 1) -> AccessRequest:
    """The n-th request of this kind, once its approvers were asked."""
    req = wait_until(lambda: [r for r in requests_of(bot, kind) if r.state.value == "pending"][n - 1:], what=f"the {kind} asked")[0]
    wait_until(lambda: approval_messages(bot, req.short_id), what="the approval message")
    return req


def completed(bot: RunningBot, kind: str, n: int = 1) -> AccessRequest:
    return wait_until(lambda: [r for r in requests_of(bot, kind) if r.state.value == "completed"][n - 1:], what=f"the {kind} completed")[0]


def grants_of(bot: RunningBot) -> list[TemporaryGrant]:
    with bot.deps.sessionmaker.begin() as s:
        rows = list(s.scalars(select(TemporaryGrant).order_by(TemporaryGrant.id)))
        s.expunge_all()
        return rows


def groups_of(iam: Any, user: str) -> list[str]:
    return sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"])


def test_a_change_shows_the_difference_and_the_whole_grant_then_is_applied_and_ends_on_time(clocked, iam):
    bot, clock = clocked
    seed(iam)
    created(bot, "alice", access=["console", "access_key"], groups=["developers"], policies=[VIEWER])
    key_id = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"][0]["AccessKeyId"]

    view = change_form(bot, "alice")
    shown = json.dumps(view)
    assert view["callback_id"] == "iam_change" and "developers" in shown and key_id in shown  # prefilled with what it has
    # operators in for 4 hours, developers out, the viewer policy detached, the key deleted, console kept
    assert submit_change(bot, view, groups=["operators"], access=["console"], grant_for="4h") == {"response_action": "clear"}

    change = asked_for(bot, "change")
    message = everything(approval_messages(bot, change.short_id)[0].args)
    for line in ("− Remove from group `developers`", "+ Add to group `operators` *for 4 hours*, then taken away", "− Detach `job-function/ViewOnlyAccess`",
                 f"− Delete the access key `{key_id}`", "through `operators` *(new)*: `ReadOnlyAccess`", "Change request"):
        assert line in message, line
    assert "Delete the console password" not in message

    click(bot, APPROVER, "approve_request", change.short_id)
    completed(bot, "change")
    assert groups_of(iam, "alice") == ["operators"]
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    assert iam.list_access_keys(UserName="alice")["AccessKeyMetadata"] == []
    iam.get_login_profile(UserName="alice")  # kept
    wait_until(lambda: dms_to(bot, REQUESTER, "was changed"), what="the requester told")
    (grant,) = grants_of(bot)
    assert (grant.kind, grant.target) == ("group", "operators") and grant.ends_at - clock() == timedelta(hours=4)
    assert "temporary group `operators` until" in command(bot, f"status {change.short_id}")

    ends = bot.deps.grant_ends
    assert ends.run_due() == 0
    clock.advance(hours=3, minutes=5)  # within the last quarter: the owner is offered Extend and I'm done
    assert ends.run_due() == 1
    reminder = wait_until(lambda: dms_to(bot, REQUESTER, "Still need it?"), what="the reminder")[0]
    assert "grant_extend" in everything(reminder.args)
    assert ends.run_due() == 0  # once

    clock.advance(hours=1)  # the end: taken away by the worker, approved with the grant
    assert ends.run_due() == 1
    revoke = completed(bot, "revoke")
    assert revoke.rule_name == "grant-ended" and revoke.requester_id == "iam-bot"
    assert groups_of(iam, "alice") == []
    wait_until(lambda: dms_to(bot, REQUESTER, "its time ended"), what="the owner told")
    assert grants_of(bot)[0].ended_at is not None and grants_of(bot)[0].how_ended == "its time ended"
    assert ends.run_due() == 0
    assert "temporary group" not in command(bot, f"status {change.short_id}")


def test_a_new_users_grant_extended_then_given_back_early(clocked, iam):
    bot, clock = clocked
    seed(iam)
    short_id = created(bot, "bob", access=["console"], groups=["operators"], grant_for="1d")
    (grant,) = grants_of(bot)
    assert grant.request_id and grant.ends_at - clock() == timedelta(days=1)
    assert "*for 1 day*" in everything(approval_messages(bot, short_id)[0].args)
    # Home shows it with I'm done and Extend; status offers "Change this user"
    bot.deps.status.publish_home(REQUESTER)  # read now: the grant is on record since the request completed
    home = json.dumps([c for c in bot.standin.calls_to("views.publish") if c.args["user_id"] == REQUESTER][-1].args["view"])
    assert "temporary group `operators` until" in home and '"grant_done"' in home and f'"{grant.id}:1w"' in home
    assert '"change_user"' in command(bot, f"status {short_id}")
    before = len(bot.standin.calls_to("views.update"))
    bot.slack.block_action(REQUESTER, "change_user", "bob")
    wait_until(lambda: [c for c in bot.standin.calls_to("views.update")[before:] if "Change `bob`" in json.dumps(c.response["view"])], what="the change form")

    # Extend by a week: a new request, judged by the rules (here a person decides)
    bot.slack.block_action(REQUESTER, "grant_extend", f"{grant.id}:1w", overflow=True)
    extension = asked_for(bot, "extend_grant")
    assert "Add to group `operators` again *until" in everything(approval_messages(bot, extension.short_id)[0].args)
    click(bot, APPROVER, "approve_request", extension.short_id)
    completed(bot, "extend_grant")
    (grant,) = grants_of(bot)
    assert timedelta(days=8) - timedelta(minutes=1) < grant.ends_at - clock() <= timedelta(days=8) and grant.ended_at is None  # to the minute

    # I'm done: taken away now, no approval
    bot.slack.block_action(REQUESTER, "grant_done", str(grant.id))
    revoke = completed(bot, "revoke")
    assert revoke.rule_name == "given-back" and revoke.requester_id == REQUESTER
    assert groups_of(iam, "bob") == []
    assert grants_of(bot)[0].how_ended == "given back early"
    bot.slack.block_action(REQUESTER, "grant_done", str(grant.id))  # clicked again (from Home: answered by DM)
    wait_until(lambda: dms_to(bot, REQUESTER, "ended already"), what="the second click's answer")
    assert len(requests_of(bot, "revoke")) == 1


def test_a_grant_removed_by_hand_ends_without_an_error_and_a_restart_keeps_the_end(clocked, iam, database_url, standin, moto):
    bot, clock = clocked
    seed(iam)
    created(bot, "carol", access=["console"])
    view = change_form(bot, "carol")
    submit_change(bot, view, groups=["operators"], policies=[READONLY], access=["console"], grant_for="1h")
    click(bot, APPROVER, "approve_request", asked_for(bot, "change").short_id)
    completed(bot, "change")
    assert len(grants_of(bot)) == 2
    iam.remove_user_from_group(UserName="carol", GroupName="operators")  # by hand, meanwhile

    bot.stop()  # the end survives a restart: it is on record, not in memory
    again = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False).start()
    try:
        clock.advance(hours=1, minutes=1)
        assert again.deps.grant_ends.run_due() == 1  # one revoke for both of the user's grants
        revoke = completed(again, "revoke")
        assert iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"] == []
        with again.deps.sessionmaker.begin() as s:
            applied = {(e.action, e.details.get("target"), bool(e.details.get("already_gone")))
                       for e in s.scalars(select(AuditEvent).where(AuditEvent.request_id == revoke.id, AuditEvent.action.like("applied:%")))}
        assert applied == {("applied:remove_from_group", "operators", True), ("applied:detach_policy", READONLY, False)}
        assert all(g.ended_at is not None for g in grants_of(again))
    finally:
        again.stop()


def test_a_changes_new_credentials_reach_the_owner_as_a_new_users_do(bot, iam):
    created(bot, "henry", access=["access_key"])
    view = change_form(bot, "henry")
    submit_change(bot, view, access=["console", "access_key"])
    change = asked_for(bot, "change")
    assert "+ Create a console password" in everything(approval_messages(bot, change.short_id)[0].args)
    click(bot, APPROVER, "approve_request", change.short_id)
    dm = credentials_dm(bot, change.short_id)
    assert "The change to `henry` is done, and its new credentials are ready" in everything(dm.args)
    wait_until(lambda: dms_to(bot, REQUESTER, "was changed"), what="the requester told what changed")
    iam.get_login_profile(UserName="henry")
    assert len(iam.list_access_keys(UserName="henry")["AccessKeyMetadata"]) == 1  # the key it had, untouched


def test_two_replicas_end_a_grant_once(postgres_url, standin, moto, iam):
    clock = FakeClock()
    seed(iam)
    one = RunningBot(database_url=postgres_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False, worker_id="one").start()
    two = RunningBot(database_url=postgres_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False, worker_id="two").start()
    try:
        created(one, "dave", access=["console"], groups=["operators"], grant_for="1h")
        clock.advance(hours=2)
        import threading

        barrier, filed = threading.Barrier(2), []

        def run(bot: RunningBot) -> None:
            barrier.wait()
            filed.append(bot.deps.grant_ends.run_due())

        threads = [threading.Thread(target=run, args=(b,)) for b in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(filed) == [0, 1]
        completed(one, "revoke")
        assert groups_of(iam, "dave") == [] and len(requests_of(one, "revoke")) == 1
    finally:
        one.stop()
        two.stop()


def test_what_cannot_be_changed_is_answered_in_the_modal(clocked, iam):
    bot, clock = clocked
    seed(iam)
    iam.create_user(UserName="by-hand")
    created(bot, "erin", access=["console"], groups=["developers"])

    assert "Name the IAM user" in command(bot, "change")
    not_ours = json.dumps(change_form(bot, "by-hand"))
    assert "Cannot change" in not_ours and "changed by hand" in not_ours
    someone_elses = json.dumps(change_form(bot, "erin", user=OUTSIDER))
    assert "only its owner (or an approver) can change it" in someone_elses

    view = change_form(bot, "erin")
    assert submit_change(bot, view, groups=["developers"], access=["console"])["errors"]["groups"].startswith("Nothing changes")
    past = (clock() - timedelta(days=1)).strftime("%Y-%m-%d")
    errors = submit_change(bot, view, groups=["developers", "operators"], access=["console"], grant_for="until", until=past)["errors"]
    assert "Pick a date after today" in errors["grant_until"]
    errors = submit_change(bot, view, groups=["developers"], access=["console"], grant_for="1h", reason="x")["errors"]
    assert "adds none" in errors["grant_for"]
    assert requests_of(bot, "change") == []

    iam.remove_user_from_group(UserName="erin", GroupName="developers")
    iam.delete_login_profile(UserName="erin")
    iam.delete_user(UserName="erin")  # gone meanwhile: the plan says so, nothing half done
    assert submit_change(bot, view, groups=["developers", "operators"], access=["console"]) == {"response_action": "clear"}
    gone = wait_until(lambda: [r for r in requests_of(bot, "change") if r.state.value == "failed"], what="the change failed")[0]
    assert "no longer exists in IAM" in (gone.failure_reason or "")


RULES = """
    guardrails:
      require_grant_end: {groups: [operators]}
      max_grant_hours: 24
"""


@pytest.fixture
def ruled(database_url, standin, moto, iam, tmp_path: Path) -> Iterator[RunningBot]:
    path = tmp_path / "rules.yml"
    path.write_text(textwrap.dedent(RULES))
    running = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"rules_path": str(path)}).start()
    yield running
    running.stop()


def test_the_rules_require_an_end_and_cap_it(ruled, iam):
    bot = ruled
    seed(iam)
    created(bot, "frank", access=["console"])
    view = change_form(bot, "frank")
    assert "only for a time" in submit_change(bot, view, groups=["operators"], access=["console"])["errors"]["grant_for"]
    assert "at most 24 hours" in submit_change(bot, view, groups=["operators"], access=["console"], grant_for="1w")["errors"]["grant_for"]
    # copying a user in the group brings it without an end: refused on the plan, whatever the form said
    iam.create_user(UserName="template")
    iam.add_user_to_group(UserName="template", GroupName="operators")
    submit_request(bot, user_name="grace", access=["console"], copy_from="template")
    denied = wait_until(lambda: [r for r in requests_of(bot, "create_user") if r.user_name == "grace" and r.state.value == "denied"], what="the denial")[0]
    assert "group `operators` only for a time" in (denied.decision_reason or "")


def test_a_change_that_fails_half_way_is_put_back(bot_behind_proxy, iam):
    bot, proxy = bot_behind_proxy
    seed(iam)
    created(bot, "ivan", access=["console"], groups=["developers"])
    view = change_form(bot, "ivan")
    submit_change(bot, view, groups=["operators"], policies=[READONLY], access=["console"])
    change = asked_for(bot, "change")
    proxy.fail("AttachUserPolicy", code="AccessDenied", status=403, times=5)  # after developers out and operators in
    click(bot, APPROVER, "approve_request", change.short_id)
    failed = wait_until(lambda: [r for r in requests_of(bot, "change") if r.state.value == "failed"], what="the change failed")[0]
    assert "AccessDenied" in (failed.failure_reason or "")
    assert groups_of(iam, "ivan") == ["developers"]  # put back as it was
    assert iam.list_attached_user_policies(UserName="ivan")["AttachedPolicies"] == []
    timeline = command(bot, f"status {change.short_id}")
    assert "Undone after the failure: add to group `operators`" in timeline and "Undone after the failure: remove from group `developers`" in timeline
    assert "any group or policy it had changed was put back" in timeline
