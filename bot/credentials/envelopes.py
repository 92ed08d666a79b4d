"""Destroying sealed credentials for good: the envelope row is deleted, then SQLite's log is emptied.

What stays behind a destroy, and what does not:
- the row is DELETEd (not its ciphertext nulled), on every database. What the rest of the bot asks
  afterwards ("revealed or expired?") needs no row: no envelope means nothing to reveal or deliver,
  and the audit trail records `credentials_revealed` / `credentials_expired` for the status timeline;
- SQLite: every connection has `secure_delete` on (bot.runtime.db), so the deleted cell and any freed
  page are overwritten with zeros. The page images still holding the ciphertext in the write-ahead
  log go with `checkpoint` below, called after the destroying transaction has committed (a
  checkpoint cannot move pages a transaction still holds);
- PostgreSQL: the deleted row stays in the table file as a dead tuple until VACUUM reclaims its
  space, and in the WAL, its archive, replicas and backups for as long as they are kept (README,
  Security model). There the ciphertext is only as safe as the key that sealed it.
Overwriting the ciphertext before the delete would add nothing: SQLite's secure_delete zeroes the
cell either way, and PostgreSQL never overwrites in place (an UPDATE writes a new tuple version).
"""

from __future__ import annotations

import logging

from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.common.sql import SessionMaker
from models import CredentialEnvelope

log = logging.getLogger(__name__)


def destroy(session: Session, envelope_id: int) -> bool:
    """Delete the envelope, ciphertext and all; False if it was already gone."""
    # The default session synchronisation also drops the row's object from the session, if loaded.
    return session.execute(delete(CredentialEnvelope).where(CredentialEnvelope.id == envelope_id)).rowcount == 1


def checkpoint(sm: SessionMaker) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate it to zero bytes, so
    the page images of destroyed rows are gone from it. Call it after the destroy committed. True
    when done (always on PostgreSQL, which has nothing to do here); False, logged, when readers kept
    it from finishing: the next destroy's checkpoint takes the rest."""
    with sm() as session:
        engine = session.get_bind()
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        # The driver's connection, outside any transaction (SQLAlchemy would BEGIN IMMEDIATE first).
        raw = conn.connection.driver_connection
        busy, log_frames, moved = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        log.warning("SQLite's write-ahead log could not be emptied now (%s of %s pages moved); the next checkpoint retries", moved, log_frames)
        return False
    return True
