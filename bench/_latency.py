"""Shared parts of bench/ack.py and bench/modal.py (latency against a bare Bolt baseline). Not a benchmark.

- `BareApp`: a bare slack_bolt App, served by the production server function (bot.runtime.server's
  `http_server`, its default thread count, which `serve_http` uses) in its own OS process, as
  `iam-bot serve` is. Its listeners only ack() (`/iam request` also opens a trivial modal with
  views.open; options requests get a static list).
- `start_bot`: one `iam-bot serve` process (tests.support.processes.BotProcess) with the production
  defaults for what BotProcess sets for the tests (log level, the worker's poll and job lease).
- `KeepAliveSender`: SlackSender's payloads and signatures, sent over one requests.Session per thread.
- `wait_quiet`: wait until a process has stopped using the CPU (its start-up or post-ack work done).
- the table; percentiles, the machine and code lines and `kill_all` come from bench/_support.py.

Importing it puts the repository on sys.path and gives this process fake AWS credentials. Run the
bare app alone with `python -m bench._latency` (what BareApp does; it reads its settings from the
environment, the signing secret and token included, so they never appear on a command line).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
for _k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_k, None)
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")

import requests  # noqa: E402

from bot.demo.slack_sender import SlackSender  # noqa: E402
from bot.runtime.server import http_server  # noqa: E402
from bench._support import code_line, kill_all, machine_line, pct  # noqa: E402,F401 - the benches read them here
from tests.support.services import free_port  # noqa: E402

# Static options a bare app answers a typeahead with: as many as the bot sends at most (Slack shows 100).
STATIC_OPTIONS = [{"text": {"type": "plain_text", "text": f"option-{i:03d}"}, "value": f"option-{i:03d}"} for i in range(100)]
TRIVIAL_MODAL = {
    "type": "modal",
    "callback_id": "bare_modal",
    "title": {"type": "plain_text", "text": "Bare modal"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Nothing here."}}],
}


def production_threads() -> int:
    """waitress threads of the production server: `http_server`'s default, which `serve_http` uses."""
    return int(inspect.signature(http_server).parameters["threads"].default)


# ---------------------------------------------------------------------------------------------- the bot


def start_bot(*, database_url: str, standin: Any, aws_url: str, workdir: Path) -> Any:
    """One `iam-bot serve` process; BotProcess's test settings (DEBUG logs, a 0.3 s worker poll, a 2 s
    job lease) are dropped so the bot's own defaults apply, as in production."""
    from cryptography.fernet import Fernet

    from tests.support.processes import BotProcess

    bot = BotProcess(database_url=database_url, standin=standin, aws_url=aws_url, key=Fernet.generate_key().decode(), logdir=workdir, name="bench")
    for var in ("LOG_LEVEL", "IAM_BOT_WORKER_POLL_SECONDS", "IAM_BOT_JOB_LEASE_SECONDS"):
        bot.env.pop(var, None)
    return bot.start()


def database_label(url: str) -> str:
    """What database was used, without its credentials: the scheme only."""
    return url.split(":", 1)[0]


# ---------------------------------------------------------------------------------------------- the baseline


class BareApp:
    """`python -m bench._latency` in its own process: the baseline server."""

    def __init__(self, *, signing_secret: str, bot_token: str, slack_api_url: str, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"bare-app-{self.port}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
            "PYTHONPATH": str(ROOT),
            "BARE_PORT": str(self.port),
            "SLACK_SIGNING_SECRET": signing_secret,
            "SLACK_BOT_TOKEN": bot_token,
            "SLACK_API_URL": slack_api_url,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> BareApp:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench._latency"], env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the bare app exited at start:\n" + self.log_path.read_text(errors="replace")[-3000:])
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the bare app did not start")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()


def _serve_bare_app() -> None:
    """The baseline: Bolt's defaults, listeners that only ack() (and open a trivial modal for `/iam
    request`), Bolt's own WSGI adapter, the production `http_server` with its default thread count."""
    import logging

    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient

    logging.basicConfig(level=logging.WARNING)
    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
        token_verification_enabled=False,
    )

    @app.command("/iam")
    def command(ack: Any, command: dict[str, Any], client: Any) -> None:
        ack()
        if (command.get("text") or "").strip().startswith("request"):
            client.views_open(trigger_id=command["trigger_id"], view=TRIVIAL_MODAL)

    @app.action("approve_request")
    def click(ack: Any) -> None:
        ack()

    @app.options("groups_select")
    @app.options("policies_select")
    @app.options("copy_from_select")
    def options(ack: Any) -> None:
        ack(options=STATIC_OPTIONS)

    slack = SlackRequestHandler(app, path="/slack/events")

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":  # only for start(); never timed
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return slack(environ, start_response)

    server = http_server(wsgi, host="127.0.0.1", port=int(os.environ["BARE_PORT"]), ident="bare-bolt")
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass


# ---------------------------------------------------------------------------------------------- the client


class KeepAliveSender(SlackSender):
    """SlackSender's payloads, signed the same way, sent over one requests.Session per thread (kept
    alive, unlike SlackSender's connection per request). Each response carries `bench_ms`: the HTTP
    round trip, from sending the request to having read the response."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy between us and 127.0.0.1
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def post(self, body: bytes, content_type: str, *, timestamp: int | None = None, signature: str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        all_headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature if signature is not None else self._sign(ts, body),
            **(headers or {}),
        }
        session = self._session()
        started = time.perf_counter()
        resp = session.post(self.url, data=body, headers=all_headers, timeout=self.timeout)
        resp.bench_ms = (time.perf_counter() - started) * 1000  # type: ignore[attr-defined]
        return resp

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()


# ---------------------------------------------------------------------------------------------- quiet


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_quiet(pid: int, *, timeout: float = 60.0, window: float = 0.5, busy_below: float = 0.05) -> bool:
    """Wait until process `pid` used under `busy_below` of one core over a `window`-second sample
    (its start-up, cache loads or post-ack work finished). False if it never did within `timeout`;
    True at once where /proc is not available."""
    deadline = time.monotonic() + timeout
    before, t0 = _cpu_seconds(pid), time.monotonic()
    if before is None:
        return True
    while time.monotonic() < deadline:
        time.sleep(window)
        now, t1 = _cpu_seconds(pid), time.monotonic()
        if now is None:
            return True
        if (now - before) / (t1 - t0) < busy_below:
            return True
        before, t0 = now, t1
    return False


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy (all cores) since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """How much CPU processes other than ours (this one and the servers it started) used while a
    benchmark measured: the machine is shared, and what else ran skews the figures."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self._start = self._sample()
        self._t0 = time.monotonic()

    def _sample(self) -> tuple[float | None, float]:
        return _busy_seconds(), sum(_cpu_seconds(p) or 0.0 for p in self.pids)

    def cores(self) -> float | None:
        """Cores the other processes kept busy on average since this object was made (None: unknown)."""
        (busy0, ours0), (busy1, ours1) = self._start, self._sample()
        if busy0 is None or busy1 is None:
            return None
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / max(1e-9, time.monotonic() - self._t0)

    def line(self) -> str:
        cores = self.cores()
        if cores is None:
            return "other load while measuring: unknown (no /proc/stat)"
        return f"other processes on the machine kept {cores:.2f} of its {os.cpu_count()} cores busy on average while measuring" + (
            " (figures skewed by them: run again on a quiet machine)" if cores > 0.25 else ""
        )


# ---------------------------------------------------------------------------------------------- figures


def row(label: str, values: list[float], errors: int) -> str:
    if not values:
        return f"{label:<34} {0:>5} {'-':>7} {'-':>7} {'-':>7} {'-':>7} {errors:>7}"
    return f"{label:<34} {len(values):>5} {pct(values, 50):>7.1f} {pct(values, 95):>7.1f} {pct(values, 99):>7.1f} {max(values):>7.1f} {errors:>7}"


def table_head(what: str) -> str:
    return f"{what:<34} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'errors':>7}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    _serve_bare_app()
