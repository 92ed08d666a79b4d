"""`/iam key set | show | remove` and Home's Remove: the public key a person's credentials are encrypted to."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from bot.audit import trail as audit
from bot.common.sql import SessionMaker
from bot.credentials import keyring
from bot.credentials.recipients import KeyRefused, open_command, parse_owner_key
from bot.slack import ui
from bot.slack.ui import keys as key_ui

log = logging.getLogger(__name__)


class OwnerKeys:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        publish_home: Callable[[str], None],
        key_registered: Callable[[str], object],
        file_only: bool,
        clock: Callable[[], datetime],
    ):
        self.sm = sessionmaker
        self.publish_home = publish_home
        self.key_registered = key_registered  # sends credentials held for this owner's key
        self.file_only = file_only
        self.clock = clock

    def command(self, *, user_id: str, text: str) -> ui.Message:
        """`/iam key <text>`: set, show or remove; the answer is shown to the person alone."""
        sub, _, rest = text.strip().partition(" ")
        sub = sub.lower()
        if sub in ("set", "add", "register"):
            return self.set(user_id=user_id, text=rest)
        if sub in ("show", ""):
            return self.show(user_id=user_id)
        if sub in ("remove", "delete", "forget"):
            return self.remove(user_id=user_id)
        return key_ui.key_help_message()

    def set(self, *, user_id: str, text: str) -> ui.Message:
        try:
            key = parse_owner_key(text)
        except KeyRefused as refused:
            # Only the kind of refusal is kept: what was pasted (perhaps a private key) goes nowhere.
            with self.sm.begin() as s:
                audit.record(s, action="owner_key_refused", actor=user_id, now=self.clock(), why=refused.code)
            log.info("a key was refused (%s)", refused.code)
            return key_ui.key_refused_message(str(refused))
        with self.sm.begin() as s:
            replaced = keyring.put(s, user_id=user_id, key=key, now=self.clock())
            audit.record(s, action="owner_key_set", actor=user_id, now=self.clock(), kind=key.kind, fingerprint=key.fingerprint)
        self.publish_home(user_id)
        self.key_registered(user_id)
        return key_ui.key_registered_message(label=key.label, command=open_command(key, "NAME-credentials.csv.age"), replaced=replaced)

    def show(self, *, user_id: str) -> ui.Message:
        with self.sm.begin() as s:
            key = keyring.get(s, user_id)
        return key_ui.key_shown_message(key.label if key else None, file_only=self.file_only)

    def remove(self, *, user_id: str) -> ui.Message:
        with self.sm.begin() as s:
            removed = keyring.remove(s, user_id=user_id)
            if removed:
                audit.record(s, action="owner_key_removed", actor=user_id, now=self.clock())
        self.publish_home(user_id)
        return key_ui.key_removed_message(removed, file_only=self.file_only)

    def label_of(self, user_id: str) -> str | None:
        """How the key of `user_id` is shown, or None: for the form, which says how credentials will travel."""
        with self.sm.begin() as s:
            key = keyring.get(s, user_id)
        return key.label if key else None
