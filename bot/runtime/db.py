"""Engine, sessions and migrations. Transactions are opened at the edge: `with sm.begin() as s:`."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import sessionmaker

from bot.audit import trail
from bot.audit.keys import AuditKeys
from bot.common.sql import SessionMaker


def normalize_url(url: str) -> str:
    """Accept `postgres://` (Heroku) and `postgresql://` as written, with the driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    # hide_parameters: SQL errors that reach a log line never quote row values.
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # Worker threads share the file; wait for locks instead of failing at once.
        engine = create_engine(url, hide_parameters=True, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # Let SQLAlchemy, not pysqlite, decide when transactions begin, and begin them
            # IMMEDIATE so a read-then-write transaction cannot deadlock against another.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Deleted rows and freed pages are overwritten with zeros, so destroyed credentials leave
            # no ciphertext in the file (bot.credentials.envelopes empties the WAL after a destroy).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Up to 30 connections per process: 8 HTTP threads, 24 listener threads and the worker, each holding one briefly.
    return create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine, *, audit_keys: AuditKeys | None = None) -> SessionMaker:
    """`audit_keys`: what signs the audit events its sessions record (bot.audit.trail); without them a
    session can only read a keyed chain, or extend one written before the audit key existed."""
    return sessionmaker(engine, expire_on_commit=False, info=trail.session_info(audit_keys))


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "models:migrations")
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade to head; on PostgreSQL an advisory lock keeps replicas from migrating at once.

    On SQLite, Alembic's batch mode recreates a table to alter it, which foreign keys would refuse
    once other rows point at it: they are turned off (outside the transaction, where SQLite allows
    it) and every reference is checked before the upgrade commits.
    """
    cfg = alembic_config()
    with engine.connect() as conn:
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if raw is not None and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("the migration left rows that refer to rows that do not exist; nothing was changed")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def check_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
