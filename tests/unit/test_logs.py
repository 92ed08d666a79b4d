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
    assert entry["message"] == "job crashed" and "RuntimeError: boom" in entry["exception"]


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
