"""Start-up time and memory of one `iam-bot serve` process, beside a bare Bolt app and a bare boto3 import.

What it measures
  Start: --starts times, `iam-bot serve` (HTTP, the production server: waitress, 8 threads) is
  exec'd against a migrated throwaway PostgreSQL database, moto as a server and the Slack stand-in,
  with a production setup (permissions boundary and user path prefix, LOG_LEVEL INFO, lease and
  poll the bot's defaults); measured from exec until the port accepts a TCP connection and until
  GET /healthz (bot/runtime/server.py: database reachable, worker alive) answers 200. Median.
  Memory: the last process started then serves --requests typical requests (2 groups,
  ReadOnlyAccess, console + access key, path, tags, boundary), --concurrency at a time, each
  submitted, approved and waited for until its credentials DM; then its VmRSS and VmHWM (peak)
  are read from /proc/<pid>/status (also at idle after start, and the largest VmRSS seen while
  the requests ran, sampled every 0.5 s).

Baselines, in the same run, each started --starts times (median), memory read 3 s after start:
  - a bare slack_bolt App (no listeners) behind the same waitress setup (threads, the bot's
    HTTP_LIMITS) with a /healthz route: exec -> port, exec -> /healthz 200, VmRSS / VmHWM;
  - a python process that merely imports boto3: exec -> import done, VmRSS / VmHWM;
  - the same plus the four AWS clients the bot makes (iam x3, sts), for reference.

Goals: start (exec -> /healthz 200) median < 2 s; RSS after the requests < 150 MB.

Run:  .venv/bin/python bench/footprint.py [--starts 5] [--requests 300] [--concurrency 4]
Needs PostgreSQL on 127.0.0.1:5432 (a throwaway database is created and dropped).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S  # noqa: E402  (sets up sys.path and fake AWS credentials)

import boto3  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bot.runtime.server import HTTP_LIMITS  # noqa: E402
from tests.support.journeys import APPROVER  # noqa: E402
from tests.support.services import free_port  # noqa: E402

BARE_BOLT = r"""
import json, sys
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

port, limits = int(sys.argv[1]), json.loads(sys.argv[2])
app = App(signing_secret="bench-signing-secret-0123456789ab", token="xoxb-bench", token_verification_enabled=False,
          raise_error_for_unhandled_request=False)
slack = SlackRequestHandler(app, path="/slack/events")

def wsgi(environ, start_response):
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']
    return slack(environ, start_response)

create_server(wsgi, host="127.0.0.1", port=port, threads=8, ident="bare-bolt", **limits).run()
"""

IMPORT_BOTO3 = "import boto3, sys, time; print('ready', flush=True); time.sleep(600)"
BOTO3_CLIENTS = (
    "import boto3, sys, time; s = boto3.session.Session(region_name='us-east-1'); "
    "c = [s.client('iam'), s.client('iam'), s.client('iam'), s.client('sts')]; print('ready', flush=True); time.sleep(600)"
)


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def until_ready_line(code: str) -> tuple[subprocess.Popen, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        raise RuntimeError("the baseline process did not start")
    return proc, time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--requests", "-n", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once while driving the process (default 4)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()

    S.header(f"iam-bot footprint benchmark: start-up x{args.starts} and memory after {args.requests} requests, one `iam-bot serve`")
    tmp = Path(tempfile.mkdtemp(prefix="iam-bot-bench-footprint-"))
    cleanup: list = []
    try:
        moto, standin, db = S.services(tmp, cleanup)  # as a deployment has them: `iam-bot migrate` ran before the replicas start
        iam = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1")
        typical = S.seed_typical(iam)
        key = Fernet.generate_key().decode()

        def bot_process(k: int) -> S.BenchProcess:
            return S.BenchProcess(
                database_url=db.url, standin=standin, aws_url=moto.url, key=key, logdir=tmp, name=f"serve{k}", approvers=APPROVER,
                log_level=args.log_level, unset=["IAM_BOT_ALLOW_UNBOUNDED"], extra_env=typical.env(),
            )

        # ------------------------------------------------------------------ iam-bot serve: start-up
        serve_port: list[float] = []
        serve_health: list[float] = []
        serve_idle: list[dict[str, int]] = []
        bot = None
        for k in range(args.starts):
            p = bot_process(k)
            if k == 0:
                print("setup: PostgreSQL (throwaway, migrated before the starts), moto straight (no proxy), Slack stand-in")
                print(S.settings_line(p.env))
            port_s, health_s = p.start_timed()
            cleanup.append(p.stop)
            serve_port.append(port_s)
            serve_health.append(health_s)
            time.sleep(3)  # the IAM listings warm up in the background after start
            serve_idle.append(S.rss_kb(p.pid))
            if k < args.starts - 1:
                p.stop()
            else:
                bot = p
        assert bot is not None

        # ------------------------------------------------------------------ iam-bot serve: 300 requests
        watch = S.Watch(standin)
        names = [f"foot-{i:04d}" for i in range(args.requests)]
        watch.expect(names)
        peak_seen = [0]
        running = threading.Event()
        running.set()

        def sample() -> None:
            while running.is_set():
                try:
                    peak_seen[0] = max(peak_seen[0], S.rss_kb(bot.pid)["VmRSS"])
                except (OSError, KeyError):
                    return
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        failures: list[str] = []
        approve_dm: list[float] = []

        def journey(name: str) -> None:
            try:
                S.submit(bot, name, **typical.fields())
                if not watch.wait(lambda: name in watch.short_id_of, timeout=120, interval=0.05):
                    failures.append(f"{name}: no approval message")
                    return
                sid = watch.short_id_of[name]
                t = time.monotonic()
                resp = S.click_approve(bot, watch.approval[sid], APPROVER)
                if resp.status_code != 200:
                    failures.append(f"{name}: click HTTP {resp.status_code}")
                if not watch.wait(lambda: sid in watch.dms, timeout=120, interval=0.05):
                    failures.append(f"{name}: no credentials DM")
                    return
                approve_dm.append(watch.dms[sid][0].at - t)
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")

        t = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(journey, names))
        run_s = time.monotonic() - t
        after = S.rss_kb(bot.pid)
        time.sleep(5)
        settled = S.rss_kb(bot.pid)
        running.clear()
        logs = bot.logs()
        bot.stop()

        # ------------------------------------------------------------------ baselines
        limits = json.dumps(HTTP_LIMITS)
        bare_port: list[float] = []
        bare_health: list[float] = []
        bare_mem: list[dict[str, int]] = []
        for _ in range(args.starts):
            port = free_port()
            proc, port_s, health_s = S.timed_start([sys.executable, "-c", BARE_BOLT, str(port), limits], env=dict(__import__("os").environ), port=port)
            try:
                bare_port.append(port_s)
                bare_health.append(health_s)
                time.sleep(3)
                bare_mem.append(S.rss_kb(proc.pid))
            finally:
                stop(proc)
        plain: dict[str, tuple[list[float], list[dict[str, int]]]] = {}
        for label, code in (("import boto3", IMPORT_BOTO3), ("import boto3 + 4 clients", BOTO3_CLIENTS)):
            times, mems = [], []
            for _ in range(args.starts):
                proc, secs = until_ready_line(code)
                try:
                    times.append(secs)
                    time.sleep(3)
                    mems.append(S.rss_kb(proc.pid))
                finally:
                    stop(proc)
            plain[label] = (times, mems)

        # ------------------------------------------------------------------ figures
        def med(values: list[float]) -> str:
            return f"{statistics.median(values) * 1000:.0f} ms"

        def memline(mems: list[dict[str, int]]) -> str:
            return f"VmRSS median {mb(statistics.median(m['VmRSS'] for m in mems))}, VmHWM median {mb(statistics.median(m['VmHWM'] for m in mems))}"

        h50 = statistics.median(serve_health)
        print(f"\n## start-up, exec -> ready ({args.starts} starts each, median; every start listed)")
        print(f"iam-bot serve      exec -> port accepts {med(serve_port)} | exec -> /healthz 200 {med(serve_health)}   goal < 2 s: {'met' if h50 < 2 else 'MISSED'}")
        print(f"                   each (to /healthz): {', '.join(f'{x * 1000:.0f}' for x in serve_health)} ms")
        print(f"bare Bolt+waitress exec -> port accepts {med(bare_port)} | exec -> /healthz 200 {med(bare_health)}   "
              f"(each: {', '.join(f'{x * 1000:.0f}' for x in bare_health)} ms)")
        for label, (times, _) in plain.items():
            print(f"{label:<26} exec -> done {med(times)}   (each: {', '.join(f'{x * 1000:.0f}' for x in times)} ms)")
        print(f"ratio iam-bot serve / bare Bolt app, exec -> /healthz: {h50 / statistics.median(bare_health):.1f}x")

        print(f"\n## memory (/proc/<pid>/status)")
        rss = after["VmRSS"]
        print(f"iam-bot serve, idle 3 s after start:            {memline(serve_idle)}")
        print(f"iam-bot serve, after {args.requests} requests ({run_s:.0f} s, {args.concurrency} at a time): VmRSS {mb(rss)}, VmHWM (peak) {mb(after['VmHWM'])}   "
              f"goal < 150 MB: {'met' if rss < 150 * 1024 and after['VmHWM'] < 150 * 1024 else 'MISSED'}")
        print(f"                   5 s later: VmRSS {mb(settled['VmRSS'])}; largest VmRSS sampled during the run: {mb(peak_seen[0])}")
        print(f"                   requests completed with a DM: {len(approve_dm)}/{args.requests}; approve -> DM p50 {statistics.median(approve_dm) * 1000:.0f} ms"
              if approve_dm else "                   no request completed")
        if failures:
            print(f"                   failures: {len(failures)}, e.g. {failures[:3]}")
        print(f"bare Bolt+waitress, idle:                     {memline(bare_mem)}")
        for label, (_, mems) in plain.items():
            print(f"{label + ':':<46}{memline(mems)}")
        print(f"ratio iam-bot serve after the requests / bare Bolt app: {rss / statistics.median(m['VmRSS'] for m in bare_mem):.1f}x; "
              f"/ import boto3: {rss / statistics.median(m['VmRSS'] for m in plain['import boto3'][1]):.1f}x")
        print(f"log lines of the serve process: {len(logs.splitlines())}; tracebacks: {logs.count('Traceback')}; Slack stand-in problems: {len(standin.problems)}")
        print(S.machine_line())
    finally:
        S.kill_all(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
