"""An HTTP proxy in front of moto that throttles IAM the way AWS does: a token bucket of R requests/second.

A call that finds the bucket empty is answered at once, without reaching moto, with HTTP 400 and the
IAM error code `Throttling` in the same XML error shape tests/support/fault_proxy.FaultProxy uses
(botocore treats it as throttling: retried with back-off in its standard retry mode). Every call is
recorded in memory as (monotonic time, Action, HTTP status answered, throttled?), never its parameters.

    proxy = ThrottleProxy(moto.url, rate=20)      # 20 requests/s, burst of 20
    proxy.set_rate(None)                         # no limit (e.g. while setting up)
    proxy.url                                    # AWS_ENDPOINT_URL for the bot
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import requests

from tests.support.fault_proxy import relay, send_error  # the answers the fault proxy gives, IAM's error shape included


@dataclass(frozen=True)
class Record:
    at: float  # time.monotonic() when the call arrived
    action: str
    status: int  # what the caller got: moto's status, or 400 when throttled
    throttled: bool
    code: str = ""  # the AWS error code moto answered with (EntityAlreadyExists, ...), "" on success


class TokenBucket:
    def __init__(self, rate: float | None, burst: float | None = None):
        self._lock = threading.Lock()
        self.set(rate, burst)

    def set(self, rate: float | None, burst: float | None = None) -> None:
        with self._lock:
            self.rate = rate
            self.burst = burst if burst is not None else (rate or 0)
            self.tokens = self.burst  # starts full
            self.last = time.monotonic()

    def take(self) -> bool:
        with self._lock:
            if self.rate is None:
                return True
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class ThrottleProxy:
    def __init__(self, upstream: str, *, rate: float | None = 20.0, burst: float | None = None):
        self.upstream = upstream.rstrip("/")
        self.bucket = TokenBucket(rate, burst)
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._n = itertools.count()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller went away (killed, or gave up) while its answer was on the way

            def do_POST(self) -> None:
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
                if not proxy.bucket.take():
                    proxy._record(Record(at, action, 400, True, "Throttling"))
                    send_error(self, 400, code="Throttling", message="Rate exceeded", n=next(proxy._n))
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                resp = proxy._session().post(proxy.upstream + self.path, data=body, headers=headers, timeout=30)
                code = ""
                if resp.status_code >= 400:
                    text = resp.text
                    start, end = text.find("<Code>"), text.find("</Code>")
                    code = text[start + 6 : end] if 0 <= start < end else f"HTTP {resp.status_code}"
                proxy._record(Record(at, action, resp.status_code, False, code))
                relay(self, resp)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._server.server_bind()
        self._server.server_activate()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="throttle-proxy", daemon=True).start()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
            s.trust_env = False
        return s

    def _record(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    def set_rate(self, rate: float | None, burst: float | None = None) -> None:
        """A new limit (None: unlimited); the bucket starts full."""
        self.bucket.set(rate, burst)

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
