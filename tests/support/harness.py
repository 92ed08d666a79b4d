"""A running iam-bot for end-to-end tests: real HTTP server, real database, moto and the Slack stand-in."""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import traceback
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
from cryptography.fernet import Fernet
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.runtime.app import Components, build, create_app
from bot.runtime.db import make_engine, migrate
from bot.runtime.logsetup import JsonFormatter, clamp_library_loggers
from bot.runtime.server import http_server, make_wsgi
from bot.runtime.settings import Settings
from bot.demo.slack_sender import SlackSender
from bot.demo.standin import SlackStandIn, poll
from tests.support.moto_gaps import ServiceCredentials

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-test-token"
AUDIT_KEY = secrets.token_urlsafe(32)  # one per test run, as replicas of one deployment share theirs


class LogCapture(logging.Handler):
    """Every log line the process writes, formatted, so tests can look for leaked secrets.

    Tracebacks are rendered as the bot's own log handler renders them (types and places only).
    """

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.name == "slack_bolt" and "didn't call ack()" in text:
            _print_thread_stacks(f"Bolt gave up waiting for an ack ({text}); every thread, as it was then:")
        if record.exc_info:
            text += "\n" + JsonFormatter().formatException(record.exc_info)
        with self._lock2:
            self.lines.append(f"{record.name}: {text}")

    def text(self) -> str:
        with self._lock2:
            return "\n".join(self.lines)


def _print_thread_stacks(title: str) -> None:
    """Where each thread is, to the test's captured stderr: a late ack shows what it was waiting on."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = [title]
    for ident, frame in sys._current_frames().items():
        out.append(f"--- {names.get(ident, ident)}")
        out += [line.rstrip() for line in traceback.format_stack(frame)[-12:]]
    print("\n".join(out), file=sys.stderr, flush=True)


class AwsInTransactionGuard:
    """Records every AWS request the bot sends while its own thread holds a database transaction.

    With SQLite every transaction is BEGIN IMMEDIATE and holds the one write lock, so an AWS call
    inside one makes every other thread's transaction (the form's, within Slack's 3 s) wait on AWS.
    Clients made from the guarded boto3 session are watched (IAM and KMS in the bot's own account).
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self.violations: list[str] = []

    def watch_session(self, session: boto3.session.Session) -> None:
        session.events.register("before-send", self._sent)  # clients made from it afterwards inherit it

    def watch_engine(self, engine: Engine) -> None:
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)
        event.listen(engine, "checkin", self._returned)  # back in the pool: nothing is open (an invalidated connection ends no transaction by event)

    def _begin(self, conn: Any) -> None:
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def _end(self, conn: Any) -> None:
        self._local.depth = max(0, getattr(self._local, "depth", 0) - 1)

    def _returned(self, dbapi_connection: Any, record: Any) -> None:
        self._local.depth = 0

    def _sent(self, request: Any, **_: Any) -> None:
        if getattr(self._local, "depth", 0):
            ours = [f"{f.filename.rsplit('/bot/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_stack() if "/bot/" in f.filename]
            self.violations.append(f"{request.method} {request.url} from " + " < ".join(reversed(ours[-8:])))


class FakeClock:
    """An injectable clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class RunningBot:
    database_url: str
    standin: SlackStandIn
    moto_url: str
    approvers: str = "UAPPROVER1,UAPPROVER2"
    approval_channel: str = ""
    clock: Callable[[], Any] | None = None
    start_worker: bool = True
    housekeeping: bool = True  # False: the worker runs jobs only; the test runs reminders, expiry and purges itself
    worker_id: str | None = None
    key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    audit_key: str = AUDIT_KEY  # "": a local SQLite bot generates its own
    extra: dict[str, Any] = field(default_factory=dict)

    def start(self) -> RunningBot:
        self.settings = Settings(
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=self.standin.url,
            database_url=self.database_url,
            approvers_raw=self.approvers,
            approval_channel=self.approval_channel,
            encryption_key_raw=self.key,
            audit_key_raw=self.audit_key,
            worker_poll_seconds=0.5,
            **self.extra,
        )
        self.logs = LogCapture()
        root = logging.getLogger()
        root.addHandler(self.logs)
        root.setLevel(logging.DEBUG)  # our own loggers at their most verbose: they must still leak nothing
        clamp_library_loggers()
        migrate(make_engine(self.settings.database_url))
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        self.aws_in_transaction = AwsInTransactionGuard()
        self.aws_in_transaction.watch_session(session)
        kwargs: dict[str, Any] = {"boto_session": session, "worker_id": self.worker_id, "housekeeping": self.housekeeping}
        if self.clock is not None:
            kwargs["clock"] = self.clock
        self.deps: Components = build(self.settings, **kwargs)
        self.aws_in_transaction.watch_engine(self.deps.engine)
        # moto lacks service-specific credentials (offboarding lists them): none, unless a test gives some.
        self.service_credentials = ServiceCredentials(self.deps.iam.iam, {}, strict=False)
        self.app = create_app(self.settings, self.deps)
        self.server = http_server(make_wsgi(self.app, self.deps), host="127.0.0.1", port=0, threads=8)  # serve_http's limits
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if self.start_worker:
            self.deps.worker.start()
        self.slack = SlackSender(self.url, SIGNING_SECRET, response_url_base=self.standin.hooks_url, on_view_response=self.standin.accept_view_response)
        return self

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            if not self._closing:  # stop() closed the socket under the loop's select(): expected
                raise

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until every listener the deliveries sent so far started has finished: after this, what
        they could have done (rightly or wrongly) has happened, so asserting that nothing did is fair."""
        assert self.app.listener_pool.wait_idle(timeout), f"listeners still running after {timeout}s"

    def stop(self) -> None:
        self._closing = True
        self.server.close()
        self.app.drain(5.0)  # nothing of this test's may reach the next test's stand-in
        # waitress's close() leaves its task threads waiting for work forever, and they keep the whole
        # stopped bot reachable: by the end of a run a worker process held 1,120 of them.
        self.server.task_dispatcher.shutdown(timeout=5)
        self.deps.worker.stop(timeout=5)
        logging.getLogger().removeHandler(self.logs)
        self.deps.engine.dispose()
        assert not self.aws_in_transaction.violations, "AWS called while holding a database transaction:\n" + "\n".join(self.aws_in_transaction.violations[:5])


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    value = poll(predicate, timeout, interval=0.05)
    if not value:
        raise AssertionError(f"timed out waiting for {what}")
    return value
