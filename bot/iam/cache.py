"""Caches for IAM reads: listings kept briefly (typeahead), documents kept by version (they never change)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class TtlCache:
    """Brief cache for IAM listings; a stale entry is served while one thread refreshes it.

    Slack gives an options request 3 s, and listing an account's 1,000+ policies can take
    about that long, so only the very first lookup (or `warm()` at start) waits for IAM.
    """

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock  # seconds, monotonic; tests move a fake one instead of sleeping
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, Any]] = {}
        self._refreshing: set[str] = set()

    def get(self, key: str, load: Callable[[], T]) -> T:
        with self._lock:
            hit = self._data.get(key)
            fresh = hit is not None and self.clock() - hit[0] < self.ttl
            refresh_in_background = hit is not None and not fresh and key not in self._refreshing
            if refresh_in_background:
                self._refreshing.add(key)
        if fresh:
            return hit[1]  # type: ignore[index]
        if refresh_in_background:
            threading.Thread(target=self._refresh, args=(key, load), daemon=True).start()
            return hit[1]  # type: ignore[index]
        if hit is not None:
            return hit[1]  # stale, and another thread is already refreshing it
        value = load()  # outside the lock: a slow IAM listing must not block other lookups
        with self._lock:
            self._data[key] = (self.clock(), value)
        return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = (self.clock(), value)

    def peek(self, key: str) -> Any:
        """What is held for `key`, fresh or stale, without loading it; None if nothing is."""
        with self._lock:
            hit = self._data.get(key)
        return hit[1] if hit is not None else None

    def _refresh(self, key: str, load: Callable[[], Any]) -> None:
        try:
            value = load()
            with self._lock:
                self._data[key] = (self.clock(), value)
        except Exception:
            log.warning("refreshing the IAM %s listing failed; serving the previous one", key)
        finally:
            with self._lock:
                self._refreshing.discard(key)


class Immutable:
    """Values that never change once read, such as a managed policy version's document: kept, least
    recently used first out, so each version is fetched from IAM once per process."""

    def __init__(self, size: int = 512):
        self.size = size
        self._lock = threading.Lock()
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]  # type: ignore[no-any-return]
        value = load()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value
