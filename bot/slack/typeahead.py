"""Ranking for external_select typeahead (pure)."""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

T = TypeVar("T")


def ranked(query: str, items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    """Exact name first, then prefix, then substring matches: Slack shows only the first 100."""
    q = query.strip().lower()
    if not q:
        return list(items)
    scored = []
    for n, item in enumerate(items):
        name = key(item).lower()
        if q in name:
            scored.append((0 if name == q else 1 if name.startswith(q) else 2, n, item))
    return [item for *_, item in sorted(scored, key=lambda t: (t[0], t[1]))]
