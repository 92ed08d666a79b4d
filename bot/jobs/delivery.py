"""The credentials DM, once: claimed before it is sent, found again (not resent) when its outcome was
lost, retried when Slack refused it; and unrevealed credentials destroyed at their expiry."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR, CREDENTIALS_DM_EVENT, REVEAL_CLAIM_WINDOW
from bot.common.sql import SessionMaker, compare_and_set
from bot.common.wipe import wipe
from bot.credentials import envelopes, keyring
from bot.credentials.recipients import OwnerKey, encrypt_to, open_command, parse_owner_key
from bot.credentials.vault import Vault, VaultError
from bot.domain.views import RequestView
from bot.requests import store
from bot.slack import ui
from bot.slack.ui.changes import change_notice
from bot.slack.notifier import Notifier, Place, SlackRefused
from models import AccessRequest, CredentialEnvelope, RequestState

log = logging.getLogger(__name__)

REVEAL, FILE, HELD = "reveal", "file", "held"  # credential_envelopes.delivery_method


class Delivery:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        notifier: Notifier,
        clock: Callable[[], datetime],
        retry_after: timedelta,
        refresh_homes: Callable[[int], None],
        vault: Vault,
        file_only: bool = False,
    ):
        self.vault = vault
        self.file_only = file_only  # the rules' `delivery: encrypted_file_only`: no Reveal, a key is required
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
        """Give the owner their credentials, once: an encrypted file if they registered a key, else a DM
        with the one-time Reveal button. A failed attempt is retried later, never dropped or doubled."""
        now = self.clock()
        with self.sm.begin() as s:
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is None:
                return False
            outcome_unknown = env.delivery_attempted_at is not None
            if not compare_and_set(s, CredentialEnvelope, where=[CredentialEnvelope.id == env.id, *self._due(now)], values={"delivery_attempted_at": now}):
                return False
            view = store.view_of(s, store.load_request(s, request_id), plan=False)
            was = env.delivery_method
            if was in (None, HELD) and env.reveal_claimed_at is None:
                self._choose(s, env, owner_id=view.owner_id)
            method, recipient, file_id, env_id, expires_at = env.delivery_method, env.recipient, env.file_id, env.id, env.expires_at
        if method == FILE and recipient:
            return self._deliver_file(env_id, view, recipient=recipient, file_id=file_id, outcome_unknown=outcome_unknown)
        if method == HELD:
            if was != HELD:  # told once; delivered as soon as a key is registered
                self.notifier.dm_quietly(view.owner_id, ui.credentials_held_message(view, expires_at=expires_at), what="key needed notice")
            return False
        message = {
            **ui.credentials_ready_message(view, expires_at=expires_at),
            "metadata": {"event_type": CREDENTIALS_DM_EVENT, "event_payload": {"request": view.short_id}},
        }
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
            audit.record(s, action="credentials_delivered", actor=BOT_ACTOR, now=self.clock(), request_id=request_id, to=view.owner_id, method="reveal")
        if env is None:
            # Revealed from this very DM before it was recorded: the reveal could not say so on it.
            self.notifier.update([(channel, ts)], ui.credentials_gone_message(view, revealed_at=self.clock()), what="credentials DM")
        self._tell_requester(view)
        return True

    def _choose(self, s: Session, env: CredentialEnvelope, *, owner_id: str) -> None:
        """How these credentials reach their owner, decided once (with the delivery's claim, so a
        Reveal cannot start meanwhile): to the key the owner has now, or by Reveal, or held for a key."""
        key = keyring.get(s, owner_id)
        if key is not None:
            env.delivery_method, env.recipient = FILE, key.public_key
        elif self.file_only:
            env.delivery_method = HELD
        else:
            env.delivery_method = REVEAL

    def _deliver_file(self, env_id: int, view: RequestView, *, recipient: str, file_id: str | None, outcome_unknown: bool) -> bool:
        """The credentials CSV, encrypted to the owner's key, uploaded into their DM once.

        An upload whose outcome was lost is looked for in the DM first (by its file id, else its
        title); one that reached Slack but was never shared is shared; only then is one made anew.
        The plaintext exists only in this frame, never in Slack or the database.
        """
        key = parse_owner_key(recipient)
        filename = f"{view.user_name}-credentials.csv.age"
        title = f"{filename} (request {view.short_id})"
        comment = ui.credentials_file_comment(view, key=key, filename=filename, command=open_command(key, filename))
        try:
            if (outcome_unknown or file_id) and self.notifier.find_file_in_dm(view.owner_id, file_id=file_id, title=title):
                log.info("credentials file for %s had been shared before the process stopped; not uploading it again", view.short_id)
                return self._file_delivered(env_id, view, key)
            channel = self.notifier.dm_channel(view.owner_id)
            if file_id:
                try:  # uploaded before a crash, never shared: share it now
                    self.notifier.complete_upload(file_id=file_id, title=title, channel=channel, comment=comment)
                    return self._file_delivered(env_id, view, key)
                except SlackRefused as exc:
                    log.info("the earlier upload of %s cannot be shared (%s); uploading it again", view.short_id, exc.code)
            data = self._encrypted_csv(env_id, view.short_id, key)
            if data is None:
                return False
            new_id, url = self.notifier.start_upload(filename=filename, length=len(data))
            with self.sm.begin() as s:  # recorded before any byte leaves: a lost outcome is found by it
                env = s.get(CredentialEnvelope, env_id)
                if env is None:
                    return False
                env.file_id = new_id
            self.notifier.upload_bytes(url, data)
            self.notifier.complete_upload(file_id=new_id, title=title, channel=channel, comment=comment)
        except SlackRefused as exc:
            log.warning("credentials file for request %s not delivered (%s); will retry", view.short_id, exc.code)
            return False
        return self._file_delivered(env_id, view, key)

    def _encrypted_csv(self, env_id: int, short_id: str, key: OwnerKey) -> bytes | None:
        with self.sm.begin() as s:
            env = s.get(CredentialEnvelope, env_id)
            ciphertext = env.ciphertext if env is not None else None
        if ciphertext is None:
            return None
        try:
            creds = self.vault.open(ciphertext, request=short_id)
        except VaultError as exc:
            log.warning("credentials of %s could not be opened for the file (%s); will retry", short_id, exc.code)
            return None
        plaintext = creds.csv().encode() + b"\n"
        del creds
        try:
            return encrypt_to(key, plaintext)
        finally:
            wipe(plaintext)

    def _file_delivered(self, env_id: int, view: RequestView, key: OwnerKey) -> bool:
        """Slack confirmed the file: the sealed credentials are destroyed, as after a reveal."""
        now = self.clock()
        with self.sm.begin() as s:
            if not envelopes.destroy(s, env_id):
                return False
            audit.record(
                s, action="credentials_delivered", actor=BOT_ACTOR, now=now, request_id=view.id, to=view.owner_id,
                method="encrypted_file", key=key.fingerprint,
            )
        envelopes.checkpoint(self.sm)  # SQLite: the destroyed ciphertext leaves the write-ahead log too
        self._tell_requester(view)
        self.refresh_homes(view.id)
        return True

    def _tell_requester(self, view: RequestView) -> None:
        """Once the credentials reached the owner (here, so a restart after the DM still tells): a change's
        requester and owner get what changed; a new user's requester, that the owner has them."""
        if view.kind == "change":
            with self.sm.begin() as s:
                full = store.view_of(s, store.load_request(s, view.id))
            for person in dict.fromkeys([view.requester_id, view.owner_id]):
                self.notifier.dm_quietly(person, change_notice(full), what="change notice")
            return
        if view.requester_id != view.owner_id:
            self.notifier.dm_quietly(
                view.requester_id,
                {"text": f"IAM user {view.user_name} was created; its credentials were sent to <@{view.owner_id}>."},
                what="completion notice",
            )

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

    def deliver_held(self, owner_id: str) -> int:
        """The owner registered a key: what was held for one (or waits to be sent) goes now, encrypted to it."""
        with self.sm.begin() as s:
            ids = list(
                s.scalars(
                    select(CredentialEnvelope.request_id)
                    .join(AccessRequest, AccessRequest.id == CredentialEnvelope.request_id)
                    .where(
                        AccessRequest.state == RequestState.COMPLETED,
                        CredentialEnvelope.owner_id == owner_id,
                        CredentialEnvelope.delivery_method == HELD,
                        CredentialEnvelope.delivered_at.is_(None),
                    )
                )
            )
            if ids:  # a held envelope was never sent anywhere: no outcome to look for, it may go at once
                s.execute(
                    update(CredentialEnvelope).where(CredentialEnvelope.request_id.in_(ids), CredentialEnvelope.delivery_method == HELD).values(delivery_attempted_at=None)
                )
        return sum(self.deliver(i) for i in ids)

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
