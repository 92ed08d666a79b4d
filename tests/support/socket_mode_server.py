"""A stand-in for Slack's Socket Mode WebSocket endpoint: sends envelopes, collects the acks."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Any

from websockets.sync.server import ServerConnection, serve


class SocketModeServer:
    def __init__(self) -> None:
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self._conn: ServerConnection | None = None
        self._connected = threading.Event()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handle(self, conn: ServerConnection) -> None:
        self._conn = conn
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"}}))
        self._connected.set()
        for message in conn:
            self.acks.put(json.loads(message))

    def wait_connected(self, timeout: float = 20) -> None:
        if not self._connected.wait(timeout):
            raise AssertionError("the bot did not connect by Socket Mode")

    def send(self, envelope_type: str, payload: dict[str, Any]) -> str:
        assert self._conn is not None
        envelope_id = str(uuid.uuid4())
        self._conn.send(
            json.dumps({"envelope_id": envelope_id, "type": envelope_type, "payload": payload, "accepts_response_payload": True})
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            ack = self.acks.get(timeout=timeout)
            if ack.get("envelope_id") == envelope_id:
                return ack

    def stop(self) -> None:
        self._server.shutdown()
