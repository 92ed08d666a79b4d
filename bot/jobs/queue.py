"""Durable jobs: claimed with a lease, every write fenced by it, retried with back-off, released on stop.

A job row is written in the same transaction as the change that needs it (a submission, an
approval). Any worker (this process or another replica) claims it. While the job runs, a heartbeat
renews its short lease in the background (`Heartbeat`); a worker that dies stops renewing, and
another takes the job over within one lease. A worker whose lease was taken over (it stalled past
it) finds out at its next fenced write and stops, touching nothing more.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.clock import as_utc
from bot.common.sql import SessionMaker
from models import Job, JobState

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=10)
MAX_ATTEMPTS = 10  # tries of one step; a step that succeeds gives the next one its own


class LeaseLost(Exception):
    """Another worker took this job over (ours stalled past its lease): stop, touch nothing more."""


def backoff(attempt: int, *, jitter: Callable[[float, float], float] = random.uniform) -> timedelta:
    """Job-level retry delay after botocore's own retries gave up, for the `attempt`-th try of a step:
    2 s, 4 s, ... capped at 5 min, each drawn from its upper half so replicas throttled together
    do not come back together."""
    ceiling = min(300.0, 2.0 * 2 ** max(0, attempt - 1))
    return timedelta(seconds=jitter(ceiling / 2, ceiling))


def default_worker_id() -> str:
    # The random part: a restarted container can have the same host name and pid as the one that died.
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Heartbeat:
    """Renews a running job's lease every quarter lease, in the background, so that a job taking
    longer than the lease keeps it, and a crashed worker's job is free within one lease."""

    def __init__(self, queue: JobQueue, job_id: int):
        self.queue = queue
        self.job_id = job_id
        self.every = max(0.2, queue.lease.total_seconds() / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if not self.queue.renew(self.job_id):
                    return  # taken over or finished: the job's own fenced writes find out
            except Exception as exc:  # the database is briefly away: try at the next beat
                log.warning("could not renew the lease of job %s (%s)", self.job_id, type(exc).__name__)


class JobQueue:
    def __init__(self, *, sessionmaker: SessionMaker, clock: Callable[[], datetime], worker_id: str | None = None, lease: timedelta = DEFAULT_LEASE):
        self.sm = sessionmaker
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        self.lease = lease

    def claim_next(self) -> tuple[int, str] | None:
        """(job id, kind) of the next due job, now leased to this worker; None if nothing is due."""
        now = self.clock()
        with self.sm.begin() as s:
            # SKIP LOCKED lets replicas claim different jobs without waiting on each other;
            # SQLite serialises writers (BEGIN IMMEDIATE), which gives the same guarantee.
            job = s.scalars(
                select(Job)
                .where(
                    Job.state.in_([JobState.QUEUED, JobState.RUNNING]),
                    Job.next_run_at <= now,
                    or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
                )
                .order_by(Job.next_run_at, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return None
            job.state = JobState.RUNNING
            job.lease_owner = self.worker_id
            job.lease_expires_at = now + self.lease
            job.attempts += 1
            job.updated_at = now
            return job.id, job.kind

    def own(self, s: Session, job_id: int) -> Job:
        """The job, locked, if this worker still holds its lease: every write of a job is fenced by it."""
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.lease_owner != self.worker_id:
            raise LeaseLost(job_id)
        return job

    def mark(self, job: Job, step: str) -> bool:
        """Record a step as done and renew the lease; True if it was not done before.

        A step done resets the count of tries: the next step's back-off starts again from the shortest.
        """
        first = step not in job.steps_done
        if first:
            job.steps_done = [*job.steps_done, step]
            job.attempts = 1  # this run is the next step's first try
        job.lease_expires_at = self.clock() + self.lease
        job.updated_at = self.clock()
        return first

    def renew(self, job_id: int) -> bool:
        """Extend the lease of a job this worker is running; False if it is no longer ours."""
        now = self.clock()
        with self.sm.begin() as s:
            renewed = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == self.worker_id, Job.state == JobState.RUNNING)
                .values(lease_expires_at=now + self.lease)
                .execution_options(synchronize_session=False)
            ).rowcount
        return renewed == 1

    def seconds_until_due(self) -> float | None:
        """How long until the next job is due or a lease held by someone runs out (the worker sleeps no longer)."""
        now = self.clock()
        with self.sm.begin() as s:
            queued = s.scalar(select(func.min(Job.next_run_at)).where(Job.state == JobState.QUEUED))
            leased = s.scalar(select(func.min(Job.lease_expires_at)).where(Job.state == JobState.RUNNING, Job.lease_owner != self.worker_id))
        times = [as_utc(t) for t in (queued, leased) if t is not None]
        return max(0.0, (min(times) - now).total_seconds()) if times else None

    def retry_later(self, job_id: int, *, code: str, action: str) -> timedelta | None:
        """Queue the job again after a back-off for its current step; None once that step used its tries."""
        now = self.clock()
        with self.sm.begin() as s:
            job = self.own(s, job_id)
            attempts = job.attempts
            if attempts >= MAX_ATTEMPTS:
                return None
            delay = backoff(attempts)
            job.state = JobState.QUEUED
            job.lease_owner = None
            job.lease_expires_at = None
            job.next_run_at = now + delay
            job.last_error = f"{code} during {action}"
            job.updated_at = now
            audit.record(s, action="provisioning_retry", actor=BOT_ACTOR, now=now, request_id=job.request_id, code=code, step=action, attempt=attempts, job=job.kind)
        return delay

    def finish(self, job: Job, *, state: JobState = JobState.DONE, error: str | None = None) -> None:
        job.state = state
        job.lease_owner = None
        job.lease_expires_at = None
        job.updated_at = self.clock()
        if error is not None:
            job.last_error = error

    def release_leases(self) -> None:
        """On shutdown: let another worker take what this one held, at once."""
        with self.sm.begin() as s:
            s.execute(
                update(Job)
                .where(Job.lease_owner == self.worker_id, Job.state == JobState.RUNNING)
                .values(lease_expires_at=None, lease_owner=None, state=JobState.QUEUED)
            )
