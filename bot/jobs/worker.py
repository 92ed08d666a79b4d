"""The in-process worker thread: runs provisioning jobs, retries DMs, purges expired credentials."""

from __future__ import annotations

import logging
import threading
import time

from bot.jobs.provisioning import Provisioner
from bot.jobs.reminders import ReminderService

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        provisioner: Provisioner,
        *,
        poll_seconds: float = 5.0,
        housekeeping_seconds: float = 30.0,
        reminders: ReminderService | None = None,
    ):
        self.provisioner = provisioner
        self.reminders = reminders
        self.poll_seconds = poll_seconds
        self.housekeeping_seconds = housekeeping_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_beat: float = 0.0
        self._last_housekeeping = 0.0

    def start(self) -> Worker:
        self._thread = threading.Thread(target=self._loop, name="iam-bot-worker", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Called after an approval commits, so the job starts now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Let the job in hand finish for up to `timeout` s, then release what this worker holds.

        A platform kills the process about 10 s after SIGTERM; a job still running then is
        released, and another worker resumes it (every step is idempotent).
        """
        if self._stop.is_set():
            return  # already stopped (SIGTERM handler, then the runner's own finally)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.provisioner.release_leases()
        except Exception:
            log.exception("could not release leases on shutdown")

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            try:
                while not self._stop.is_set() and self.provisioner.run_once():
                    self.last_beat = time.monotonic()
                if time.monotonic() - self._last_housekeeping >= self.housekeeping_seconds:
                    self._last_housekeeping = time.monotonic()
                    self.provisioner.deliver_pending()
                    self.provisioner.purge_expired()
                    self.provisioner.purge_stale_drafts()
                    if self.reminders is not None:
                        self.reminders.run_due()  # expiry and reminders of pending requests
            except Exception:
                # The database may be briefly unreachable; keep the thread alive and try again.
                log.exception("worker iteration failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
