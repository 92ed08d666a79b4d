"""Slack's retries and duplicated deliveries do nothing twice; a delivery nobody answered is not lost."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, func, select

from models import AuditEvent, InboundDelivery
from tests.support.harness import wait_until
from tests.support.journeys import APPROVER, REQUESTER, approval_messages, click, request_user

DM = "D" + REQUESTER[1:]



def _dm_replies(bot) -> int:
    return len([c for c in bot.standin.calls_to("chat.postMessage") if c.args["channel"] == DM])


def test_a_retried_event_is_answered_once(bot):
    bot.slack.dm(REQUESTER, "help")
    wait_until(lambda: _dm_replies(bot) == 1, what="the answer")
    for retry in (1, 2, 3):  # Slack's three retries, as if our 200s had been lost
        assert bot.slack.redeliver(retry_num=retry).status_code == 200
    bot.settle()  # whatever a wrongly handled retry would do is done by now
    assert _dm_replies(bot) == 1
    assert "retry" in bot.logs.text()


def test_a_duplicated_click_does_nothing_twice(bot):
    short_id = request_user(bot, user_name="dupclick01", access=["console"])
    click(bot, APPROVER, "deny_request", short_id)
    wait_until(lambda: len(bot.standin.calls_to("views.open")) == 2, what="the deny-reason modal")  # request modal + deny modal
    assert bot.slack.redeliver().status_code == 200
    bot.settle()
    assert len(bot.standin.calls_to("views.open")) == 2
    assert bot.standin.calls_to("chat.postEphemeral") == []


def test_a_click_repeated_to_another_replica_is_dropped_by_the_database(bot):
    short_id = request_user(bot, user_name="dupclick03", access=["console"])
    click(bot, APPROVER, "deny_request", short_id)
    wait_until(lambda: len(bot.standin.calls_to("views.open")) == 2, what="the deny-reason modal")
    bot.settle()
    bot.app.recent_deliveries.clear()  # what another replica (or this one restarted) remembers: nothing
    assert bot.slack.redeliver().status_code == 200
    bot.settle()
    assert len(bot.standin.calls_to("views.open")) == 2
    assert "dropped a repeated Slack delivery (action" in bot.logs.text()


def test_a_repeated_approve_click_is_not_even_recorded_as_a_refusal(bot, iam):
    short_id = request_user(bot, user_name="dupclick02", access=["console"])
    click(bot, APPROVER, "approve_request", short_id)
    bot.slack.redeliver()
    wait_until(lambda: iam.list_users()["Users"], what="the user")
    bot.settle()
    with bot.deps.sessionmaker.begin() as s:
        refused = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("%_refused")))
    assert refused == 0
    assert len(approval_messages(bot, short_id)) == 2  # one per approver, sent once


def test_a_delivery_a_dead_process_never_answered_is_handled_on_retry(bot):
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=1)
    with bot.deps.sessionmaker.begin() as s:
        # Received, then the process died before Slack got its 200: Slack retries a minute later.
        s.add(InboundDelivery(key="event:EvDIEDBEFOREACK", received_at=long_ago, acked_at=None))
        # Received and answered: a retry of it is a duplicate.
        s.add(InboundDelivery(key="event:EvANSWERED", received_at=long_ago, acked_at=long_ago))
    event = bot.slack._message_event("message", REQUESTER, "help", DM)
    event["channel_type"] = "im"
    bot.slack.event(event, event_id="EvANSWERED", retry_num=1)
    bot.slack.event(event, event_id="EvDIEDBEFOREACK", retry_num=1)
    wait_until(lambda: _dm_replies(bot) == 1, what="the retried event's answer")
    bot.settle()
    assert _dm_replies(bot) == 1
    with bot.deps.sessionmaker.begin() as s:
        assert s.get(InboundDelivery, "event:EvDIEDBEFOREACK").acked_at is not None


def test_slack_rate_limits_are_waited_out_as_retry_after_says(bot):
    bot.standin.fail_next("chat.postMessage", status=429, retry_after=1, count=2)
    bot.slack.dm(REQUESTER, "help")
    answered = bot.standin.wait_for("chat.postMessage", lambda c: c.status == 200 and c.args["channel"] == DM, timeout=20)
    tries = [c for c in bot.standin.calls_to("chat.postMessage") if c.args.get("channel") == DM]
    assert [c.status for c in tries] == [429, 429, 200]
    assert tries[1].at - tries[0].at >= 0.9 and tries[2].at - tries[1].at >= 0.9  # Retry-After: 1
    assert answered is tries[2]


def test_slack_server_errors_are_retried(bot):
    bot.standin.fail_next("chat.postMessage", status=503, error="service_unavailable", count=1)
    bot.slack.dm(REQUESTER, "help")
    bot.standin.wait_for("chat.postMessage", lambda c: c.status == 200 and c.args["channel"] == DM, timeout=20)
    assert [c.status for c in bot.standin.calls_to("chat.postMessage") if c.args.get("channel") == DM] == [503, 200]


@contextmanager
def database_held_by_another_writer(url: str):
    """Another process's write transaction holds the table the delivery claim writes to."""
    engine = create_engine(url)
    conn = engine.connect()
    if url.startswith("sqlite"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite: one writer at a time, and it is not us
    else:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("LOCK TABLE inbound_deliveries IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.exec_driver_sql("ROLLBACK")
        conn.close()
        engine.dispose()


def test_the_ack_waits_for_no_database_write(bot):
    answered = threading.Event()
    with database_held_by_another_writer(bot.database_url):
        sent = threading.Thread(target=lambda: bot.slack.command(REQUESTER, "help").status_code == 200 and answered.set())
        sent.start()
        # Slack has its 200 while the claim is still waiting for the database ...
        assert answered.wait(10), "the command's ack waited for the database"
        assert bot.standin.calls_to("response_url") == []  # ... and nothing was done before the claim
    # ... and once the other writer lets go, the command is claimed and answered.
    reply = bot.standin.wait_for("response_url", lambda c: "/iam request" in json.dumps(c.args), timeout=20)
    assert reply is not None
    sent.join(5)
    with bot.deps.sessionmaker.begin() as s:
        row = s.scalars(select(InboundDelivery).where(InboundDelivery.key.like("command:%"))).one()
        assert row.acked_at is not None
