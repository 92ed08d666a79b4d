"""The Slack stand-in in a process of its own, so that serving the bot's after-ack calls (and checking
their Block Kit) does not take the load generator's interpreter away from timing the acks."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any


def _serve(conn: Any, bot_token: str) -> None:
    from bot.demo.standin import SlackStandIn

    standin = SlackStandIn(bot_token=bot_token).start()
    conn.send((standin.url, standin.hooks_url))
    while True:
        what, arg = conn.recv()
        if what == "count":
            conn.send(len(standin.calls_to(arg)))
        elif what == "first_text":
            calls = standin.calls_to(arg)
            conn.send(calls[0].args.get("text", "") if calls else "")
        elif what == "stop":
            standin.stop()
            conn.send(None)
            return


class StandInProcess:
    def __init__(self, bot_token: str):
        self._conn, child = mp.Pipe()
        self._proc = mp.get_context("spawn").Process(target=_serve, args=(child, bot_token), daemon=True)
        self._proc.start()
        self.url, self.hooks_url = self._conn.recv()

    def accept_view_response(self, action: str, submitted: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
        return view  # the ack bench sends no view submissions

    def count(self, method: str) -> int:
        self._conn.send(("count", method))
        return int(self._conn.recv())

    def first_text(self, method: str) -> str:
        self._conn.send(("first_text", method))
        return str(self._conn.recv())

    def stop(self) -> None:
        try:
            self._conn.send(("stop", None))
            self._conn.recv()
        finally:
            self._proc.join(5)
