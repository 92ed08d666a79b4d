"""`/iam disable <user name>` and `/iam offboard <user name>` (also the hygiene report's and Home's
buttons): a request with a plan of what is taken away, decided by a person, applied step by step."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from bot.common.constants import BOT_ACTOR
from bot.common.errors import Refused
from bot.common.sql import SessionMaker
from bot.domain.accounts import parse_target, qualified
from bot.requests import store, usecases
from bot.slack.ui.text import clip, esc
from bot.workflows.attempt import attempt
from models import AccessRequest

WHAT = {
    "disable": "disabling: its console password is deleted and its access keys deactivated; the user stays",
    "offboard": "offboarding: everything IAM holds for it is removed, then the user is deleted",
}


class Removals:
    def __init__(
        self, *, sessionmaker: SessionMaker, is_approver: Callable[[str], bool], clock: Callable[[], datetime], wake: Callable[[], None],
        deny: Callable[..., Callable[[], None]] | None = None,
    ):
        self.deny = deny  # Decisions.deny: "Disable instead" denies the offboarding it replaces
        self.sm = sessionmaker
        self.is_approver = is_approver
        self.clock = clock
        self.wake = wake

    def ask(self, *, kind: str, actor: str, text: str, reason: str = "") -> dict[str, Any]:
        """The private answer to the command or the click: what happens next, or why not and what to do."""
        name = text.strip().split()[0] if text.strip() else ""
        if not name:
            return {"text": f"Name the IAM user, as in `/iam {kind} <user name>`."}
        account, name = parse_target(name)  # `prod:alice`: a user of member account prod
        with self.sm.begin() as s:
            creating = store.creating_request(s, user_name=name, account=account)
        approver = creating is not None and creating.owner_id != actor and self.is_approver(actor)  # Slack, before the transaction
        try:
            req = attempt(self.sm, self.clock, actor, usecases.file_removal_request, kind=kind, actor_id=actor, user_name=name,
                          account=account, is_approver=approver, now=self.clock(), reason=reason)
        except Refused as refused:
            return {"text": str(refused)}
        self.wake()
        return {"text": clip(
            f"Request *{req.short_id}*: {WHAT[kind]} (`{esc(req.user_name)}`). It is checked against IAM now and goes to an approver, "
            f"who sees every change; you hear when it is done. Ask `/iam status {req.short_id}` any time.", 3000)}

    def _offboarding(self, short_id: str) -> tuple[int, str, str, bool, str] | str:
        """(id, user name (`prod:alice` in a member account), owner, filed because its owner left, state) of an offboarding request, or why not."""
        with self.sm.begin() as s:
            try:
                req = store.get_request(s, short_id=short_id)
            except Refused as refused:
                return str(refused)
            if req.kind != "offboard":
                return f"Request {short_id} is not an offboarding."
            return req.id, qualified(req.account, req.user_name), req.owner_id, req.requester_id == BOT_ACTOR, req.state.value

    def _disable_beside(self, *, actor: str, user_name: str, offboarding_id: int, reason: str) -> AccessRequest:
        """Disable the user at once, beside its offboarding (an approver's click decides it: rule approver-disable-now)."""
        account, name = parse_target(user_name)
        return attempt(self.sm, self.clock, actor, usecases.file_removal_request, kind="disable_now", actor_id=actor, user_name=name,
                       account=account, is_approver=True, now=self.clock(), beside=offboarding_id, reason=reason)

    def disable_instead(self, *, actor: str, short_id: str) -> str:
        """An approver's "Disable instead" on an offboarding: the user is disabled at once (kept, its console
        password deleted and keys deactivated) and the offboarding is denied, saying why."""
        if not self.is_approver(actor):
            return "Only designated approvers can decide an offboarding."
        found = self._offboarding(short_id)
        if isinstance(found, str):
            return found
        offboarding_id, name, _owner, _left, state = found
        if state != "pending" or self.deny is None:
            return f"Request {short_id} is not an offboarding waiting for a decision, so there is nothing to disable instead."
        try:
            req = self._disable_beside(actor=actor, user_name=name, offboarding_id=offboarding_id,
                                       reason=f"Disabled instead of offboarded by <@{actor}> (offboarding {short_id} denied): the user is kept.")
            announce = self.deny(actor=actor, short_id=short_id, reason=f"Disabled instead (request {req.short_id}): the user is kept, "
                                 "its console password deleted and its access keys deactivated.")
        except Refused as refused:
            return str(refused)
        self.wake()
        announce()
        return clip(f"Request *{req.short_id}*: `{esc(name)}` is disabled now instead (console password deleted, access keys deactivated; "
                    f"the user stays). The offboarding {short_id} is denied.", 3000)

    def disable_now(self, *, actor: str, short_id: str) -> str:
        """An approver's "Disable now" on the offboarding filed because a user's owner left: the user is
        disabled at once (rule approver-disable-now), and the offboarding still waits for its decision."""
        if not self.is_approver(actor):
            return "Only designated approvers can disable a user at once."
        found = self._offboarding(short_id)
        if isinstance(found, str):
            return found
        offboarding_id, name, owner, owner_left, state = found
        if not owner_left or state not in ("submitted", "pending"):
            return f"Request {short_id} is not an offboarding waiting because its owner left, so there is nothing to disable at once."
        try:
            req = self._disable_beside(actor=actor, user_name=name, offboarding_id=offboarding_id,
                                       reason=f"Disabled at once by <@{actor}>: its owner <@{owner}> left; offboarding {short_id} still waits for a decision.")
        except Refused as refused:
            return str(refused)
        self.wake()
        return clip(
            f"Request *{req.short_id}*: `{esc(name)}` is disabled now (console password deleted, access keys deactivated). "
            f"The offboarding {short_id} still waits: approve it to delete the user, or deny it to keep the user disabled.", 3000)
