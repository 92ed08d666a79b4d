"""Expiring accounts: an end date in the request, shown in the plan approvers approve; reminders a week
and a day before; disabled on the date and deleted after the grace period (each once, approved with
the user: rule `expiry`); `/iam extend` moves the date once an approver agrees."""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import pytest
from sqlalchemy import select

from models import AccessRequest, AuditEvent, UserExpiry
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, approval_messages, click, command, credentials_dm, dms_to, everything, request_user, submit_form


def requests_of(bot: RunningBot, kind: str) -> list[AccessRequest]:
    with bot.deps.sessionmaker.begin() as s:
        rows = list(s.scalars(select(AccessRequest).where(AccessRequest.kind == kind).order_by(AccessRequest.id)))
        s.expunge_all()
        return rows


def day(clock: FakeClock, days: int) -> str:
    return (clock() + timedelta(days=days)).strftime("%Y-%m-%d")


def test_an_expiring_user_is_reminded_disabled_then_deleted(clocked, iam):
    bot, clock = clocked
    ends = day(clock, 20)
    short_id = request_user(bot, user_name="contractor01", access=["console", "access_key"], expires=ends)
    approval = approval_messages(bot, short_id)[0]
    assert f"Ends on {ends}*: the user is disabled that day" in everything(approval.args) and f"*Expires*\\n{ends}" in everything(approval.args)
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    with bot.deps.sessionmaker.begin() as s:
        row = s.scalars(select(UserExpiry)).one()
        assert row.expires_at.strftime("%Y-%m-%d") == ends and (row.delete_at - row.expires_at).days == 30
    assert f"ends {ends}" in command(bot, f"status {short_id}")

    expiry = bot.deps.expiries
    assert expiry.run_due() == 0
    clock.advance(days=13, hours=1)  # within a week of the date
    assert expiry.run_due() == 1
    for person in (REQUESTER, "UAPPROVER1", "UAPPROVER2"):
        wait_until(lambda p=person: dms_to(bot, p, "ends <!date"), what=f"{person}'s week reminder")
    assert expiry.run_due() == 0  # once
    clock.advance(days=6)  # within a day
    assert expiry.run_due() == 1
    wait_until(lambda: len(dms_to(bot, REQUESTER, "/iam extend contractor01")) == 2, what="the day's reminder")

    clock.advance(days=1)  # the date: disabled, as approved with the user
    assert expiry.run_due() == 1
    (expire,) = wait_until(lambda: [r for r in requests_of(bot, "expire") if r.state.value == "completed"], what="the disabling")
    assert expire.requester_id == "iam-bot" and expire.rule_name == "expiry"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName="contractor01")
    assert [k["Status"] for k in iam.list_access_keys(UserName="contractor01")["AccessKeyMetadata"]] == ["Inactive"]
    assert expiry.run_due() == 0

    clock.advance(days=30)  # the grace period: deleted
    assert expiry.run_due() == 1
    wait_until(lambda: [r for r in requests_of(bot, "expire_delete") if r.state.value == "completed"], what="the deletion")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="contractor01")
    assert "`contractor01` was offboarded by request" in command(bot, "rotate-key contractor01")  # the bot no longer has it
    clock.advance(days=60)
    assert expiry.run_due() == 0
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "expiry_reminded")).all() == ["expiry_reminded"] * 2


def test_an_extension_approved_before_the_date_moves_it(clocked, iam):
    bot, clock = clocked
    short_id = request_user(bot, user_name="contractor02", access=["access_key"], expires=day(clock, 10))
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    later = day(clock, 60)
    answer = command(bot, f"extend contractor02 {later}")
    assert "to end on" in answer, answer
    ext_id = answer.split("Request *", 1)[1].split("*", 1)[0]
    message = wait_until(lambda: approval_messages(bot, ext_id), what="the extension's approval message")[0]
    assert "Extension request" in everything(message.args) and "Nothing changes in IAM now" in everything(message.args)
    assert f"Now ends on {later}" in everything(message.args)
    click(bot, APPROVER, "approve_request", ext_id, message)
    wait_until(lambda: dms_to(bot, REQUESTER, f"now ends on *{later}*"), what="the extension notice")
    clock.advance(days=11)
    assert bot.deps.expiries.run_due() == 0  # the old date passed: nothing happens
    assert iam.list_access_keys(UserName="contractor02")["AccessKeyMetadata"][0]["Status"] == "Active"
    assert f"ends {later}" in command(bot, f"status {short_id}")


def test_bad_dates_and_users_without_one_are_refused(clocked, iam):
    bot, clock = clocked
    answer = submit_form(bot, user_name="contractor03", expires=day(clock, 0))
    assert answer["response_action"] == "errors" and "after today" in answer["errors"]["expires"]
    short_id = request_user(bot, user_name="permanent01", access=["access_key"])
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert "has no end date" in command(bot, f"extend permanent01 {day(clock, 30)}")
    assert "Name the user and its new end date" in command(bot, "extend permanent01")
    assert "as YYYY-MM-DD" in command(bot, "extend permanent01 next-week")


@pytest.fixture
def required(database_url, standin, moto, iam, tmp_path) -> Iterator[tuple[RunningBot, FakeClock]]:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "guardrails:\n  require_expiry: {paths: [/contractors/], groups: [vendors-*]}\n  max_expiry_days: 90\n"
        "rules:\n  - name: everyone\n    approvers: [UAPPROVER1, UAPPROVER2]\n"
    )
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, extra={"rules_path": str(rules)}).start()
    yield bot, clock
    bot.stop()


def test_the_rules_can_require_an_end_date_and_cap_it(required, iam):
    bot, clock = required
    answer = submit_form(bot, user_name="vendor01", path="/contractors/")
    assert "want an end date for users under `/contractors/`" in answer["errors"]["expires"]
    answer = submit_form(bot, user_name="vendor01", path="/contractors/", expires=day(clock, 120))
    assert "at most 90 days ahead" in answer["errors"]["expires"]
    short_id = request_user(bot, user_name="vendor01", path="/contractors/", access=["access_key"], expires=day(clock, 30))
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert "at most 90 days ahead" in command(bot, f"extend vendor01 {day(clock, 200)}")
