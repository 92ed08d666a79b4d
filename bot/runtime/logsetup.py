"""Logging: one line per event, JSON when stderr is not a terminal, and no secrets.

Every line carries the context of what it is about (`bot.common.logcontext`: the request's short id,
Slack's user/channel/team/trigger/event ids, the provisioning job). Libraries that log request
bodies are held at INFO or above whatever LOG_LEVEL says. An exception logged with its traceback
(`log.exception`, `exc_info=`) shows the type of each exception in the chain and where each was
raised, never its message or a value (`bot.common.tracebacks`): exception texts can quote secrets.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, Any

from bot.common.logcontext import current
from bot.common.tracebacks import safe_traceback, type_name

# botocore logs request parameters (CreateLoginProfile's Password) and slack_sdk logs request
# bodies (the reveal modal) at DEBUG; never let them, whatever LOG_LEVEL says.
_BODY_LOGGERS = {
    "botocore": logging.WARNING,
    "boto3": logging.WARNING,
    "urllib3": logging.WARNING,
    "slack_sdk": logging.INFO,
    "slack_bolt": logging.INFO,
    # moto and its werkzeug server run inside `iam-bot demo`: one line per AWS call is noise.
    "moto": logging.WARNING,
    "werkzeug": logging.WARNING,
}


def clamp_library_loggers() -> None:
    for name, level in _BODY_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


class _ContextFilter(logging.Filter):
    """Copies the current log context onto the record, in the thread that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.iam_bot_context = dict(current())
        return True


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    found = getattr(record, "iam_bot_context", None)
    return found if isinstance(found, dict) else dict(current())


class _SafeExceptions(logging.Formatter):
    """Tracebacks with types and places only, whoever logs them (our code, Bolt, slack_sdk, waitress)."""

    def formatException(self, ei: Any) -> str:
        exc = ei[1] if isinstance(ei, tuple) else None
        return safe_traceback(exc) if isinstance(exc, BaseException) else ""


class JsonFormatter(_SafeExceptions):
    """One JSON object per line: time, level, logger, message, then the context's ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _context_of(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(_SafeExceptions):
    """For a person at a terminal: the usual line, with the context in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # Not logging.Formatter.format: it would reuse a traceback another handler's formatter
        # cached on the record (record.exc_text), with the messages in it.
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        context = _context_of(record)
        if not context:
            return line
        first, nl, rest = line.partition("\n")  # keep a traceback below the bracket
        return first + " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]" + nl + rest


def make_handler(stream: IO[str]) -> logging.Handler:
    """Readable text on a terminal; JSON lines anywhere else (a file, a pipe, a log collector)."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(TextFormatter() if _is_terminal(stream) else JsonFormatter())
    return handler


def setup_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    logging.basicConfig(level=level, handlers=[make_handler(stream or sys.stderr)], force=True)
    clamp_library_loggers()
    # An exception nothing caught would otherwise be printed to stderr by Python, message and all.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)  # a person at the terminal pressed ^C
        return
    logging.getLogger("bot").critical("uncaught %s", type_name(exc), exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return  # as Python's own hook does
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("bot").critical(
        "uncaught %s in thread %s", type_name(args.exc_value), name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
