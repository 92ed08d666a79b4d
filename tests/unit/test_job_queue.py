"""bot.jobs.queue on a real SQLite database: back-off per step with jitter, the heartbeat's lease, and when the worker wakes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.jobs.queue import MAX_ATTEMPTS, Heartbeat, JobQueue, backoff
from bot.requests import store
from bot.runtime.db import make_engine, make_sessionmaker, migrate
from models import Job, JobKind
from tests.support.harness import FakeClock, wait_until
from tests.unit.test_usecases import _submitted


@pytest.fixture
def sm(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'iam-bot.db'}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_backoff_doubles_from_two_seconds_with_jitter_in_its_upper_half_and_is_capped():
    for attempt, ceiling in ((1, 2), (2, 4), (3, 8), (9, 300), (30, 300)):
        assert backoff(attempt, jitter=lambda low, high: low) == timedelta(seconds=ceiling / 2)
        assert backoff(attempt, jitter=lambda low, high: high) == timedelta(seconds=ceiling)
        assert timedelta(seconds=ceiling / 2) <= backoff(attempt) <= timedelta(seconds=ceiling)


def _job(sm, clock, *, lease: float = 10.0) -> tuple[JobQueue, int]:
    rid, _ = _submitted(sm)  # queues the plan job
    queue = JobQueue(sessionmaker=sm, clock=clock, worker_id="w1", lease=timedelta(seconds=lease))
    claimed = queue.claim_next()
    assert claimed is not None and claimed[1] == JobKind.PLAN.value
    return queue, claimed[0]


def test_a_step_done_gives_the_next_step_its_own_tries(sm):
    clock = FakeClock()
    queue, job_id = _job(sm, clock)
    for _ in range(3):  # the first step fails three times: its back-off grows
        delay = queue.retry_later(job_id, code="Throttling", action="CreateUser")
        assert delay is not None
        clock.advance(seconds=delay.total_seconds())
        assert queue.claim_next() == (job_id, "plan")
    with sm.begin() as s:
        job = queue.own(s, job_id)
        assert job.attempts == 4
        queue.mark(job, "create_user")  # it succeeded at last
    delay = queue.retry_later(job_id, code="Throttling", action="AddUserToGroup")
    assert delay is not None and delay <= timedelta(seconds=2)  # the next step starts again from the shortest


def test_a_step_that_used_its_tries_is_not_retried(sm):
    clock = FakeClock()
    queue, job_id = _job(sm, clock)
    with sm.begin() as s:
        queue.own(s, job_id).attempts = MAX_ATTEMPTS
    assert queue.retry_later(job_id, code="Throttling", action="CreateUser") is None


def test_the_heartbeat_keeps_a_long_job_and_stops_when_it_is_no_longer_ours(sm):
    clock = FakeClock()
    queue, job_id = _job(sm, clock, lease=0.8)  # renewed every 0.2 s
    renewals = []
    original = queue.renew
    queue.renew = lambda jid: renewals.append(clock()) or original(jid)  # count the beats, renew for real
    with Heartbeat(queue, job_id):
        clock.advance(seconds=5)  # the job runs past its lease ...
        wait_until(lambda: len(renewals) >= 3, what="three beats")
    with sm.begin() as s:  # ... and still holds it, renewed from the time of the last beat
        job = s.get(Job, job_id)
        assert job.lease_owner == "w1" and job.lease_expires_at == clock() + timedelta(seconds=0.8)
    # Taken over meanwhile (this worker stalled): renewing says so and changes nothing.
    with sm.begin() as s:
        s.get(Job, job_id).lease_owner = "w2"
    assert queue.renew(job_id) is False


def test_an_idle_worker_sleeps_until_the_next_job_or_lease_is_due(sm):
    clock = FakeClock()
    queue, job_id = _job(sm, clock, lease=10)
    other = JobQueue(sessionmaker=sm, clock=clock, worker_id="w2", lease=timedelta(seconds=10))
    assert other.seconds_until_due() == pytest.approx(10)  # w1's lease runs out in 10 s: then it may be taken over
    assert queue.seconds_until_due() is None  # its own lease is not something to wait for
    delay = queue.retry_later(job_id, code="Throttling", action="CreateUser")
    assert other.seconds_until_due() == pytest.approx(delay.total_seconds())
    with sm.begin() as s:
        store.enqueue_job(s, request_id=s.get(Job, job_id).request_id, kind=JobKind.APPLY, now=clock())
    assert other.seconds_until_due() == 0
