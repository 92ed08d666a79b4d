"""Users the bot created, watched until they have an MFA device (ListMFADevices): the owner is
reminded after IAM_BOT_MFA_REMIND_DAYS, the approvers told after IAM_BOT_MFA_ESCALATE_DAYS. An access
key the rules held until MFA (`hold_keys_until_mfa`) is asked for once MFA is on: a held_key request,
approved by the user's own approval, made and delivered like any new key.

Run from the worker's housekeeping. Each user is looked at in IAM at most every CHECK_EVERY, and each
reminder is recorded by compare-and-set before it is sent: with several replicas, each is sent once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import and_, or_, select

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.sql import SessionMaker, compare_and_set
from bot.iam.errors import AwsError
from bot.iam.accounts import AccountUnknown, Accounts
from bot.jobs.people import approvers_of_request
from bot.requests import store, usecases
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier
from bot.slack.ui.nudges import mfa_escalation, mfa_reminder
from models import MfaWatch

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(minutes=10)
BATCH = 20  # users looked at per round (in the worker's thread, between jobs): a backlog is caught up over a few rounds
W = MfaWatch


class MfaWatcher:
    def __init__(
        self, *, sessionmaker: SessionMaker, accounts: Accounts, notifier: Notifier, directory: Directory, default_approvers: Iterable[str],
        clock: Callable[[], datetime], remind_after: timedelta, escalate_after: timedelta, wake: Callable[[], None] = lambda: None,
    ):
        self.wake = wake  # a held key's request was filed: the worker plans it now
        self.sm = sessionmaker
        self.accounts = accounts  # each user is looked at in the account it was made in
        self.notifier = notifier
        self.directory = directory
        self.default_approvers = tuple(default_approvers)
        self.clock = clock
        self.remind_after = remind_after
        self.escalate_after = escalate_after

    def run_due(self) -> int:
        """Look at the users due for a check; how many reminders were sent."""
        now, sent = self.clock(), 0
        with self.sm.begin() as s:
            rows = s.scalars(
                select(W).where(
                    or_(W.enrolled_at.is_(None), and_(W.key_held, W.key_released_at.is_(None))),
                    W.gone_at.is_(None), or_(W.checked_at.is_(None), W.checked_at <= now - CHECK_EVERY),
                )
                .order_by(W.checked_at.is_not(None), W.checked_at, W.id).limit(BATCH)
            ).all()
            s.expunge_all()
        for row in rows:
            if row.enrolled_at is not None:  # enrolled earlier; its held key's request waited for another to finish
                self._release_key(row, now)
                continue
            try:
                with self.sm.begin() as s:
                    account = store.account_of(s, row.request_id)
                iam = self.accounts.gateway(account)  # may call STS: never while holding the database
                enrolled = iam.mfa_enabled(row.user_name)
            except AwsError as exc:
                if exc.code == "NoSuchEntity":
                    self._set(row, gone_at=now)  # deleted in IAM: nothing left to protect
                else:  # looked at again next round
                    log.warning("could not read the MFA devices of %s (%s)", row.user_name, exc.code)
                continue
            except AccountUnknown:  # the account is no longer configured: looked at again next round
                log.warning("the account of %s is no longer configured; its MFA is not checked", row.user_name)
                continue
            if enrolled:
                if self._set(row, enrolled_at=now, checked_at=now):
                    with self.sm.begin() as s:
                        audit.record(s, action="mfa_enrolled", actor=BOT_ACTOR, now=now, request_id=row.request_id, user_name=row.user_name)
                    self._release_key(row, now)
                continue
            self._set(row, checked_at=now, overwrite=True)
            sent += self._remind(row, now)
        return sent

    def _set(self, row: MfaWatch, *, overwrite: bool = False, **values: datetime) -> bool:
        """Record `values` unless another replica did (each `*_at` is set once; `checked_at` may move on)."""
        where = [W.id == row.id] + ([] if overwrite else [getattr(W, k).is_(None) for k in values if k != "checked_at"])
        with self.sm.begin() as s:
            return compare_and_set(s, W, where=where, values=values)

    def _release_key(self, row: MfaWatch, now: datetime) -> None:
        """File the held key's request, once (compare-and-set in the same transaction), unless another
        request for the user is open: then at the next look."""
        if not row.key_held or row.key_released_at is not None:
            return
        with self.sm.begin() as s:
            if store.open_request_for_name(s, user_name=row.user_name, account=store.account_of(s, row.request_id)) is not None:
                compare_and_set(s, W, where=[W.id == row.id], values={"checked_at": now})
                return
            if not compare_and_set(s, W, where=[W.id == row.id, W.key_released_at.is_(None)], values={"key_released_at": now, "checked_at": now}):
                return  # another replica filed it
            filed = usecases.file_held_key(s, creating_id=row.request_id, now=now)
            assert filed is not None  # no open request: checked above, in this transaction
        self.wake()

    def _approvers(self, request_id: int) -> list[str]:
        return approvers_of_request(self.sm, self.directory, request_id=request_id, default_approvers=self.default_approvers)

    def _remind(self, row: MfaWatch, now: datetime) -> int:
        sent = 0
        if row.owner_reminded_at is None and now - row.since >= self.remind_after and self._set(row, owner_reminded_at=now):
            with self.sm.begin() as s:
                audit.record(s, action="mfa_owner_reminded", actor=BOT_ACTOR, now=now, request_id=row.request_id, user_name=row.user_name)
            self.notifier.dm_quietly(row.owner_id, mfa_reminder(user_name=row.user_name, since=row.since, key_held=row.key_held and row.key_released_at is None), what="MFA reminder")
            sent += 1
        if row.approvers_told_at is None and now - row.since >= self.escalate_after and self._set(row, approvers_told_at=now):
            approvers = [a for a in self._approvers(row.request_id) if a != row.owner_id]
            with self.sm.begin() as s:
                audit.record(s, action="mfa_approvers_told", actor=BOT_ACTOR, now=now, request_id=row.request_id, user_name=row.user_name,
                             approvers=approvers)
            self.notifier.post_to(approvers, mfa_escalation(user_name=row.user_name, owner_id=row.owner_id, since=row.since), what="MFA escalation")
            sent += 1
        return sent
