"""What the core shares about the database: the session factory's type, and compare-and-set."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session, sessionmaker

# Transactions are opened at the edges (workflows, jobs): `with sm.begin() as session:`.
SessionMaker = sessionmaker[Session]


def compare_and_set(session: Session, model: type[Any], *, where: list[ColumnElement[bool]], values: dict[str, Any]) -> bool:
    """`UPDATE model SET values WHERE where`, True only if exactly one row changed.

    The UPDATE is atomic on every backend, so of two clicks, two approvers or two replicas that
    read the same row, exactly one sees rowcount 1: the winner goes on, the other stops.
    """
    result = session.execute(update(model).where(*where).values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1
