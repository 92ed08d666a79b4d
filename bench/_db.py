"""Database helpers for the benchmarks in bench/ (bench/queries.py): a throwaway PostgreSQL database, COPY of many rows through
the SQLAlchemy connection, and a log of the SQL an engine sends (with its time and parameters).

Nothing here prints a password: URLs are shown with `shown()`, which masks it.
"""

from __future__ import annotations

import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from psycopg.types.json import Json
from sqlalchemy import JSON, Connection, Engine, Table, create_engine, event, text
from sqlalchemy.engine import URL, make_url

from bot.runtime.db import normalize_url


def shown(url: URL | str) -> str:
    """A URL fit to print: the password, if any, masked."""
    return make_url(url).render_as_string(hide_password=True)


class ThrowawayDatabase:
    """A database of its own on the server `server_url` points at (any database there will do to
    connect to), created on enter and dropped, connections and all, on exit."""

    def __init__(self, server_url: str, *, prefix: str = "iambot_bench"):
        admin = make_url(normalize_url(server_url))
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.server: URL = admin
        self.url: URL = admin.set(database=self.name)
        self._admin = create_engine(admin, isolation_level="AUTOCOMMIT")
        self.keep = False

    @property
    def url_string(self) -> str:
        """For make_engine; not for printing (it carries the password, if one was given)."""
        return self.url.render_as_string(hide_password=False)

    def __enter__(self) -> ThrowawayDatabase:
        with self._admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            with self._admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


def copy_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY `rows` (tuples in the order of `columns`) into `table`, in the connection's transaction.

    JSON columns take Python values (dumped as json.dumps would, like the bot's JSON type); datetimes
    must be timezone-aware. Returns the number of rows written.
    """
    json_at = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    cols = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    n = 0
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:  # type: ignore[union-attr]
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    if row[i] is not None:
                        row[i] = Json(row[i])
            copy.write_row(row)
            n += 1
    return n


def reset_sequence(conn: Connection, table: Table) -> None:
    """After rows were written with explicit ids: the next id the bot takes follows them."""
    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), GREATEST((SELECT max(id) FROM \"{table.name}\"), 1))"))


# ---------------------------------------------------------------- the SQL an engine sends


@dataclass
class Executed:
    statement: str
    parameters: Any
    ms: float


_EXPANDED_IN = re.compile(r"\((?:%\(\w+?_\d+\)s(?:::\w+)?(?:, )?)+\)")
_PARAM = re.compile(r"%\(\w+\)s(?:::\w+)?")


def shape(statement: str) -> str:
    """The statement without its parameters: `IN (%(a_1)s, %(a_2)s)` of any length becomes `IN (…)`."""
    return " ".join(_PARAM.sub("?", _EXPANDED_IN.sub("(…)", statement)).split())


def readable(statement: str) -> str:
    """The statement as sent, on one line, its column list and long IN lists shortened."""
    s = " ".join(statement.split())
    m = re.match(r"SELECT (.*?) FROM (\w+)", s)
    if m and m.group(1).count(",") >= 4:
        s = f"SELECT <{m.group(1).count(',') + 1} columns> FROM {m.group(2)}" + s[m.end():]
    return _EXPANDED_IN.sub(lambda x: x.group(0) if x.group(0).count(",") < 3 else f"({x.group(0).count(',') + 1} parameters)", s)


def short_parameters(parameters: Any, n: int = 6) -> str:
    if isinstance(parameters, dict) and len(parameters) > n:
        head = ", ".join(f"{k}: {v!r}" for k, v in list(parameters.items())[:n])
        return f"{{{head}, … {len(parameters)} in all}}"
    return repr(parameters)


def summary(statement: str, width: int = 150) -> str:
    """One line naming what a statement does: the column list left out, table prefixes dropped."""
    s = shape(statement)
    s = re.sub(r"^SELECT .*? FROM ", "SELECT … FROM ", s, count=1)
    s = re.sub(r"\b(access_requests|audit_events|decisions|plans|credential_envelopes)\.", "", s)
    return s if len(s) <= width else s[: width - 1] + "…"


class StatementLog:
    """Every statement the engine's connections execute while `capture()` is open, with its time
    (cursor.execute to its return: the round trip and the server's work, not fetching rows into objects)."""

    def __init__(self, engine: Engine):
        self._current: list[Executed] | None = None

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            conn.info.setdefault("bench_t0", []).append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            started = conn.info["bench_t0"].pop()
            if self._current is not None:
                self._current.append(Executed(statement, parameters, (time.perf_counter() - started) * 1000))

    @contextmanager
    def capture(self) -> Iterator[list[Executed]]:
        self._current = out = []
        try:
            yield out
        finally:
            self._current = None
