"""Durable jobs: claimed with a lease, every write fenced by it, retried with back-off, released on stop.

A job row is written in the same transaction as the change that needs it (a submission, an
approval). Any worker (this process or another replica) claims it; a worker that dies leaves a
lease that expires, and the next claim resumes the job. A worker whose lease was taken over (it
stalled past it) finds out at its next fenced write and stops, touching nothing more.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.sql import SessionMaker
from models import Job, JobState

DEFAULT_LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8


class LeaseLost(Exception):
    """Another worker took this job over (ours stalled past its lease): stop, touch nothing more."""


def backoff(attempt: int) -> timedelta:
    """Job-level retry delay after botocore's own retries gave up: 10 s, 20 s, ... capped at 10 min."""
    return timedelta(seconds=min(600, 10 * 2 ** max(0, attempt - 1)))


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
        """Record a step as done and renew the lease; True if it was not done before."""
        first = step not in job.steps_done
        if first:
            job.steps_done = [*job.steps_done, step]
        job.lease_expires_at = self.clock() + self.lease
        job.updated_at = self.clock()
        return first

    def retry_later(self, job_id: int, *, code: str, action: str, attempts: int) -> timedelta:
        now = self.clock()
        delay = backoff(attempts)
        with self.sm.begin() as s:
            job = self.own(s, job_id)
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
