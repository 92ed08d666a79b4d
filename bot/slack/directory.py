"""Slack user-group membership (usergroups.users.list), for approvers and requesters named by group.

Decisions read membership fresh, so someone who left a group loses the right at once; screens that
only show things (Home, status) may use a short cache.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.common.slack_ids import is_usergroup

log = logging.getLogger(__name__)


class Directory:
    def __init__(self, client: WebClient, *, cache_seconds: float = 60.0):
        self.client = client
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def members(self, group_id: str, *, fresh: bool = True) -> frozenset[str]:
        """The group's members now; empty if Slack cannot tell (nobody gains a right by an error)."""
        if not fresh:
            with self._lock:
                hit = self._cache.get(group_id)
            if hit and time.monotonic() - hit[0] < self.cache_seconds:
                return hit[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group_id)["users"] or [])
        except SlackApiError as exc:
            log.warning("could not read members of user group %s: %s", group_id, exc.response.get("error"))
            return frozenset()
        with self._lock:
            self._cache[group_id] = (time.monotonic(), users)
        return users

    def groups_of(self, user_id: str, groups: Iterable[str], *, fresh: bool = True) -> tuple[str, ...]:
        """Which of `groups` have `user_id` as a member."""
        return tuple(g for g in dict.fromkeys(groups) if user_id in self.members(g, fresh=fresh))

    def expand(self, ids: Iterable[str], *, fresh: bool = True) -> list[str]:
        """User ids for a list of user and group ids, each once, in order."""
        out: list[str] = []
        for i in ids:
            out.extend(sorted(self.members(i, fresh=fresh)) if is_usergroup(i) else [i])
        return list(dict.fromkeys(out))

    def departed(self, user_ids: Iterable[str]) -> frozenset[str]:
        """Who of `user_ids` has left the workspace: users.info says deleted, or knows them no more.
        Someone Slack cannot tell about now (rate limit, outage) is not counted as gone."""
        gone: set[str] = set()
        for user_id in dict.fromkeys(user_ids):
            try:
                if self.client.users_info(user=user_id)["user"].get("deleted"):
                    gone.add(user_id)
            except SlackApiError as exc:
                error = exc.response.get("error")
                if error == "user_not_found":
                    gone.add(user_id)
                else:
                    log.warning("could not read user %s: %s", user_id, error)
        return frozenset(gone)
