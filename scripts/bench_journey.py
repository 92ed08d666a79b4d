"""Measure the journey as Slack sees it: ack times and approve -> credentials DM. Prints figures.

Runs the real app over HTTP against moto (as a server) and the Slack stand-in, on SQLite
(default) or the database given with --database-url. Usage: python scripts/bench_journey.py [-n 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")

from tests.support.harness import RunningBot  # noqa: E402
from tests.support.journeys import APPROVER, REQUESTER, approval_messages, button_value, credentials_dm, form_values  # noqa: E402
from tests.support.services import MotoServer  # noqa: E402
from bot.demo.standin import SlackStandIn  # noqa: E402


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p95 = values[max(0, int(len(values) * 0.95) - 1)]
    return f"{name:<38} median {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms   max {values[-1]:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    moto = MotoServer(tmp).start()
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    standin = SlackStandIn().start()
    bot = RunningBot(database_url=args.database_url or f"sqlite:///{tmp / 'bench.db'}", standin=standin, moto_url=moto.url).start()
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    acks: dict[str, list[float]] = {"/iam request (slash command ack)": [], "form submit -> review (view ack)": [], "approve click (ack)": [], "approve ack -> credentials DM": []}
    try:
        for i in range(args.n):
            before = len(standin.calls_to("views.open"))
            resp, ms = timed(lambda: bot.slack.command(REQUESTER, "request"))
            assert resp.status_code == 200
            acks["/iam request (slash command ack)"].append(ms)
            deadline = time.monotonic() + 10
            while len(standin.calls_to("views.open")) == before and time.monotonic() < deadline:
                time.sleep(0.005)
            view = standin.calls_to("views.open")[before].response["view"]
            resp, ms = timed(lambda: bot.slack.view_submission(REQUESTER, view, form_values(user_name=f"bench{i:03d}")))
            acks["form submit -> review (view ack)"].append(ms)
            review = resp.json()["view"]
            bot.slack.view_submission(REQUESTER, review, {})
            short_id = None
            deadline = time.monotonic() + 10
            while short_id is None and time.monotonic() < deadline:
                for c in standin.calls_to("chat.postMessage"):
                    if "sent for approval" in c.args.get("text", "") and f"bench{i:03d}" in c.args["text"]:
                        short_id = c.args["text"].split()[2]
                time.sleep(0.005)
            assert short_id
            message = approval_messages(bot, short_id)[0]
            resp, ms = timed(
                lambda: bot.slack.block_action(
                    APPROVER, "approve_request", button_value(message, "approve_request") or "", channel_id=message.response["channel"], message_ts=message.response["ts"]
                )
            )
            acked = time.monotonic()
            acks["approve click (ack)"].append(ms)
            dm = credentials_dm(bot, short_id)
            acks["approve ack -> credentials DM"].append((dm.at - acked) * 1000)
        print(f"iam-bot journey benchmark: {args.n} journeys, database {bot.settings.database_url.split(':')[0]}, {os.cpu_count()} cores")
        for name, values in acks.items():
            print(summary(name, values))
    finally:
        bot.stop()
        standin.stop()
        moto.stop()


if __name__ == "__main__":
    main()
