"""HTTP (waitress + Bolt's WSGI adapter) and Socket Mode runners."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
from typing import Any, Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from bot.slack import inbound
from bot.runtime.app import Components
from bot.runtime.middleware import OnceApp
from bot.runtime.db import check_database

log = logging.getLogger(__name__)


def health(deps: Components) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {}
    try:
        check_database(deps.engine)
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"unreachable: {type(exc).__name__}"
    report["worker"] = "ok" if deps.worker.alive else "stopped"
    ok = report["database"] == "ok" and report["worker"] == "ok"
    return ok, {"ok": ok, **report}


def _answer(start_response: Callable[..., Any], status: str, report: dict[str, Any]) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(report).encode()]


def _signed(verifier: SignatureVerifier, raw: bytes, environ: dict[str, Any]) -> bool:
    """Slack's signature over the body, with a timestamp no older than 5 minutes (no replays)."""
    try:
        return verifier.is_valid(
            body=raw,
            timestamp=environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
            signature=environ.get("HTTP_X_SLACK_SIGNATURE", ""),
        )
    except (ValueError, TypeError):  # a missing or non-numeric timestamp
        return False


def make_wsgi(app: App, deps: Components) -> Callable[..., Iterable[bytes]]:
    slack = SlackRequestHandler(app, path="/slack/events")
    verifier = SignatureVerifier(deps.settings.slack_signing_secret) if deps.settings.slack_signing_secret else None

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            ok, report = health(deps)
            return _answer(start_response, "200 OK" if ok else "503 Service Unavailable", report)
        if path == "/slack/events" and environ.get("REQUEST_METHOD") == "POST":
            # Checked before Bolt sees the body: an oversized, unsigned or malformed request is
            # answered here (413/401/400) and never reaches a listener or the database. (waitress
            # already refused an oversized body unread, see HTTP_LIMITS; this holds under any server.)
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > inbound.MAX_BODY:
                return _answer(start_response, "413 Payload Too Large", {"error": "body too large"})
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                raw.decode("utf-8")  # Slack sends UTF-8 only; the signature check needs text
            except UnicodeDecodeError:
                return _answer(start_response, "400 Bad Request", {"error": "body is not UTF-8"})
            if verifier is not None and not _signed(verifier, raw, environ):
                return _answer(start_response, "401 Unauthorized", {"error": "invalid signature or stale timestamp"})
            why = inbound.malformed(raw, environ.get("CONTENT_TYPE", ""))
            if why:
                log.info("rejected a signed but malformed request: %s", why)
                return _answer(start_response, "400 Bad Request", {"error": why})
            environ["wsgi.input"] = io.BytesIO(raw)
        return slack(environ, start_response)

    return wsgi


def _drain(app: App) -> None:
    """Listeners already acknowledged (a DM to send, a message to update) get 2 s to finish."""
    if isinstance(app, OnceApp):
        app.drain(2.0)


# waitress's own limits, enforced while it parses, before a body is read or buffered: a request
# announcing a larger Content-Length (or a chunked body growing past it) is answered 413 and the
# connection closed at once. waitress refuses a body of exactly max_request_body_size, hence + 1,
# so the limit is the same as make_wsgi's (inbound.MAX_BODY). Its defaults are 1 GiB of body and
# 256 KiB of headers; Slack sends a few KiB of headers.
HTTP_LIMITS: dict[str, int] = {
    "max_request_body_size": inbound.MAX_BODY + 1,
    "max_request_header_size": 64 * 1024,
}


def http_server(wsgi: Callable[..., Iterable[bytes]], *, host: str, port: int, threads: int = 8, ident: str = "iam-bot") -> Any:
    """The waitress server `serve_http` runs (and the demo and tests run), with HTTP_LIMITS."""
    from waitress.server import create_server

    return create_server(wsgi, host=host, port=port, threads=threads, ident=ident, **HTTP_LIMITS)


def serve_http(app: App, deps: Components, *, host: str = "0.0.0.0", port: int) -> None:
    server = http_server(make_wsgi(app, deps), host=host, port=port)
    # Within the 10 s a platform allows: stop taking requests, drain listeners (2 s), worker (5 s).
    _on_sigterm(lambda: (server.close(), _drain(app), deps.worker.stop()))
    log.info("iam-bot listening on http://%s:%s/slack/events", host, port)
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        deps.worker.stop()


def serve_socket_mode(app: App, deps: Components) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    # No frame-size cap here, because none applies: slack_sdk's built-in client (the one a sync Bolt
    # App can use) reads whatever length a frame announces and offers no limit (`receive_buffer_size`
    # is only the recv() chunk). The clients with one (websockets' max_size, aiohttp's max_msg_size)
    # need an AsyncApp. Nor is there an unauthenticated sender to cap: the bot opens the connection
    # itself, over TLS with the certificate checked, to the URL Slack gives for its app token, so
    # every frame comes from Slack (unlike HTTP, where anyone can send a body).
    handler = SocketModeHandler(app, deps.settings.slack_app_token)
    stopped = threading.Event()
    _on_sigterm(lambda: (handler.close(), _drain(app), deps.worker.stop(), stopped.set()))
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
