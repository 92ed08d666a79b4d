"""What the core shares about the database: the session factory's type, and compare-and-set."""

from __future__ import annotations

from typing import Any

from datetime import datetime

from sqlalchemy import ColumnElement, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from models import Notice

# Transactions are opened at the edges (workflows, jobs): `with sm.begin() as session:`.
SessionMaker = sessionmaker[Session]


def compare_and_set(session: Session, model: type[Any], *, where: list[ColumnElement[bool]], values: dict[str, Any]) -> bool:
    """`UPDATE model SET values WHERE where`, True only if exactly one row changed.

    The UPDATE is atomic on every backend, so of two clicks, two approvers or two replicas that
    read the same row, exactly one sees rowcount 1: the winner goes on, the other stops.
    """
    result = session.execute(update(model).where(*where).values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1


def insert_for(session: Session):  # type: ignore[no-untyped-def]
    """The INSERT construct of the session's dialect, for ON CONFLICT DO NOTHING (PostgreSQL and SQLite both have it)."""
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def noticed(session: Session, *, key: str) -> bool:
    """Whether `key` was claimed already (by notice_once)."""
    return session.get(Notice, key[:200]) is not None


def notice_once(session: Session, *, key: str, now: datetime) -> bool:
    """True the first time `key` is claimed, on any replica; False ever after. A notice (a nudge about
    one key) is claimed before it is sent, in the transaction that audits it: it is sent at most once."""
    table = Notice.__table__
    stmt = insert_for(session)(table).values(key=key[:200], sent_at=now).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    return session.execute(stmt).first() is not None
