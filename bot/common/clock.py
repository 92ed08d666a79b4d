from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(t: datetime) -> datetime:
    """A stored time as an aware UTC datetime (an aggregate may come back naive from SQLite)."""
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
