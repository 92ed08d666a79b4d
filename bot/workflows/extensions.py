"""`/iam extend <user name> <YYYY-MM-DD>`: a later end date for a user created with one. A request
like any other: its plan changes nothing in IAM and names the new date; a person decides."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from bot.common.errors import Refused
from bot.common.sql import SessionMaker
from bot.domain.accounts import parse_target
from bot.policy.guardrails import expiry_refusal
from bot.policy.rulebook import Rulebook
from bot.requests import store, usecases
from bot.requests.validation import expiry_error
from bot.slack.ui.text import clip, esc
from bot.workflows.attempt import attempt

USAGE = "Name the user and its new end date, as in `/iam extend <user name> 2027-03-31`."


class Extensions:
    def __init__(
        self, *, sessionmaker: SessionMaker, rulebook: Rulebook, is_approver: Callable[[str], bool], clock: Callable[[], datetime], wake: Callable[[], None],
    ):
        self.sm = sessionmaker
        self.rulebook = rulebook
        self.is_approver = is_approver
        self.clock = clock
        self.wake = wake

    def ask(self, *, actor: str, text: str) -> dict[str, Any]:
        """The private answer to the command: what happens next, or why not and what to do."""
        words = text.split()
        if len(words) != 2:
            return {"text": USAGE}
        name, day = words
        today = self.clock().date()
        if problem := expiry_error(day, today=today):
            return {"text": f"{problem.replace('from the calendar', 'as YYYY-MM-DD')} {USAGE}"}
        account, name = parse_target(name)  # `prod:alice`: a user of member account prod
        with self.sm.begin() as s:
            creating = store.creating_request(s, user_name=name, account=account)
            spec = store.spec_of(creating) if creating is not None else None
        if spec is not None and (too_far := expiry_refusal(self.rulebook.guardrails, path=spec.path, groups=spec.groups, expires_on=day, today=today)):
            return {"text": too_far}
        approver = creating is not None and creating.owner_id != actor and self.is_approver(actor)  # Slack, before the transaction
        try:
            req = attempt(self.sm, self.clock, actor, usecases.file_extension_request, actor_id=actor, user_name=name, account=account, is_approver=approver,
                          expires_on=day, now=self.clock())
        except Refused as refused:
            return {"text": str(refused)}
        self.wake()
        return {"text": clip(
            f"Request *{req.short_id}*: `{esc(req.user_name)}` to end on {day} instead. It goes to an approver; you hear when it is decided. "
            f"Ask `/iam status {req.short_id}` any time.", 3000)}
