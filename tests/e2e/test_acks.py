"""Acks come first: Slack gets its answer at once however busy the listeners are with earlier deliveries."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.harness import wait_until
from tests.support.journeys import APPROVER

NO_SUCH_REQUEST = "RNOSUCH1:" + "0" * 64  # an Approve naming no request: refused privately, after the ack


@pytest.fixture
def bot(standin, moto, iam, tmp_path):
    """On SQLite: the database only stores each click's claim (PostgreSQL's is tested in test_slack_redelivery)."""
    from tests.support.harness import RunningBot

    running = RunningBot(database_url=f"sqlite:///{tmp_path / 'iam-bot.db'}", standin=standin, moto_url=moto.url).start()
    yield running
    running.stop()


def test_a_burst_of_clicks_is_acked_while_earlier_clicks_still_work(bot):
    burst = 40  # more clicks than there are slots for work after an ack, and than the old 24 listener threads
    # Slack rate-limits the private answers: each listener then waits 2 s (Retry-After) after its ack.
    bot.standin.fail_next("chat.postEphemeral", status=429, retry_after=2, count=burst)

    def click(i: int) -> tuple[int, float]:
        started = time.monotonic()
        resp = bot.slack.block_action(APPROVER, "approve_request", NO_SUCH_REQUEST, channel_id="C0APPROVALS", message_ts=f"1.{i}")
        return resp.status_code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=burst) as pool:
        answers = list(pool.map(click, range(burst)))
    assert all(status == 200 for status, _ in answers)
    slowest = max(took for _, took in answers)
    # Every ack came while the first listeners were still waiting out Slack's limit (2 s).
    assert slowest < 1.5, f"an ack waited {slowest:.1f} s behind earlier clicks' work"
    def told() -> int:  # privately where they clicked, or by DM once Slack kept refusing that
        calls = bot.standin.calls_to("chat.postEphemeral") + bot.standin.calls_to("chat.postMessage")
        return len([c for c in calls if c.status == 200 and c.response.get("ok") and "no request" in c.args.get("text", "")])

    wait_until(lambda: told() == burst, timeout=120, what="every click answered")
