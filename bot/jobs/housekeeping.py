"""Forgetting what is no longer needed: drafts never submitted, and keys of Slack deliveries too old to be retried."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import delete

from bot.common.sql import SessionMaker
from bot.slack import inbound
from models import RequestDraft

DRAFTS_KEPT = timedelta(days=1)


class Housekeeping:
    def __init__(self, *, sessionmaker: SessionMaker, clock: Callable[[], datetime]):
        self.sm = sessionmaker
        self.clock = clock

    def purge_stale_drafts(self) -> int:
        """Drafts of requests never submitted (the requester closed the review) are not kept."""
        with self.sm.begin() as s:
            return s.execute(delete(RequestDraft).where(RequestDraft.created_at < self.clock() - DRAFTS_KEPT)).rowcount

    def purge_deliveries(self) -> int:
        """Keys of Slack deliveries old enough that Slack no longer retries them."""
        with self.sm.begin() as s:
            return inbound.purge(s, now=self.clock())
