"""Cause each fault many times and print counts: requests, users created, duplicates, lost, recovery.

    python scripts/chaos.py [--crashes 50] [--races 100] [--throttle-rounds 2]

Needs PostgreSQL on 127.0.0.1:5432 (a throwaway database is created and dropped). Runs real
`iam-bot serve` replicas against moto (behind a fault-injecting proxy) and the Slack stand-in,
exactly as tests/e2e/test_exactly_once.py does, only more often; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
for _k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_k, None)
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")

import boto3  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bot.runtime.db import make_engine, migrate  # noqa: E402
from bot.demo.standin import SlackStandIn  # noqa: E402
from tests.support.chaos import CHANGE_KILL_POINTS, KILL_POINTS, REMOVAL_KILL_POINTS, REVOKE_KILL_POINTS, Chaos, DayTwoOutcome, Outcome, RemovalOutcome  # noqa: E402
from tests.support.services import MotoServer, PostgresDatabase  # noqa: E402


def summary(title: str, outcomes: list[Outcome], extra: str = "") -> None:
    users = sum(o.users for o in outcomes)
    duplicates = sum(max(0, o.users - 1) + max(0, o.keys - 1) + max(0, o.dms - 1) for o in outcomes)
    lost = sum(1 for o in outcomes if o.users == 0 or o.dms == 0 or o.state != "completed")
    inconsistent = sum(1 for o in outcomes if not o.consistent)
    print(f"\n## {title}")
    print(f"requests {len(outcomes)} | IAM users created {users} | duplicates (users, keys, DMs) {duplicates} | lost {lost} | revealed credentials not matching IAM {inconsistent}")
    recoveries = [o.recovery_seconds for o in outcomes if o.recovery_seconds]
    if recoveries:
        ranked = sorted(recoveries)
        p95 = ranked[min(len(ranked) - 1, int(0.95 * len(ranked)))]
        print(f"recovery (s): median {statistics.median(ranked):.1f} | p95 {p95:.1f} | max {ranked[-1]:.1f}")
    if extra:
        print(extra)
    bad = [o for o in outcomes if not o.ok]
    for o in bad[:10]:
        print(f"  NOT OK {o.point}: users={o.users} keys={o.keys} dms={o.dms} state={o.state} job={o.job} consistent={o.consistent}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=50, help="SIGKILL-and-recover cycles at random points (default 50)")
    parser.add_argument("--change-crashes", type=int, default=12, help="changes killed at a random step, then their grant's end killed too (default 12)")
    parser.add_argument("--offboard-crashes", type=int, default=12, help="offboardings killed at a random removal and recovered (default 12)")
    parser.add_argument("--account-crashes", type=int, default=12, help="crash cycles in two member accounts, alternating (default 12)")
    parser.add_argument("--races", type=int, default=100, help="requests each approved at once on two replicas (default 100: 200 approvals)")
    parser.add_argument("--throttle-rounds", type=int, default=2, help="rounds of faults on every IAM action of a job (default 2)")
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    random.seed(args.seed)

    workdir = Path(tempfile.mkdtemp(prefix="iam-bot-chaos-"))
    moto = MotoServer(workdir).start()
    standin = SlackStandIn().start()
    db = PostgresDatabase().create()
    migrate(make_engine(db.url))
    iam = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1")
    chaos = Chaos(database_url=db.url, standin=standin, moto_url=moto.url, iam=iam, key=Fernet.generate_key().decode(), logdir=workdir)
    print(f"# iam-bot chaos run (seed {args.seed}); PostgreSQL, moto behind a fault proxy, replicas lease {chaos.lease_seconds:.0f} s")
    try:
        # 1. Crash and recover: each cycle kills the replica working the job at a random point;
        #    the other replica takes over once the lease expires, and a new replica joins.
        outcomes: list[Outcome] = []
        points: Counter[str] = Counter()
        replicas = [chaos.replica("a"), chaos.replica("b")]
        started = time.monotonic()
        for n in range(args.crashes):
            point = random.choice(KILL_POINTS)
            out, dead = chaos.crash_cycle(replicas, point, n)  # kills whichever replica runs the job
            outcomes.append(out)
            points[out.point] += 1
            replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"r{n}")]
            print(f"  crash {n + 1}/{args.crashes}: {out.point}: {'ok' if out.ok else 'NOT OK'} ({out.recovery_seconds:.1f} s)", flush=True)
        summary(
            f"{args.crashes} SIGKILLs at random points of the job ({time.monotonic() - started:.0f} s)",
            outcomes,
            "kill points: " + ", ".join(f"{p} x{c}" for p, c in sorted(points.items())),
        )

        # 1b. Offboarding: the replica removing a user's items is killed at a random removal; another
        #     finishes it, and nothing is removed (or audited, or reported) twice.
        removals: list[RemovalOutcome] = []
        started = time.monotonic()
        for n in range(args.offboard_crashes):
            removal, dead = chaos.offboard_crash_cycle(replicas, random.choice(REMOVAL_KILL_POINTS), n)
            removals.append(removal)
            replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"o{n}")]
            print(f"  offboarding {n + 1}/{args.offboard_crashes}: {removal.point}: {'ok' if removal.ok else 'NOT OK'} ({removal.recovery_seconds:.1f} s)", flush=True)
        print(f"\n## {args.offboard_crashes} offboardings killed at a random removal ({time.monotonic() - started:.0f} s)")
        print(f"requests {len(removals)} | users left in IAM {sum(r.users for r in removals)} | removals done twice {sum(r.repeated for r in removals)} "
              f"| reports {sum(r.reports for r in removals)} | not completed {sum(1 for r in removals if r.state != 'completed')}")
        for r in [r for r in removals if not r.ok][:10]:
            print(f"  NOT OK {r.point}: users={r.users} repeated={r.repeated} reports={r.reports} state={r.state} job={r.job}")

        # 1c. Changes and time-bound grants: a change killed at a random step (or its credentials DM),
        #     then its hour made up and the worker taking the grant away killed at DetachUserPolicy.
        day_two: dict[str, list[DayTwoOutcome]] = {"change": [], "revoke-at-end": []}
        started = time.monotonic()
        for n in range(args.change_crashes):
            change, dead = chaos.change_crash_cycle(replicas, random.choice(CHANGE_KILL_POINTS), n)
            day_two["change"].append(change)
            replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"c{n}")]
            ended, dead = chaos.revoke_crash_cycle(replicas, random.choice(REVOKE_KILL_POINTS), change.user_name, n)
            day_two["revoke-at-end"].append(ended)
            replicas = [p for p in replicas if p is not dead] + [chaos.replica(f"v{n}")]
            print(f"  change {n + 1}/{args.change_crashes}: {change.point}: {'ok' if change.ok else 'NOT OK'} ({change.recovery_seconds:.1f} s); "
                  f"its end: {ended.point}: {'ok' if ended.ok else 'NOT OK'} ({ended.recovery_seconds:.1f} s)", flush=True)
        print(f"\n## {args.change_crashes} changes and {args.change_crashes} grant ends, each killed at a random step ({time.monotonic() - started:.0f} s)")
        for kind, outs in day_two.items():
            print(f"{kind}: requests {len(outs)} | not as planned in IAM {sum(1 for o in outs if not o.as_planned)} | steps done twice {sum(o.repeated for o in outs)} "
                  f"| credentials DMs {sum(o.dms for o in outs)} | notices {sum(o.notices for o in outs)} | filed twice {sum(1 for o in outs if o.requests != 1)} "
                  f"| not completed {sum(1 for o in outs if o.state != 'completed')}")
            for o in [o for o in outs if not o.ok][:10]:
                print(f"  NOT OK {o.point}: as_planned={o.as_planned} repeated={o.repeated} dms={o.dms} notices={o.notices} state={o.state} job={o.job}")

        # 1d. Two member accounts (IAM_BOT_ACCOUNTS): replicas acting through a role in each are killed
        #     mid-job; each request is finished once, in its own account and no other.
        if args.account_crashes:
            # A deployment of its own (its database too): replicas of one deployment share IAM_BOT_ACCOUNTS.
            db2 = PostgresDatabase().create()
            migrate(make_engine(db2.url))
            multi = Chaos(database_url=db2.url, standin=standin, moto_url=moto.url, iam=iam, key=chaos.key, logdir=workdir,
                          accounts={"prod": "111111111111", "staging": "222222222222"})
            try:
                spread: list[Outcome] = []
                pair = [multi.replica("m-a"), multi.replica("m-b")]
                started = time.monotonic()
                for n in range(args.account_crashes):
                    account = ("prod", "staging")[n % 2]
                    out, dead = multi.crash_cycle(pair, random.choice(KILL_POINTS), 1000 + n, account=account)
                    spread.append(out)
                    pair = [p for p in pair if p is not dead] + [multi.replica(f"m{n}")]
                    print(f"  account crash {n + 1}/{args.account_crashes}: {out.point}: {'ok' if out.ok else 'NOT OK'} ({out.recovery_seconds:.1f} s)", flush=True)
                summary(f"{args.account_crashes} SIGKILLs mid-job in two member accounts ({time.monotonic() - started:.0f} s)", spread,
                        f"users made in another account too: {sum(o.elsewhere for o in spread)}")
            finally:
                multi.close()
                db2.drop()

        # 2. Races: every request approved by two approvers at once, on two replicas.
        a, b = replicas
        started = time.monotonic()
        raced = chaos.concurrent_approvals(a, b, count=args.races)
        acks = sorted(chaos.ack_seconds)
        summary(
            f"{args.races} requests, {2 * args.races} concurrent approvals on two replicas ({time.monotonic() - started:.0f} s)",
            raced,
            f"click answered (HTTP 200) in: median {1000 * statistics.median(acks):.0f} ms | p95 {1000 * acks[int(0.95 * (len(acks) - 1))]:.0f} ms | max {1000 * acks[-1]:.0f} ms (8 clicks in flight)",
        )

        # 3. Every IAM action of a job fails (throttling, 5xx, dropped connection) more often than
        #    botocore retries; the job retries later. Real time here: the job's back-off is 10 s.
        #    Alone: a replica left running would take some of the jobs, and their actions would go unfaulted.
        for process in chaos.replicas:
            process.stop()
        os.environ["AWS_MAX_ATTEMPTS"] = "2"
        throttled = chaos.replica("throttled")
        os.environ.pop("AWS_MAX_ATTEMPTS")
        outcomes = chaos.fault_every_action(throttled, rounds=args.throttle_rounds)
        summary(f"faults on every IAM action of a job, {args.throttle_rounds} round(s)", outcomes, f"actions: {', '.join(sorted({o.point.split(' ')[0] for o in outcomes}))}")
        leaked = [line for line in chaos.logs().splitlines() if "Traceback" in line]
        print(f"\nlog lines across all replicas: {len(chaos.logs().splitlines())}; tracebacks: {len(leaked)}")
    finally:
        chaos.close()
        standin.stop()
        moto.stop()
        db.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
