"""Reveal credentials: the owner only, once; the ciphertext is destroyed after the modal opens."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from bot.common.errors import Refused
from bot.common.sql import SessionMaker
from bot.credentials import envelopes
from bot.credentials.vault import Vault, VaultError
from bot.requests import store, usecases
from bot.slack import ui
from bot.slack.notifier import Notifier
from bot.workflows.attempt import attempt

log = logging.getLogger(__name__)


class Reveal:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        vault: Vault,
        notifier: Notifier,
        publish_home: Callable[[str], None],
        clock: Callable[[], datetime],
    ):
        self.sm = sessionmaker
        self.vault = vault
        self.notifier = notifier
        self.publish_home = publish_home
        self.clock = clock

    def reveal(self, *, actor: str, short_id: str, trigger_id: str) -> None:
        """Open the one reveal modal; raises Refused (the wrong person, already revealed, Slack too slow)."""
        req, env = attempt(self.sm, self.clock, actor, usecases.claim_reveal, short_id=short_id, actor_id=actor, now=self.clock())
        ciphertext, env_id = env.ciphertext, env.id
        if ciphertext is None:
            raise Refused("These credentials were already revealed or have expired; they are no longer stored.")
        try:
            opened = self.notifier.open_view(trigger_id=trigger_id, view=ui.reveal_modal(self.vault.open(ciphertext, request=req.short_id)))
            why = "Slack did not open the window in time"
        except VaultError as exc:
            opened, why = False, ("AWS KMS did not answer in time" if exc.transient else "the encryption key has changed")
        if not opened:
            with self.sm.begin() as s:
                usecases.release_reveal(s, envelope_id=env_id)
            log.warning("reveal for %s not shown: %s", short_id, why)
            raise Refused(f"The credentials could not be shown ({why}). They are still stored; try again.")
        now = self.clock()
        with self.sm.begin() as s:
            place = usecases.finish_reveal(s, envelope_id=env_id, actor_id=actor, now=now)
            gone = ui.credentials_gone_message(store.view_of(s, store.get_request(s, short_id=short_id), plan=False), revealed_at=now)
        envelopes.checkpoint(self.sm)  # SQLite: the destroyed ciphertext leaves the write-ahead log too
        if place:  # else the delivery, still recording its DM, finds the envelope gone and updates it
            self.notifier.update([place], gone, what="credentials DM")
        self.publish_home(actor)
