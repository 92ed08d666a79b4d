"""Structured logs: the context's ids on every line, JSON off a terminal, text on one."""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import Iterator

import pytest

from bot.common.logcontext import ContextExecutor, bind, current, log_context
from bot.runtime.middleware import slack_ids
from bot.runtime.logsetup import JsonFormatter, TextFormatter, make_handler


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("tests.unit.logs")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.handlers.clear()


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_off_a_terminal_with_context_fields(logger: logging.Logger) -> None:
    out = io.StringIO()
    handler = make_handler(out)
    assert isinstance(handler.formatter, JsonFormatter)
    logger.addHandler(handler)
    with log_context(request="R7KQ2ZX", user="UALICE", empty=""):
        logger.info("approved by %s", "UBOB")
        with log_context(job=3):
            logger.warning("retrying")
    logger.info("after")
    first, second, third = (json.loads(line) for line in _lines(out))
    assert first["message"] == "approved by UBOB" and first["level"] == "INFO" and first["logger"] == "tests.unit.logs"
    assert first["request"] == "R7KQ2ZX" and first["user"] == "UALICE" and "empty" not in first
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second["job"] == "3" and second["request"] == "R7KQ2ZX"
    assert "request" not in third and "job" not in third


def test_an_exception_stays_one_json_line(logger: logging.Logger) -> None:
    out = io.StringIO()
    logger.addHandler(make_handler(out))
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("job crashed")
    (line,) = _lines(out)
    entry = json.loads(line)
    assert entry["message"] == "job crashed" and entry["exception"].endswith("\nRuntimeError")
    assert "test_logs.py" in entry["exception"] and "boom" not in entry["exception"]  # the type and place, not the text


def test_context_cannot_overwrite_the_standard_fields(logger: logging.Logger) -> None:
    out = io.StringIO()
    logger.addHandler(make_handler(out))
    with log_context(message="forged", level="forged"):
        logger.info("real")
    entry = json.loads(_lines(out)[0])
    assert entry["message"] == "real" and entry["level"] == "INFO"


def test_text_on_a_terminal(logger: logging.Logger) -> None:
    out = _Tty()
    handler = make_handler(out)
    assert isinstance(handler.formatter, TextFormatter)
    logger.addHandler(handler)
    with log_context(request="R7KQ2ZX", user="UALICE"):
        logger.info("hello")
    logger.info("bare")
    first, second = _lines(out)
    assert first.endswith("INFO tests.unit.logs: hello [request=R7KQ2ZX user=UALICE]")
    assert second.endswith("INFO tests.unit.logs: bare")


def test_bind_lasts_for_the_enclosing_block_only() -> None:
    with log_context(job=1):
        bind(request="RAAAAAA")
        assert current() == {"job": "1", "request": "RAAAAAA"}
    assert current() == {}


def test_listeners_run_in_a_copy_of_the_submitters_context() -> None:
    seen: dict[str, object] = {}
    done = threading.Event()

    def listener() -> None:
        seen["before"] = dict(current())
        bind(request="RLISTEN")  # must not leak back into the submitter's context
        seen["after"] = dict(current())
        done.set()

    with ContextExecutor(max_workers=1) as pool, log_context(user="UALICE"):
        pool.submit(listener).result(timeout=10)
        assert current() == {"user": "UALICE"}
    assert seen == {"before": {"user": "UALICE"}, "after": {"user": "UALICE", "request": "RLISTEN"}}


def test_slack_ids_of_each_kind_of_delivery() -> None:
    command = {"command": "/iam", "team_id": "T1", "user_id": "U1", "channel_id": "C1", "trigger_id": "1.2.3", "text": "request"}
    assert slack_ids(command) == {"team": "T1", "user": "U1", "channel": "C1", "trigger": "1.2.3", "slack": "command /iam"}
    click = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U2"},
        "channel": {"id": "D2"},
        "trigger_id": "4.5.6",
        "actions": [{"action_id": "approve_request", "value": "R7KQ2ZX"}],
    }
    assert slack_ids(click) == {"team": "T1", "user": "U2", "channel": "D2", "trigger": "4.5.6", "slack": "action approve_request", "request": "R7KQ2ZX"}
    other = {**click, "actions": [{"action_id": "open_request_modal", "value": "not-a-request"}]}
    assert "request" not in slack_ids(other)
    deny = {"type": "view_submission", "user": {"id": "U2"}, "view": {"callback_id": "iam_deny", "private_metadata": "R7KQ2ZX"}}
    assert slack_ids(deny)["request"] == "R7KQ2ZX" and slack_ids(deny)["slack"] == "view_submission iam_deny"
    event = {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": {"type": "message", "user": "U3", "channel": "D3", "text": "status"}}
    assert slack_ids(event) == {"team": "T1", "user": "U3", "channel": "D3", "event": "Ev1", "slack": "event message"}
    hostile = {"type": "block_actions", "user": "not-a-dict", "actions": [None], "view": []}
    assert slack_ids(hostile) == {"slack": "action ?"}


FAKE_TOKEN = "xoxb-" + "0123456789-" * 2 + "fake"
FAKE_PASSWORD = "".join(["Zq7!", "pW2#", "mN9$"])  # joined at run time: no source line holds it


def _leaky() -> None:
    password, token = FAKE_PASSWORD, FAKE_TOKEN  # locals holding secrets
    try:
        {"token": token}["password"]
    except KeyError as exc:
        exc.add_note(f"password {password}")
        try:
            raise ValueError(f"IAM said no to {password}") from exc
        except ValueError:
            raise RuntimeError(f"Slack refused {token}")  # chained implicitly (during handling)


@pytest.mark.parametrize("stream", [io.StringIO, _Tty], ids=["json", "text"])
def test_a_traceback_shows_types_and_places_never_messages_notes_or_locals(logger: logging.Logger, stream: type) -> None:
    out = stream()
    logger.addHandler(make_handler(out))
    try:
        _leaky()
    except RuntimeError:
        logger.exception("listener crashed")
    text = out.getvalue()
    if stream is io.StringIO:
        (line,) = _lines(out)
        text = json.loads(line)["exception"]
    assert FAKE_PASSWORD not in text and FAKE_TOKEN not in text and "xoxb-" not in text
    assert "IAM said no" not in text and "Slack refused" not in text and "'password'" not in text
    assert text.count("Traceback (most recent call last") == 3  # the whole chain, oldest first
    assert text.index("\nKeyError") < text.index("\nValueError") < text.index("\nRuntimeError")
    assert "The above exception was the direct cause of the following exception:" in text
    assert "During handling of the above exception, another exception occurred:" in text
    assert 'File "tests/unit/test_logs.py"' in text and "in _leaky" in text


def test_a_traceback_another_formatter_cached_on_the_record_is_not_reused(logger: logging.Logger) -> None:
    """logging.Formatter.format caches the full traceback on the record (exc_text) for the next handler."""
    plain, out = io.StringIO(), _Tty()
    first = logging.StreamHandler(plain)  # a library's or a tool's handler, with the standard formatter
    logger.addHandler(first)
    logger.addHandler(make_handler(out))
    try:
        _leaky()
    except RuntimeError:
        logger.exception("listener crashed")
    assert FAKE_TOKEN in plain.getvalue()  # the standard formatter does show it...
    assert FAKE_TOKEN not in out.getvalue() and "listener crashed" in out.getvalue()  # ...ours does not


def test_where_names_the_innermost_place_and_ours() -> None:
    from bot.common.tracebacks import short_path, type_name, where

    try:
        _leaky()
    except RuntimeError as exc:
        place = where(exc)
        assert place.startswith("tests/unit/test_logs.py:") and place.endswith(" in _leaky")
        assert type_name(exc) == "RuntimeError"
    try:
        json.loads("{not json")
    except json.JSONDecodeError as exc:
        assert type_name(exc) == "json.decoder.JSONDecodeError"
        assert "json/decoder.py" in where(exc)  # the library's frame (no frame of ours is inside it)
    assert short_path("/x/.venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py") == "sqlalchemy/engine/base.py"
    assert short_path(logging.__file__).endswith("logging/__init__.py")


@pytest.fixture
def logging_setup() -> Iterator[None]:
    """setup_logging changes process-wide state (the root handlers, the exception hooks): put it back."""
    import sys

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook)
    root.handlers[:] = []  # basicConfig(force=True) would close pytest's own handlers
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    sys.excepthook, threading.excepthook = saved[2], saved[3]


def test_an_uncaught_exception_in_a_thread_is_logged_safely(logging_setup: None) -> None:
    """Python would print it to stderr, message and all; setup_logging routes it through the log."""
    from bot.runtime.logsetup import setup_logging

    out = io.StringIO()
    setup_logging("INFO", stream=out)
    thread = threading.Thread(target=_leaky, name="leaky-thread")
    thread.start()
    thread.join(10)
    (line,) = _lines(out)
    entry = json.loads(line)
    assert entry["level"] == "CRITICAL" and entry["message"] == "uncaught RuntimeError in thread leaky-thread"
    assert FAKE_TOKEN not in line and FAKE_PASSWORD not in line and "in _leaky" in entry["exception"]
