"""Who may request and who may break glass: the rulebook's lists, with Slack user-group membership read now."""

from __future__ import annotations

from bot.policy.rulebook import Rulebook
from bot.slack.directory import Directory


class Requesters:
    def __init__(self, *, rulebook: Rulebook, directory: Directory):
        self.rulebook = rulebook
        self.directory = directory

    def groups_of(self, user_id: str) -> tuple[str, ...]:
        """The user groups the rules name for requesters or break-glass that this person is in."""
        return self.directory.groups_of(user_id, self.rulebook.requester_groups_to_resolve)

    def may_request(self, user_id: str) -> bool:
        return self.rulebook.may_request(user_id, self.groups_of(user_id))

    def may_break_glass(self, user_id: str) -> bool:
        return self.rulebook.may_break_glass(user_id, self.groups_of(user_id))
