"""Answers to "how does my request stand", shared by /iam status, DMs and @mentions."""

from __future__ import annotations

from typing import Any

from bot.requests import usecases
from bot.runtime.app import Deps
from bot.slack.phrases import Query
from bot.slack.ui import blocks as ui
from models import RequestState


def answer(deps: Deps, *, user_id: str, query: Query) -> dict[str, Any]:
    approvers, groups = deps.notifier.approver_view(user_id)  # Slack, before the transaction
    with deps.sessionmaker.begin() as s:
        if query.kind == "help":
            return ui.help_message()
        if query.kind == "unknown":
            return ui.unknown_phrase_message(query.arg or "")
        if query.kind == "one" and query.arg:
            req = usecases.visible_request(s, query=query.arg, user_id=user_id, approvers=approvers)
            if req is None:
                return ui.status_message(mine=[], awaiting=[], query=query.arg)
            return ui.timeline_message(req, usecases.timeline(s, request_id=req.id))
        mine = usecases.requests_of(s, user_id=user_id)
        awaiting = usecases.awaiting_decision(
            s,
            approver_id=user_id,
            approvers=approvers,
            user_groups=groups,
            default_approvers=deps.rulebook.default_approvers,
        )
        if query.kind == "pending":
            mine = [r for r in mine if RequestState(r.state) is RequestState.PENDING]
        return ui.status_message(mine=mine, awaiting=awaiting, query=None)
