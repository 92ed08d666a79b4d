"""Shared parts of the benchmarks in bench/: environment, the machine line, figures, replicas, journeys.

Not a benchmark itself. Importing it puts the repository on sys.path and gives every AWS client
in this process fake credentials (nothing here may reach real AWS).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
for _k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_k, None)
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")

from bot.common.constants import CREDENTIALS_DM_EVENT  # noqa: E402
from bot.demo.standin import Call, SlackStandIn  # noqa: E402
from tests.support.journeys import REQUESTER, button_value, form_values, open_request_modal  # noqa: E402
from tests.support.processes import BotProcess  # noqa: E402

READ_PREFIXES = ("Get", "List", "Simulate")
# The variables BotProcess sets for the tests that a benchmark leaves to the bot's own defaults.
LEASE_ENV = "IAM_BOT_JOB_LEASE_SECONDS"
POLL_ENV = "IAM_BOT_WORKER_POLL_SECONDS"


def is_read(action: str) -> bool:
    return action.startswith(READ_PREFIXES)


# ---------------------------------------------------------------------------------------------- printing


LOAD_AT_START = os.getloadavg()  # imported first thing by each benchmark: what else ran before it


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in LOAD_AT_START)
    return (
        f"machine: {os.cpu_count()} cores (os.cpu_count()), Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}; load average before the run {load} (1, 5, 15 min)"
    )


def code_line() -> str:
    """Which code was measured: the commit, and files under bot/, handlers/, models/ changed since it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bot", "handlers", "models"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "code: (git not available)"
    return f"code: commit {head}" + (f", with {len(dirty)} uncommitted change(s) under bot/ handlers/ models/" if dirty else ", clean")


def header(title: str) -> None:
    print(f"# {title}")
    print(machine_line())
    print(code_line())


def pct(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0 < q <= 100), nearest rank: the smallest value with q% of values at or below it."""
    ranked = sorted(values)
    if not ranked:
        return float("nan")
    return ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)]


def spread(values: list[float], unit: str = "ms", scale: float = 1.0, fmt: str = "{:.0f}") -> str:
    if not values:
        return "(no values)"
    v = [x * scale for x in values]
    f = lambda x: fmt.format(x)  # noqa: E731
    return f"p50 {f(statistics.median(v))} {unit} | p95 {f(pct(v, 95))} {unit} | min {f(min(v))} | max {f(max(v))} (n={len(v)})"


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out


# ---------------------------------------------------------------------------------------------- replicas


class BenchProcess(BotProcess):
    """A BotProcess that leaves the job lease and the worker's poll to the bot's own defaults (None),
    logs at the production default level (INFO), and can drop variables BotProcess sets for the tests."""

    def __init__(
        self,
        *,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        log_level: str = "INFO",
        unset: Iterable[str] = (),
        extra_env: dict[str, str] | None = None,
        **kw: Any,
    ):
        super().__init__(extra_env=extra_env, **kw)
        for var, value in ((LEASE_ENV, lease_seconds), (POLL_ENV, poll_seconds)):
            if value is None:
                self.env.pop(var, None)
            else:
                self.env[var] = str(value)
        self.env["LOG_LEVEL"] = log_level
        for var in unset:
            self.env.pop(var, None)

    def start_timed(self, timeout: float = 60) -> tuple[float, float]:
        """Start `iam-bot serve`; (seconds from exec until the port accepts, until /healthz answers 200)."""
        from tests.support.processes import IAM_BOT

        self._log = open(self.log_path, "ab")
        self.proc, port_s, health_s = timed_start(IAM_BOT + ["serve"], env=self.env, port=self.port, log=self._log, timeout=timeout)
        return port_s, health_s


def timed_start(cmd: list[str], *, env: dict[str, str], port: int, log: Any = subprocess.DEVNULL, timeout: float = 60) -> tuple[subprocess.Popen, float, float]:
    """Exec `cmd`; (process, seconds until the port accepts a connection, seconds until GET /healthz answers 200)."""
    import socket

    import requests

    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    port_at: float | None = None
    session = requests.Session()
    session.trust_env = False
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[-1]} exited at start (code {proc.returncode})")
        if port_at is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                port_at = time.monotonic() - t0
            except OSError:
                time.sleep(0.01)
                continue
        try:
            if session.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, port_at, time.monotonic() - t0
        except requests.RequestException:
            pass
        time.sleep(0.01)
    proc.kill()
    proc.wait(10)
    raise RuntimeError(f"{cmd[-1]} did not answer /healthz within {timeout:.0f} s")


def settings_in_force(env: dict[str, str]) -> dict[str, Any]:
    """The job-timing settings `iam-bot serve` reads from `env`, as the bot's current code resolves them
    (a subprocess with exactly that environment: the bot's defaults apply to what is not set)."""
    code = (
        "import json, re\n"
        "from bot.runtime.settings import Settings\n"
        "s = Settings()\n"
        "print(json.dumps({k: getattr(s, k) for k in Settings.model_fields if re.search('lease|poll|heartbeat|housekeep|renew', k)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:] or ["?"]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def settings_line(env: dict[str, str]) -> str:
    shown: dict[str, Any] = dict(settings_in_force(env))
    for var, field in ((LEASE_ENV, "job_lease_seconds"), (POLL_ENV, "worker_poll_seconds")):
        if field in shown:
            shown[field] = f"{shown[field]} ({'set: ' + var if var in env else 'bot default'})"
    return "settings in force: " + ", ".join(f"{k}={v}" for k, v in shown.items()) + f", LOG_LEVEL={env.get('LOG_LEVEL', 'INFO (bot default)')}"


# ---------------------------------------------------------------------------------------------- journeys

# The typical request of these benchmarks: two groups, an AWS-managed policy, console and access key,
# a path, two tags and a permissions boundary (as `iam-bot serve` in production requires one).
GROUPS = ["developers", "readers"]
POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
PATH = "/engineering/"
TAGS = [("team", "payments"), ("cost-center", "1234")]
_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})


@dataclass
class Typical:
    boundary: str

    def fields(self) -> dict[str, Any]:
        """form_values() fields of the typical request."""
        return dict(groups=GROUPS, policies=[POLICY], path=PATH, tags="\n".join(f"{k}={v}" for k, v in TAGS), boundary=self.boundary)

    def env(self) -> dict[str, str]:
        """A production setup: a boundary and a path prefix (so IAM_BOT_ALLOW_UNBOUNDED is dropped)."""
        return {"IAM_BOT_PERMISSIONS_BOUNDARY": self.boundary, "IAM_BOT_USER_PATH_PREFIX": PATH}


def seed_typical(iam: Any) -> Typical:
    """The groups and the boundary policy the typical request names, created in moto."""
    for g in GROUPS:
        try:
            iam.create_group(GroupName=g)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
    arn = iam.create_policy(PolicyName=f"dev-boundary-{os.getpid()}", PolicyDocument=_DOC)["Policy"]["Arn"]
    return Typical(boundary=arn)

_modal_lock = threading.Lock()


def submit(bot: Any, user_name: str, **fields: Any) -> None:
    """/iam request -> form -> review -> Submit, over signed HTTP; does not wait for the plan.
    Opening the modal is serialised: each caller must get its own view back."""
    with _modal_lock:
        view = open_request_modal(bot, REQUESTER)
    resp = bot.slack.view_submission(REQUESTER, view, form_values(user_name=user_name, **fields))
    assert resp.status_code == 200, resp.text
    answer = resp.json() if resp.text else {}
    assert answer.get("response_action") == "push", f"the form was not accepted for {user_name}: {str(answer)[:300]}"
    resp = bot.slack.view_submission(REQUESTER, answer["view"], {})
    assert resp.status_code == 200 and resp.json() == {"response_action": "clear"}, resp.text


def approve_value(call: Call) -> str | None:
    return button_value(call, "approve_request")


class Watch:
    """Reads the stand-in's calls incrementally: which approval message asks about which user, and
    every credentials DM (by request short id), with the time (monotonic, this process) it arrived."""

    def __init__(self, standin: SlackStandIn):
        self.standin = standin
        self._seen = 0
        self._lock = threading.Lock()
        self.approval: dict[str, Call] = {}  # short id -> the first approval message
        self.short_id_of: dict[str, str] = {}  # user name -> short id
        self.dms: dict[str, list[Call]] = {}  # short id -> credentials DMs
        self._names: list[str] = []  # user names whose approval messages to look for (expect())

    def scan(self) -> None:
        with self._lock:
            self._scan()

    def _scan(self) -> None:
        calls = self.standin.calls
        for call in calls[self._seen :]:
            if call.method != "chat.postMessage":
                continue
            value = approve_value(call)
            if value:
                short_id = value.split(":", 1)[0]
                if short_id not in self.approval:
                    self.approval[short_id] = call
                    text = json.dumps(call.args.get("blocks") or [])
                    for name in self._names:
                        if name in text and name not in self.short_id_of and _named(text, name):
                            self.short_id_of[name] = short_id
                            break
            meta = call.args.get("metadata") or {}
            if isinstance(meta, dict) and meta.get("event_type") == CREDENTIALS_DM_EVENT:
                self.dms.setdefault(meta.get("event_payload", {}).get("request", ""), []).append(call)
        self._seen = len(calls)

    def expect(self, names: Iterable[str]) -> None:
        self._names = list(names)

    def wait(self, predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.scan()
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)


def _named(text: str, name: str) -> bool:
    """The user name appears as a whole token (bench-001 must not match bench-0011)."""
    i = text.find(name)
    while i >= 0:
        after = text[i + len(name) : i + len(name) + 1]
        before = text[i - 1 : i] if i else ""
        if not _name_char(after) and not _name_char(before):
            return True
        i = text.find(name, i + 1)
    return False


def _name_char(c: str) -> bool:
    return c != "" and (c.isalnum() or c in "-_.")


def click_approve(bot: Any, message: Call, approver: str) -> Any:
    """Approve, with the value the approval message gave the button (short id and plan digest)."""
    return bot.slack.block_action(
        approver,
        "approve_request",
        approve_value(message) or "",
        channel_id=message.response["channel"],
        message_ts=message.response["ts"],
        message=message.response.get("message"),
    )


def kill_all(things: Iterable[Any]) -> None:
    """Stop whatever was started (processes, proxies, servers), each guarded, newest first."""
    for thing in reversed(list(things)):
        try:
            thing()
        except Exception as exc:  # keep stopping the others
            print(f"(cleanup: {type(exc).__name__}: {exc})", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- chaos

from tests.support.chaos import Chaos  # noqa: E402


@dataclass
class BenchChaos(Chaos):
    """tests.support.chaos.Chaos whose replicas are BenchProcess: lease and poll left to the bot's
    defaults unless given, production log level."""

    bench_lease: float | None = None
    bench_poll: float | None = None
    bench_log_level: str = "INFO"

    def replica(self, name: str) -> BotProcess:
        from tests.support.fault_proxy import FaultProxy

        proxy = self.proxies[name] = FaultProxy(self.moto_url)
        process = BenchProcess(
            database_url=self.database_url, standin=self.standin, aws_url=proxy.url, key=self.key, logdir=self.logdir, name=name,
            lease_seconds=self.bench_lease, poll_seconds=self.bench_poll, log_level=self.bench_log_level,
        )
        self.replicas.append(process)  # before start: close() stops it even if it fails to come up
        return process.start()


from tests.support.fault_proxy import FaultProxy  # noqa: E402


class TimedFaultProxy(FaultProxy):
    """A FaultProxy that also notes when each call arrived: `.arrivals` holds (time.monotonic(), Action)."""

    def __init__(self, upstream: str):
        self.arrivals: list[tuple[float, str]] = []
        super().__init__(upstream)

    def _take(self, action: str):  # type: ignore[no-untyped-def]
        self.arrivals.append((time.monotonic(), action))  # list.append is atomic under the GIL
        return super()._take(action)


def services(tmp: Path, cleanup: list, *, database: bool = True) -> tuple[Any, SlackStandIn, Any]:
    """moto as a server, the Slack stand-in and (with `database`) a migrated throwaway PostgreSQL
    database, as a deployment has them before its replicas start; each is stopped by `cleanup`."""
    from bot.runtime.db import make_engine, migrate
    from tests.support.services import MotoServer, PostgresDatabase

    moto = MotoServer(tmp).start()
    cleanup.append(moto.stop)
    standin = SlackStandIn().start()
    cleanup.append(standin.stop)
    db = None
    if database:
        db = PostgresDatabase().create()
        cleanup.append(db.drop)
        migrate(make_engine(db.url))
    return moto, standin, db
