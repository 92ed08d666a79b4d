"""Pending requests judged again by the rules in force: once per process, at start.

The rules file and IAM_BOT_APPROVERS change only with a restart, so a request asked under earlier
rules is judged again then: a guardrail that now refuses it denies it, and when who approves it
changed, the stored approvers follow and the newly named ones are asked. Decisions judge again
on every click as well (`usecases.check_may_decide`); this pass makes messages and Homes match.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from sqlalchemy import select

from bot.common.sql import SessionMaker
from bot.policy.rulebook import Rulebook
from bot.requests import store, usecases
from bot.workflows.announce import Announcer, Event
from models import AccessRequest, RequestState

log = logging.getLogger(__name__)


class Reevaluation:
    def __init__(self, *, sessionmaker: SessionMaker, rulebook: Rulebook, announcer: Announcer, clock: Callable[[], datetime]):
        self.sm = sessionmaker
        self.rulebook = rulebook
        self.announcer = announcer
        self.clock = clock
        self.done = False

    def run_once(self) -> int:
        """Judge every pending request again (the first time only); returns how many changed."""
        if self.done:
            return 0
        with self.sm.begin() as s:
            ids = list(s.scalars(select(AccessRequest.id).where(AccessRequest.state == RequestState.PENDING)))
        changed = sum(self._one(request_id) for request_id in ids)
        self.done = True
        if changed:
            log.info("%d pending request(s) judged differently by the current rules", changed)
        return changed

    def _one(self, request_id: int) -> bool:
        now = self.clock()
        with self.sm.begin() as s:
            req = store.load_request(s, request_id, lock=True)
            if req.state is not RequestState.PENDING:
                return False
            before = (req.rule_name, req.quorum, list(req.approver_users or []), list(req.approver_groups or []))
            verdict = usecases.rejudge(s, req, rulebook=self.rulebook, now=now)
            if verdict is None:
                return False
            newly: list[str] = []
            if verdict.denial:
                reason = f"Refused by a guardrail under the current rules: {verdict.denial}."
                denied = usecases.deny_by_guardrail(s, request_id=request_id, reason=reason, now=now, waiting=True)
            else:
                denied = False
                after = (req.rule_name, req.quorum, list(req.approver_users or []), list(req.approver_groups or []))
                if after == before:
                    return False
                newly = [a for a in [*after[2], *after[3]] if a not in [*before[2], *before[3]]]
        if denied:
            self.announcer.announce(request_id, Event.DENIED)
        else:
            self.announcer.reassigned(request_id, newly_named=newly)
        return True
