"""Tasks on a schedule, run by one replica at a time, durable across restarts (`scheduled_runs`).

A replica claims a due task by compare-and-set (next run due, no live lease), runs it, then moves
its next run on. A task that fails is tried again soon; a replica that dies holding it gives it up
when the lease runs out (bot.common.sql.notice_once is the per-item counterpart).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_

from bot.common.sql import SessionMaker, compare_and_set, insert_for
from models import ScheduledRun

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # longer than any scheduled task takes (a report waits at most ~20 s for IAM)
RETRY = timedelta(minutes=5)  # after a failure (IAM still generating the report, Slack away)


class Schedule:
    """Runs `task` every `every` (first run: `first_at(now)`), once across replicas."""

    def __init__(
        self, name: str, task: Callable[[], object], *, every: timedelta, sessionmaker: SessionMaker, clock: Callable[[], datetime],
        first_at: Callable[[datetime], datetime] | None = None,
    ):
        self.name = name
        self.task = task
        self.every = every
        self.sm = sessionmaker
        self.clock = clock
        self.first_at = first_at or (lambda now: now)

    def run_due(self) -> bool:
        """Housekeeping: run the task if it is due and no other replica holds it; True if it ran here."""
        now = self.clock()
        with self.sm.begin() as s:
            if s.get(ScheduledRun, self.name) is None:
                s.execute(
                    insert_for(s)(ScheduledRun.__table__).values(name=self.name, next_at=self.first_at(now)).on_conflict_do_nothing(index_elements=["name"])
                )
        R = ScheduledRun
        with self.sm.begin() as s:
            claimed = compare_and_set(
                s, R, where=[R.name == self.name, R.next_at <= now, or_(R.lease_until.is_(None), R.lease_until < now)],
                values={"lease_until": now + LEASE},
            )
        if not claimed:
            return False
        try:
            self.task()
        except Exception as exc:
            # Logged by type only: an exception's text may carry what a report was about.
            log.warning("scheduled %s failed (%s); trying again in %s", self.name, type(exc).__name__, RETRY)
            self._moved(next_at=self.clock() + RETRY, error=type(exc).__name__)
            return False
        self._moved(next_at=self._next_after(now), error=None, done=self.clock())
        return True

    def _next_after(self, now: datetime) -> datetime:
        with self.sm.begin() as s:
            row = s.get(ScheduledRun, self.name)
            last = row.next_at if row is not None else now
        # On the beat of the first run (a weekly report stays on its weekday), skipping beats missed while down.
        nxt = last + self.every
        while nxt <= now:
            nxt += self.every
        return nxt

    def _moved(self, *, next_at: datetime, error: str | None, done: datetime | None = None) -> None:
        values: dict[str, object] = {"next_at": next_at, "lease_until": None, "last_error": error}
        if done is not None:
            values["last_done_at"] = done
        with self.sm.begin() as s:
            compare_and_set(s, ScheduledRun, where=[ScheduledRun.name == self.name], values=values)
