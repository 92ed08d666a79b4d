"""Whatever fails, each approved request yields one IAM user, one access key, one credentials DM,
and a state that tells the truth. Every fault here is really caused: processes are SIGKILLed,
IAM answers with throttling, 5xx and dropped connections, replicas race on one PostgreSQL.
scripts/chaos.py runs the same faults many more times and prints the counts.
"""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from models import Job
from tests.support.chaos import CHANGE_KILL_POINTS, FAULTS, KILL_POINTS, REMOVAL_KILL_POINTS, REVOKE_KILL_POINTS, Chaos
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import APPROVER, click, credentials_dm, request_user

# Several bot processes, or a job faulted at every step: run after the rest (`make test`), not beside it.
pytestmark = pytest.mark.heavy

SECRET_KEY_SHAPE = r"[A-Za-z0-9/+]{40}"


def _chaos(url, standin, moto, iam, tmp_path):
    return Chaos(database_url=url, standin=standin, moto_url=moto.url, iam=iam, key=Fernet.generate_key().decode(), logdir=tmp_path)


@pytest.fixture
def chaos(database_url, standin, moto, iam, tmp_path):
    c = _chaos(database_url, standin, moto, iam, tmp_path)
    yield c
    c.close()


@pytest.fixture
def pg_chaos(postgres_url, standin, moto, iam, tmp_path):
    """Replicas share one PostgreSQL database, as deployed behind a load balancer."""
    c = _chaos(postgres_url, standin, moto, iam, tmp_path)
    yield c
    c.close()


@pytest.fixture
def sqlite_chaos(standin, moto, iam, tmp_path):
    """SQLite serves one process: a killed process is restarted, not replaced by a replica."""
    c = _chaos(f"sqlite:///{tmp_path / 'bot.db'}", standin, moto, iam, tmp_path)
    yield c
    c.close()


def _report(outcomes) -> str:
    return "\n".join(f"{o.point}: users={o.users} keys={o.keys} dms={o.dms} state={o.state} job={o.job} consistent={o.consistent}" for o in outcomes)


def _no_tracebacks_or_secrets(chaos: Chaos) -> None:
    import re

    logs = chaos.logs()
    assert "Traceback" not in logs, "a replica logged a traceback"
    assert not re.search(r"(?<![A-Za-z0-9/+])" + SECRET_KEY_SHAPE + r"(?![A-Za-z0-9/+])", logs), "something shaped like a secret key was logged"


@pytest.mark.postgres
def test_a_replica_killed_at_any_step_is_finished_by_another_once(pg_chaos):
    chaos = pg_chaos
    replicas = [chaos.replica("a"), chaos.replica("b")]
    outcomes = []
    for n, point in enumerate(KILL_POINTS):
        out, dead = chaos.crash_cycle(replicas, point, n)  # kills whichever replica runs the job
        outcomes.append(out)
        replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"r{n}")]
    assert all(o.ok for o in outcomes), _report(outcomes)
    _no_tracebacks_or_secrets(chaos)


TWO_ACCOUNTS = {"prod": "111111111111", "staging": "222222222222"}


@pytest.mark.postgres
def test_replicas_killed_while_acting_in_two_accounts_finish_each_request_in_its_own_account_once(postgres_url, standin, moto, iam, tmp_path):
    """The bot acts in two member accounts through their roles; a replica is killed mid-job in each, and
    the other finishes it there: one user, one key, one DM, and nothing of it in the other account."""
    chaos = Chaos(database_url=postgres_url, standin=standin, moto_url=moto.url, iam=iam, key=Fernet.generate_key().decode(), logdir=tmp_path,
                  accounts=TWO_ACCOUNTS)
    try:
        replicas = [chaos.replica("a"), chaos.replica("b")]
        outcomes = []
        for n, (point, account) in enumerate([(KILL_POINTS[1], "prod"), (KILL_POINTS[6], "staging")]):  # CreateUser / CreateAccessKey, after
            out, dead = chaos.crash_cycle(replicas, point, n, account=account)
            outcomes.append(out)
            replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"r{n}")]
        assert all(o.ok for o in outcomes), _report(outcomes) + "".join(f" elsewhere={o.elsewhere}" for o in outcomes)
        _no_tracebacks_or_secrets(chaos)
    finally:
        chaos.close()


@pytest.mark.postgres
def test_an_offboarding_killed_at_any_removal_is_finished_by_another_replica_once(pg_chaos):
    chaos = pg_chaos
    replicas = [chaos.replica("a"), chaos.replica("b")]
    outcomes = []
    for n, point in enumerate(REMOVAL_KILL_POINTS):
        out, dead = chaos.offboard_crash_cycle(replicas, point, n)
        outcomes.append(out)
        replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"o{n}")]
    assert all(o.ok for o in outcomes), "\n".join(
        f"{o.point}: users={o.users} repeated={o.repeated} reports={o.reports} state={o.state} job={o.job}" for o in outcomes)
    _no_tracebacks_or_secrets(chaos)


@pytest.mark.postgres
def test_a_change_and_its_grants_end_killed_at_any_step_are_finished_by_another_replica_once(pg_chaos):
    """A change is killed at one of its steps (or just after its credentials DM), then the hour it granted
    is made up and the worker taking it away is killed too; other replicas finish both, each step once."""
    chaos = pg_chaos
    replicas = [chaos.replica("a"), chaos.replica("b")]
    outcomes = []
    # Three of the change's points here (after a removal, before a grant, after the credentials DM); scripts/chaos.py draws from all.
    for n, point in enumerate([CHANGE_KILL_POINTS[0], CHANGE_KILL_POINTS[1], CHANGE_KILL_POINTS[-1]]):
        out, dead = chaos.change_crash_cycle(replicas, point, n)
        outcomes.append(out)
        replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"c{n}")]
        if n < len(REVOKE_KILL_POINTS):
            ended, dead = chaos.revoke_crash_cycle(replicas, REVOKE_KILL_POINTS[n], out.user_name, n)
            outcomes.append(ended)
            replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"v{n}")]
    assert all(o.ok for o in outcomes), "\n".join(
        f"{o.point}: as_planned={o.as_planned} repeated={o.repeated} dms={o.dms} notices={o.notices} requests={o.requests} state={o.state} job={o.job}"
        for o in outcomes)
    _no_tracebacks_or_secrets(chaos)


def test_a_single_process_killed_mid_job_resumes_after_restart(sqlite_chaos):
    chaos = sqlite_chaos
    replicas = [chaos.replica("only")]
    outcomes = []
    for n, point in enumerate(KILL_POINTS[1::2]):  # after CreateUser, after AttachUserPolicy, before CreateAccessKey, after the DM
        out, _ = chaos.crash_cycle(replicas, point, n)
        outcomes.append(out)
        replicas = [chaos.replicas[-1]]  # the restarted process
    assert all(o.ok for o in outcomes), _report(outcomes)
    _no_tracebacks_or_secrets(chaos)


@pytest.mark.postgres
def test_concurrent_approvals_on_two_replicas_provision_each_request_once(pg_chaos):
    chaos = pg_chaos
    a, b = chaos.replica("a"), chaos.replica("b")
    outcomes = chaos.concurrent_approvals(a, b, count=12)
    assert all(o.ok for o in outcomes), _report(outcomes)
    # Every request was approved exactly once; every losing click was refused and recorded.
    with chaos.engine.connect() as c:
        from models import AuditEvent

        actions = [r.action for r in c.execute(select(AuditEvent.action))]
    assert actions.count("approved") == 12 and actions.count("decision_refused") == 12
    _no_tracebacks_or_secrets(chaos)


def test_sigterm_mid_job_releases_it_and_exits_within_ten_seconds(chaos, database_url, iam):
    victim = chaos.replica("a")
    short_id = request_user(victim, user_name="sigterm01", access=["console", "access_key"])
    hanging, release = threading.Event(), threading.Event()

    def hang() -> None:  # IAM stops answering CreateAccessKey; the call is then dropped, never carried out
        hanging.set()
        release.wait(60)
        raise ConnectionAbortedError("dropped by the test")

    chaos.proxies[victim.name].trip("CreateAccessKey", hang, when="before")
    click(victim, APPROVER, "approve_request", short_id)
    assert hanging.wait(30)
    took = victim.terminate()
    release.set()
    assert took < 10, f"SIGTERM took {took:.1f}s"
    with chaos.engine.connect() as c:
        job = c.execute(select(Job.state, Job.lease_owner).where(Job.kind == "apply")).one()
    assert (job.state.value if hasattr(job.state, "value") else job.state, job.lease_owner) == ("queued", None)
    heir = chaos.replica("b")
    started = time.monotonic()
    wait_until(lambda: chaos.settled(short_id), timeout=60, what="the released job finished by the next process")
    assert time.monotonic() - started < chaos.lease_seconds + 30  # released, not waited out
    out = chaos.outcome(short_id, "sigterm01", reveal_on=heir)
    assert out.ok, _report([out])
    assert "finishing the job in hand" in victim.logs()




def test_throttling_5xx_and_dropped_connections_on_every_iam_action_in_turn(database_url, standin, moto, iam, monkeypatch):
    """Each IAM action a job makes fails more often than botocore retries it (AWS_MAX_ATTEMPTS=2),
    so the job itself must back off and resume; the faults rotate between actions."""
    from tests.support.fault_proxy import FaultProxy

    proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    iam.create_group(GroupName="throttled")
    clock = FakeClock()
    # No housekeeping: its reads (the key nudges' credential report) would be taken for the job's actions.
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False).start()
    fields = dict(access=["console", "access_key"], groups=["throttled"], policies=["arn:aws:iam::aws:policy/ReadOnlyAccess"])
    try:
        # Clean runs first, to learn which actions every job makes (the second one, once the
        # account id, alias and password policy are cached as they are in a running bot).
        for clean in ("throttle-clean1", "throttle-clean2"):
            short_id = request_user(bot, user_name=clean, **fields)
            seen_before = len(proxy.seen)
            click(bot, APPROVER, "approve_request", short_id)
            credentials_dm(bot, short_id)
        job_actions = list(dict.fromkeys(proxy.seen[seen_before:]))
        assert {"CreateUser", "AddUserToGroup", "AttachUserPolicy", "CreateLoginProfile", "CreateAccessKey"} <= set(job_actions), job_actions

        for n, action in enumerate(job_actions):
            user_name = f"throttle-{n:02d}"
            short_id = request_user(bot, user_name=user_name, **fields)
            status, code = FAULTS[n % len(FAULTS)]
            before = proxy.injected.count(action)
            proxy.fail(action, code=code, status=status, times=2)
            click(bot, APPROVER, "approve_request", short_id)
            wait_until(lambda: proxy.injected.count(action) == before + 2, what=f"{action} failed twice ({code})")
            for _ in range(40):  # the job backs off on our clock, then resumes where it stopped
                if credentials_dm_sent(bot, short_id):
                    break
                clock.advance(seconds=61)
                bot.deps.worker.wake()
                time.sleep(0.25)
            credentials_dm(bot, short_id)
            assert [u["UserName"] for u in iam.list_users()["Users"] if u["UserName"] == user_name] == [user_name]
            assert len(iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]) == 1, action
            iam.get_login_profile(UserName=user_name)
            with bot.deps.sessionmaker.begin() as s:
                from models import AccessRequest

                assert s.scalars(select(AccessRequest.state).where(AccessRequest.short_id == short_id)).one().value == "completed"
        assert "Traceback" not in bot.logs.text()
    finally:
        bot.stop()
        proxy.stop()


def credentials_dm_sent(bot, short_id: str) -> bool:
    from tests.support.chaos import is_credentials_dm

    return any(is_credentials_dm(c, short_id) for c in bot.standin.calls_to("chat.postMessage"))
