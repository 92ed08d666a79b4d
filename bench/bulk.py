"""Many requests approved at once on two replicas, with IAM throttled at a fixed rate: exactly once, and how fast.

What it measures
  Two `iam-bot serve` replicas (real processes, tests/support/processes.BotProcess) on one throwaway
  PostgreSQL database, against moto run as a server behind bench/_throttle.ThrottleProxy: a token
  bucket of --iam-rate requests/second (burst --iam-burst, default one second's worth) shared by
  both replicas, as AWS limits an account; a call over the limit is answered HTTP 400 `Throttling`.
  One approver suffices (IAM_BOT_APPROVERS, the default rule: one approval).
  First, untimed and unthrottled, --requests typical requests (2 groups, ReadOnlyAccess, console and
  access key, path, tags, boundary) are submitted with --submit-concurrency at a time, half to each
  replica, until every one has its approvers asked. Then the throttle is switched on and every
  request's approve click is fired at once (--click-concurrency threads released together,
  alternating replicas); the timer runs from the first click to the last credentials DM.

Reported
  exactly once, per request: IAM users with that name, its access keys, credentials DMs
  (duplicates and lost counted); the wall time first click -> last DM; the IAM write calls that
  succeeded per second against the limit (goal >= 90 % of it), and all calls that passed; the
  Throttling answers sent; the clicks' ack times; the apply jobs' attempts.
  Baseline, in the same run: the same work as plain boto3 calls (create_user, add_user_to_group x2,
  attach_user_policy, create_login_profile, create_access_key) from 2 threads through the same
  proxy and the same limit, with botocore's standard retries: what a bare client gets out of it.

Run:  .venv/bin/python bench/bulk.py [--requests 300] [--iam-rate 20]
Needs PostgreSQL on 127.0.0.1:5432 (a throwaway database is created and dropped).
Options --lease/--poll set IAM_BOT_JOB_LEASE_SECONDS / IAM_BOT_WORKER_POLL_SECONDS; by default the
bot's own defaults apply (printed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S  # noqa: E402  (sets up sys.path and fake AWS credentials)
from _throttle import ThrottleProxy  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, select  # noqa: E402

from bot.credentials.passwords import generate_password  # noqa: E402
from bot.domain.facts import PasswordPolicy  # noqa: E402
from models import AccessRequest, Job  # noqa: E402
from tests.support.journeys import APPROVER  # noqa: E402


def enum_value(v: object) -> str:
    return str(getattr(v, "value", v))


def states(engine, short_ids: list[str]) -> dict[str, tuple[str, str, int, str]]:  # type: ignore[no-untyped-def]
    """short id -> (request state, apply job state, apply job attempts, apply job last error)."""
    with engine.connect() as c:
        rows = c.execute(
            select(AccessRequest.short_id, AccessRequest.state, Job.state, Job.attempts, Job.last_error)
            .join(Job, (Job.request_id == AccessRequest.id) & (Job.kind == "apply"), isouter=True)
            .where(AccessRequest.short_id.in_(short_ids))
        ).all()
    return {r[0]: (enum_value(r[1]), enum_value(r[2]) if r[2] is not None else "", r[3] or 0, r[4] or "") for r in rows}


def plain_baseline(url: str, boundary: str, count: int, threads: int) -> tuple[float, int]:
    """`count` users made with plain boto3 calls by `threads` threads; (seconds, users made)."""
    made = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal made
        iam = local_client()
        name = f"plain-{i:04d}"
        try:
            iam.create_user(UserName=name, Path=S.PATH, PermissionsBoundary=boundary, Tags=[{"Key": k, "Value": v} for k, v in S.TAGS])
            for g in S.GROUPS:
                iam.add_user_to_group(UserName=name, GroupName=g)
            iam.attach_user_policy(UserName=name, PolicyArn=S.POLICY)
            iam.create_login_profile(UserName=name, Password=generate_password(PasswordPolicy()), PasswordResetRequired=True)
            iam.create_access_key(UserName=name)
            with lock:
                made += 1
        except ClientError:
            pass  # retries exhausted: counted as not made

    tl = threading.local()

    def local_client():  # type: ignore[no-untyped-def]
        if not hasattr(tl, "c"):
            tl.c = boto3.client("iam", endpoint_url=url, region_name="us-east-1", config=Config(retries={"mode": "standard"}))
        return tl.c

    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - t, made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", "-n", type=int, default=300)
    parser.add_argument("--iam-rate", type=float, default=20.0, help="IAM requests/second the token bucket lets through (default 20)")
    parser.add_argument("--iam-burst", type=float, default=None, help="bucket size (default: one second's worth, = --iam-rate)")
    parser.add_argument("--submit-concurrency", type=int, default=4, help="requests submitted at a time before the timer (default 4)")
    parser.add_argument("--click-concurrency", type=int, default=0, help="approve clicks in flight at once (default 0: all of them)")
    parser.add_argument("--lease", type=float, default=None, help="IAM_BOT_JOB_LEASE_SECONDS (default: the bot's own)")
    parser.add_argument("--poll", type=float, default=None, help="IAM_BOT_WORKER_POLL_SECONDS (default: the bot's own)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every request to settle after the clicks")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain boto3 baseline")
    args = parser.parse_args()
    n = args.requests
    burst = args.iam_burst if args.iam_burst is not None else args.iam_rate
    clickers = args.click_concurrency or n

    S.header(f"iam-bot bulk benchmark: {n} requests approved at once on 2 replicas, IAM throttled at {args.iam_rate:g} requests/s")
    tmp = Path(tempfile.mkdtemp(prefix="iam-bot-bench-bulk-"))
    cleanup: list = []
    try:
        moto, standin, db = S.services(tmp, cleanup)  # as a deployment has them: `iam-bot migrate` ran before the replicas start
        engine = create_engine(db.url.replace("postgresql://", "postgresql+psycopg://", 1))
        cleanup.append(engine.dispose)
        proxy = ThrottleProxy(moto.url, rate=None)
        cleanup.append(proxy.stop)
        iam = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1")  # the bench's own view: straight to moto
        typical = S.seed_typical(iam)
        key = Fernet.generate_key().decode()
        replicas = []
        for name in ("a", "b"):
            p = S.BenchProcess(
                database_url=db.url, standin=standin, aws_url=proxy.url, key=key, logdir=tmp, name=name, approvers=APPROVER,
                lease_seconds=args.lease, poll_seconds=args.poll, log_level=args.log_level,
                unset=["IAM_BOT_ALLOW_UNBOUNDED"], extra_env=typical.env(),
            )
            replicas.append(p)
        print(f"setup: PostgreSQL (throwaway), 2 replicas, IAM_BOT_APPROVERS={APPROVER} (one approval suffices), "
              f"throttle {args.iam_rate:g}/s burst {burst:g} on every IAM call of both replicas (on from the first click)")
        print(S.settings_line(replicas[0].env))
        for p in replicas:
            p.start()
            cleanup.append(p.stop)

        # ------------------------------------------------------------------ submit (untimed, unthrottled)
        names = [f"bulk-{i:04d}" for i in range(n)]
        watch = S.Watch(standin)
        watch.expect(names)
        t = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.submit_concurrency) as pool:
            for f in [pool.submit(S.submit, replicas[i % 2], name, **typical.fields()) for i, name in enumerate(names)]:
                f.result()
        if not watch.wait(lambda: len(watch.short_id_of) == n, timeout=120 + 2 * n, interval=0.5):
            missing = [x for x in names if x not in watch.short_id_of]
            raise RuntimeError(f"{len(missing)} request(s) never reached their approvers, e.g. {missing[:5]}")
        print(f"submitted {n} requests in {time.monotonic() - t:.0f} s ({args.submit_concurrency} at a time; not part of the figures)")
        time.sleep(2)  # the plan jobs' last Slack updates end
        short_ids = [watch.short_id_of[x] for x in names]

        # ------------------------------------------------------------------ approve all at once (timed)
        acks: list[float] = []
        errors: Counter[str] = Counter()
        lock = threading.Lock()
        gate = threading.Barrier(min(clickers, n) + 1)
        queue = list(enumerate(short_ids))
        qlock = threading.Lock()

        def clicker() -> None:
            gate.wait()
            while True:
                with qlock:
                    if not queue:
                        return
                    i, sid = queue.pop(0)
                t0 = time.monotonic()
                try:
                    resp = S.click_approve(replicas[i % 2], watch.approval[sid], APPROVER)
                    outcome = None if resp.status_code == 200 else f"HTTP {resp.status_code}"
                except Exception as exc:
                    outcome = type(exc).__name__
                with lock:
                    acks.append(time.monotonic() - t0)
                    if outcome:
                        errors[outcome] += 1

        threads = [threading.Thread(target=clicker, daemon=True) for _ in range(min(clickers, n))]
        for th in threads:
            th.start()
        r0 = len(proxy.snapshot())
        proxy.set_rate(args.iam_rate, burst)
        t_first = time.monotonic()
        gate.wait()
        for th in threads:
            th.join()
        t_clicked = time.monotonic()

        def settled() -> bool:
            st = states(engine, short_ids)
            return all(s[0] in ("completed", "failed") and (s[0] == "failed" or sid in watch.dms) for sid, s in st.items()) and len(st) == n

        done = watch.wait(settled, timeout=args.timeout, interval=1.0)
        t_settled = time.monotonic()
        time.sleep(3)  # let a wrongly repeated DM or key show itself
        watch.scan()
        proxy.set_rate(None)

        # ------------------------------------------------------------------ outcome
        final = states(engine, short_ids)
        users = Counter()
        for page in iam.get_paginator("list_users").paginate():
            for u in page["Users"]:
                users[u["UserName"]] += 1
        dup_users = dup_keys = dup_dms = lost = failed = 0
        ok = 0
        for name, sid in zip(names, short_ids):
            u = users.get(name, 0)
            k = len(iam.list_access_keys(UserName=name)["AccessKeyMetadata"]) if u else 0
            d = len(watch.dms.get(sid, []))
            dup_users += max(0, u - 1)
            dup_keys += max(0, k - 1)
            dup_dms += max(0, d - 1)
            state = final.get(sid, ("?", "", 0, ""))[0]
            failed += state == "failed"
            if u == 0 or k == 0 or d == 0 or state != "completed":
                lost += 1
            if u == 1 and k == 1 and d == 1 and state == "completed":
                ok += 1
        dm_times = [min(c.at for c in watch.dms[sid]) for sid in short_ids if sid in watch.dms]
        wall = (max(dm_times) - t_first) if dm_times else float("nan")
        window = [r for r in proxy.snapshot()[r0:] if r.at >= t_first and (not dm_times or r.at <= max(dm_times))]
        throttled = [r for r in window if r.throttled]
        passed = [r for r in window if not r.throttled]
        ok_writes = [r for r in passed if not S.is_read(r.action) and r.status == 200]
        ok_reads = [r for r in passed if S.is_read(r.action) and r.status == 200]
        refused = Counter(f"{r.action}:{r.code}" for r in passed if r.status != 200)

        print(f"\n## {n} approvals fired at once ({min(clickers, n)} clicks in flight), 2 replicas, IAM limit {args.iam_rate:g}/s")
        print(f"all settled: {'yes' if done else f'NO (gave up after {args.timeout:.0f} s)'}; clicks sent in {t_clicked - t_first:.1f} s; settled {t_settled - t_first:.1f} s after the first click")
        print(f"exactly once: {ok}/{n} requests with exactly 1 user, 1 access key, 1 credentials DM, completed")
        print(f"  duplicates: users {dup_users}, access keys {dup_keys}, credentials DMs {dup_dms} | lost (no user, key or DM, or not completed) {lost} | failed requests {failed}")
        print(f"wall time, first click -> last credentials DM: {wall:.1f} s ({len(dm_times)} DMs)")
        if dm_times:
            lat = [x - t_first for x in dm_times]
            print(f"  first click -> each request's DM: p50 {statistics.median(lat):.1f} s | p95 {S.pct(lat, 95):.1f} s | max {max(lat):.1f} s")
        span = wall if wall == wall and wall > 0 else float("nan")
        wps = len(ok_writes) / span
        print(f"IAM write calls that succeeded: {len(ok_writes)} in {span:.1f} s = {wps:.1f}/s = {100 * wps / args.iam_rate:.0f} % of the {args.iam_rate:g}/s limit "
              f"(goal >= 90 %: {'met' if wps >= 0.9 * args.iam_rate else 'MISSED'})")
        aps = len(passed) / span
        print(f"  every call let through (reads {len(ok_reads)} ok, writes {len(ok_writes)} ok, {sum(refused.values())} answered with an error by IAM): "
              f"{len(passed)} = {aps:.1f}/s = {100 * aps / args.iam_rate:.0f} % of the limit")
        print(f"  writes needed: {n * 6} (6 per request); reads per succeeded write: {len(ok_reads) / max(1, len(ok_writes)):.2f}")
        print(f"Throttling answers sent: {len(throttled)} ({', '.join(f'{a} x{c}' for a, c in Counter(r.action for r in throttled).most_common(8))})")
        if refused:
            print(f"  IAM errors other than throttling: {', '.join(f'{a} x{c}' for a, c in refused.most_common(8))}")
        print(f"approve click ack: {S.spread(acks, 'ms', 1000)}; over 3 s (Slack would retry): {sum(1 for a in acks if a > 3)}; "
              f"errors: {dict(errors) or 'none'}")
        attempts = Counter(s[2] for s in final.values())
        print(f"apply job attempts: {', '.join(f'{k} attempt(s) x{v}' for k, v in sorted(attempts.items()))}")
        last_errors = Counter(s[3] for s in final.values() if s[3])
        if last_errors:
            print(f"  apply jobs' last recorded error: {', '.join(f'{e} x{c}' for e, c in last_errors.most_common(6))}")
        not_done = Counter((s[0], s[1]) for s in final.values() if s[0] != "completed")
        if not_done:
            print(f"  not completed (request state, job state): {dict(not_done)}")
        logs = "\n".join(p.logs() for p in replicas)
        print(f"log lines: {len(logs.splitlines())}; tracebacks: {logs.count('Traceback')}; 'taken over' warnings: {logs.count('taken over')}; "
              f"Slack stand-in problems: {len(standin.problems)}")

        # ------------------------------------------------------------------ baseline
        if not args.no_baseline:
            proxy.set_rate(args.iam_rate, burst)
            r1 = len(proxy.snapshot())
            secs, made = plain_baseline(proxy.url, typical.boundary, n, threads=2)
            proxy.set_rate(None)
            recs = proxy.snapshot()[r1:]
            pw = [r for r in recs if not r.throttled and r.status == 200 and not S.is_read(r.action)]
            print(f"\nbaseline: plain boto3, same {n} users, 2 threads, same proxy and limit, botocore standard retries: "
                  f"{made}/{n} made in {secs:.1f} s; succeeded writes {len(pw) / secs:.1f}/s = {100 * len(pw) / secs / args.iam_rate:.0f} % of the limit; "
                  f"Throttling answers {sum(1 for r in recs if r.throttled)}")
        print(S.machine_line())
    finally:
        S.kill_all(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
