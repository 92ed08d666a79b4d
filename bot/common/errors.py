"""Errors that cross layers: a bad setting, and an action the actor may not take now."""

from __future__ import annotations


class ConfigError(Exception):
    """Raised with one line per invalid setting; the CLI prints it and exits non-zero."""


class Refused(Exception):
    """The actor may not do this now; the message is safe to show them as it is.

    `audit` names the event to record for refusals worth keeping (clicks by the wrong person, late
    clicks); the workflow writes it in a transaction of its own, since the refused one rolls back.
    """

    def __init__(self, message: str, *, audit: str | None = None, request_id: int | None = None):
        super().__init__(message)
        self.audit = audit
        self.request_id = request_id
