"""Reveal credentials: the owner only, once; the ciphertext is destroyed after the modal opens."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.requests import usecases
from bot.runtime.app import Deps
from bot.slack.ui import blocks as ui
from bot.slack.ui import ids
from bot.credentials.vault import VaultError
from handlers.common import action_value, attempt, clicked_in

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.action(ids.A_REVEAL)
    def reveal(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        actor = body["user"]["id"]
        short_id = action_value(body)
        channel = clicked_in(body)
        try:
            _req, env = attempt(deps, actor, usecases.claim_reveal, short_id=short_id, actor_id=actor, now=deps.clock())
            ciphertext, env_id, dm_channel, dm_ts = env.ciphertext, env.id, env.dm_channel_id, env.dm_ts
        except usecases.Refused as refused:
            deps.notifier.ephemeral(channel=channel, user=actor, text=str(refused))
            return
        assert ciphertext is not None
        try:
            view = ui.reveal_modal(deps.vault.open(ciphertext))
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except (SlackApiError, VaultError) as exc:
            with deps.sessionmaker.begin() as s:
                usecases.release_reveal(s, envelope_id=env_id)
            why = "the encryption key has changed" if isinstance(exc, VaultError) else "Slack did not open the window in time"
            log.warning("reveal for %s not shown: %s", short_id, type(exc).__name__)
            deps.notifier.ephemeral(
                channel=channel, user=actor, text=f"The credentials could not be shown ({why}). They are still stored; try again."
            )
            return
        now = deps.clock()
        with deps.sessionmaker.begin() as s:
            usecases.finish_reveal(s, envelope_id=env_id, actor_id=actor, now=now)
            gone = ui.credentials_gone_message(usecases.get_request(s, short_id=short_id), revealed_at=now)
        if dm_channel and dm_ts:
            try:
                client.chat_update(channel=dm_channel, ts=dm_ts, **gone)
            except SlackApiError as exc:
                log.warning("could not update the credentials DM: %s", exc.response.get("error"))
        deps.notifier.publish_home(actor, now=now)
