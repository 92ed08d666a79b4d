"""Crash recovery: SIGKILL the replica running a request's job mid-way; time from the kill to the credentials DM.

What it measures
  Two `iam-bot serve` replicas, A and B (real processes) on one throwaway PostgreSQL database,
  each reaching moto through its own tests/support/fault_proxy.FaultProxy, with the Slack stand-in
  (the harness of tests/support/chaos.py). --crashes times: a request (console + access key, a
  group, ReadOnlyAccess) is submitted and approved on A; the proxies are armed with a kill point
  of the chaos harness (e.g. CreateUser "after": IAM created the user, the replica is SIGKILLed
  before it hears so), and whichever replica makes that call is SIGKILLed; B keeps running, and
  the killed one is restarted at once as a platform would (--no-restart: it is not, until the DM
  came). Measured: the SIGKILL -> the credentials DM reaching the stand-in, and who delivered it
  (B, or the restarted A: the replica whose IAM calls for that user came after the kill).
  Each request is then checked: exactly one IAM user, one access key, one credentials DM, state
  completed, and the credentials revealed are the ones IAM has.
  Kill points: by default the 7 IAM points of tests/support/chaos.KILL_POINTS in turn (--points).

Baseline, in the same run: before each crash, the same request approved on A without a kill:
  approve click -> DM.

Goal: SIGKILL -> DM p95 < 15 s (and every outcome exactly once).

The job lease and the worker's poll are the bot's own defaults unless --lease / --poll are given
(BotProcess's test value of 2 s is not used); the values in force are printed.

Run:  .venv/bin/python bench/crash.py [--crashes 20] [--points all|CreateUser:after,...] [--no-restart]
Needs PostgreSQL on 127.0.0.1:5432 (a throwaway database is created and dropped).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S  # noqa: E402  (sets up sys.path and fake AWS credentials)

import boto3  # noqa: E402
import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bot.demo.standin import SlackStandIn  # noqa: E402
from tests.support.chaos import GROUP, KILL_POINTS, POLICY, is_credentials_dm  # noqa: E402
from tests.support.journeys import APPROVER, click, request_user  # noqa: E402

IAM_POINTS = [p for p in KILL_POINTS if p[0] == "iam"]


def parse_points(text: str) -> list[tuple[str, str, str]]:
    if text == "all":
        return IAM_POINTS
    out = []
    for part in text.split(","):
        action, _, when = part.strip().partition(":")
        out.append(("iam", action, when or "after"))
    return out


def wait_dm(standin: SlackStandIn, short_id: str, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in standin.calls_to("chat.postMessage") if is_credentials_dm(c, short_id)]
        if found:
            return found[0]
        time.sleep(0.02)
    return None


def start_replica(chaos, name: str):  # type: ignore[no-untyped-def]
    """A new replica, or None (said why) if it would not start."""
    try:
        return chaos.replica(name)
    except RuntimeError as exc:
        lines = [x for x in str(exc).splitlines() if x.strip()]
        print(f"  replica {name} did not start: {lines[-1] if lines else exc}", flush=True)
        return None


def fields() -> dict:
    return dict(access=["console", "access_key"], groups=[GROUP], policies=[POLICY])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=20)
    parser.add_argument("--points", default="all", help="kill points, in turn: 'all' (the 7 IAM points) or e.g. CreateUser:after,CreateAccessKey:before")
    parser.add_argument("--no-restart", action="store_true", help="do not restart the killed replica until the DM came (B alone recovers)")
    parser.add_argument("--lease", type=float, default=None, help="IAM_BOT_JOB_LEASE_SECONDS (default: none given, the bot's own default)")
    parser.add_argument("--poll", type=float, default=None, help="IAM_BOT_WORKER_POLL_SECONDS (default: none given, the bot's own default)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--dm-timeout", type=float, default=300, help="seconds to wait for the DM after a kill (default 300)")
    args = parser.parse_args()
    points = parse_points(args.points)

    S.header(f"iam-bot crash-recovery benchmark: {args.crashes} SIGKILLs mid-job, replicas A and B, {'killed replica restarted at once' if not args.no_restart else 'no restart'}")
    tmp = Path(tempfile.mkdtemp(prefix="iam-bot-bench-crash-"))
    cleanup: list = []
    try:
        moto, standin, db = S.services(tmp, cleanup)  # as a deployment has them: `iam-bot migrate` ran before the replicas start
        iam = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1")
        chaos = S.BenchChaos(
            database_url=db.url, standin=standin, moto_url=moto.url, iam=iam, key=Fernet.generate_key().decode(), logdir=tmp,
            bench_lease=args.lease, bench_poll=args.poll, bench_log_level=args.log_level,
        )
        cleanup.append(chaos.close)
        a, b = chaos.replica("r1"), chaos.replica("r2")
        names = iter(range(3, 10**6))
        print(f"setup: PostgreSQL (throwaway); moto behind one FaultProxy per replica; kill points in turn: {', '.join(f'{x}({w})' for _, x, w in points)}")
        print(S.settings_line(a.env))
        replicas = [a, b]

        baseline: list[float] = []
        recovery: list[float] = []
        by_point: dict[str, list[float]] = defaultdict(list)
        deliverer: Counter[str] = Counter()
        killed_role: Counter[str] = Counter()
        outcomes = []
        restarts: list[float] = []
        for i in range(args.crashes):
            first, second = replicas
            # -------- baseline: the same request, no kill
            name = f"base-{i:03d}-{uuid.uuid4().hex[:4]}"
            short_id = request_user(first, user_name=name, **fields())
            t = time.monotonic()
            click(first, APPROVER, "approve_request", short_id)
            dm = wait_dm(standin, short_id, 60)
            baseline.append(dm.at - t if dm else float("nan"))
            time.sleep(0.3)

            # -------- the crash
            where, action, when = points[i % len(points)]
            name = f"crash-{i:03d}-{uuid.uuid4().hex[:4]}"
            short_id = request_user(first, user_name=name, **fields())
            killed: dict = {}
            lock = threading.Lock()

            def kill(p) -> None:  # type: ignore[no-untyped-def]
                with lock:
                    if killed:
                        return
                    killed["marks"] = {q.name: len(chaos.proxies[q.name].history) for q in replicas}
                    killed["at"] = time.monotonic()
                    killed["p"] = p
                    p.kill()

            for p in replicas:
                chaos.proxies[p.name].trip(action, lambda p=p: kill(p), when=when)
            try:
                click(first, APPROVER, "approve_request", short_id)
            except requests.ConnectionError:
                pass  # the kill beat the click's answer; the approval had committed
            deadline = time.monotonic() + 60
            while "p" not in killed and time.monotonic() < deadline:
                time.sleep(0.01)
            for p in replicas:
                chaos.proxies[p.name].disarm()
            if "p" not in killed:
                print(f"  crash {i + 1}: {action} ({when}) never happened within 60 s; skipped", flush=True)
                continue
            dead = killed["p"]
            killed_at = killed["at"]
            killed_role["A, the replica that got the click" if dead is first else "B, the other replica"] += 1
            survivors = [p for p in replicas if p is not dead]
            restarted = None
            if not args.no_restart:
                t = time.monotonic()
                restarted = start_replica(chaos, f"r{next(names)}")
                if restarted is not None:
                    restarts.append(time.monotonic() - t)
            dm = wait_dm(standin, short_id, args.dm_timeout)
            if args.no_restart:
                restarted = start_replica(chaos, f"r{next(names)}")  # two replicas again for the next round
            alive = survivors + ([restarted] if restarted is not None else [])
            # who finished the job: the live replica whose IAM calls for this user came last, after the kill
            latest = {}
            for p in alive:
                since = killed["marks"].get(p.name, 0)
                seqs = [e[1].get("_seq", 0) for e in chaos.proxies[p.name].history[since:] if e[1].get("UserName") == name]
                if seqs:
                    latest[p.name] = max(seqs)
            who = "?"
            if latest:
                winner = max(latest, key=latest.get)
                who = f"the killed replica restarted ({winner})" if restarted is not None and winner == restarted.name else f"the surviving replica ({winner})"
            if dm is None:
                print(f"  crash {i + 1}/{args.crashes}: {action} ({when}): killed {dead.name}; NO DM within {args.dm_timeout:.0f} s", flush=True)
                secs = float("nan")
            else:
                secs = dm.at - killed_at
                recovery.append(secs)
                by_point[f"{action} ({when})"].append(secs)
                deliverer["the killed replica, restarted" if who.startswith("the killed") else ("the surviving replica" if who.startswith("the surv") else "unknown")] += 1
            deadline = time.monotonic() + 60
            while not chaos.settled(short_id) and time.monotonic() < deadline:
                time.sleep(0.1)
            out = chaos.outcome(short_id, name, reveal_on=alive[0])
            out.point = f"{action} ({when})"
            outcomes.append(out)
            print(f"  crash {i + 1}/{args.crashes}: {action} ({when}): killed {dead.name} ({'A, got the click' if dead is first else 'B'}); DM after {secs:.1f} s by {who}; "
                  f"outcome {'ok' if out.ok else f'NOT OK (users={out.users} keys={out.keys} dms={out.dms} state={out.state} job={out.job} consistent={out.consistent})'}"
                  f" | baseline approve -> DM {baseline[-1]:.2f} s", flush=True)
            if restarted is None:
                restarted = start_replica(chaos, f"r{next(names)}")
                if restarted is None:
                    print("  stopping: no second replica could be started", flush=True)
                    break
            replicas = [survivors[0], restarted]

        # ------------------------------------------------------------------ figures
        print(f"\n## SIGKILL -> credentials DM ({len(recovery)} of {args.crashes} crashes delivered)")
        if recovery:
            p95 = S.pct(recovery, 95)
            print(f"SIGKILL -> DM: median {statistics.median(recovery):.1f} s | p95 {p95:.1f} s | min {min(recovery):.1f} | max {max(recovery):.1f}   "
                  f"goal p95 < 15 s: {'met' if p95 < 15 else 'MISSED'}")
            for point, values in sorted(by_point.items()):
                print(f"  {point:<28} median {statistics.median(values):5.1f} s  (n={len(values)})")
        print(f"baseline, same request without a kill, approve -> DM: median {statistics.median(baseline):.2f} s | p95 {S.pct(baseline, 95):.2f} s (n={len(baseline)})")
        print(f"killed: {dict(killed_role)}\nDM delivered by: {dict(deliverer)}"
              + (f"; restart of the killed replica took median {statistics.median(restarts):.1f} s (exec -> healthy)" if restarts else ""))
        okc = sum(1 for o in outcomes if o.ok)
        dup = sum(max(0, o.users - 1) + max(0, o.keys - 1) + max(0, o.dms - 1) for o in outcomes)
        lost = sum(1 for o in outcomes if o.users == 0 or o.dms == 0 or o.state != "completed")
        print(f"outcome: {okc}/{len(outcomes)} exactly one user, one key, one DM, completed, revealed credentials = IAM's | "
              f"duplicates {dup} | lost {lost} | inconsistent reveals {sum(1 for o in outcomes if not o.consistent)}")
        for o in [o for o in outcomes if not o.ok][:10]:
            print(f"  NOT OK {o.point}: users={o.users} keys={o.keys} dms={o.dms} state={o.state} job={o.job} consistent={o.consistent}")
        logs = chaos.logs()
        print(f"log lines across replicas: {len(logs.splitlines())}; tracebacks: {logs.count('Traceback')}; Slack stand-in problems: {len(standin.problems)}")
        print(S.machine_line())
    finally:
        S.kill_all(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
