"""HTTP (waitress + Bolt's WSGI adapter) and Socket Mode runners."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Any, Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import Deps
from bot.db import check_database

log = logging.getLogger(__name__)


def health(deps: Deps) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {}
    try:
        check_database(deps.engine)
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"unreachable: {type(exc).__name__}"
    report["worker"] = "ok" if deps.worker.alive else "stopped"
    ok = report["database"] == "ok" and report["worker"] == "ok"
    return ok, {"ok": ok, **report}


def make_wsgi(app: App, deps: Deps) -> Callable[..., Iterable[bytes]]:
    slack = SlackRequestHandler(app, path="/slack/events")

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            ok, report = health(deps)
            body = json.dumps(report).encode()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        return slack(environ, start_response)

    return wsgi


def serve_http(app: App, deps: Deps, *, host: str = "0.0.0.0", port: int) -> None:
    from waitress.server import create_server

    server = create_server(make_wsgi(app, deps), host=host, port=port, threads=8, ident="iam-bot")
    _on_sigterm(lambda: (deps.worker.stop(), server.close()))
    log.info("iam-bot listening on http://%s:%s/slack/events", host, port)
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        deps.worker.stop()


def serve_socket_mode(app: App, deps: Deps) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, deps.settings.slack_app_token)
    stopped = threading.Event()
    _on_sigterm(lambda: (deps.worker.stop(), handler.close(), stopped.set()))
    log.info("iam-bot connecting to Slack in Socket Mode")
    handler.connect()
    try:
        stopped.wait()
    except KeyboardInterrupt:
        deps.worker.stop()
        handler.close()


def _on_sigterm(stop: Callable[[], object]) -> None:
    def handle(signum: int, _frame: object) -> None:
        log.info("signal %s: finishing the job in hand and stopping", signum)
        stop()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handle)
