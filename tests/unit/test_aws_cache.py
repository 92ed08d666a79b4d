"""The typeahead cache: fresh hits, stale-while-refresh, and one refresh at a time (on a clock the test moves)."""

from __future__ import annotations

import threading

from bot.iam.cache import Immutable, TtlCache
from tests.support.harness import wait_until


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fresh_then_stale_served_while_one_refresh_runs() -> None:
    clock = Seconds()
    cache = TtlCache(ttl=60, clock=clock)
    calls: list[int] = []
    release = threading.Event()

    def load() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(5)
        return len(calls)

    assert cache.get("k", load) == 1  # cold: waits for the load
    clock.now += 59
    assert cache.get("k", load) == 1  # fresh hit: no load
    assert len(calls) == 1
    clock.now += 2
    assert cache.get("k", load) == 1  # stale: served at once, one refresh started
    assert cache.get("k", load) == 1  # still stale; no second refresh
    wait_until(lambda: len(calls) == 2, what="the refresh started")
    assert len(calls) == 2
    release.set()
    wait_until(lambda: cache.get("k", load) == 2, what="the refreshed listing")
    assert len(calls) == 2


def test_failed_refresh_keeps_serving_the_old_listing() -> None:
    clock = Seconds()
    cache = TtlCache(ttl=60, clock=clock)
    assert cache.get("k", lambda: "old") == "old"
    clock.now += 61
    failed = threading.Event()

    def broken() -> str:
        failed.set()
        raise RuntimeError("IAM down")

    assert cache.get("k", broken) == "old"
    assert failed.wait(5)
    # Once the failed refresh is over, a later lookup refreshes again and gets the new listing.
    wait_until(lambda: cache.get("k", lambda: "new") == "new", what="a later refresh")


def test_peek_never_loads() -> None:
    cache = TtlCache(ttl=60, clock=Seconds())
    assert cache.peek("k") is None
    cache.get("k", lambda: "v")
    assert cache.peek("k") == "v"


def test_immutable_values_are_loaded_once_and_the_oldest_leave_first() -> None:
    cache = Immutable(size=2)
    loads: list[str] = []

    def load(key: str) -> str:
        loads.append(key)
        return key.upper()

    assert cache.get("a", lambda: load("a")) == "A"
    assert cache.get("a", lambda: load("a")) == "A"
    cache.get("b", lambda: load("b"))
    cache.get("a", lambda: load("a"))  # a is now the most recently used
    cache.get("c", lambda: load("c"))  # b leaves
    cache.get("a", lambda: load("a"))
    cache.get("b", lambda: load("b"))
    assert loads == ["a", "b", "c", "b"]
