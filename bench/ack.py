"""Acknowledgement latency under load: how long Slack waits for iam-bot's HTTP answer.

What it measures: the HTTP round trip (request sent -> response read) of `/iam status` slash commands
and of button clicks (block_actions: Approve on a request that does not exist, which the bot refuses
privately after its ack), sent like Slack sends them (signed, same payload shapes, bot/demo/slack_sender)
by a ThreadPoolExecutor of --concurrency clients, each with its own kept-alive requests.Session.

The bot: ONE real `iam-bot serve` process (tests.support.processes.BotProcess), served by waitress
with the production thread count, on SQLite in a temporary directory (or --database-url), with moto
as an HTTP server for IAM and the Slack Web API stand-in (bot/demo/standin.py) for its after-ack
answers. The test settings BotProcess sets (DEBUG logs, fast worker poll, short lease) are dropped:
the bot's own defaults apply.

Baseline, measured in the same run: a bare slack_bolt App with the same signing secret whose
listeners only ack() the same command and action (Bolt's defaults, Bolt's WSGI adapter), served by
the same production server function (bot.runtime.server.http_server, same thread count) in its own
process. Both get --warmup requests of each kind first and are measured alternately (bot, bare) with
the same load; the client, the stand-in and moto share the machine's cores with the server measured.

Goals: p99 < 100 ms, and p99 no more than 1.5x the bare app's p99.

Run: .venv/bin/python bench/ack.py [-n 600] [--concurrency 20] [--database-url URL] [--warmup 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import _latency as lat  # bench/_latency.py (puts the repository on sys.path)

from bench._standin_process import StandInProcess
from tests.support.harness import BOT_TOKEN, SIGNING_SECRET
from tests.support.journeys import APPROVER, REQUESTER
from tests.support.services import MotoServer

GOAL_P99_MS = 100.0
GOAL_RATIO = 1.5
NO_SUCH_REQUEST = "RNOSUCH1:" + "0" * 64  # an Approve value naming no request: refused privately, changes nothing


def send_command(sender: lat.KeepAliveSender) -> Any:
    return sender.command(REQUESTER, "status")


def send_click(sender: lat.KeepAliveSender) -> Any:
    return sender.block_action(APPROVER, "approve_request", NO_SUCH_REQUEST, channel_id="C0GENERAL", message_ts="1700000000.000100")


def load(sender: lat.KeepAliveSender, send: Callable[[lat.KeepAliveSender], Any], n: int, concurrency: int) -> tuple[list[float], int]:
    """n requests from `concurrency` clients, each sending its next request as soon as the last one is
    answered; the round trips of those answered 200 (ms), and how many were not."""

    def one(_: int) -> float | None:
        try:
            resp = send(sender)
        except Exception:
            return None
        return resp.bench_ms if resp.status_code == 200 else None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(n)))
    times = [r for r in results if r is not None]
    return times, len(results) - len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=600, help="measured requests of each kind, per server (default 600)")
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--database-url", help="the bot's database (default: a SQLite file in a temporary directory)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests of each kind first, per server (default 50)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="iam-bot-bench-ack-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    stops: list[Callable[[], None]] = []
    try:
        moto = MotoServer(tmp).start()
        stops.append(moto.stop)
        standin = StandInProcess(BOT_TOKEN)  # its own process: serving the bot's Slack calls must not slow the clients timing acks
        stops.append(standin.stop)
        bot = lat.start_bot(database_url=database_url, standin=standin, aws_url=moto.url, workdir=tmp)
        stops.append(bot.stop)
        bare = lat.BareApp(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, slack_api_url=standin.url, workdir=tmp).start()
        stops.append(bare.stop)
        targets = {
            "iam-bot": (lat.KeepAliveSender(bot.url, SIGNING_SECRET, response_url_base=standin.hooks_url), bot.pid),
            "bare Bolt app": (lat.KeepAliveSender(bare.url, SIGNING_SECRET, response_url_base=standin.hooks_url), bare.pid),
        }
        for sender, _pid in targets.values():
            stops.append(sender.close)
        kinds = {"/iam status": send_command, "approve click": send_click}

        quiet = {name: lat.wait_quiet(pid, timeout=120) for name, (_s, pid) in targets.items()}  # the bot's start-up IAM warm-up
        for name, (sender, pid) in targets.items():
            for send in kinds.values():
                load(sender, send, args.warmup, args.concurrency)
        measured: dict[tuple[str, str], tuple[list[float], int]] = {}
        started = time.monotonic()
        others = lat.OtherLoad([os.getpid(), bot.pid, bare.pid, moto.proc.pid])
        for kind, send in kinds.items():
            for name, (sender, pid) in targets.items():
                quiet[name] = lat.wait_quiet(pid, timeout=60) and quiet[name]  # the previous phase's after-ack work done
                measured[(kind, name)] = load(sender, send, args.n, args.concurrency)
        elapsed = time.monotonic() - started
        other_load = others.line()
        lat.wait_quiet(bot.pid, timeout=60)
        answers = {m: standin.count(m) for m in ("response_url", "chat.postEphemeral")}
        refused = standin.first_text("chat.postEphemeral")

        print("# iam-bot: acknowledgement latency under load (bench/ack.py)")
        print(lat.machine_line())
        print(lat.code_line())
        print(other_load)
        print(
            f"setup: 1 `iam-bot serve` process (waitress, {lat.production_threads()} threads), database {lat.database_label(database_url)}"
            f"{' (temporary file)' if not args.database_url else ''}, moto server, Slack stand-in"
        )
        print("baseline: a bare slack_bolt App (listeners only ack()), same http_server and thread count, its own process")
        print(
            f"load: {args.n} measured requests per row, {args.concurrency} concurrent clients (one kept-alive session each), "
            f"after {args.warmup} warm-up requests of each kind per server; measured in {elapsed:.1f} s"
        )
        print()
        print(lat.table_head("HTTP round trip (ms)"))
        for kind in kinds:
            for name in targets:
                times, errors = measured[(kind, name)]
                print(lat.row(f"{kind:<14} {name}", times, errors))
        print()
        print(f"{'goal':<42} {'measured':>10}  {'baseline':>10}  result")
        for kind in kinds:
            bot_p99 = lat.pct(measured[(kind, "iam-bot")][0], 99)
            bare_p99 = lat.pct(measured[(kind, "bare Bolt app")][0], 99)
            ratio = bot_p99 / bare_p99 if bare_p99 > 0 else float("nan")
            print(f"{kind + ': p99 < ' + f'{GOAL_P99_MS:.0f} ms':<42} {bot_p99:>7.1f} ms  {bare_p99:>7.1f} ms  {lat.verdict(bot_p99 < GOAL_P99_MS)}")
            print(f"{kind + ': p99(bot)/p99(bare) <= ' + f'{GOAL_RATIO}x':<42} {ratio:>8.2f} x  {'1.00 x':>10}  {lat.verdict(ratio <= GOAL_RATIO)}")
        print()
        total = args.warmup + args.n
        print(
            f"after-ack answers the stand-in received from the bot: response_url {answers['response_url']} (of {total} /iam status), "
            f"chat.postEphemeral {answers['chat.postEphemeral']} (of {total} clicks)"
            + (f"; the refusal: {refused!r}" if refused else "")
        )
        if not all(quiet.values()):
            print("note: a server was still busy (over 5% of a core) when a phase started: " + ", ".join(n for n, q in quiet.items() if not q))
    finally:
        lat.kill_all(stops)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
