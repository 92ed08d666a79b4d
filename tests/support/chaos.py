"""Faults really caused, and what must hold after each: one IAM user, one key, one credentials DM.

Shared by the tests (a few runs of each fault) and scripts/chaos.py (many runs, with counts).
Processes are real `iam-bot serve` replicas; they are killed with SIGKILL at chosen points:
just before or just after IAM carries out an action (the bot never hears the answer), or just
after Slack stored the credentials DM.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
import requests
from sqlalchemy import create_engine, select, update

from bot.common.constants import CREDENTIALS_DM_EVENT as CREDENTIALS_DM
from models import AccessRequest, AuditEvent, CredentialEnvelope, Job, TemporaryGrant
from tests.support.fault_proxy import FaultProxy
from tests.support.harness import wait_until
from tests.support.journeys import APPROVER, APPROVER2, REQUESTER, change_form, change_values, click, request_user
from tests.support.moto_gaps import NO_SERVICE_CREDENTIALS
from tests.support.processes import BotProcess
from bot.demo.standin import Call, SlackStandIn

# (where, action, when): where the process dies.
KILL_POINTS: list[tuple[str, str, str]] = [
    ("iam", "CreateUser", "before"),
    ("iam", "CreateUser", "after"),
    ("iam", "AddUserToGroup", "after"),
    ("iam", "AttachUserPolicy", "after"),
    ("iam", "CreateLoginProfile", "after"),
    ("iam", "CreateAccessKey", "before"),
    ("iam", "CreateAccessKey", "after"),
    ("slack", "credentials DM", "after"),
]
# Where an offboarding's job dies: after IAM removed something (the bot never hears it), or before
# the user itself is deleted.
REMOVAL_KILL_POINTS: list[tuple[str, str, str]] = [
    ("iam", "DeleteLoginProfile", "after"),
    ("iam", "DeleteAccessKey", "after"),
    ("iam", "DetachUserPolicy", "after"),
    ("iam", "RemoveUserFromGroup", "after"),
    ("iam", "DeleteUser", "before"),
    ("iam", "DeleteUser", "after"),
]
# Where a change's job dies (the user: a key and GROUP -> console, POLICY for an hour, no group, no key),
# and where the worker taking that grant away at its end dies.
CHANGE_KILL_POINTS: list[tuple[str, str, str]] = [
    ("iam", "RemoveUserFromGroup", "after"),
    ("iam", "AttachUserPolicy", "before"),
    ("iam", "AttachUserPolicy", "after"),
    ("iam", "DeleteAccessKey", "after"),
    ("iam", "CreateLoginProfile", "after"),
    ("slack", "credentials DM", "after"),
]
REVOKE_KILL_POINTS: list[tuple[str, str, str]] = [("iam", "DetachUserPolicy", "before"), ("iam", "DetachUserPolicy", "after")]
GROUP = "chaos-team"
POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def is_credentials_dm(call: Call, short_id: str) -> bool:
    meta = call.args.get("metadata") or {}
    return (
        call.method == "chat.postMessage"
        and isinstance(meta, dict)
        and meta.get("event_type") == CREDENTIALS_DM
        and meta.get("event_payload", {}).get("request") == short_id
    )


def digest(secret: str) -> str:
    """Compare secrets by digest, so a failing assertion never prints one."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass
class Outcome:
    short_id: str
    user_name: str
    point: str = ""
    users: int = 0
    keys: int = 0
    dms: int = 0
    state: str = ""
    job: str = ""
    consistent: bool = False  # the revealed key and password are the ones IAM has
    recovery_seconds: float = 0.0
    elsewhere: int = 0  # users of the same name made in another account

    @property
    def ok(self) -> bool:
        return (self.users == 1 and self.keys == 1 and self.dms == 1 and self.state == "completed" and self.job == "done" and self.consistent
                and self.elsewhere == 0)


@dataclass
class RemovalOutcome:
    """An offboarding after a crash: the user gone, each removal audited once, one report to the requester."""

    short_id: str
    user_name: str
    point: str = ""
    users: int = 0  # left in IAM
    repeated: int = 0  # removals audited more than once
    reports: int = 0
    state: str = ""
    job: str = ""
    recovery_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.users == 0 and self.repeated == 0 and self.reports == 1 and self.state == "completed" and self.job == "done"


@dataclass
class DayTwoOutcome:
    """A change, or a grant's end, after a crash: IAM as planned, each step audited once, one notice
    (and, for a change, one credentials DM), completed."""

    short_id: str
    user_name: str
    point: str = ""
    as_planned: bool = False  # IAM holds exactly what the plan leads to
    repeated: int = 0  # steps audited more than once
    dms: int = 0  # credentials DMs (a change's new console password: 1; a grant's end: 0)
    expected_dms: int = 0
    notices: int = 0  # what the requester was told it did
    requests: int = 1  # of this kind for the user (a grant's end is filed once)
    state: str = ""
    job: str = ""
    recovery_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.as_planned and self.repeated == 0 and self.dms == self.expected_dms and self.notices == 1 and self.requests == 1
                and self.state == "completed" and self.job == "done")


@dataclass
class Chaos:
    """One PostgreSQL or SQLite database, moto behind a fault proxy, the Slack stand-in, replicas."""

    database_url: str
    standin: SlackStandIn
    moto_url: str
    iam: Any  # a boto3 IAM client straight to moto (the test's own view of IAM)
    key: str
    logdir: Path
    lease_seconds: float = 2.0
    accounts: dict[str, str] = field(default_factory=dict)  # IAM_BOT_ACCOUNTS of the replicas: name -> id (none: the bot's own account)
    replicas: list[BotProcess] = field(default_factory=list)
    ack_seconds: list[float] = field(default_factory=list)  # how long each raced click waited for its 200

    def __post_init__(self) -> None:
        self.proxies: dict[str, FaultProxy] = {}  # one per replica: a fault or a kill reaches the replica that made the call
        self.engine = create_engine(self.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        self._views: dict[str, Any] = {"": self.iam}
        for account in ["", *self.accounts]:
            iam = self.iam_of(account)
            try:
                iam.create_group(GroupName=GROUP)
            except iam.exceptions.EntityAlreadyExistsException:
                pass

    def iam_of(self, account: str) -> Any:
        """The test's own view of IAM in an account ("" the bot's own; else through a role assumed in it, as the bot acts there)."""
        if account not in self._views:
            creds = boto3.client("sts", endpoint_url=self.moto_url, region_name="us-east-1").assume_role(
                RoleArn=f"arn:aws:iam::{self.accounts[account]}:role/chaos-admin", RoleSessionName="chaos")["Credentials"]
            self._views[account] = boto3.client(
                "iam", endpoint_url=self.moto_url, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
        return self._views[account]

    def replica(self, name: str) -> BotProcess:
        proxy = self.proxies[name] = FaultProxy(self.moto_url)
        proxy.canned["ListServiceSpecificCredentials"] = NO_SERVICE_CREDENTIALS  # moto lacks it; offboarding reads it
        process = BotProcess(
            database_url=self.database_url,
            standin=self.standin,
            aws_url=proxy.url,
            key=self.key,
            logdir=self.logdir,
            name=name,
            lease_seconds=self.lease_seconds,
            extra_env={"IAM_BOT_ACCOUNTS": ",".join(f"{n}={i}" for n, i in self.accounts.items())} if self.accounts else None,
        ).start()
        self.replicas.append(process)
        return process

    def close(self) -> None:
        for process in self.replicas:
            process.stop()
        for proxy in self.proxies.values():
            proxy.stop()
        self.engine.dispose()

    def logs(self) -> str:
        return "\n".join(p.logs() for p in self.replicas)

    # ------------------------------------------------------------------ reading the truth

    def row(self, short_id: str) -> tuple[str, str, bool]:
        with self.engine.connect() as c:
            req = c.execute(select(AccessRequest.id, AccessRequest.state).where(AccessRequest.short_id == short_id)).one()
            job = c.execute(select(Job.state).where(Job.request_id == req.id, Job.kind == "apply")).scalar()
            delivered = c.execute(select(CredentialEnvelope.delivered_at).where(CredentialEnvelope.request_id == req.id)).scalar()
        state = req.state.value if hasattr(req.state, "value") else str(req.state)
        job_state = job.value if hasattr(job, "value") else str(job)
        return state, job_state, delivered is not None

    def settled(self, short_id: str) -> bool:
        state, job, delivered = self.row(short_id)
        return state in ("completed", "failed") and job in ("done", "failed") and (delivered or state == "failed")

    def outcome(self, short_id: str, user_name: str, *, reveal_on: BotProcess, console: bool = True, account: str = "") -> Outcome:
        time.sleep(0.5)  # let a wrongly repeated DM or key show itself
        state, job, _ = self.row(short_id)
        iam = self.iam_of(account)
        users = [u for u in iam.list_users()["Users"] if u["UserName"] == user_name]
        keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"] if users else []
        dms = [c for c in self.standin.calls_to("chat.postMessage") if is_credentials_dm(c, short_id)]
        out = Outcome(short_id, user_name, users=len(users), keys=len(keys), dms=len(dms), state=state, job=job)
        if len(dms) >= 1 and len(keys) == 1:
            out.consistent = self.revealed_matches_iam(short_id, user_name, dms[0], reveal_on, keys[0]["AccessKeyId"], console=console)
        # Made in its own account only: none of the same name in any other the test knows.
        out.elsewhere = sum(1 for other in ["", *self.accounts] if other != account
                            for u in self.iam_of(other).list_users()["Users"] if u["UserName"] == user_name)
        return out

    def revealed_matches_iam(self, short_id: str, user_name: str, dm: Call, process: BotProcess, key_id: str, *, console: bool) -> bool:
        before = len(self.standin.calls_to("views.open"))
        click(process, REQUESTER, "reveal_credentials", short_id, dm)
        modal = wait_until(lambda: self.standin.calls_to("views.open")[before:], what="reveal modal")[0]
        shown = {digest(s) for s in _code_blocks(modal.args["view"])}
        if digest(key_id) not in shown:
            return False
        if not console:
            return not any((b.get("text") or {}).get("text", "").startswith("*Password*") for b in modal.args["view"]["blocks"])
        password = self.last_password(user_name)
        return password is not None and digest(password) in shown

    def last_password(self, user_name: str) -> str | None:
        """The password IAM was last given for this user (seen by the proxy, kept in memory)."""
        history = [entry for proxy in self.proxies.values() for entry in proxy.history]
        sent = [p for a, p in sorted(history, key=lambda e: e[1].get("_seq", 0)) if a in ("CreateLoginProfile", "UpdateLoginProfile") and p.get("UserName") == user_name]
        return sent[-1].get("Password") if sent else None

    # ------------------------------------------------------------------ the faults

    def crash_cycle(self, replicas: list[BotProcess], point: tuple[str, str, str], n: int, *, account: str = "") -> tuple[Outcome, BotProcess]:
        """Request (in `account`, with several), approve, and SIGKILL whichever replica runs the job at `point`;
        returns the outcome and the dead replica. Another replica (or, alone, a restarted one) must finish it."""
        _, action, when = point
        user_name = f"crash-{n:03d}-{uuid.uuid4().hex[:4]}"
        short_id = request_user(replicas[0], user_name=user_name, access=["console", "access_key"], groups=[GROUP], policies=[POLICY],
                                **({"account": account} if account else {}))
        dead, killed_at = self._approve_and_kill(replicas, point, short_id, user_name, n)
        alive = [p for p in replicas if p is not dead] or [self.replicas[-1]]
        wait_until(lambda: self.settled(short_id), timeout=90, what=f"request {short_id} recovered after a kill at {point}")
        out = self.outcome(short_id, user_name, reveal_on=alive[0], account=account)
        out.point = f"{action} ({when})" + (f" in {account}" if account else "")
        out.recovery_seconds = time.monotonic() - killed_at
        return out, dead

    def offboard_crash_cycle(self, replicas: list[BotProcess], point: tuple[str, str, str], n: int) -> tuple[RemovalOutcome, BotProcess]:
        """Create a user, ask to offboard it, approve, and SIGKILL the replica running the job at `point`;
        another replica (or a restarted one) must finish it: the user gone, nothing removed twice."""
        _, action, when = point
        user_name = f"leave-{n:03d}-{uuid.uuid4().hex[:4]}"
        self._created(replicas, user_name, access=["console", "access_key"], groups=[GROUP], policies=[POLICY])
        replicas[0].slack.command(REQUESTER, f"offboard {user_name}")
        short_id = wait_until(lambda: self._request_of(user_name, "offboard"), timeout=30, what="the offboarding request")
        wait_until(lambda: any(short_id in str(c.args) and "approve_request" in str(c.args) for c in self.standin.calls_to("chat.postMessage")),
                   timeout=30, what="the offboarding's approval message")
        dead, killed_at = self._approve_and_kill(replicas, point, short_id, user_name, n)
        wait_until(lambda: self.row(short_id)[0] in ("completed", "failed") and self.row(short_id)[1] in ("done", "failed"),
                   timeout=90, what=f"offboarding {short_id} recovered after a kill at {point}")
        out = RemovalOutcome(short_id, user_name, point=f"{action} ({when})", recovery_seconds=time.monotonic() - killed_at)
        out.state, out.job, _ = self.row(short_id)
        wait_until(lambda: self._reports(short_id), timeout=30, what="the removal report")
        time.sleep(0.5)  # let a wrongly repeated report show itself
        out.reports = len(self._reports(short_id))
        out.users = len([u for u in self.iam.list_users()["Users"] if u["UserName"] == user_name])
        out.repeated = self._repeated(short_id)
        return out, dead

    def change_crash_cycle(self, replicas: list[BotProcess], point: tuple[str, str, str], n: int) -> tuple[DayTwoOutcome, BotProcess]:
        """Create a user (a key, in GROUP), change it (GROUP out, POLICY in for an hour, the key deleted, a
        console password made), approve, and SIGKILL the replica applying it at `point`; another finishes it."""
        user_name = f"chg-{n:03d}-{uuid.uuid4().hex[:4]}"
        self._created(replicas, user_name, access=["access_key"], groups=[GROUP])
        view = change_form(replicas[0], user_name)
        resp = replicas[0].slack.view_submission(REQUESTER, view, change_values(policies=[POLICY], access=["console"], grant_for="1h"))
        assert resp.status_code == 200 and resp.json() == {"response_action": "clear"}, resp.text
        short_id = wait_until(lambda: self._request_of(user_name, "change"), timeout=30, what="the change request")
        self._asked(short_id)
        dead, killed_at = self._approve_and_kill(replicas, point, short_id, user_name, n)
        wait_until(lambda: self.settled(short_id), timeout=90, what=f"change {short_id} recovered after a kill at {point}")
        out = self._day_two_outcome(short_id, user_name, point, killed_at, notice="was changed", expected_dms=1)
        iam = self.iam
        out.as_planned = (
            iam.list_groups_for_user(UserName=user_name)["Groups"] == []
            and [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=user_name)["AttachedPolicies"]] == [POLICY]
            and iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"] == []
            and bool(iam.get_login_profile(UserName=user_name)["LoginProfile"])
        )
        return out, dead

    def revoke_crash_cycle(self, replicas: list[BotProcess], point: tuple[str, str, str], user_name: str, n: int) -> tuple[DayTwoOutcome, BotProcess]:
        """The hour of a changed user's POLICY is up (its end moved to the past, in the database): the
        replicas' worker takes it away, and the replica doing so is SIGKILLed at `point`; another finishes."""
        killed = self._arm(replicas, point, "", user_name)
        with self.engine.begin() as c:
            c.execute(update(TemporaryGrant).where(TemporaryGrant.user_name == user_name).values(ends_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
        dead, killed_at = self._recover(replicas, killed, point, n)
        short_id = wait_until(lambda: self._request_of(user_name, "revoke"), timeout=30, what="the revoke request")
        wait_until(lambda: self.row(short_id)[0] in ("completed", "failed") and self.row(short_id)[1] in ("done", "failed"),
                   timeout=90, what=f"revoke {short_id} recovered after a kill at {point}")
        out = self._day_two_outcome(short_id, user_name, point, killed_at, notice="its time ended", expected_dms=0)
        out.as_planned = self.iam.list_attached_user_policies(UserName=user_name)["AttachedPolicies"] == []
        with self.engine.connect() as c:
            out.requests = len(c.execute(select(AccessRequest.id).where(AccessRequest.user_name == user_name, AccessRequest.kind == "revoke")).all())
            if c.execute(select(TemporaryGrant.id).where(TemporaryGrant.user_name == user_name, TemporaryGrant.ended_at.is_(None))).first():
                out.as_planned = False  # still on record as held
        return out, dead

    def _created(self, replicas: list[BotProcess], user_name: str, **fields: Any) -> None:
        created = request_user(replicas[0], user_name=user_name, **fields)
        click(replicas[-1], APPROVER, "approve_request", created)
        wait_until(lambda: self.settled(created), timeout=60, what=f"{user_name} created")

    def _approve_and_kill(self, replicas: list[BotProcess], point: tuple[str, str, str], short_id: str, user_name: str, n: int) -> tuple[BotProcess, float]:
        """Approve on one replica with `point` armed on all; returns the killed replica once another can go on, and when it died."""
        killed = self._arm(replicas, point, short_id, user_name)
        try:
            click(replicas[-1], APPROVER, "approve_request", short_id)
        except requests.ConnectionError:
            pass  # the job started so fast that the kill beat the click's 200; the approval had committed
        return self._recover(replicas, killed, point, n)

    def _repeated(self, short_id: str) -> int:
        """How many of the request's steps were audited more than once."""
        with self.engine.connect() as c:
            rid = c.execute(select(AccessRequest.id).where(AccessRequest.short_id == short_id)).scalar_one()
            done = [(e.action, (e.details or {}).get("target")) for e in c.execute(
                select(AuditEvent.action, AuditEvent.details).where(AuditEvent.request_id == rid, AuditEvent.action.like("applied:%")))]
        return len(done) - len(set(done))

    def _asked(self, short_id: str) -> None:
        wait_until(lambda: any(short_id in str(c.args) and "approve_request" in str(c.args) for c in self.standin.calls_to("chat.postMessage")),
                   timeout=30, what=f"{short_id}'s approval message")

    def _arm(self, replicas: list[BotProcess], point: tuple[str, str, str], short_id: str, user_name: str) -> list[BotProcess]:
        """Kill whichever replica reaches `point` first: an IAM action (before or after it is carried out), or the credentials DM."""
        where, action, when = point
        killed, kill = _killer()
        if where == "iam":
            for process in replicas:
                self.proxies[process.name].trip(action, lambda p=process: kill(p), when=when)
        else:
            def kill_on_dm(call: Call) -> None:
                if not killed and is_credentials_dm(call, short_id):
                    kill(self.job_runner(user_name, replicas))

            self.standin.after_call.append(kill_on_dm)
        return killed

    def _recover(self, replicas: list[BotProcess], killed: list[BotProcess], point: tuple[str, str, str], n: int) -> tuple[BotProcess, float]:
        wait_until(lambda: bool(killed) and killed[0].proc is not None and killed[0].proc.poll() is not None, timeout=60, what=f"a replica killed at {point}")
        killed_at = time.monotonic()
        for proxy in self.proxies.values():
            proxy.disarm()
        self.standin.after_call.clear()
        if not [p for p in replicas if p is not killed[0]]:
            self.replica(f"restart{n:03d}-{uuid.uuid4().hex[:4]}")
        return killed[0], killed_at

    def _day_two_outcome(self, short_id: str, user_name: str, point: tuple[str, str, str], killed_at: float, *, notice: str, expected_dms: int) -> DayTwoOutcome:
        out = DayTwoOutcome(short_id, user_name, point=f"{point[1]} ({point[2]})", recovery_seconds=time.monotonic() - killed_at, expected_dms=expected_dms)
        wait_until(lambda: self._notices(short_id, notice), timeout=30, what=f"the notice of {short_id}")
        if expected_dms:
            wait_until(lambda: [c for c in self.standin.calls_to("chat.postMessage") if is_credentials_dm(c, short_id)], timeout=30, what="the credentials DM")
        time.sleep(0.5)  # let a wrongly repeated notice or DM show itself
        out.state, out.job, _ = self.row(short_id)
        out.notices = len(self._notices(short_id, notice))
        out.dms = len([c for c in self.standin.calls_to("chat.postMessage") if is_credentials_dm(c, short_id)])
        out.repeated = self._repeated(short_id)
        return out

    def _notices(self, short_id: str, fragment: str) -> list[Call]:
        return [c for c in self.standin.calls_to("chat.postMessage") if c.args.get("channel") == "D" + REQUESTER[1:] and fragment in str(c.args) and short_id in str(c.args)]

    def _request_of(self, user_name: str, kind: str) -> str | None:
        with self.engine.connect() as c:
            return c.execute(select(AccessRequest.short_id).where(AccessRequest.user_name == user_name, AccessRequest.kind == kind)).scalar()

    def _reports(self, short_id: str) -> list[Call]:
        return [c for c in self.standin.calls_to("chat.postMessage") if c.args.get("channel") == "D" + REQUESTER[1:] and "was *offboarded*" in str(c.args) and short_id in str(c.args)]

    def job_runner(self, user_name: str, replicas: list[BotProcess]) -> BotProcess:
        """The replica whose IAM calls created this user: the one that ran the job."""
        latest = {p.name: max((e[1]["_seq"] for e in self.proxies[p.name].history if e[1].get("UserName") == user_name), default=-1) for p in replicas}
        return max(replicas, key=lambda p: latest[p.name])

    def fault_every_action(self, process: BotProcess, *, rounds: int = 1) -> list[Outcome]:
        return fault_every_action(self, process, rounds=rounds)

    def concurrent_approvals(self, a: BotProcess, b: BotProcess, count: int) -> list[Outcome]:
        """`count` requests, each approved at the same moment on two replicas by two approvers."""
        tag = uuid.uuid4().hex[:4]
        asked = [(request_user(a, user_name=f"race-{tag}-{i:03d}", access=["access_key"], groups=[GROUP]), f"race-{tag}-{i:03d}") for i in range(count)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            clicks = []
            for short_id, _ in asked:
                clicks.append(pool.submit(click, a, APPROVER, "approve_request", short_id))
                clicks.append(pool.submit(click, b, APPROVER2, "approve_request", short_id))
            for f in clicks:
                resp = f.result()
                assert resp.status_code == 200
                self.ack_seconds.append(resp.elapsed.total_seconds())
        wait_until(lambda: all(self.settled(s) for s, _ in asked), timeout=120 + count, what="every raced request settled")
        return [self.outcome(s, u, reveal_on=a, console=False) for s, u in asked]


FAULTS = [(400, "Throttling"), (503, "ServiceUnavailable"), (500, "InternalFailure"), (0, "connection-reset"), (400, "RequestLimitExceeded")]


def _killer() -> tuple[list[BotProcess], Callable[[BotProcess], None]]:
    """A kill that happens once, whoever calls it first (several proxies may trip at once); the list holds its victim."""
    killed: list[BotProcess] = []
    lock = threading.Lock()

    def kill(process: BotProcess) -> None:
        with lock:
            if not killed:
                killed.append(process)
                process.kill()

    return killed, kill


# What the worker's housekeeping reads on its own beat (key nudges, hygiene report, MFA watch).
HOUSEKEEPING_READS = frozenset({"GenerateCredentialReport", "GetCredentialReport", "ListMFADevices"})


def fault_every_action(chaos: Chaos, process: BotProcess, *, rounds: int = 1) -> list[Outcome]:
    """Each IAM action a job makes fails twice (more than AWS_MAX_ATTEMPTS=2 lets botocore absorb),
    with rotating faults; the job backs off for real and resumes. Returns one outcome per fault."""
    short_id = request_user(process, user_name=f"warm-{uuid.uuid4().hex[:4]}", access=["console", "access_key"], groups=[GROUP], policies=[POLICY])
    click(process, APPROVER, "approve_request", short_id)
    wait_until(lambda: chaos.settled(short_id), timeout=60, what="a clean run")
    proxy = chaos.proxies[process.name]
    seen = len(proxy.seen)
    short_id = request_user(process, user_name=f"learn-{uuid.uuid4().hex[:4]}", access=["console", "access_key"], groups=[GROUP], policies=[POLICY])
    click(process, APPROVER, "approve_request", short_id)
    wait_until(lambda: chaos.settled(short_id), timeout=60, what="a clean run")
    # A real process runs housekeeping beside the jobs: its reads are not the job's actions.
    actions = [a for a in dict.fromkeys(proxy.seen[seen:]) if a not in HOUSEKEEPING_READS]
    outcomes = []
    n = 0
    for _ in range(rounds):
        for action in actions:
            status, code = FAULTS[n % len(FAULTS)]
            user_name = f"fault-{n:03d}-{uuid.uuid4().hex[:4]}"
            n += 1
            short_id = request_user(process, user_name=user_name, access=["console", "access_key"], groups=[GROUP], policies=[POLICY])
            proxy.fail(action, code=code, status=status, times=2)
            started = time.monotonic()
            click(process, APPROVER, "approve_request", short_id)
            wait_until(lambda: chaos.settled(short_id), timeout=180, what=f"recovery from {code} on {action}")
            out = chaos.outcome(short_id, user_name, reveal_on=process)
            out.point = f"{action} ({code})"
            out.recovery_seconds = time.monotonic() - started
            outcomes.append(out)
            print(f"  {out.point}: {'ok' if out.ok else 'NOT OK'} ({out.recovery_seconds:.1f} s)", flush=True)
    return outcomes


def _code_blocks(view: dict[str, Any]) -> list[str]:
    """Values shown in ```code``` spans of the reveal modal."""
    out: list[str] = []
    for block in view.get("blocks") or []:
        texts = [block.get("text") or {}] + list(block.get("fields") or [])
        for t in texts:
            s = t.get("text", "") if isinstance(t, dict) else ""
            parts = s.split("```")
            out.extend(parts[1::2])
            out.extend(p.strip("`") for p in s.split() if p.startswith("`") and p.endswith("`") and len(p) > 2)
    return [o.strip() for o in out]
