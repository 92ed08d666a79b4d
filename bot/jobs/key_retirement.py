"""The old keys of rotations, retired on schedule: the owner is reminded a day before each stage,
then the key is deactivated and, after another grace period, deleted. Run from the worker's
housekeeping; driven by the database, so a restart loses nothing.

Each reminder and each stage is recorded by compare-and-set: with several replicas, each DM is sent
once and each change audited once. The IAM calls are idempotent, so two replicas that both make one
change nothing twice; a key already gone (deleted by hand) is not an error.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.sql import SessionMaker, compare_and_set
from bot.iam.errors import AwsError
from bot.iam.accounts import AccountUnknown, Accounts
from bot.requests import store
from bot.slack.notifier import Notifier
from bot.slack.ui.rotation import DEACTIVATE, DELETE, retirement_notice
from models import KeyRetirement

log = logging.getLogger(__name__)

REMIND_BEFORE = timedelta(days=1)
K = KeyRetirement
STAGES = {
    DEACTIVATE: (K.deactivate_at, K.deactivate_reminded_at, K.deactivated_at, "deactivate_reminded_at", "deactivated_at"),
    DELETE: (K.delete_at, K.delete_reminded_at, K.deleted_at, "delete_reminded_at", "deleted_at"),
}


class KeyRetirements:
    def __init__(self, *, sessionmaker: SessionMaker, accounts: Accounts, notifier: Notifier, clock: Callable[[], datetime]):
        self.sm = sessionmaker
        self.accounts = accounts  # each key lives in the account of the rotation that replaced it
        self.notifier = notifier
        self.clock = clock

    def run_due(self) -> int:
        """Send the reminders and make the changes that are due; how many of either were done here."""
        done = 0
        for stage in (DEACTIVATE, DELETE):
            done += self._remind(stage) + self._retire(stage)
        return done

    def _due(self, *where: Any) -> list[KeyRetirement]:
        with self.sm.begin() as s:
            rows = s.scalars(select(K).where(K.deleted_at.is_(None), *where).order_by(K.id).limit(100)).all()
            s.expunge_all()
            return list(rows)

    def _remind(self, stage: str) -> int:
        at, reminded, finished, reminded_name, _ = STAGES[stage]
        now, sent = self.clock(), 0
        for row in self._due(reminded.is_(None), finished.is_(None), at <= now + REMIND_BEFORE, at > now):
            with self.sm.begin() as s:
                if not compare_and_set(s, K, where=[K.id == row.id, reminded.is_(None)], values={reminded_name: now}):
                    continue  # another replica reminded
            when_due = row.deactivate_at if stage == DEACTIVATE else row.delete_at
            notice = retirement_notice(stage=stage, done=False, user_name=row.user_name, key_id=row.key_id, at=when_due, delete_at=row.delete_at)
            self.notifier.dm_quietly(row.owner_id, notice, what=f"key {stage} reminder")
            sent += 1
        return sent

    def _retire(self, stage: str) -> int:
        at, _, finished, _, finished_name = STAGES[stage]
        now, made = self.clock(), 0
        for row in self._due(finished.is_(None), at <= now):
            try:
                with self.sm.begin() as s:
                    account = store.account_of(s, row.request_id)
                iam = self.accounts.gateway(account)  # may call STS: never while holding the database
                if stage == DEACTIVATE:
                    existed = iam.deactivate_key(user_name=row.user_name, key_id=row.key_id)
                else:
                    existed = iam.delete_key(user_name=row.user_name, key_id=row.key_id)
            except (AwsError, AccountUnknown) as exc:  # tried again at the next round; the owner's key keeps working meanwhile
                log.warning("could not %s the old key of %s (%s); will try again", stage, row.user_name, getattr(exc, "code", type(exc).__name__))
                continue
            with self.sm.begin() as s:
                values: dict[str, Any] = {finished_name: now}
                if stage == DELETE:
                    values["deactivated_at"] = row.deactivated_at or now  # a deleted key is no longer active either
                if not compare_and_set(s, K, where=[K.id == row.id, finished.is_(None)], values=values):
                    continue  # another replica recorded it
                audit.record(
                    s, action=f"old_key_{stage}d", actor=BOT_ACTOR, now=now, request_id=row.request_id,
                    user_name=row.user_name, access_key_id=row.key_id, already_gone=not existed,
                )
            notice = retirement_notice(stage=stage, done=True, user_name=row.user_name, key_id=row.key_id, at=now, delete_at=row.delete_at)
            self.notifier.dm_quietly(row.owner_id, notice, what=f"key {stage}d notice")
            made += 1
        return made
