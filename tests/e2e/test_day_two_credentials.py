"""Day two: `/iam rotate-key` and `/iam reset-password` for a user the bot created, as plans of their
own (planned, judged, applied, delivered), and the old key's retirement on schedule."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from models import AuditEvent, KeyRetirement
from tests.support.harness import RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, approval_messages, click, credentials_dm, request_user

OTHER = "UOTHER0001"


def command(bot: RunningBot, text: str, user: str = REQUESTER) -> str:
    """`/iam <text>`; the private answer's text."""
    before = len(bot.standin.calls_to("response_url"))
    bot.slack.command(user, text)
    answer = wait_until(lambda: bot.standin.calls_to("response_url")[before:], what=f"the answer to /iam {text}")[0]
    return str(answer.args.get("text"))


def asked(answer: str) -> str:
    found = re.search(r"Request \*([0-9A-Z]+)\*", answer)
    assert found, answer
    return found.group(1)


def created(bot: RunningBot, user_name: str, access: list[str]) -> None:
    short_id = request_user(bot, user_name=user_name, access=access)
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)


def dm_to(bot: RunningBot, user: str, fragment: str, after: int = 0):  # type: ignore[no-untyped-def]
    return bot.standin.wait_for(
        "chat.postMessage", lambda c: c.args["channel"] == "D" + user[1:] and fragment in c.args["text"] + json.dumps(c.args.get("blocks")) and c.at >= after
    )


def revealed(bot: RunningBot, short_id: str) -> str:
    """Reveal the credentials of `short_id` as the owner; the modal's JSON."""
    dm = credentials_dm(bot, short_id)
    opened = len(bot.standin.calls_to("views.open"))
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)
    return json.dumps(wait_until(lambda: bot.standin.calls_to("views.open")[opened:], what="reveal modal")[0].args["view"])


def events(bot: RunningBot, action: str) -> int:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def test_an_owner_rotates_their_key_and_the_old_one_is_retired_on_schedule(clocked, iam):
    bot, clock = clocked
    created(bot, "rotme01", ["access_key"])
    (old,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName="rotme01")["AccessKeyMetadata"]]

    answer = command(bot, "rotate-key")  # the owner's only user: no name needed
    assert "need no approval" in answer, answer
    short_id = asked(answer)
    modal = revealed(bot, short_id)
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="rotme01")["AccessKeyMetadata"]}
    (new,) = set(keys) - {old}
    assert keys == {old: "Active", new: "Active"} and new in modal and old not in modal
    assert "A new access key for" in credentials_dm(bot, short_id).args["text"]
    assert events(bot, "auto_approved") == 1  # self-service: audited like any approval

    retire = bot.deps.key_retirements
    with bot.deps.sessionmaker.begin() as s:
        row = s.scalars(select(KeyRetirement)).one()
        assert (row.key_id, row.user_name, row.owner_id) == (old, "rotme01", REQUESTER)
    assert retire.run_due() == 0  # nothing is due yet
    clock.advance(days=6, hours=1)
    assert retire.run_due() == 1
    dm_to(bot, REQUESTER, "will be *deactivated*")
    assert retire.run_due() == 0  # reminded once
    clock.advance(hours=23)
    assert retire.run_due() == 1
    dm_to(bot, REQUESTER, "was *deactivated*")
    assert {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="rotme01")["AccessKeyMetadata"]} == {old: "Inactive", new: "Active"}
    clock.advance(days=6, hours=1)
    assert retire.run_due() == 1
    dm_to(bot, REQUESTER, "will be *deleted*")
    clock.advance(hours=23)
    assert retire.run_due() == 1
    dm_to(bot, REQUESTER, "was *deleted*")
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="rotme01")["AccessKeyMetadata"]] == [new]
    assert retire.run_due() == 0
    assert (events(bot, "old_key_deactivated"), events(bot, "old_key_deleted")) == (1, 1)

    bot.slack.dm(REQUESTER, f"status {short_id}")
    dm_to(bot, REQUESTER, "Old access key deleted")


def test_a_key_deleted_by_hand_meanwhile_is_not_an_error(clocked, iam):
    bot, clock = clocked
    created(bot, "rotme02", ["access_key"])
    (old,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName="rotme02")["AccessKeyMetadata"]]
    credentials_dm(bot, asked(command(bot, "rotate-key rotme02")))
    iam.delete_access_key(UserName="rotme02", AccessKeyId=old)
    clock.advance(days=15)
    bot.deps.key_retirements.run_due()
    with bot.deps.sessionmaker.begin() as s:
        row = s.scalars(select(KeyRetirement)).one()
        assert row.deactivated_at is not None and row.deleted_at is not None
    assert len(iam.list_access_keys(UserName="rotme02")["AccessKeyMetadata"]) == 1


def test_rotation_is_refused_with_what_to_do(clocked, iam):
    bot, _ = clocked
    created(bot, "rotme03", ["access_key"])
    created(bot, "consoleonly", ["console"])
    iam.create_user(UserName="handmade")

    assert "belongs to <@" in command(bot, "rotate-key rotme03", user=OTHER)
    assert "not a user the bot created" in command(bot, "rotate-key handmade")
    assert "You own 2 users" in command(bot, "rotate-key")

    asked(command(bot, "rotate-key consoleonly"))
    dm_to(bot, REQUESTER, "has no access key, so there is nothing to rotate")

    credentials_dm(bot, asked(command(bot, "rotate-key rotme03")))
    asked(command(bot, "rotate-key rotme03"))  # a second rotation while the first key is not yet retired
    dm_to(bot, REQUESTER, "IAM's limit")
    assert len(iam.list_access_keys(UserName="rotme03")["AccessKeyMetadata"]) == 2  # nothing more was made

    asked(command(bot, "reset-password rotme03"))  # a key-only user
    dm_to(bot, REQUESTER, "cannot sign in to the console")


def test_an_owner_resets_the_console_password(clocked, iam, moto):
    bot, _ = clocked
    created(bot, "resetme01", ["console"])
    moto.start_recording()
    short_id = asked(command(bot, "reset-password resetme01"))
    modal = revealed(bot, short_id)
    (update,) = [r for r in moto.recorded() if r.get("Action") == "UpdateLoginProfile"]
    assert update["PasswordResetRequired"] == "true" and update["Password"] in modal
    assert not [r for r in moto.recorded() if r.get("Action") in ("CreateAccessKey", "CreateLoginProfile")]
    assert update["Password"] not in bot.logs.text() and update["Password"] not in bot.standin.all_text().replace(modal, "")


def test_rules_can_require_an_approver_for_an_owners_rotation(database_url, standin, moto, iam, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("self_service: []\nrules:\n  - name: everyone\n    approvers: [UAPPROVER1, UAPPROVER2]\n")
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"rules_path": str(rules)}).start()
    try:
        created(bot, "rotme04", ["access_key"])
        answer = command(bot, "rotate-key rotme04")
        assert "want an approver" in answer, answer
        short_id = asked(answer)
        asking = wait_until(lambda: approval_messages(bot, short_id), what="the approvers asked")[0]
        click(bot, APPROVER, "approve_request", short_id, asking)
        credentials_dm(bot, short_id)
        assert len(iam.list_access_keys(UserName="rotme04")["AccessKeyMetadata"]) == 2
    finally:
        bot.stop()
