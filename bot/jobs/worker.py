"""The in-process worker: one thread runs plan and apply jobs; another, on a slower beat, housekeeping
(credentials DMs to retry, expired credentials, reminders and expiry, stale drafts, scheduled reports).

Two threads so that a slow housekeeping task (a hygiene nudge reads every user's keys) never keeps a
request waiting for its plan: replicas already run both at once, so every task is safe beside a job."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Mapping

from bot.common.logcontext import log_context
from bot.jobs.queue import Heartbeat, JobQueue

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        *,
        runners: Mapping[str, Callable[[int], None]],
        housekeeping: list[Callable[[], object]],
        poll_seconds: float = 5.0,
        housekeeping_seconds: float = 30.0,
    ):
        self.queue = queue
        self.runners = runners  # job kind -> run(job_id)
        self.housekeeping = housekeeping
        self.poll_seconds = poll_seconds
        self.housekeeping_seconds = housekeeping_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keeper: threading.Thread | None = None
        self.last_beat: float = 0.0

    def start(self) -> Worker:
        self._thread = threading.Thread(target=self._loop, name="iam-bot-worker", daemon=True)
        self._thread.start()
        if self.housekeeping:
            self._keeper = threading.Thread(target=self._housekeeping_loop, name="iam-bot-housekeeping", daemon=True)
            self._keeper.start()
        return self

    def wake(self) -> None:
        """Called after a commit that queued a job, so it starts now rather than at the next poll."""
        self._wake.set()

    def run_once(self) -> bool:
        """Claim and run the next due job, if any; True if one ran."""
        claimed = self.queue.claim_next()
        if claimed is None:
            return False
        job_id, kind = claimed
        with log_context(job=job_id), Heartbeat(self.queue, job_id):
            self.runners[kind](job_id)
        return True

    def run_until_idle(self) -> int:
        """Run every due job (tests and the demo drive a stopped worker with this)."""
        n = 0
        while self.run_once():
            n += 1
        return n

    def stop(self, timeout: float = 5.0) -> None:
        """Let the job in hand finish for up to `timeout` s, then release what this worker holds.

        A platform kills the process about 10 s after SIGTERM; a job still running then is
        released, and another worker resumes it (every step is idempotent).
        """
        if self._stop.is_set():
            return  # already stopped (SIGTERM handler, then the runner's own finally)
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in (self._thread, self._keeper):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.queue.release_leases()
        except Exception:
            log.exception("could not release leases on shutdown")

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            try:
                while not self._stop.is_set() and self.run_once():
                    self.last_beat = time.monotonic()
            except Exception:
                # The database may be briefly unreachable; keep the thread alive and try again.
                log.exception("worker iteration failed")
            self._wake.wait(self._idle_seconds())
            self._wake.clear()

    def _housekeeping_loop(self) -> None:
        while not self._stop.is_set():
            for task in self.housekeeping:
                if self._stop.is_set():
                    return
                try:
                    task()
                except Exception:
                    # One task failing (the database briefly away) must not starve the ones after it.
                    log.exception("housekeeping task failed")
            self._stop.wait(self.housekeeping_seconds)

    def _idle_seconds(self) -> float:
        """Sleep until the next job is due or another worker's lease runs out (a crashed replica's
        job is resumed as soon as it may be), and never longer than the poll interval."""
        try:
            due = self.queue.seconds_until_due()
        except Exception:
            return self.poll_seconds
        return self.poll_seconds if due is None else min(self.poll_seconds, max(0.05, due))
