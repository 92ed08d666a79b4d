"""Time-bound grants (pure): how long an added group or policy lasts, and when that is.

A grant's `lasts` is one of:
- a duration from when it is applied: "1h", "4h", "1d", "1w" (the form's "For");
- a date, "YYYY-MM-DD": it ends as that day begins (00:00 UTC), as an account's end date does;
- a moment, "YYYY-MM-DDTHH:MMZ": an extension's new end, fixed when the extension is planned.
It is part of the step, so the plan's digest (what approvers approve) covers it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

DURATIONS = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}
DURATION_WORDS = {"1h": "1 hour", "4h": "4 hours", "1d": "1 day", "1w": "1 week"}
UNTIL_DATE = "until"  # the form's choice "until the date below"
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z")


class BadEnd(ValueError):
    """Not a way a grant can end."""


def moment(at: datetime) -> str:
    """An absolute end, as a step names it (to the minute, UTC)."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def is_valid(lasts: str) -> bool:
    try:
        end_of(lasts, start=datetime(2000, 1, 1, tzinfo=timezone.utc))
        return True
    except BadEnd:
        return False


def end_of(lasts: str, *, start: datetime) -> datetime:
    """When a grant that `lasts` so and begins at `start` ends."""
    if lasts in DURATIONS:
        return start + DURATIONS[lasts]
    if _MOMENT.fullmatch(lasts):
        return datetime.strptime(lasts, "%Y-%m-%dT%H:%MZ").replace(tzinfo=timezone.utc)
    try:
        return datetime.combine(date.fromisoformat(lasts), time(0, 0), tzinfo=timezone.utc)
    except ValueError:
        raise BadEnd(f"not a grant's end: {lasts[:40]!r}") from None


def relative(lasts: str) -> bool:
    return lasts in DURATIONS


def words(lasts: str) -> str:
    """"for 4 hours", "until 2027-01-05 00:00 UTC": as the plan says it."""
    if lasts in DURATIONS:
        return f"for {DURATION_WORDS[lasts]}"
    return f"until {end_of(lasts, start=datetime.now(timezone.utc)):%Y-%m-%d %H:%M} UTC"


def longest(lasts: str, *, now: datetime) -> timedelta:
    """How long the grant lasts at most if it began `now`: what a cap is compared with."""
    return DURATIONS[lasts] if lasts in DURATIONS else end_of(lasts, start=now) - now


def remind_before(starts: datetime, ends: datetime) -> timedelta:
    """When the owner is offered Extend / I'm done: a quarter of the grant before its end, between 15 minutes and a day."""
    return min(timedelta(days=1), max(timedelta(minutes=15), (ends - starts) / 4))
