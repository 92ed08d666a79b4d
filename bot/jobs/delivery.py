"""The credentials DM, once: claimed before it is sent, found again (not resent) when its outcome was
lost, retried when Slack refused it; and unrevealed credentials destroyed at their expiry."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR, CREDENTIALS_DM_EVENT, REVEAL_CLAIM_WINDOW
from bot.common.sql import SessionMaker, compare_and_set
from bot.credentials import envelopes
from bot.requests import store
from bot.slack import ui
from bot.slack.notifier import Notifier, Place, SlackRefused
from models import AccessRequest, CredentialEnvelope, RequestState

log = logging.getLogger(__name__)


class Delivery:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        notifier: Notifier,
        clock: Callable[[], datetime],
        retry_after: timedelta,
        refresh_homes: Callable[[int], None],
    ):
        self.sm = sessionmaker
        self.notifier = notifier
        self.clock = clock
        # A DM attempt older than this belongs to a worker presumed dead: it may be retried.
        self.retry_after = retry_after
        self.refresh_homes = refresh_homes

    def _due(self, now: datetime) -> list:  # type: ignore[type-arg]
        return [
            CredentialEnvelope.delivered_at.is_(None),
            CredentialEnvelope.ciphertext.is_not(None),
            or_(CredentialEnvelope.delivery_attempted_at.is_(None), CredentialEnvelope.delivery_attempted_at < now - self.retry_after),
        ]

    def deliver(self, request_id: int) -> bool:
        """DM the owner the Reveal button, once; a failed DM is retried later, never dropped."""
        now = self.clock()
        with self.sm.begin() as s:
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is None:
                return False
            outcome_unknown = env.delivery_attempted_at is not None
            if not compare_and_set(s, CredentialEnvelope, where=[CredentialEnvelope.id == env.id, *self._due(now)], values={"delivery_attempted_at": now}):
                return False
            view = store.view_of(s, store.load_request(s, request_id), plan=False)
            message = {
                **ui.credentials_ready_message(view, expires_at=env.expires_at),
                "metadata": {"event_type": CREDENTIALS_DM_EVENT, "event_payload": {"request": view.short_id}},
            }
            env_id = env.id
        sent = self._already_sent(view.owner_id, view.short_id) if outcome_unknown else None
        if sent is None:
            try:
                sent = self.notifier.dm(view.owner_id, message)
            except SlackRefused as exc:
                log.warning("credentials DM for request %s not sent (%s); will retry", request_id, exc.code)
                return False
        channel, ts = sent
        with self.sm.begin() as s:
            env = s.get(CredentialEnvelope, env_id)
            if env is not None:
                env.delivered_at = self.clock()
                env.dm_channel_id = channel
                env.dm_ts = ts
            audit.record(s, action="credentials_delivered", actor=BOT_ACTOR, now=self.clock(), request_id=request_id, to=view.owner_id)
        if view.requester_id != view.owner_id:
            self.notifier.dm_quietly(
                view.requester_id,
                {"text": f"IAM user {view.user_name} was created; its credentials were sent to <@{view.owner_id}>."},
                what="completion notice",
            )
        return True

    def _already_sent(self, owner: str, short_id: str) -> Place | None:
        """After an attempt with no known outcome: the DM Slack may have delivered, found by its metadata."""
        try:
            found = self.notifier.find_dm(owner, event_type=CREDENTIALS_DM_EVENT, request=short_id)
        except SlackRefused as exc:
            # Cannot tell: a second DM (whose reveal still works once) beats credentials never announced.
            log.warning("could not read the owner's DM history (%s); sending the credentials DM again", exc.code)
            return None
        if found:
            log.info("credentials DM for %s had been delivered before the process stopped; not sending it again", short_id)
        return found

    def deliver_pending(self) -> int:
        now = self.clock()
        with self.sm.begin() as s:
            ids = list(
                s.scalars(
                    select(CredentialEnvelope.request_id)
                    .join(AccessRequest, AccessRequest.id == CredentialEnvelope.request_id)
                    .where(AccessRequest.state == RequestState.COMPLETED, *self._due(now))
                )
            )
        return sum(self.deliver(i) for i in ids)

    def purge_expired(self) -> int:
        """Destroy unrevealed credentials past their expiry and say so in the owner's DM."""
        now = self.clock()
        purged: list[tuple[int, str | None, str | None]] = []
        with self.sm.begin() as s:
            envs = s.scalars(
                select(CredentialEnvelope)
                .where(CredentialEnvelope.ciphertext.is_not(None), CredentialEnvelope.expires_at <= now)
                .with_for_update(skip_locked=True)
            ).all()
            for env in envs:
                if env.reveal_claimed_at is not None and now - env.reveal_claimed_at < REVEAL_CLAIM_WINDOW:
                    continue  # a reveal is opening right now
                place = (env.request_id, env.dm_channel_id, env.dm_ts)
                envelopes.destroy(s, env.id)  # the row goes; the audit trail says they expired
                audit.record(s, action="credentials_expired", actor=BOT_ACTOR, now=now, request_id=place[0])
                purged.append(place)
        if purged:
            envelopes.checkpoint(self.sm)  # SQLite: the destroyed ciphertext leaves the write-ahead log too
        for request_id, channel, ts in purged:
            if channel and ts:
                with self.sm.begin() as s:
                    view = store.view_of(s, store.load_request(s, request_id), plan=False)
                self.notifier.update([(channel, ts)], ui.credentials_gone_message(view, revealed_at=None), what="expired credentials DM")
            self.refresh_homes(request_id)
        return len(purged)
