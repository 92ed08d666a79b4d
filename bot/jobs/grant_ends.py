"""Time-bound grants: the owner (and who asked for it) is offered Extend and I'm done before the end,
and at the end a revoke request takes exactly what was granted away. Run from the worker's
housekeeping, driven by the database, so an end is kept across restarts and replicas: each reminder
is claimed by compare-and-set, and each grant is claimed by the revoke request filed for it.

A revoke is filed beside any other open request for the user (a grant's end is not put off by a
pending change), approved by the grant's own approval (rule `grant-ended`), planned and applied like
any other request; a grant removed by hand meanwhile is recorded as already gone, not an error.
"""

from __future__ import annotations

import logging
from datetime import datetime
from itertools import groupby
from typing import Callable

from sqlalchemy import select

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.errors import Refused
from bot.common.sql import SessionMaker, compare_and_set
from bot.domain import grants as lasting
from bot.domain.views import TemporaryView
from bot.requests import usecases
from bot.slack.notifier import Notifier
from bot.slack.ui.changes import grant_reminder
from models import AccessRequest, TemporaryGrant

log = logging.getLogger(__name__)

G = TemporaryGrant


class GrantEnds:
    def __init__(self, *, sessionmaker: SessionMaker, notifier: Notifier, clock: Callable[[], datetime], wake: Callable[[], None]):
        self.sm = sessionmaker
        self.notifier = notifier
        self.clock = clock
        self.wake = wake

    def run_due(self) -> int:
        """Remind, then file the ends that are due; how many were done here."""
        done = self.remind() + self.end_due()
        if done:
            self.wake()
        return done

    def remind(self) -> int:
        now, sent = self.clock(), 0
        with self.sm.begin() as s:
            rows = [g for g in s.scalars(select(G).where(G.ended_at.is_(None), G.revoke_request_id.is_(None), G.reminded_at.is_(None), G.ends_at > now)
                                         .order_by(G.ends_at).limit(200))
                    if g.ends_at - lasting.remind_before(g.granted_at, g.ends_at) <= now]
            s.expunge_all()
        for g in rows:
            with self.sm.begin() as s:
                if not compare_and_set(s, G, where=[G.id == g.id, G.reminded_at.is_(None), G.ended_at.is_(None)], values={"reminded_at": now}):
                    continue  # another replica reminded, or it ended meanwhile
                audit.record(s, action="grant_reminded", actor=BOT_ACTOR, now=now, request_id=g.request_id, user_name=g.user_name,
                             grant=f"{g.kind}:{g.target}", ends_at=g.ends_at.isoformat())
            view = TemporaryView(id=g.id, kind=g.kind, target=g.target, ends_at=g.ends_at)
            for person in dict.fromkeys([g.owner_id, g.requester_id]):
                self.notifier.dm_quietly(person, grant_reminder(user_name=g.user_name, grant=view, owner_id=g.owner_id), what="grant reminder")
            sent += 1
        return sent

    def end_due(self) -> int:
        """One revoke request per user for every grant of it that is due."""
        now, filed = self.clock(), 0
        with self.sm.begin() as s:
            # A user is its account and its name: alice of prod and alice of staging are two users.
            due = sorted(((account, name.lower()), gid) for name, gid, account in s.execute(
                select(G.user_name, G.id, AccessRequest.account).join(AccessRequest, AccessRequest.id == G.request_id)
                .where(G.ended_at.is_(None), G.revoke_request_id.is_(None), G.ends_at <= now).order_by(G.user_name, G.id).limit(200)))
        for _user, items in groupby(due, key=lambda t: t[0]):
            try:
                with self.sm.begin() as s:
                    req = usecases.file_revoke_request(s, grant_ids=[i for _, i in items], actor_id=BOT_ACTOR, now=now,
                                                       why="its time ended, as approved with it")
            except Refused:
                continue  # another replica filed it (this transaction rolled back)
            if req is not None:
                filed += 1
                log.info("time-bound grant ended: revoke %s filed", req.short_id)
        return filed
