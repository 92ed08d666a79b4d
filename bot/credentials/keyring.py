"""Owners' public keys, one per Slack user, read and written in the caller's session.

A public key is not a secret; it is stored as the person gave it (normalised), and parsed again
whenever it is used, so a key stored by an older version is judged by today's rules.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.credentials.recipients import KeyRefused, OwnerKey, parse_owner_key
from models import OwnerKey as OwnerKeyRow


def get(session: Session, user_id: str) -> OwnerKey | None:
    """The person's key, or None if they registered none (or it no longer passes the checks)."""
    row = session.get(OwnerKeyRow, user_id)
    if row is None:
        return None
    try:
        return parse_owner_key(row.public_key)
    except KeyRefused:
        return None


def put(session: Session, *, user_id: str, key: OwnerKey, now: datetime) -> bool:
    """Register (or replace) the person's key; True if it replaced another one."""
    row = session.get(OwnerKeyRow, user_id, with_for_update=True)
    replaced = row is not None
    if row is None:
        row = OwnerKeyRow(user_id=user_id, kind=key.kind, public_key=key.public_key, fingerprint=key.fingerprint, created_at=now)
        session.add(row)
    else:
        row.kind, row.public_key, row.fingerprint, row.created_at = key.kind, key.public_key, key.fingerprint, now
    return replaced


def remove(session: Session, *, user_id: str) -> bool:
    """Forget the person's key; False if there was none."""
    return session.execute(delete(OwnerKeyRow).where(OwnerKeyRow.user_id == user_id)).rowcount == 1
