"""Migrations: 0002 chains audit events written before it existed, and the chain then verifies."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from alembic import command
from sqlalchemy import text

from bot.audit import trail as audit
from bot.runtime.db import alembic_config, make_engine, make_sessionmaker, migrate


def test_existing_audit_events_are_chained_by_the_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text("INSERT INTO audit_events (actor, action, details, created_at) VALUES (:a, :b, :d, :t)"),
                {"a": f"U{n}", "b": "requested", "d": '{"n": %d}' % n, "t": datetime(2026, 1, n + 1, tzinfo=timezone.utc)},
            )
    migrate(engine)
    sm = make_sessionmaker(engine)
    with sm.begin() as session:
        assert audit.verify(session) == audit.VerifyResult(True, 3)
        audit.record(session, action="after", actor="U9", now=datetime.now(timezone.utc))
    with sm.begin() as session:
        assert audit.verify(session).count == 4


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    """Autogenerate finds nothing to do after `migrate`: every model change has its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from models import Base

    engine = make_engine(f"sqlite:///{tmp_path / 'head.db'}")
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_0004_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    migrate(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    migrate(engine)
    with engine.connect() as conn:
        cols = {r[1] for r in conn.execute(text("PRAGMA table_info(access_requests)"))}
    assert {"quorum", "approver_users", "expires_at", "next_reminder_at", "break_glass", "risk"} <= cols
