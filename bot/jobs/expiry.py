"""Users with an end date: the owner and the approvers are reminded 7 days and 1 day before; on the
date the user is disabled, and after IAM_BOT_EXPIRY_GRACE_DAYS deleted, unless an extension was
approved meanwhile (`/iam extend`). Run from the worker's housekeeping, driven by the database.

Disabling and deleting are requests of their own (kinds `expire` and `expire_delete`), planned and
applied like any other and approved by the user's own approval, which named the date (rule
`expiry`). Each reminder and each filing is recorded by compare-and-set, in the transaction that
files it: with several replicas each happens once. A request for the user still open (a key rotation,
an offboarding) puts the filing off to the next round.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import select

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.errors import Refused
from bot.common.sql import SessionMaker, compare_and_set
from bot.jobs.people import approvers_of_request
from bot.requests import store, usecases
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier
from bot.slack.ui.nudges import expiry_reminder
from models import UserExpiry

log = logging.getLogger(__name__)

E = UserExpiry
BEFORE = {"week_reminded_at": timedelta(days=7), "day_reminded_at": timedelta(days=1)}


class Expiries:
    def __init__(
        self, *, sessionmaker: SessionMaker, notifier: Notifier, directory: Directory, default_approvers: Iterable[str],
        clock: Callable[[], datetime], wake: Callable[[], None],
    ):
        self.sm = sessionmaker
        self.notifier = notifier
        self.directory = directory
        self.default_approvers = tuple(default_approvers)
        self.clock = clock
        self.wake = wake

    def run_due(self) -> int:
        """Send the reminders and file the disablings and deletions that are due; how many were done here."""
        done = self._remind("week_reminded_at") + self._remind("day_reminded_at")
        done += self._file("disabled_filed_at", E.expires_at, "expire") + self._file("deleted_filed_at", E.delete_at, "expire_delete")
        if done:
            self.wake()
        return done

    def _rows(self, *where: Any) -> list[UserExpiry]:
        with self.sm.begin() as s:
            rows = list(s.scalars(select(E).where(E.deleted_filed_at.is_(None), *where).order_by(E.id).limit(100)))
            s.expunge_all()
            return rows

    def _remind(self, column: str) -> int:
        now, sent = self.clock(), 0
        marker = getattr(E, column)
        for row in self._rows(marker.is_(None), E.disabled_filed_at.is_(None), E.expires_at <= now + BEFORE[column], E.expires_at > now):
            values: dict[str, Any] = {column: now}
            if column == "week_reminded_at" and row.expires_at - now <= BEFORE["day_reminded_at"]:
                continue  # a day or less left: the day's reminder says it
            with self.sm.begin() as s:
                if not compare_and_set(s, E, where=[E.id == row.id, marker.is_(None)], values=values):
                    continue  # another replica reminded
                if column == "day_reminded_at":  # the week's reminder, if it never went, is not sent after this one
                    compare_and_set(s, E, where=[E.id == row.id, E.week_reminded_at.is_(None)], values={"week_reminded_at": now})
                audit.record(s, action="expiry_reminded", actor=BOT_ACTOR, now=now, request_id=row.request_id, user_name=row.user_name,
                             expires_at=row.expires_at.isoformat())
            notice = expiry_reminder(user_name=row.user_name, owner_id=row.owner_id, expires_at=row.expires_at, delete_at=row.delete_at)
            for person in dict.fromkeys([row.owner_id, *self._approvers(row.request_id)]):
                self.notifier.dm_quietly(person, notice, what="expiry reminder")
            sent += 1
        return sent

    def _file(self, column: str, due: Any, kind: str) -> int:
        now, filed = self.clock(), 0
        marker = getattr(E, column)
        for row in self._rows(marker.is_(None), due <= now):
            try:
                with self.sm.begin() as s:
                    if not compare_and_set(s, E, where=[E.id == row.id, marker.is_(None)], values={column: now}):
                        continue  # another replica filed it
                    account = store.account_of(s, row.request_id)
                    if store.creating_request(s, user_name=row.user_name, account=account) is None:
                        compare_and_set(s, E, where=[E.id == row.id], values={"deleted_filed_at": now})
                        continue  # offboarded meanwhile: nothing left to end
                    req = usecases.file_removal_request(
                        s, kind=kind, actor_id=BOT_ACTOR, user_name=row.user_name, account=account, is_approver=True, now=now,
                        reason=f"The end date {row.expires_at:%Y-%m-%d} it was approved with: "
                        + ("disabled that day." if kind == "expire" else "deleted after the grace period."),
                    )
                    filed += 1
                    log.info("expiry of %s: %s filed as %s", row.user_name, kind, req.short_id)
            except Refused:  # another request for the user is open: the next round files it (the transaction rolled back)
                continue
        return filed

    def _approvers(self, request_id: int) -> list[str]:
        return approvers_of_request(self.sm, self.directory, request_id=request_id, default_approvers=self.default_approvers)
