"""`/iam disable <user name>` and `/iam offboard <user name>` (also the hygiene report's and Home's
buttons): a request with a plan of what is taken away, decided by a person, applied step by step."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from bot.common.errors import Refused
from bot.common.sql import SessionMaker
from bot.requests import store, usecases
from bot.slack.ui.text import clip, esc
from bot.workflows.attempt import attempt

VERBS = {"disable": "disable", "offboard": "offboard"}
WHAT = {
    "disable": "disabling: its console password is deleted and its access keys deactivated; the user stays",
    "offboard": "offboarding: everything IAM holds for it is removed, then the user is deleted",
}


class Removals:
    def __init__(self, *, sessionmaker: SessionMaker, is_approver: Callable[[str], bool], clock: Callable[[], datetime], wake: Callable[[], None]):
        self.sm = sessionmaker
        self.is_approver = is_approver
        self.clock = clock
        self.wake = wake

    def ask(self, *, kind: str, actor: str, text: str, reason: str = "") -> dict[str, Any]:
        """The private answer to the command or the click: what happens next, or why not and what to do."""
        name = text.strip().split()[0] if text.strip() else ""
        if not name:
            return {"text": f"Name the IAM user, as in `/iam {VERBS[kind]} <user name>`."}
        with self.sm.begin() as s:
            creating = store.creating_request(s, user_name=name)
        approver = creating is not None and creating.owner_id != actor and self.is_approver(actor)  # Slack, before the transaction
        try:
            req = attempt(self.sm, self.clock, actor, usecases.file_removal_request, kind=kind, actor_id=actor, user_name=name,
                          is_approver=approver, now=self.clock(), reason=reason)
        except Refused as refused:
            return {"text": str(refused)}
        self.wake()
        return {"text": clip(
            f"Request *{req.short_id}*: {WHAT[kind]} (`{esc(req.user_name)}`). It is checked against IAM now and goes to an approver, "
            f"who sees every change; you hear when it is done. Ask `/iam status {req.short_id}` any time.", 3000)}
