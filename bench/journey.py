"""Approve click -> credentials DM for one `iam-bot serve`, and the IAM calls it makes, beside plain boto3.

What it measures
  One real `iam-bot serve` process (PostgreSQL, throwaway database; or SQLite with --database sqlite)
  against moto run as a server, behind tests/support/fault_proxy.FaultProxy (which records every
  IAM call's Action; no fault is injected), and the Slack stand-in. -n times, one after the other,
  a typical request is submitted (2 groups, the AWS-managed ReadOnlyAccess policy, console and
  access key, path /engineering/, two tags, a permissions boundary) and approved with a signed click;
  the time from sending the click to the stand-in receiving the credentials DM is measured
  (and the click's ack). The IAM calls the bot made are counted per request, split into the form
  and plan phase (submit -> approvers asked) and the approve phase (click -> DM), reads vs writes,
  and listed by action for one typical request.

Baseline, in the same run
  A plain boto3 script doing the same work for the same kind of user straight against the same moto
  (create_user with tags, boundary and path; add_user_to_group x2; attach_user_policy;
  create_login_profile; create_access_key): its wall time with a warm client (-n users), the
  same through a FaultProxy (the proxy's own cost), and as a whole fresh process (python start,
  import boto3, client, calls); and its call count. Ratios bot/plain for time and for calls.

Goal: approve -> DM p50 < 1 s.

Run:  .venv/bin/python bench/journey.py [-n 20] [--database postgres|sqlite]
Needs PostgreSQL on 127.0.0.1:5432 for the default database (a throwaway database is created and dropped).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _support as S  # noqa: E402  (sets up sys.path and fake AWS credentials)

import boto3  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bot.credentials.passwords import generate_password  # noqa: E402
from bot.demo.standin import SlackStandIn  # noqa: E402
from bot.domain.facts import PasswordPolicy  # noqa: E402
from tests.support.fault_proxy import FaultProxy  # noqa: E402
from tests.support.journeys import APPROVER  # noqa: E402
from tests.support.services import MotoServer, PostgresDatabase  # noqa: E402

GROUPS, POLICY, PATH, TAGS = S.GROUPS, S.POLICY, S.PATH, S.TAGS

PLAIN_SCRIPT = r"""
import sys, time, boto3
t0 = time.perf_counter()
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1")
name, boundary, password = sys.argv[2], sys.argv[3], sys.argv[4]
iam.create_user(UserName=name, Path="/engineering/", PermissionsBoundary=boundary,
                Tags=[{"Key": "team", "Value": "payments"}, {"Key": "cost-center", "Value": "1234"}])
for g in ("developers", "readers"):
    iam.add_user_to_group(UserName=name, GroupName=g)
iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
iam.create_login_profile(UserName=name, Password=password, PasswordResetRequired=True)
iam.create_access_key(UserName=name)
print(time.perf_counter() - t0)
"""


def plain(iam, name: str, boundary: str) -> int:  # type: ignore[no-untyped-def]
    """The same user, the boto3 way; returns the number of calls. Nothing it gets back is printed."""
    iam.create_user(UserName=name, Path=PATH, PermissionsBoundary=boundary, Tags=[{"Key": k, "Value": v} for k, v in TAGS])
    for g in GROUPS:
        iam.add_user_to_group(UserName=name, GroupName=g)
    iam.attach_user_policy(UserName=name, PolicyArn=POLICY)
    iam.create_login_profile(UserName=name, Password=generate_password(PasswordPolicy()), PasswordResetRequired=True)
    iam.create_access_key(UserName=name)
    return 1 + len(GROUPS) + 3


def split(actions: list[str]) -> tuple[int, int]:
    reads = sum(1 for a in actions if S.is_read(a))
    return reads, len(actions) - reads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="requests, one after the other (default 20)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--log-level", default="INFO", help="the bot's LOG_LEVEL (default INFO, the production default)")
    args = parser.parse_args()

    S.header(f"iam-bot journey benchmark: approve -> credentials DM, {args.n} requests, one `iam-bot serve` process")
    tmp = Path(tempfile.mkdtemp(prefix="iam-bot-bench-journey-"))
    cleanup: list = []
    try:
        moto = MotoServer(tmp).start()
        cleanup.append(moto.stop)
        standin = SlackStandIn().start()
        cleanup.append(standin.stop)
        proxy = S.TimedFaultProxy(moto.url)
        cleanup.append(proxy.stop)
        if args.database == "postgres":
            db = PostgresDatabase().create()
            cleanup.append(db.drop)
            database_url = db.url
        else:
            database_url = f"sqlite:///{tmp / 'bench.db'}"
        iam = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1")
        typical = S.seed_typical(iam)
        boundary = typical.boundary

        bot = S.BenchProcess(
            database_url=database_url, standin=standin, aws_url=proxy.url, key=Fernet.generate_key().decode(), logdir=tmp, name="bot",
            log_level=args.log_level,
            unset=["IAM_BOT_ALLOW_UNBOUNDED"],  # a production setup: a boundary and a path prefix instead
            extra_env=typical.env(),
        )
        print(f"setup: database {args.database}; moto behind a FaultProxy (records calls, injects nothing); Slack stand-in; "
              f"IAM_BOT_APPROVERS={bot.env['IAM_BOT_APPROVERS']} (one approval suffices)")
        print(S.settings_line(bot.env))
        bot.start()
        cleanup.append(bot.stop)
        # serve warms the typeahead listings in the background at start: let it finish, so its calls are not counted.
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 1.0:
            if len(proxy.history) != last:
                last, stable_since = len(proxy.history), time.monotonic()
            time.sleep(0.1)
        print(f"start-up warm-up calls (not counted): {len(proxy.history)} ({', '.join(f'{a} x{c}' for a, c in Counter(a for a, _ in proxy.history).items())})")

        watch = S.Watch(standin)
        names = [f"bench-{i:03d}" for i in range(args.n)]
        watch.expect(names)
        approve_ms: list[float] = []
        ack_ms: list[float] = []
        submit_ms: list[float] = []
        phase_calls: list[tuple[list[str], list[str]]] = []
        to_first_call: list[float] = []
        iam_span: list[float] = []
        last_call_to_dm: list[float] = []
        for name in names:
            h0 = len(proxy.history)
            t0 = time.monotonic()
            S.submit(bot, name, **typical.fields())
            if not watch.wait(lambda: name in watch.short_id_of, timeout=60, interval=0.01):
                raise RuntimeError(f"no approval message for {name} within 60 s")
            submit_ms.append((watch.approval[watch.short_id_of[name]].at - t0) * 1000)
            short_id = watch.short_id_of[name]
            time.sleep(0.3)  # the plan job's last steps (approvers' Homes) may still be running: let them end
            h1 = len(proxy.history)
            a1 = len(proxy.arrivals)
            t1 = time.monotonic()
            resp = S.click_approve(bot, watch.approval[short_id], APPROVER)
            ack_ms.append((time.monotonic() - t1) * 1000)
            assert resp.status_code == 200, resp.status_code
            if not watch.wait(lambda: short_id in watch.dms, timeout=60, interval=0.005):
                raise RuntimeError(f"no credentials DM for {name} within 60 s")
            dm_at = watch.dms[short_id][0].at
            approve_ms.append((dm_at - t1) * 1000)
            before_dm = [t for t, _ in proxy.arrivals[a1:] if t <= dm_at]
            if before_dm:
                to_first_call.append((before_dm[0] - t1) * 1000)
                iam_span.append((before_dm[-1] - before_dm[0]) * 1000)
                last_call_to_dm.append((dm_at - before_dm[-1]) * 1000)
            time.sleep(0.3)  # what the job does after the DM (announcements) ends before the next request
            phase_calls.append(([a for a, _ in proxy.history[h0:h1]], [a for a, _ in proxy.history[h1:]]))

        # ------------------------------------------------------------------ the plain boto3 baseline
        plain_direct: list[float] = []
        plain_proxied: list[float] = []
        plain_calls = 0
        client = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1")
        via_proxy = FaultProxy(moto.url)
        cleanup.append(via_proxy.stop)
        client_proxied = boto3.client("iam", endpoint_url=via_proxy.url, region_name="us-east-1")
        for i in range(args.n):
            t = time.perf_counter()
            plain_calls = plain(client, f"plain-{i:03d}", boundary)
            plain_direct.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            plain(client_proxied, f"plainp-{i:03d}", boundary)
            plain_proxied.append((time.perf_counter() - t) * 1000)
        fresh: list[float] = []
        fresh_calls: list[float] = []
        for i in range(3):
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", PLAIN_SCRIPT, moto.url, f"plains-{i:03d}", boundary, generate_password(PasswordPolicy())],
                capture_output=True, text=True, timeout=60,
            )
            fresh.append((time.perf_counter() - t) * 1000)
            if out.returncode == 0:
                fresh_calls.append(float(out.stdout.strip()) * 1000)

        # ------------------------------------------------------------------ figures
        print(f"\n## approve click -> credentials DM ({args.n} requests, sequential)")
        p50 = statistics.median(approve_ms)
        print(f"bot  approve -> DM          {S.spread(approve_ms)}   goal p50 < 1000 ms: {'met' if p50 < 1000 else 'MISSED'}")
        print(f"     first request          {approve_ms[0]:.0f} ms (included above)")
        print(f"     where it goes: click -> first IAM call {S.spread(to_first_call)}")
        print(f"                    first -> last IAM call  {S.spread(iam_span)}")
        print(f"                    last IAM call -> DM     {S.spread(last_call_to_dm)}")
        print(f"     approve click ack      {S.spread(ack_ms)}")
        print(f"     submit -> approvers asked (form + plan job)  {S.spread(submit_ms)}")
        plain_p50 = statistics.median(plain_direct)
        print(f"plain boto3, warm client, straight to moto     {S.spread(plain_direct)}")
        print(f"plain boto3, warm client, through a FaultProxy {S.spread(plain_proxied)}   (the proxy's cost: +{statistics.median(plain_proxied) - plain_p50:.0f} ms p50)")
        print(f"plain boto3 as a fresh process (start + import + client + calls), 3 runs: {', '.join(f'{x:.0f}' for x in fresh)} ms"
              + (f" (of which client + calls {', '.join(f'{x:.0f}' for x in fresh_calls)} ms)" if fresh_calls else ""))
        print(f"ratio bot/plain, wall time: {p50 / plain_p50:.1f}x (p50 approve -> DM {p50:.0f} ms / p50 plain calls {plain_p50:.0f} ms)")

        print(f"\n## IAM calls per request (counted at the FaultProxy; the plain script makes {plain_calls}, all writes)")
        sub = [split(s) for s, _ in phase_calls]
        app = [split(a) for _, a in phase_calls]

        def line(label: str, pairs: list[tuple[int, int]]) -> str:
            tot = [r + w for r, w in pairs]
            return (f"{label:<36} total p50 {statistics.median(tot):.0f} (min {min(tot)}, max {max(tot)}) | "
                    f"reads p50 {statistics.median([r for r, _ in pairs]):.0f} | writes p50 {statistics.median([w for _, w in pairs]):.0f}")

        print(line("form + plan (submit -> asked)", sub))
        print(line("approve -> DM (the apply job)", app))
        print(line("whole request", [(a[0] + b[0], a[1] + b[1]) for a, b in zip(sub, app)]))
        app_p50 = statistics.median([r + w for r, w in app])
        all_p50 = statistics.median([a[0] + a[1] + b[0] + b[1] for a, b in zip(sub, app)])
        print(f"ratio bot/plain, calls: approve phase {app_p50 / plain_calls:.1f}x ({app_p50:.0f}/{plain_calls}); whole request {all_p50 / plain_calls:.1f}x ({all_p50:.0f}/{plain_calls})")

        signatures = Counter((tuple(s), tuple(a)) for s, a in phase_calls)
        (typ_sub, typ_app), seen = signatures.most_common(1)[0]
        print(f"\none typical request, by action (this exact sequence in {seen} of {args.n} requests; {len(signatures)} distinct sequence(s)):")
        for label, actions in (("form + plan", typ_sub), ("approve -> DM", typ_app)):
            r, w = split(list(actions))
            print(f"  {label}: {len(actions)} calls, {r} reads, {w} writes")
            for action, count in Counter(actions).items():
                print(f"    {'read ' if S.is_read(action) else 'WRITE'} {action:<28} x{count}")
        print(f"  in order (approve -> DM): {' '.join(typ_app)}")
        problems = standin.problems
        print(f"\nSlack stand-in problems: {len(problems)}; tracebacks in the bot's log: {bot.logs().count('Traceback')}")
        print(S.machine_line())
    finally:
        S.kill_all(cleanup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
