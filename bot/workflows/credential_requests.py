"""`/iam rotate-key [user name]` and `/iam reset-password [user name]`: new credentials for a user the
bot created, asked for by its owner (or an approver), planned, judged and applied like any request."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from bot.common.errors import Refused
from bot.common.sql import SessionMaker
from bot.domain.accounts import parse_target
from bot.domain.plan import PlanKind
from bot.requests import store, usecases
from bot.slack.ui.text import clip, esc
from bot.workflows.attempt import attempt

COMMANDS = {"rotate_key": "rotate-key", "reset_password": "reset-password"}


class CredentialRequests:
    def __init__(
        self, *, sessionmaker: SessionMaker, is_approver: Callable[[str], bool], clock: Callable[[], datetime], wake: Callable[[], None],
        self_service: frozenset[str],
    ):
        self.self_service = self_service
        self.sm = sessionmaker
        self.is_approver = is_approver
        self.clock = clock
        self.wake = wake

    def ask(self, *, kind: str, actor: str, text: str) -> dict[str, Any]:
        """The ephemeral answer to the command: what happens next, or why not and what to do."""
        command = f"/iam {COMMANDS[kind]}"
        name = text.strip().split()[0] if text.strip() else ""
        if not name:
            with self.sm.begin() as s:
                owned = store.users_owned_by(s, owner_id=actor)
            if len(owned) != 1:
                listed = ", ".join(f"`{esc(n)}`" for n in owned[:20])
                why = f"You own {len(owned)} users the bot created ({listed})" if owned else "You own no user the bot created"
                return {"text": f"{why}: name one, as in `{command} <user name>`."}
            name = owned[0]
        # Who approves is asked of Slack (user groups) before the transaction, only when it matters.
        account, name = parse_target(name)  # `prod:alice`: a user of member account prod
        with self.sm.begin() as s:
            creating = store.creating_request(s, user_name=name, account=account)
        approver = creating is not None and creating.owner_id != actor and self.is_approver(actor)
        try:
            req = attempt(self.sm, self.clock, actor, usecases.file_credentials_request, kind=kind, actor_id=actor, user_name=name,
                          account=account, is_approver=approver, now=self.clock())
        except Refused as refused:
            return {"text": str(refused)}
        self.wake()
        what = "a " + PlanKind(kind).brings
        after = ("It is checked against IAM now; as the owner you need no approval, so the credentials follow in a DM within moments."
                 if req.requester_id == req.owner_id and kind in self.self_service else f"It goes to the approvers; <@{req.owner_id}> gets the credentials once it is approved.")
        if req.requester_id == req.owner_id and kind not in self.self_service:
            after = "This workspace's rules want an approver for it: it goes to them, and you get the credentials once it is approved."
        return {"text": clip(f"Request *{req.short_id}*: {what} for `{esc(req.user_name)}`. {after} Ask `/iam status {req.short_id}` any time.", 3000)}
