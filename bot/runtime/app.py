"""Wiring: build the dependencies from settings, and the Bolt app (the only place Bolt is wired)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Callable
from datetime import timedelta

import boto3
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.slack import inbound
from bot.iam.gateway import IamGateway
from bot.common.clock import Clock, utcnow
from bot.runtime.db import SessionMaker, make_engine, make_sessionmaker
from bot.common.logcontext import ContextExecutor, slack_context_middleware
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier
from bot.jobs.provisioning import Provisioner
from bot.jobs.reminders import ReminderService
from bot.policy.rulebook import Rulebook, rulebook_for
from bot.runtime.settings import ConfigError, Settings, local_key_file
from bot.credentials.vault import Vault
from bot.jobs.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    sessionmaker: SessionMaker
    vault: Vault
    iam: IamGateway
    client: WebClient
    notifier: Notifier
    provisioner: Provisioner
    worker: Worker
    clock: Clock = field(default=utcnow)
    rulebook: Rulebook = field(default_factory=Rulebook)
    reminders: ReminderService | None = None

    @property
    def request_ttl(self) -> timedelta:
        """The rules file's request_ttl_hours wins over IAM_BOT_REQUEST_TTL_HOURS."""
        return timedelta(hours=self.rulebook.request_ttl_hours or self.settings.request_ttl_hours)


def make_web_client(settings: Settings) -> WebClient:
    # slack_sdk's own retry handlers: 429 honours Retry-After; connection resets and 5xx retry too.
    return WebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def encryption_keys(settings: Settings) -> list[str]:
    """The configured keys; for a local SQLite setup, a generated key kept beside the database."""
    if settings.encryption_keys:
        return settings.encryption_keys
    if not settings.uses_default_sqlite:
        raise ConfigError("IAM_BOT_ENCRYPTION_KEY: required with a shared database")
    path = local_key_file(settings)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(Fernet.generate_key().decode())
        log.warning("IAM_BOT_ENCRYPTION_KEY is not set: generated a local key in %s (fine for local use only)", path)
    return [path.read_text().strip()]


def build_deps(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    boto_session: boto3.session.Session | None = None,
    client: WebClient | None = None,
    worker_id: str | None = None,
) -> Deps:
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    vault = Vault(encryption_keys(settings))
    iam = IamGateway(boto_session)
    client = client or make_web_client(settings)
    rulebook = rulebook_for(settings)  # ConfigError with line numbers for a bad IAM_BOT_RULES file
    notifier = Notifier(client=client, sessionmaker=sm, settings=settings, rulebook=rulebook, directory=Directory(client))
    reminders = ReminderService(sessionmaker=sm, notifier=notifier, clock=clock, reminders=rulebook.reminders)
    provisioner = Provisioner(
        sessionmaker=sm,
        iam=iam,
        vault=vault,
        notifier=notifier,
        clock=clock,
        credentials_ttl=timedelta(hours=settings.credentials_ttl_hours),
        worker_id=worker_id,
        lease=timedelta(seconds=settings.job_lease_seconds),
    )
    # Housekeeping (DM retries, expiry, reminders) at least once per lease, so recovery waits no longer than that.
    worker = Worker(
        provisioner,
        poll_seconds=settings.worker_poll_seconds,
        housekeeping_seconds=min(30.0, settings.job_lease_seconds),
        reminders=reminders,
    )
    return Deps(
        settings=settings,
        engine=engine,
        sessionmaker=sm,
        vault=vault,
        iam=iam,
        client=client,
        notifier=notifier,
        provisioner=provisioner,
        worker=worker,
        clock=clock,
        rulebook=rulebook,
        reminders=reminders,
    )


class OnceApp(App):
    """Bolt's App, plus: a delivery whose listener answered Slack is marked as answered.

    The key is claimed by `drop_repeated_deliveries` (after Bolt checked the signature, so an
    unsigned request can never claim a real one's key); this records that Slack got its answer.
    """

    deps: Deps
    listener_pool: ContextExecutor

    def drain(self, timeout: float = 5.0) -> None:
        """Let listeners already running (after their ack) finish, for up to `timeout` s."""
        done = threading.Thread(target=self.listener_pool.shutdown, kwargs={"wait": True}, daemon=True)
        done.start()
        done.join(timeout)

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        resp = super().dispatch(req)
        key = req.context.get("delivery_key")
        if key and resp.status < 400:
            try:
                with self.deps.sessionmaker.begin() as s:
                    inbound.mark_acked(s, key=key, now=self.deps.clock())
            except Exception:
                log.exception("could not mark delivery as answered")  # at worst a retry is handled again
        return resp


def drop_repeated_deliveries(deps: Deps):  # type: ignore[no-untyped-def]
    def middleware(req: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        key = inbound.delivery_key(req.body)
        if key is None:
            return next()
        with deps.sessionmaker.begin() as s:
            fresh = inbound.claim(s, key=key, now=deps.clock())
        if not fresh:
            retry = req.headers.get("x-slack-retry-num", ["0"])[0]
            log.info("dropped a repeated Slack delivery (%s, retry %s)", key.split(":", 1)[0], retry)
            return BoltResponse(status=200, body="")
        req.context["delivery_key"] = key
        return next()

    return middleware


def create_app(settings: Settings, deps: Deps) -> OnceApp:
    from handlers import register  # handlers depend on bot, not the reverse: import at wiring time

    app = OnceApp(
        # Bolt copies its base logger's level into every logger it makes; clamped (bot.runtime.logsetup)
        # so a DEBUG run never logs request or response bodies.
        logger=logging.getLogger("slack_bolt"),
        signing_secret=settings.slack_signing_secret or None,
        client=deps.client,
        # Listeners run after ack() in this pool; each gets a copy of the delivery's log context.
        # An ack waits for a free listener thread: enough threads that a burst of clicks (whose
        # listeners go on to update messages and Home) never keeps the next ack waiting.
        listener_executor=(pool := ContextExecutor(max_workers=24, thread_name_prefix="bolt-listener")),
        token_verification_enabled=False,  # no auth.test at start: start-up must not depend on Slack
        request_verification_enabled=not settings.socket_mode,
        raise_error_for_unhandled_request=False,
    )
    app.deps = deps
    app.listener_pool = pool
    app.middleware(slack_context_middleware)  # first: every later line knows which delivery it is about
    app.middleware(drop_repeated_deliveries(deps))
    register(app, deps)
    return app
