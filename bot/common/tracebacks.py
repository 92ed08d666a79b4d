"""Exceptions as a log may show them: their type and where they were raised, never a value.

An exception's text can quote what it was handed: a token, a password on its way to IAM, the SQL
parameters of a failed statement (SQLAlchemy puts them in the message), a request's fields. So what
reaches a log is the type of each exception in the chain and the places (file, line, function) of
its frames; no message, no note, no local variable, no source line.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from types import TracebackType

_ROOT = Path(__file__).resolve().parents[2]
_OURS = ("bot", "handlers", "models")
HEADER = "Traceback (most recent call last; types and places only, never messages or values):"
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def type_name(exc: BaseException) -> str:
    """`RuntimeError`, `sqlalchemy.exc.OperationalError`: the class, qualified unless built in."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(exc, BaseExceptionGroup):
        name += " [" + ", ".join(type_name(e) for e in exc.exceptions) + "]"
    return name


def short_path(filename: str) -> str:
    """A frame's file, from the package down: `bot/jobs/applying.py`, `sqlalchemy/engine/base.py`."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("site-packages") :])
    try:
        return Path(filename).resolve().relative_to(_ROOT).as_posix()
    except ValueError:
        return "/".join(parts[-2:])


def _frames(tb: TracebackType | None) -> traceback.StackSummary:
    return traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False, capture_locals=False)


def _place(frame: traceback.FrameSummary) -> str:
    return f"{short_path(frame.filename)}:{frame.lineno} in {frame.name}"


def where(exc: BaseException) -> str:
    """Where it was raised; with the innermost frame of our own code too when that is elsewhere
    (`sqlalchemy/engine/base.py:1967 in _execute_context, from bot/requests/store.py:88 in save`)."""
    frames = _frames(exc.__traceback__)
    if not frames:
        return "an unknown place"
    innermost = frames[-1]
    ours = next((f for f in reversed(frames) if short_path(f.filename).split("/", 1)[0] in _OURS), None)
    if ours is None or ours is innermost:
        return _place(innermost)
    return f"{_place(innermost)}, from {_place(ours)}"


def _chain(exc: BaseException) -> list[tuple[BaseException, str]]:
    """The exception and those before it, oldest first, each with the line that links it to the next."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    link = ""
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    chain.reverse()
    return chain


def safe_traceback(exc: BaseException) -> str:
    """Like Python's traceback, chain included, with each exception's type in place of its message."""
    lines: list[str] = []
    for earlier, link in _chain(exc):
        lines.append(HEADER)
        lines.extend(f'  File "{short_path(f.filename)}", line {f.lineno}, in {f.name}' for f in _frames(earlier.__traceback__))
        lines.append(type_name(earlier))
        if link:  # what links this one to the next, as Python prints it
            lines.extend(["", link, ""])
    return "\n".join(lines)
