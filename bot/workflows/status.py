"""Status in plain words (DM, @mention, /iam status) and the App Home tab, from the same read model."""

from __future__ import annotations

import threading
import weakref
from datetime import datetime
from typing import Any, Callable

from bot.common.sql import SessionMaker
from bot.policy.rulebook import Rulebook
from bot.requests import queries
from bot.slack import ui
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier
from bot.slack.phrases import Query
from models import RequestState


class StatusDesk:
    def __init__(self, *, sessionmaker: SessionMaker, notifier: Notifier, directory: Directory, rulebook: Rulebook, clock: Callable[[], datetime]):
        self.sm = sessionmaker
        self.notifier = notifier
        self.directory = directory
        self.rulebook = rulebook
        self.clock = clock
        self._locks_guard = threading.Lock()
        self._home_locks: weakref.WeakValueDictionary[str, threading.RLock] = weakref.WeakValueDictionary()  # a lock lives while someone holds it

    def approver_view(self, user_id: str, *, fresh: bool = False) -> tuple[frozenset[str], tuple[str, ...]]:
        """The approvers as Home and status see them (everyone the rules name, plus this person if
        they are in a group the rules name), and which of those groups this person is in.

        For showing things, membership may come from a short cache; `fresh=True` reads it now, for
        decisions about what a person may do (an audit export).
        """
        groups = self.directory.groups_of(user_id, sorted(self.rulebook.known_approver_groups), fresh=fresh)
        return self.rulebook.known_approver_users | ({user_id} if groups else frozenset()), groups

    def is_approver(self, user_id: str) -> bool:
        """Named by the rules, or a member now of a group they name."""
        return user_id in self.approver_view(user_id, fresh=True)[0]

    def answer(self, *, user_id: str, query: Query) -> dict[str, Any]:
        if query.kind == "help":
            return ui.help_message()
        if query.kind == "unknown":
            return ui.unknown_phrase_message(query.arg or "")
        approvers, groups = self.approver_view(user_id)  # Slack, before the transaction
        with self.sm.begin() as s:
            if query.kind == "one" and query.arg:
                req = queries.visible_request(s, query=query.arg, user_id=user_id, approvers=approvers)
                if req is None:
                    return ui.status_message(mine=[], awaiting=[], query=query.arg)
                return ui.timeline_message(req, queries.timeline(s, request_id=req.id))
            mine = queries.requests_of(s, user_id=user_id)
            awaiting = queries.awaiting_decision(
                s, approver_id=user_id, approvers=approvers, user_groups=groups, default_approvers=self.rulebook.default_approvers
            )
        if query.kind == "pending":
            mine = [r for r in mine if r.state in (RequestState.PENDING, RequestState.SUBMITTED)]
        return ui.status_message(mine=mine, awaiting=awaiting, query=None)

    def answer_mention(self, *, user_id: str, channel: str, thread_ts: str | None, query: Query) -> None:
        """An @mention is answered to the asker alone (chat.postEphemeral, in the thread if it was in
        one): a channel must not see someone's requests, timelines or deny reasons. Slack sends no
        app_mention from the bot's own DM (that is message.im), but one from a DM (`D...`) would be
        answered there as a plain reply, as a DM is."""
        reply = self.answer(user_id=user_id, query=query)
        if channel.startswith("D"):
            self.notifier.reply(channel=channel, thread_ts=thread_ts, message=reply)
        else:
            self.notifier.ephemeral(channel=channel, user=user_id, message=reply, thread_ts=thread_ts)

    def publish_home(self, user_id: str) -> None:
        """Read and publish one person's Home. Within a process, one person's Homes are read and published
        in turn: a Home read before a change can no longer be published after one read since (last wins)."""
        with self._home_lock(user_id):
            approvers, groups = self.approver_view(user_id)
            with self.sm.begin() as s:
                data = queries.home_data(
                    s, user_id=user_id, approvers=approvers, now=self.clock(), user_groups=groups, default_approvers=self.rulebook.default_approvers,
                    file_only=self.rulebook.file_only,
                )
            self.notifier.publish_home(user_id, ui.home_view(user_id=user_id, data=data))

    def _home_lock(self, user_id: str) -> threading.RLock:
        with self._locks_guard:
            lock = self._home_locks.get(user_id)
            if lock is None:
                lock = self._home_locks[user_id] = threading.RLock()
            return lock
