"""Hygiene: `/iam report` from IAM's credential report (moto's), the scheduled report posted once across
replicas, owners nudged before a key gets old, MFA enrolment watched (ListMFADevices) with reminders,
and the MFA requirement on every new user."""

from __future__ import annotations

import csv
import io
import json
import threading
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

from models import AuditEvent, MfaWatch, ScheduledRun
from tests.support.fault_proxy import FaultProxy
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import APPROVER, OUTSIDER, REQUESTER, approval_messages, click, credentials_dm, request_user, submit_form

DEPARTED = "UDEPARTED1"
REPORT_CHANNEL = "CREPORTS01"


def created(bot: RunningBot, user_name: str, access: list[str], owner: str = REQUESTER, **fields: Any) -> str:
    short_id = request_user(bot, user_name=user_name, access=access, owner=owner, **fields)
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    return short_id


def command(bot: RunningBot, text: str, user: str = APPROVER, timeout: float = 30) -> dict[str, Any]:
    """`/iam <text>`; the private answer (text and blocks)."""
    before = len(bot.standin.calls_to("response_url"))
    bot.slack.command(user, text)
    return dict(wait_until(lambda: bot.standin.calls_to("response_url")[before:], timeout=timeout, what=f"the answer to /iam {text}")[0].args)


def everything(msg: dict[str, Any]) -> str:
    return msg.get("text", "") + json.dumps(msg.get("blocks") or [], ensure_ascii=False)


def user_section(msg: dict[str, Any], user: str) -> str:
    (text,) = [b["text"]["text"] for b in msg["blocks"] if b["type"] == "section" and b["text"]["text"].startswith(f"*`{user}`*")]
    return text


def buttons_for(msg: dict[str, Any], user: str) -> list[str]:
    return [el["action_id"] for b in msg["blocks"] if b["type"] == "actions" for el in b["elements"] if el.get("value") == user]


def events(bot: RunningBot, action: str) -> list[dict[str, Any]]:
    with bot.deps.sessionmaker.begin() as s:
        return [e.details | {"actor": e.actor} for e in s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def dms_to(bot: RunningBot, user: str, fragment: str) -> list[Any]:
    return [c for c in bot.standin.calls_to("chat.postMessage") if c.args["channel"] == "D" + user[1:] and fragment in everything(c.args)]


def seed_account(bot: RunningBot, iam) -> None:  # type: ignore[no-untyped-def]
    """One user of each kind of finding, 100 days on (moto dates everything "now")."""
    created(bot, "hy-keyed", ["access_key"])  # an old key, never used
    created(bot, "hy-console", ["console"])  # a console password without MFA, never used
    created(bot, "hy-orphan", ["access_key"], owner=DEPARTED)  # its owner leaves Slack
    iam.create_user(UserName="hy-stray")  # made by hand: not managed by the bot
    iam.create_login_profile(UserName="hy-stray", Password="Hand-made-Passw0rd!")
    bot.standin.set_user(DEPARTED, deleted=True)


def test_the_report_shows_every_kind_of_finding_with_its_actions(clocked, iam):
    bot, clock = clocked
    seed_account(bot, iam)
    clock.advance(days=100, hours=1)  # moto dates keys by the wall clock, a moment after the fake one

    msg = command(bot, "report")
    assert msg.get("response_type") == "ephemeral"
    text = everything(msg)
    assert "IAM hygiene report: 123456789012" in text and "4 IAM users, 4 with findings" in text
    assert "keys older than 90 days" in text and "without MFA" in text and "whose owner has left" in text and "not managed by the bot" in text
    keyed = user_section(msg, "hy-keyed")
    assert f"owner <@{REQUESTER}>" in keyed and "access key 1 is 100 days old" in keyed and "access key 1 never used" in keyed
    assert "console password enabled without MFA" in user_section(msg, "hy-console")
    assert "password never used" in user_section(msg, "hy-console")
    assert "(left)" in user_section(msg, "hy-orphan") and "its owner has left the workspace" in user_section(msg, "hy-orphan")
    assert "_no owner on record_" in user_section(msg, "hy-stray") and "not managed by the bot" in user_section(msg, "hy-stray")
    assert buttons_for(msg, "hy-keyed") == ["report_remind_owner", "report_rotate_key", "report_disable_user", "report_offboard_user"]
    assert buttons_for(msg, "hy-console") == ["report_remind_owner", "report_disable_user", "report_offboard_user"]
    assert buttons_for(msg, "hy-orphan") == ["report_rotate_key", "report_disable_user", "report_offboard_user"]  # nobody to remind
    assert buttons_for(msg, "hy-stray") == []  # the bot can do nothing about a user it did not make
    assert [e["actor"] for e in events(bot, "hygiene_report")] == [APPROVER]
    assert "Hand-made-Passw0rd!" not in json.dumps([c.args for c in bot.standin.calls]) + bot.logs.text()


def test_only_approvers_see_the_report(clocked, iam):
    bot, _ = clocked
    msg = command(bot, "report", user=OUTSIDER)
    assert "Only designated approvers" in msg["text"] and not msg.get("blocks")
    assert events(bot, "hygiene_report") == []


def test_remind_owner_and_rotate_from_the_report(clocked, iam):
    bot, clock = clocked
    created(bot, "hy-remind", ["access_key"])
    (old,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName="hy-remind")["AccessKeyMetadata"]]
    clock.advance(days=100, hours=1)  # moto dates keys by the wall clock, a moment after the fake one
    msg = command(bot, "report")
    assert buttons_for(msg, "hy-remind")[:2] == ["report_remind_owner", "report_rotate_key"]

    bot.slack.block_action(APPROVER, "report_remind_owner", "hy-remind")
    reminder = wait_until(lambda: dms_to(bot, REQUESTER, "asks you to look after"), what="the owner's reminder")[0]
    assert "access key 1 is 100 days old" in everything(reminder.args) and "rotate_now" in everything(reminder.args)
    assert [e["user_name"] for e in events(bot, "owner_reminded")] == ["hy-remind"]
    wait_until(lambda: dms_to(bot, APPROVER, f"Reminded <@{REQUESTER}> about `hy-remind`"), what="the approver's confirmation")

    # The owner's "Rotate now": their own rotation needs no approval; the new key follows in a DM.
    bot.slack.block_action(REQUESTER, "rotate_now", "hy-remind")
    answer = wait_until(lambda: dms_to(bot, REQUESTER, "a new access key for `hy-remind`"), what="the rotation's answer")[0]
    assert "need no approval" in answer.args["text"]
    wait_until(lambda: len(iam.list_access_keys(UserName="hy-remind")["AccessKeyMetadata"]) == 2, what="the new key")
    assert old in [k["AccessKeyId"] for k in iam.list_access_keys(UserName="hy-remind")["AccessKeyMetadata"]]


def test_a_large_account_gets_the_message_and_every_finding_as_a_file(clocked, iam):
    bot, _ = clocked
    for i in range(30):
        iam.create_user(UserName=f"hy-bulk-{i:02d}")
        iam.create_login_profile(UserName=f"hy-bulk-{i:02d}", Password="Bulk-Passw0rd-1!")
    msg = command(bot, "report")
    assert len(msg["blocks"]) <= 50
    assert "30 IAM users, 30 with findings" in everything(msg) and "…and 7 more users with findings in the attached file." in everything(msg)
    assert "Every finding is in the CSV file in your DM with me." in msg["text"]
    (shared,) = wait_until(lambda: bot.standin.files_in(APPROVER), what="the CSV file")
    rows = list(csv.DictReader(io.StringIO(shared["bytes"].decode())))
    assert len(rows) == 60 and {r["finding"] for r in rows} == {"no_mfa", "unmanaged"}
    assert {r["user"] for r in rows} == {f"hy-bulk-{i:02d}" for i in range(30)}


def test_a_report_iam_is_still_generating_is_a_clear_answer(database_url, standin, moto, iam, monkeypatch):
    proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, housekeeping=False).start()
    try:
        proxy.fail("GetCredentialReport", code="ReportInProgress", status=404, times=1000)
        bot.deps.hygiene.report_wait = 1.0  # a second of IAM's "in progress" is enough to show the answer
        msg = command(bot, "report")
        assert "I could not read IAM's credential report" in msg["text"] and "still generating" in msg["text"] and "try again in a minute" in msg["text"]
        assert events(bot, "hygiene_report") == []
    finally:
        bot.stop()
        proxy.stop()


# ---------------------------------------------------------------- the schedule


def report_posts(bot: RunningBot) -> list[Any]:
    return [c for c in bot.standin.calls_to("chat.postMessage") if c.args["channel"] == REPORT_CHANNEL]


def scheduled(bot: RunningBot, name: str):  # type: ignore[no-untyped-def]
    (found,) = [s for s in bot.deps.schedules if s.name == name]
    return found


def test_the_scheduled_report_runs_once_across_two_replicas_and_survives_a_restart(database_url, standin, moto, iam):
    standin.add_channel(REPORT_CHANNEL, "iam-hygiene")
    clock = FakeClock()
    iam.create_user(UserName="hy-sched")

    def replica(name: str) -> RunningBot:
        return RunningBot(
            database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False, worker_id=name,
            extra={"report_channel": REPORT_CHANNEL},
        ).start()

    a, b = replica("a"), replica("b")
    try:
        ran: list[bool] = []
        start = threading.Barrier(2)

        def run(bot: RunningBot) -> None:
            start.wait()
            ran.append(scheduled(bot, "hygiene_report").run_due())

        threads = [threading.Thread(target=run, args=(r,)) for r in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(ran) == [False, True]  # both had their chance; one posted
        (post,) = report_posts(a)
        assert "IAM hygiene report" in everything(post.args) and "hy-sched" in everything(post.args)
        assert [e["channel"] for e in events(a, "hygiene_report")] == [REPORT_CHANNEL]
    finally:
        a.stop()
        b.stop()

    restarted = replica("c")
    try:
        assert scheduled(restarted, "hygiene_report").run_due() is False  # not due again for a week
        clock.advance(days=6, hours=23)
        assert scheduled(restarted, "hygiene_report").run_due() is False
        clock.advance(hours=2)
        assert scheduled(restarted, "hygiene_report").run_due() is True
        assert len(report_posts(restarted)) == 2
    finally:
        restarted.stop()


def test_a_scheduled_report_iam_is_still_making_is_posted_a_few_minutes_later(database_url, standin, moto, iam, monkeypatch):
    standin.add_channel(REPORT_CHANNEL, "iam-hygiene")
    proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    clock = FakeClock()
    bot = RunningBot(
        database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False, extra={"report_channel": REPORT_CHANNEL}
    ).start()
    try:
        proxy.fail("GetCredentialReport", code="ReportInProgress", status=404, times=1000)
        task = scheduled(bot, "hygiene_report")
        assert task.run_due() is False
        with bot.deps.sessionmaker.begin() as s:
            row = s.get(ScheduledRun, "hygiene_report")
            assert row.last_error == "AwsError" and row.lease_until is None and row.next_at > clock()
        assert report_posts(bot) == []
        proxy.clear("GetCredentialReport")
        assert task.run_due() is False  # not before the retry time
        clock.advance(minutes=6)
        assert task.run_due() is True
        assert len(report_posts(bot)) == 1
    finally:
        bot.stop()
        proxy.stop()


def test_owners_are_nudged_once_per_key_before_it_gets_old(clocked, iam):
    bot, clock = clocked
    created(bot, "hy-nudge", ["access_key"])
    nudges = scheduled(bot, "key_nudges")
    assert nudges.run_due() is True and dms_to(bot, REQUESTER, "Rotate now") == []  # a new key: nothing to say
    clock.advance(days=77, hours=1)  # 90 days is the rotation age; owners hear 14 days before
    assert nudges.run_due() is True
    (nudge,) = wait_until(lambda: dms_to(bot, REQUESTER, "Rotate now"), what="the nudge")
    assert "Access key 1 of `hy-nudge` is 77 days old and reaches the rotation age of 90 days in 13 days" in everything(nudge.args)
    clock.advance(days=1, minutes=1)
    assert nudges.run_due() is True
    assert len(dms_to(bot, REQUESTER, "Rotate now")) == 1  # once per key
    assert [e["user_name"] for e in events(bot, "key_nudged")] == ["hy-nudge"]


# ---------------------------------------------------------------- MFA


def enable_mfa(iam, user_name: str) -> None:  # type: ignore[no-untyped-def]
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user_name}-phone")["VirtualMFADevice"]
    iam.enable_mfa_device(UserName=user_name, SerialNumber=device["SerialNumber"], AuthenticationCode1="123456", AuthenticationCode2="654321")


def status_of(bot: RunningBot, short_id: str) -> str:
    return command(bot, f"status {short_id}", user=REQUESTER)["text"] + json.dumps(command(bot, f"status {short_id}", user=REQUESTER).get("blocks"))


def test_console_users_are_watched_until_they_enrol_mfa(clocked, iam):
    bot, clock = clocked
    short_id = created(bot, "hy-mfa", ["console"])
    watcher = bot.deps.mfa_watcher
    assert "MFA not checked yet" in status_of(bot, short_id)
    assert watcher.run_due() == 0
    assert "no MFA device yet" in status_of(bot, short_id)

    clock.advance(days=3, minutes=1)
    assert watcher.run_due() == 1
    (reminder,) = wait_until(lambda: dms_to(bot, REQUESTER, "has no MFA device yet"), what="the owner's reminder")
    assert "`hy-mfa`" in reminder.args["text"] + everything(reminder.args)
    clock.advance(minutes=11)
    assert watcher.run_due() == 0  # reminded once

    clock.advance(days=4)
    assert watcher.run_due() == 1
    for approver in ("UAPPROVER1", "UAPPROVER2"):
        wait_until(lambda a=approver: dms_to(bot, a, "still has no MFA device"), what=f"{approver} told")
    assert dms_to(bot, REQUESTER, "still has no MFA device") == []  # the owner is not an approver here

    enable_mfa(iam, "hy-mfa")
    clock.advance(minutes=11)
    assert watcher.run_due() == 0
    assert "MFA on" in status_of(bot, short_id)
    assert [e["user_name"] for e in events(bot, "mfa_enrolled")] == ["hy-mfa"]
    clock.advance(days=30)
    assert watcher.run_due() == 0  # enrolled: no more looks, no more reminders
    assert [e["user_name"] for e in events(bot, "mfa_owner_reminded")] == ["hy-mfa"]
    assert [e["user_name"] for e in events(bot, "mfa_approvers_told")] == ["hy-mfa"]


def test_a_key_only_user_is_not_watched_without_the_mfa_requirement(clocked, iam):
    bot, _ = clocked
    created(bot, "hy-keyonly", ["access_key"])
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalar(select(func.count()).select_from(MfaWatch)) == 0


def test_a_user_deleted_by_hand_is_no_longer_watched(clocked, iam):
    bot, clock = clocked
    created(bot, "hy-gone", ["console"])
    iam.delete_login_profile(UserName="hy-gone")
    for key in iam.list_access_keys(UserName="hy-gone")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="hy-gone", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="hy-gone")
    clock.advance(days=10)
    assert bot.deps.mfa_watcher.run_due() == 0
    with bot.deps.sessionmaker.begin() as s:
        row = s.scalars(select(MfaWatch)).one()
        assert row.gone_at is not None and row.owner_reminded_at is None


@pytest.fixture
def mfa_required(database_url, standin, moto, iam) -> Iterator[RunningBot]:
    iam.create_group(GroupName="require-mfa")
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"mfa_require": "group:require-mfa"}).start()
    yield bot
    bot.stop()


def test_with_the_mfa_requirement_every_new_user_is_put_under_it_and_watched(mfa_required, iam):
    bot = mfa_required
    short_id = request_user(bot, user_name="hy-required", access=["access_key"])
    approval = approval_messages(bot, short_id)[0]
    assert "require-mfa" in everything(approval.args) and "required: MFA (IAM_BOT_MFA_REQUIRE)" in everything(approval.args)
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="hy-required")["Groups"]] == ["require-mfa"]
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalars(select(MfaWatch.user_name)).all() == ["hy-required"]  # watched, though it has no console password


def test_home_shows_mfa_and_offers_rotation_and_reset(clocked, iam):
    bot, _ = clocked
    short_id = created(bot, "hy-home", ["console", "access_key"])
    click(bot, REQUESTER, "reveal_credentials", short_id, credentials_dm(bot, short_id))  # Home offers Reveal until then
    bot.standin.wait_for("chat.update", lambda c: "were revealed" in everything(c.args), timeout=20)
    bot.deps.mfa_watcher.run_due()
    before = len(bot.standin.calls_to("views.publish"))
    bot.slack.event({"type": "app_home_opened", "user": REQUESTER, "channel": "D" + REQUESTER[1:], "tab": "home", "event_ts": "1.1"})

    def line_of(call: Any) -> dict[str, Any]:
        (found,) = [b for b in call.args["view"]["blocks"] if b["type"] == "section" and short_id in b["text"]["text"]]
        return found

    # A Home published for the reveal may still arrive after the MFA check: the one that shows the check is the one opened now.
    published = wait_until(
        lambda: [c for c in bot.standin.calls_to("views.publish")[before:] if c.args["user_id"] == REQUESTER and "no MFA device yet" in line_of(c)["text"]["text"]],
        what="home with the MFA state",
    )[-1]
    home, line = published.args["view"], line_of(published)
    menu = line["accessory"]
    assert menu["type"] == "overflow" and [o["value"] for o in menu["options"]] == [
        "change:hy-home", "rotate_key:hy-home", "reset_password:hy-home", "disable:hy-home", "offboard:hy-home"]

    bot.slack.block_action(REQUESTER, "owned_user_menu", "reset_password:hy-home", view=home, overflow=True)
    answer = wait_until(lambda: dms_to(bot, REQUESTER, "a new console password for `hy-home`"), what="the reset's answer")[0]
    assert "need no approval" in answer.args["text"]


@pytest.fixture
def holding(database_url, standin, moto, iam, tmp_path) -> Iterator[tuple[RunningBot, FakeClock]]:
    rules = tmp_path / "rules.yml"
    rules.write_text("hold_keys_until_mfa: true\nrules:\n  - name: everyone\n    approvers: [UAPPROVER1, UAPPROVER2]\n")
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False,
                     extra={"rules_path": str(rules)}).start()
    yield bot, clock
    bot.stop()


def test_a_held_access_key_is_made_and_sent_once_the_user_has_mfa(holding, iam):
    bot, clock = holding
    answer = submit_form(bot, user_name="hy-held", access=["access_key"])  # a key alone could never be released
    assert answer["response_action"] == "errors" and "tick console access too" in answer["errors"]["access_type"]

    short_id = request_user(bot, user_name="hy-held", access=["console", "access_key"])
    approval = approval_messages(bot, short_id)[0]
    assert "Create an access key *once the user has MFA on*" in everything(approval.args)
    click(bot, APPROVER, "approve_request", short_id)
    dm = credentials_dm(bot, short_id)
    assert iam.list_access_keys(UserName="hy-held")["AccessKeyMetadata"] == []  # held: not made yet
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)
    modal = json.dumps(bot.standin.wait_for("views.open", lambda c: "hy-held" in json.dumps(c.args)).args)
    assert "Console password" in modal or "password" in modal.lower()
    assert "AKIA" not in modal

    watcher = bot.deps.mfa_watcher
    clock.advance(days=3, minutes=1)
    watcher.run_due()
    wait_until(lambda: dms_to(bot, REQUESTER, "Its access key is held until then"), what="the owner's reminder")
    assert iam.list_access_keys(UserName="hy-held")["AccessKeyMetadata"] == []

    enable_mfa(iam, "hy-held")
    clock.advance(minutes=11)
    watcher.run_due()
    ready = wait_until(lambda: dms_to(bot, REQUESTER, "A new access key (held until MFA was on) for `hy-held` is ready"), what="the held key's DM")[0]
    (key,) = iam.list_access_keys(UserName="hy-held")["AccessKeyMetadata"]
    assert key["Status"] == "Active"
    (filed,) = events(bot, "requested")[-1:]
    assert filed["kind"] == "held_key" and filed["approved_with"] == short_id and filed["actor"] == "iam-bot"
    assert [e["rule"] for e in events(bot, "auto_approved")][-1:] == ["held-until-mfa"]
    clock.advance(minutes=11)
    watcher.run_due()
    assert len(iam.list_access_keys(UserName="hy-held")["AccessKeyMetadata"]) == 1  # released once
    assert len(dms_to(bot, REQUESTER, "held until MFA was on")) == 1
    assert "reveal_credentials" in everything(ready.args)


def test_a_large_scheduled_report_also_shares_every_finding_as_a_file_in_the_channel(database_url, standin, moto, iam):
    standin.add_channel(REPORT_CHANNEL, "iam-hygiene")
    for i in range(25):
        iam.create_user(UserName=f"hy-many-{i:02d}")
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, housekeeping=False, extra={"report_channel": REPORT_CHANNEL}).start()
    try:
        assert scheduled(bot, "hygiene_report").run_due() is True
        (post,) = report_posts(bot)
        assert "…and 2 more users with findings in the attached file." in everything(post.args)
        (shared,) = standin.files_in(REPORT_CHANNEL)
        assert shared["title"] == "IAM hygiene report" and shared["bytes"].decode().count("\n") == 26  # a header and one row per finding
    finally:
        bot.stop()
