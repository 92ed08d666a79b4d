"""`/iam request` -> views.open, and the request form's typeahead, with a big IAM account.

What it measures, against one real `iam-bot serve` process (tests.support.processes.BotProcess:
waitress with the production thread count, SQLite in a temporary directory or --database-url, moto as
an HTTP server for IAM, the Slack Web API stand-in of bot/demo/standin.py; the bot's own defaults for
logging and the worker, not BotProcess's test settings):

  (a) the time from sending a signed `/iam request` slash command to the stand-in receiving the bot's
      views.open call for that command's trigger_id (taken from the stand-in's record of the call, by
      an event per trigger, no fixed sleeps), -n commands from --concurrency clients. Goal: p99 < 300 ms.
  (b) the HTTP round trip of typeahead requests (block_suggestion) for the form's groups, policies and
      copy-from selects (action ids from bot/slack/ui/ids.py), --suggestions each, typed as a person
      types (every prefix of a few words, the empty query included). Goal: p99 < 200 ms.

The account: moto seeded over HTTP (boto3 with endpoint_url) with --policies customer-managed
policies (1,500), --groups groups (300) and --users users (300, so that copy-from has something to
search), plus moto's own AWS-managed policies. The bot lists them at start (IamGateway.warm); the
benchmark waits until a typeahead answers with the last-created policy, group and user and the bot
is idle. Its listings are cached for 60 s and refreshed in the background when read stale; a refresh
during the run is measured as it happens in production. The requester is allowed to request: no rules
file, so no `guardrails.requesters` list (as in tests/e2e/test_request_form.py's typeahead test).

Baseline, measured in the same run, alternately with the bot and under the same load: a bare
slack_bolt App (same signing secret, Bolt's defaults) served by the same production server function
(bot.runtime.server.http_server, same thread count) in its own process, whose `/iam` listener acks
and opens a trivial modal with views.open on the same stand-in (for a), and whose options listeners
answer a static list of 100 options (for b). Both servers get --warmup requests of each kind first.

Run: .venv/bin/python bench/modal.py [-n 100] [--suggestions 200] [--concurrency 5] [--database-url URL]
     [--policies 1500] [--groups 300] [--users 300] [--warmup 50]
"""

from __future__ import annotations

import argparse
import os
import json
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle
from pathlib import Path
from typing import Any, Callable

import _latency as lat  # bench/_latency.py (puts the repository on sys.path)

import boto3
from botocore.config import Config

from bot.demo.standin import Call, SlackStandIn
from bot.slack.ui import ids
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.journeys import REQUESTER
from tests.support.services import MotoServer

GOAL_OPEN_P99_MS = 300.0
GOAL_TYPEAHEAD_P99_MS = 200.0

TEAMS = ("payments", "search", "data", "infra", "mobile", "web", "security", "ml", "billing", "growth")
SERVICES = ("s3", "dynamodb", "lambda", "sqs", "sns", "kms", "ec2", "rds", "logs", "ecr")
ACCESS = ("read", "write", "deploy")
ROLES = ("developers", "readers", "oncall", "admins", "analysts", "contractors")
FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


def policy_name(i: int) -> str:
    return f"{TEAMS[i % 10]}-{SERVICES[i // 10 % 10]}-{ACCESS[i // 100 % 3]}-{i:04d}"


def group_name(i: int) -> str:
    return f"{TEAMS[i % 10]}-{ROLES[i // 10 % 6]}-{i:03d}"


def user_name(i: int) -> str:
    return f"{FIRST[i % 10]}.{TEAMS[i // 10 % 10]}-{i:04d}"


def typed(*words: str) -> list[str]:
    """What Slack sends while someone types each word: the empty query, then every prefix."""
    out = [""]
    for word in words:
        out.extend(word[: k + 1] for k in range(len(word)))
    return out


# The selects measured: (label, action id, block id, what is typed).
SELECTS = (
    ("groups", ids.A_GROUPS, ids.B_GROUPS, typed("payments-dev", "oncall")),
    ("policies", ids.A_POLICIES, ids.B_POLICIES, typed("ReadOnlyAccess", "data-s3-read", "lambda")),
    ("copy-from", ids.A_COPY_FROM, ids.B_COPY_FROM, typed("alice.payments", "grace")),
)


def seed(moto_url: str, *, policies: int, groups: int, users: int) -> tuple[float, int]:
    """Create the account over HTTP; the seconds it took and how many AWS-managed policies moto has."""
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1", config=Config(max_pool_connections=16, retries={"max_attempts": 5}))
    document = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    started = time.monotonic()
    jobs: list[Callable[[], Any]] = [lambda i=i: iam.create_policy(PolicyName=policy_name(i), PolicyDocument=document) for i in range(policies)]
    jobs += [lambda i=i: iam.create_group(GroupName=group_name(i)) for i in range(groups)]
    jobs += [lambda i=i: iam.create_user(UserName=user_name(i)) for i in range(users)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: job(), jobs))
    took = time.monotonic() - started
    aws = sum(len(p["Policies"]) for p in iam.get_paginator("list_policies").paginate(Scope="AWS", PaginationConfig={"PageSize": 1000}))
    return took, aws


class ViewsOpened:
    """The stand-in's views.open calls by trigger_id, each signalled as it is recorded."""

    def __init__(self, standin: SlackStandIn):
        self._lock = threading.Lock()
        self._slots: dict[str, tuple[threading.Event, list[Call]]] = {}
        standin.after_call.append(self._recorded)

    def expect(self, trigger_id: str) -> tuple[threading.Event, list[Call]]:
        slot: tuple[threading.Event, list[Call]] = (threading.Event(), [])
        with self._lock:
            self._slots[trigger_id] = slot
        return slot

    def _recorded(self, call: Call) -> None:
        if call.method != "views.open":
            return
        with self._lock:
            slot = self._slots.pop(str(call.args.get("trigger_id")), None)
        if slot is not None:
            slot[1].append(call)
            slot[0].set()


def trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**9}.{uuid.uuid4().hex}"  # Slack's shape


def open_modals(sender: lat.KeepAliveSender, watch: ViewsOpened, n: int, concurrency: int, callback_id: str) -> tuple[list[float], list[float], int]:
    """n `/iam request` commands; (command sent -> views.open received, ms), the acks' round trips, errors."""

    def one(_: int) -> tuple[float | None, float | None]:
        tid = trigger_id()
        done, got = watch.expect(tid)
        sent = time.monotonic()
        try:
            resp = sender.command(REQUESTER, "request", trigger_id=tid)
        except Exception:
            return None, None
        ack = resp.bench_ms if resp.status_code == 200 else None
        if not done.wait(10):
            return None, ack
        call = got[0]
        if not call.response.get("ok") or (call.args.get("view") or {}).get("callback_id") != callback_id:
            return None, ack
        return (call.at - sent) * 1000, ack

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(n)))
    opened = [r[0] for r in results if r[0] is not None]
    acks = [r[1] for r in results if r[1] is not None]
    return opened, acks, len(results) - len(opened)


def suggest(sender: lat.KeepAliveSender, action_id: str, block_id: str, queries: list[str], view: dict[str, Any], n: int, concurrency: int) -> tuple[list[float], int]:
    """n block_suggestion requests, the queries taken in turn; round trips (ms) of answers with options, errors."""
    lock = threading.Lock()
    queue = cycle(queries)

    def one(_: int) -> float | None:
        with lock:
            query = next(queue)
        try:
            resp = sender.block_suggestion(REQUESTER, action_id, query, block_id=block_id, view=view)
            ok = resp.status_code == 200 and isinstance(resp.json().get("options"), list)
        except Exception:
            return None
        return resp.bench_ms if ok else None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(n)))
    times = [r for r in results if r is not None]
    return times, len(results) - len(times)


def wait_for_listings(sender: lat.KeepAliveSender, view: dict[str, Any], expected: dict[str, tuple[str, str]], timeout: float = 300) -> float:
    """Until a typeahead of each select answers with the last-created policy, group and user: seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    for action_id, (query, value) in expected.items():
        while True:
            try:
                resp = sender.block_suggestion(REQUESTER, action_id, query, view=view)
                values = [str(o.get("value")) for o in resp.json().get("options") or []] if resp.status_code == 200 else []
                if any(v == value or v.endswith(":policy/" + value) for v in values):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bot's {action_id} typeahead did not list {query!r} within {timeout:.0f} s")
            time.sleep(0.2)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="measured /iam request commands per server (default 100)")
    parser.add_argument("--suggestions", type=int, default=200, help="measured typeahead requests per select, per server (default 200)")
    parser.add_argument("--concurrency", type=int, default=5, help="concurrent clients (default 5)")
    parser.add_argument("--database-url", help="the bot's database (default: a SQLite file in a temporary directory)")
    parser.add_argument("--policies", type=int, default=1500, help="customer-managed policies to create (default 1500)")
    parser.add_argument("--groups", type=int, default=300, help="groups to create (default 300)")
    parser.add_argument("--users", type=int, default=300, help="users to create, for copy-from (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests of each kind first, per server (default 50)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="iam-bot-bench-modal-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    stops: list[Callable[[], None]] = []
    try:
        moto = MotoServer(tmp).start()
        stops.append(moto.stop)
        seconds_seeding, aws_managed = seed(moto.url, policies=args.policies, groups=args.groups, users=args.users)
        standin = SlackStandIn(bot_token=BOT_TOKEN).start()
        stops.append(standin.stop)
        watch = ViewsOpened(standin)
        started_bot = time.monotonic()
        bot = lat.start_bot(database_url=database_url, standin=standin, aws_url=moto.url, workdir=tmp)
        stops.append(bot.stop)
        bare = lat.BareApp(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, slack_api_url=standin.url, workdir=tmp).start()
        stops.append(bare.stop)
        senders = {
            "iam-bot": lat.KeepAliveSender(bot.url, SIGNING_SECRET, response_url_base=standin.hooks_url),
            "bare Bolt app": lat.KeepAliveSender(bare.url, SIGNING_SECRET, response_url_base=standin.hooks_url),
        }
        for sender in senders.values():
            stops.append(sender.close)
        pids = {"iam-bot": bot.pid, "bare Bolt app": bare.pid}
        callback = {"iam-bot": ids.REQUEST_VIEW, "bare Bolt app": "bare_modal"}

        # The request modal as the bot opens it: block_suggestion payloads carry it, as Slack's do.
        open_modals(senders["iam-bot"], watch, 1, 1, ids.REQUEST_VIEW)
        form = standin.calls_to("views.open")[-1].response["view"]
        last = {
            ids.A_POLICIES: (policy_name(args.policies - 1), policy_name(args.policies - 1)),
            ids.A_GROUPS: (group_name(args.groups - 1), group_name(args.groups - 1)),
            ids.A_COPY_FROM: (user_name(args.users - 1), user_name(args.users - 1)),
        }
        wait_for_listings(senders["iam-bot"], form, last)
        seconds_to_ready = time.monotonic() - started_bot
        quiet = {name: lat.wait_quiet(pid, timeout=180) for name, pid in pids.items()}

        for name, sender in senders.items():
            open_modals(sender, watch, args.warmup, args.concurrency, callback[name])
            for _label, action_id, block_id, queries in SELECTS:
                suggest(sender, action_id, block_id, queries, form, args.warmup, args.concurrency)

        opened: dict[str, tuple[list[float], list[float], int]] = {}
        suggested: dict[tuple[str, str], tuple[list[float], int]] = {}
        started = time.monotonic()
        others = lat.OtherLoad([os.getpid(), bot.pid, bare.pid, moto.proc.pid])
        for name, sender in senders.items():
            quiet[name] = lat.wait_quiet(pids[name], timeout=60) and quiet[name]
            opened[name] = open_modals(sender, watch, args.n, args.concurrency, callback[name])
        for label, action_id, block_id, queries in SELECTS:
            for name, sender in senders.items():
                quiet[name] = lat.wait_quiet(pids[name], timeout=60) and quiet[name]
                suggested[(label, name)] = suggest(sender, action_id, block_id, queries, form, args.suggestions, args.concurrency)
        elapsed = time.monotonic() - started
        other_load = others.line()

        print("# iam-bot: /iam request -> views.open, and typeahead, with a big account (bench/modal.py)")
        print(lat.machine_line())
        print(lat.code_line())
        print(other_load)
        print(
            f"setup: 1 `iam-bot serve` process (waitress, {lat.production_threads()} threads), database {lat.database_label(database_url)}"
            f"{' (temporary file)' if not args.database_url else ''}, moto server, Slack stand-in"
        )
        print(
            f"account (moto): {args.policies} customer-managed + {aws_managed} AWS-managed policies, {args.groups} groups, {args.users} users"
            f" (seeded over HTTP in {seconds_seeding:.1f} s); the bot answered typeahead with all of them {seconds_to_ready:.1f} s after it was started"
        )
        print("baseline: a bare slack_bolt App (ack + views.open of a trivial modal; static 100 options), same http_server and thread count, its own process")
        print(
            f"load: {args.concurrency} concurrent clients (one kept-alive session each), after {args.warmup} warm-up requests of each kind per server; "
            f"measured in {elapsed:.1f} s"
        )
        print()
        print(lat.table_head("(a) command -> views.open (ms)"))
        for name in senders:
            times, _acks, errors = opened[name]
            print(lat.row(f"/iam request   {name}", times, errors))
        print(lat.table_head("    its ack, HTTP round trip (ms)"))
        for name in senders:
            _times, acks, _errors = opened[name]
            print(lat.row(f"/iam request   {name}", acks, args.n - len(acks)))
        print()
        print(lat.table_head("(b) typeahead, HTTP round trip (ms)"))
        for label, _a, _b, _q in SELECTS:
            for name in senders:
                times, errors = suggested[(label, name)]
                print(lat.row(f"{label:<14} {name}", times, errors))
        print()
        print(f"{'goal':<42} {'measured':>10}  {'baseline':>10}  result")
        bot_p99, bare_p99 = (lat.pct(opened[name][0], 99) for name in senders)
        print(f"{'(a) views.open p99 < ' + f'{GOAL_OPEN_P99_MS:.0f} ms':<42} {bot_p99:>7.1f} ms  {bare_p99:>7.1f} ms  {lat.verdict(bot_p99 < GOAL_OPEN_P99_MS)}")
        for label, _a, _b, _q in SELECTS:
            bot_p99, bare_p99 = (lat.pct(suggested[(label, name)][0], 99) for name in senders)
            print(f"{'(b) ' + label + ' typeahead p99 < ' + f'{GOAL_TYPEAHEAD_P99_MS:.0f} ms':<42} {bot_p99:>7.1f} ms  {bare_p99:>7.1f} ms  {lat.verdict(bot_p99 < GOAL_TYPEAHEAD_P99_MS)}")
        problems = standin.problems
        if problems:
            print(f"note: the stand-in found {len(problems)} problem(s) in what it was sent; the first: {problems[0][:200]}")
        if not all(quiet.values()):
            print("note: a server was still busy (over 5% of a core) when a phase started: " + ", ".join(n for n, q in quiet.items() if not q))
    finally:
        lat.kill_all(stops)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
