"""Who to tell about a request from the worker: the people its approvers name, user groups expanded."""

from __future__ import annotations

from typing import Iterable

from bot.common.sql import SessionMaker
from bot.requests import store
from bot.slack.directory import Directory


def approvers_of_request(sm: SessionMaker, directory: Directory, *, request_id: int, default_approvers: Iterable[str]) -> list[str]:
    """Read in a transaction of its own, then expanded with Slack outside it (no Slack call inside a transaction)."""
    with sm.begin() as s:
        users, groups = store.approvers_of(store.load_request(s, request_id), default_approvers=default_approvers)
    return directory.expand([*users, *groups])
