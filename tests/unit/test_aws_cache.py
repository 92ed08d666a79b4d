"""The typeahead cache: fresh hits, stale-while-refresh, and one refresh at a time."""

from __future__ import annotations

import threading
import time

from bot.iam.cache import TtlCache


def test_fresh_then_stale_served_while_one_refresh_runs() -> None:
    cache = TtlCache(ttl=0.05)
    calls: list[int] = []
    release = threading.Event()

    def load() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(5)
        return len(calls)

    assert cache.get("k", load) == 1  # cold: waits for the load
    assert cache.get("k", load) == 1  # fresh hit
    time.sleep(0.06)
    assert cache.get("k", load) == 1  # stale: served at once, refresh started
    assert cache.get("k", load) == 1  # still stale; no second refresh
    assert len(calls) == 2
    release.set()
    deadline = time.monotonic() + 5
    while cache.get("k", load) != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", load) == 2


def test_failed_refresh_keeps_serving_the_old_listing() -> None:
    cache = TtlCache(ttl=0.01)
    assert cache.get("k", lambda: "old") == "old"
    time.sleep(0.02)

    def broken() -> str:
        raise RuntimeError("IAM down")

    assert cache.get("k", broken) == "old"
    # Once the failed refresh is over, a later lookup refreshes again and gets the new listing.
    deadline = time.monotonic() + 5
    value = "old"
    while value != "new" and time.monotonic() < deadline:
        value = cache.get("k", lambda: "new")
        time.sleep(0.01)
    assert value == "new"
