"""What people write to the bot, in plain words, turned into a query (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MENTION = re.compile(r"<@[A-Z0-9]+>")
_PENDING = re.compile(r"^(what'?s|what is|whats)?\s*(pending|waiting)\??$")
_MINE = re.compile(r"^(my\s+requests?|requests|status|list)\??$")


@dataclass(frozen=True)
class Query:
    kind: str  # "help", "mine", "one", "pending", "unknown"
    arg: str | None = None


def parse(text: str) -> Query:
    words = " ".join(_MENTION.sub(" ", text).replace("’", "'").split()).strip()
    low = words.lower().rstrip("!.")
    if not low or low in ("help", "?", "hi", "hello"):
        return Query("help")
    if _MINE.match(low):
        return Query("mine")
    if _PENDING.match(low):
        return Query("pending")
    head, _, rest = words.partition(" ")
    if head.lower() == "status" and rest.strip():
        return Query("one", rest.strip().lstrip("#")[:100])
    return Query("unknown", words[:100])
