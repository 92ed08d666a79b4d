"""Faults in front of IAM, as an operator would inject them: answers lost after IAM did the work,
throttling on step after step, a job longer than its lease, a replica killed mid-job. Each request
still ends with one user, one key whose secret the owner holds, one DM, and it ends quickly.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from models import AccessRequest, RequestState
from tests.support.chaos import Chaos
from tests.support.harness import RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, click, credentials_dm, request_user


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _revealed(bot, short_id: str, dm) -> str:
    opened = len(bot.standin.calls_to("views.open"))
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)
    return json.dumps(wait_until(lambda: bot.standin.calls_to("views.open")[opened:], what="the reveal modal")[0].args["view"])


def _most_keys_at_once(history: list[tuple[str, dict[str, str]]], user_name: str) -> int:
    """From the calls IAM carried out, in order: how many keys the user held at most at one time."""
    alive = most = 0
    for action, params in history:
        if params.get("UserName") != user_name:
            continue
        if action == "CreateAccessKey":
            alive += 1
        elif action == "DeleteAccessKey":
            alive -= 1
        most = max(most, alive)
    return most


@pytest.mark.parametrize("action", ["CreateUser", "CreateLoginProfile", "CreateAccessKey"])
def test_an_answer_lost_after_iam_acted_is_never_repeated_blindly(action, bot_behind_proxy, iam):
    bot, proxy = bot_behind_proxy
    user_name = f"lost-{action.lower()}"
    short_id = request_user(bot, user_name=user_name, access=["console", "access_key"])
    proxy.lose_answer(action)  # IAM does it; the bot hears HTTP 500
    click(bot, APPROVER, "approve_request", short_id)
    dm = credentials_dm(bot, short_id)
    assert proxy.injected == [f"{action} (answer lost)"]

    assert [u["UserName"] for u in iam.list_users()["Users"]] == [user_name]
    keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    assert len(keys) == 1, "a key whose secret nobody holds was left behind"
    assert _most_keys_at_once(proxy.history, user_name) == 1
    sent = [a for a, p in proxy.history if p.get("UserName") == user_name]
    if action == "CreateUser":
        assert sent.count("CreateUser") == 1  # the marker showed IAM had made it: not created again
    if action == "CreateLoginProfile":
        assert sent.count("CreateLoginProfile") == 2 and sent.count("UpdateLoginProfile") == 1
    if action == "CreateAccessKey":
        created = [i for i, a in enumerate(sent) if a == "CreateAccessKey"]
        assert len(created) == 2 and "DeleteAccessKey" in sent[created[0] : created[1]]  # the orphan went first

    # What the owner is shown is what IAM holds: its one key, and the password it was last given.
    view = _revealed(bot, short_id, dm)
    assert keys[0]["AccessKeyId"] in view
    passwords = [p["Password"] for a, p in proxy.history if a in ("CreateLoginProfile", "UpdateLoginProfile") and p.get("UserName") == user_name]
    shown = {_digest(part) for part in view.split("```")[1::2] + view.split("`")}
    assert _digest(passwords[-1]) in shown


@pytest.mark.heavy
def test_four_throttled_steps_in_a_row_finish_within_a_minute(bot_behind_proxy, iam):
    bot, proxy = bot_behind_proxy
    iam.create_group(GroupName="throttled-team")
    short_id = request_user(bot, user_name="throttled-steps", access=["console", "access_key"], groups=["throttled-team"])
    # More throttles on each write than botocore absorbs in one call (3 tries by default).
    for action, times in (("CreateUser", 3), ("AddUserToGroup", 4), ("CreateLoginProfile", 3), ("CreateAccessKey", 4)):
        proxy.fail(action, code="Throttling", times=times)
    started = time.monotonic()
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id, timeout=90)
    took = time.monotonic() - started
    assert sorted(set(proxy.injected)) == ["AddUserToGroup", "CreateAccessKey", "CreateLoginProfile", "CreateUser"]
    assert len(proxy.injected) == 14
    assert took < 60, f"approve -> credentials DM took {took:.0f} s"
    assert len(iam.list_access_keys(UserName="throttled-steps")["AccessKeyMetadata"]) == 1


def _chaos(url, standin, moto, iam, tmp_path, lease: float) -> Chaos:
    return Chaos(database_url=url, standin=standin, moto_url=moto.url, iam=iam, key=Fernet.generate_key().decode(), logdir=tmp_path, lease_seconds=lease)


@pytest.mark.heavy
@pytest.mark.postgres
def test_a_job_longer_than_its_lease_keeps_it(postgres_url, standin, moto, iam, tmp_path):
    chaos = _chaos(postgres_url, standin, moto, iam, tmp_path, lease=2.0)
    try:
        a = chaos.replica("a")
        chaos.replica("b")  # the other replica, which must not take the job over while it runs
        for proxy in chaos.proxies.values():
            proxy.slow["CreateAccessKey"] = 5.0  # one step takes two and a half leases
        short_id = request_user(a, user_name="slowkey01", access=["access_key"])
        click(a, APPROVER, "approve_request", short_id)
        wait_until(lambda: chaos.settled(short_id), timeout=60, what="the slow job finished")
        out = chaos.outcome(short_id, "slowkey01", reveal_on=a, console=False)
        assert out.ok, out
        runners = {name for name, proxy in chaos.proxies.items() if any(p.get("UserName") == "slowkey01" for _, p in proxy.history)}
        assert len(runners) == 1, "the job was taken over while its worker was alive and renewing"
        assert "taken over" not in chaos.logs()
    finally:
        chaos.close()


@pytest.mark.heavy
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_replica_killed_mid_job_is_recovered_within_the_lease(db, standin, moto, iam, tmp_path, request):
    lease = 10.0  # the production default
    url = request.getfixturevalue("postgres_url") if db == "postgresql" else f"sqlite:///{tmp_path / 'bot.db'}"
    chaos = _chaos(url, standin, moto, iam, tmp_path, lease=lease)
    try:
        # PostgreSQL: a second replica takes over. SQLite serves one process: it is restarted.
        replicas = [chaos.replica("a"), chaos.replica("b")] if db == "postgresql" else [chaos.replica("only")]
        out, _ = chaos.crash_cycle(replicas, ("iam", "CreateUser", "after"), 0)
        assert out.ok, out
        # The lease runs out at most `lease` after the kill; then the job is resumed at once, not at a poll.
        assert out.recovery_seconds < lease + 15, f"recovered {out.recovery_seconds:.1f} s after the kill"
    finally:
        chaos.close()


def test_a_password_policy_tightened_within_the_cached_minute_is_read_again(bot_behind_proxy, iam):
    from bot.credentials.passwords import PasswordPolicy, satisfies

    bot, proxy = bot_behind_proxy
    bot.deps.iam.password_policy()  # the account has none yet: that is kept for a minute
    strict = PasswordPolicy(40, True, True, True, True)
    iam.update_account_password_policy(
        MinimumPasswordLength=40, RequireSymbols=True, RequireNumbers=True, RequireUppercaseCharacters=True, RequireLowercaseCharacters=True
    )
    proxy.fail("CreateLoginProfile", code="PasswordPolicyViolation", status=400)  # IAM's answer to a password made for the old one
    short_id = request_user(bot, user_name="strict-policy", access=["console"])
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    tried = [p["Password"] for a, p in proxy.history if a == "CreateLoginProfile" and p.get("UserName") == "strict-policy"]
    assert len(tried) == 2 and not satisfies(tried[0], strict) and satisfies(tried[1], strict)
    assert [a for a, _ in proxy.history].count("GetAccountPasswordPolicy") == 2  # once cached, once fresh


def test_a_rotation_whose_new_key_answer_was_lost_leaves_the_old_key_and_one_new_one(bot_behind_proxy, iam):
    """The new key of a rotation is made, its answer lost: that key (whose secret nobody holds) is
    deleted before the next try, the old key is never touched, and the owner gets the key IAM keeps."""
    bot, proxy = bot_behind_proxy
    short_id = request_user(bot, user_name="lost-rotation", access=["access_key"])
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    (old,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName="lost-rotation")["AccessKeyMetadata"]]
    proxy.lose_answer("CreateAccessKey")
    before = len(bot.standin.calls_to("response_url"))
    bot.slack.command(REQUESTER, "rotate-key lost-rotation")
    answer = json.dumps(wait_until(lambda: bot.standin.calls_to("response_url")[before:], what="the answer")[0].args)
    rotation = answer.split("Request *", 1)[1].split("*", 1)[0]
    dm = credentials_dm(bot, rotation)
    assert proxy.injected == ["CreateAccessKey (answer lost)"]
    keys = {k["AccessKeyId"] for k in iam.list_access_keys(UserName="lost-rotation")["AccessKeyMetadata"]}
    assert old in keys and len(keys) == 2
    sent = [(a, p) for a, p in proxy.history if p.get("UserName") == "lost-rotation"]
    deleted = [p.get("AccessKeyId") for a, p in sent if a == "DeleteAccessKey"]
    assert len(deleted) == 1 and old not in deleted  # the orphan went before the next try, never the old key
    (new,) = keys - {old}
    assert new in _revealed(bot, rotation, dm)


def test_a_key_added_by_hand_after_the_rotation_was_planned_stops_it_untouched(database_url, standin, moto, iam):
    """The plan saw one key; a second one appears before the worker applies it: nothing is deleted or made."""
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url).start()
    try:
        short_id = request_user(bot, user_name="drifted-keys", access=["access_key"])
        click(bot, APPROVER, "approve_request", short_id)
        credentials_dm(bot, short_id)
        bot.deps.worker.stop(timeout=5)  # from here the test runs each job itself
        before = len(bot.standin.calls_to("response_url"))
        bot.slack.command(REQUESTER, "rotate-key drifted-keys")
        answer = json.dumps(wait_until(lambda: bot.standin.calls_to("response_url")[before:], what="the answer")[0].args)
        rotation = answer.split("Request *", 1)[1].split("*", 1)[0]

        def state() -> RequestState:
            with bot.deps.sessionmaker.begin() as s:
                return s.scalars(select(AccessRequest.state).where(AccessRequest.short_id == rotation)).one()

        # Run only the plan job: it approves the owner's own ask and queues the apply job.
        bot.deps.worker.run_once()
        assert state() is RequestState.APPROVED
        by_hand = iam.create_access_key(UserName="drifted-keys")["AccessKey"]["AccessKeyId"]
        bot.deps.worker.run_until_idle()
        assert state() is RequestState.FAILED
        assert by_hand in {k["AccessKeyId"] for k in iam.list_access_keys(UserName="drifted-keys")["AccessKeyMetadata"]}
        assert len(iam.list_access_keys(UserName="drifted-keys")["AccessKeyMetadata"]) == 2
        bot.standin.wait_for("chat.postMessage", lambda c: "after the rotation was planned" in c.args["text"] + json.dumps(c.args.get("blocks")))
    finally:
        bot.stop()
