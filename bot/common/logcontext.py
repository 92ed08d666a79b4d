"""What a log line is about: the request's short id and Slack's ids, carried by a context variable.

Set for each Slack delivery by a Bolt global middleware (bot.runtime.middleware), and for each job
by the worker; `bot.runtime.logsetup` writes them into every line. Only ids, never a payload:
nothing here can carry a secret.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

# Replaced, never mutated: copies held by other threads must not change under them.
_fields: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("iam_bot_log_fields", default={})


def current() -> Mapping[str, str]:
    return _fields.get()


def clean(fields: Mapping[str, Any]) -> dict[str, str]:
    """Ids as log fields: strings, at most 80 characters, empty ones left out."""
    return {k: str(v)[:80] for k, v in fields.items() if v not in (None, "")}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line written inside the block (in this thread or context)."""
    token = _fields.set({**_fields.get(), **clean(fields)})
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: Any) -> None:
    """Add `fields` for the rest of the current context (a listener run, a `log_context` block)."""
    _fields.set({**_fields.get(), **clean(fields)})


def start(**fields: Any) -> None:
    """Replace the context: a new Slack delivery on a reused server thread starts clean."""
    _fields.set(clean(fields))


class ContextExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, running each listener in a copy of the submitter's context.

    It also knows which listeners are still running (`wait_idle`): every listener a Slack delivery
    starts is submitted here before Slack gets its answer, so once they are done, everything that
    delivery set off in this process has happened.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._running: set[Future[Any]] = set()
        self._running_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(contextvars.copy_context().run, fn, *args, **kwargs)
        with self._running_lock:
            self._running.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._running_lock:
            self._running.discard(future)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every listener submitted so far has finished; False if some still run after `timeout`."""
        with self._running_lock:
            running = set(self._running)
        return not wait(running, timeout=timeout).not_done
