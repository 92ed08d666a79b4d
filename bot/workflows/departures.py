"""When an owner leaves the workspace: every IAM user they own gets an offboarding request, to the
approvers, who may approve it or disable the user at once and decide later.

Two ways in: Slack's `user_change` event for a deactivated member, and a daily check of every owner
with users.info for deployments that miss events. Each user is asked about once per departure
(a notice key), so a denied offboarding is not filed again every day.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.errors import Refused
from bot.common.sql import SessionMaker, notice_once
from bot.domain.accounts import parse_target
from bot.requests import store, usecases
from bot.slack.directory import Directory

log = logging.getLogger(__name__)


def reason_for(owner_id: str) -> str:
    return f"Its owner <@{owner_id}> left the workspace. Approve to offboard it, or disable it now and decide later."


class Departures:
    def __init__(self, *, sessionmaker: SessionMaker, directory: Directory, clock: Callable[[], datetime], wake: Callable[[], None]):
        self.sm = sessionmaker
        self.directory = directory
        self.clock = clock
        self.wake = wake

    def owner_left(self, owner_id: str) -> list[str]:
        """File an offboarding request for each user `owner_id` owns; the short ids filed."""
        with self.sm.begin() as s:
            names = store.users_owned_by(s, owner_id=owner_id)
        filed: list[str] = []
        for name in names:
            now = self.clock()
            try:
                with self.sm.begin() as s:
                    if not notice_once(s, key=f"owner-left:{owner_id}:{name.lower()}", now=now):
                        continue  # asked about already, for this departure
                    account, user_name = parse_target(name)
                    req = usecases.file_removal_request(
                        s, kind="offboard", actor_id=BOT_ACTOR, user_name=user_name, account=account, is_approver=True, now=now, reason=reason_for(owner_id),
                    )
                    audit.record(s, action="owner_left", actor=BOT_ACTOR, now=now, request_id=req.id, owner=owner_id, user_name=name)
                    filed.append(req.short_id)
            except Refused as refused:  # a request for the user is open already: that one goes on; asked again tomorrow
                log.info("owner %s left; %s not filed now: %s", owner_id, name, type(refused).__name__)
        if filed:
            self.wake()
        return filed

    def check_owners(self) -> int:
        """The daily check: owners users.info says are gone; how many requests were filed."""
        with self.sm.begin() as s:
            owners = set(store.managed_users(s).values())
        return sum(len(self.owner_left(owner)) for owner in sorted(self.directory.departed(owners)))
