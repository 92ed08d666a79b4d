"""An HTTP proxy in front of moto that answers chosen IAM actions with AWS errors, as AWS would."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Callable
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import requests

_ERROR = """<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>fault-proxy-{n}</RequestId>
</ErrorResponse>"""


_SEQ = itertools.count()  # orders calls across several proxies
_HOP = ("content-length", "transfer-encoding", "connection", "content-encoding")


def send_error(handler: BaseHTTPRequestHandler, status: int, *, code: str, message: str, n: int) -> None:
    """Answer as IAM answers an error: its XML shape, with `code` and a request id."""
    payload = _ERROR.format(code=code, message=message, n=n).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "text/xml")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def relay(handler: BaseHTTPRequestHandler, resp: requests.Response) -> None:
    """Pass the upstream's answer on as it came, without its hop-by-hop headers."""
    handler.send_response(resp.status_code)
    for k, v in resp.headers.items():
        if k.lower() not in _HOP:
            handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(resp.content)))
    handler.end_headers()
    handler.wfile.write(resp.content)


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._faults: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._lost: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.seen: list[str] = []
        self.injected: list[str] = []
        self._trips: dict[tuple[str, str], list[Callable[[], None]]] = defaultdict(list)
        self.history: list[tuple[str, dict[str, str]]] = []  # every call's parameters, in order (in memory only)
        self.delay = 0.0  # seconds added to every forwarded call (a slow IAM)
        self.slow: dict[str, float] = {}  # seconds added to one action's calls
        self.keep_answers: set[str] = set()  # actions whose answers are kept in `answers` (in memory only)
        self.answers: list[tuple[str, str]] = []
        self.canned: dict[str, str] = {}  # action -> an answer given instead of moto's (for what moto lacks)
        self.refusals: list[tuple[str, dict[str, str], int, str]] = []  # (action, parameters it has, status, code): refused every time
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller was killed on purpose while its answer was on the way

            def _error(self, status: int, code: str, message: str) -> None:
                send_error(self, status, code=code, message=message, n=len(proxy.injected))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
                action = params.get("Action", "")
                with proxy._lock:
                    proxy.history.append((action, {**params, "_seq": next(_SEQ)}))
                if action in proxy.canned:
                    payload = proxy.canned[action].encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                fault = next(((status, code) for act, where, status, code in list(proxy.refusals)
                              if act == action and all(params.get(k) == v for k, v in where.items())), None) or proxy._take(action)
                if fault is not None and fault[1] == "connection-reset":
                    self.close_connection = True  # no answer at all: a connection error to the caller
                    self.connection.shutdown(2)
                    return
                if fault is not None:
                    self._error(*fault, "injected by the test")
                    return
                if proxy._spring(action, "before"):
                    self.close_connection = True  # the call dies with its caller: IAM never sees it
                    return
                if proxy.delay or proxy.slow.get(action):
                    time.sleep(proxy.delay + proxy.slow.get(action, 0.0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                resp = requests.post(proxy.upstream + self.path, data=body, headers=headers, timeout=30)
                # IAM has done it; a trip here kills the caller before it hears so.
                proxy._spring(action, "after")
                if action in proxy.keep_answers:
                    with proxy._lock:
                        proxy.answers.append((action, resp.text))
                lost = proxy._take_lost(action)
                if lost is not None and resp.status_code < 300:
                    # IAM did it, and the caller hears an error instead: the answer was lost on the way.
                    self._error(*lost, "answer lost (injected by the test)")
                    return
                relay(self, resp)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.request_queue_size = 128
        self._server.server_bind()
        self._server.server_activate()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def refuse(self, action: str, *, code: str = "AccessDenied", status: int = 403, **where: str) -> None:
        """Every `action` call with these parameters is refused from now on (a role that cannot be assumed)."""
        with self._lock:
            self.refusals.append((action, where, status, code))

    def fail(self, action: str, *, code: str = "Throttling", status: int = 400, times: int = 1) -> None:
        with self._lock:
            self._faults[action].extend([(status, code)] * times)

    def lose_answer(self, action: str, *, code: str = "InternalFailure", status: int = 500, times: int = 1) -> None:
        """The next `times` successful `action` calls are carried out by IAM, and answered with an error."""
        with self._lock:
            self._lost[action].extend([(status, code)] * times)

    def _take_lost(self, action: str) -> tuple[int, str] | None:
        with self._lock:
            if self._lost.get(action):
                self.injected.append(f"{action} (answer lost)")
                return self._lost[action].pop(0)
            return None

    def clear(self, action: str) -> None:
        """Drop the faults still waiting for `action`: IAM answers it again."""
        with self._lock:
            self._faults.pop(action, None)

    def trip(self, action: str, callback: Callable[[], None], *, when: str = "after") -> None:
        """Run `callback` once, the next time `action` passes: "before" (the call is then dropped,
        IAM never carries it out) or "after" (IAM did it; the caller has not heard yet)."""
        with self._lock:
            self._trips[(action, when)].append(callback)

    def disarm(self) -> None:
        with self._lock:
            self._trips.clear()

    def _spring(self, action: str, when: str) -> bool:
        with self._lock:
            pending = self._trips.get((action, when))
            callback = pending.pop(0) if pending else None
        if callback is not None:
            callback()
        return callback is not None

    def _take(self, action: str) -> tuple[int, str] | None:
        with self._lock:
            self.seen.append(action)
            if self._faults.get(action):
                self.injected.append(action)
                return self._faults[action].pop(0)
            return None

    def stop(self) -> None:
        self._server.shutdown()
