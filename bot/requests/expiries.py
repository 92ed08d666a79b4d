"""Users with an end date: recorded when the user is created, moved by an approved extension (the
worker's bot.jobs.expiry reminds, disables and deletes on these dates)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain.accounts import OWN
from models import AccessRequest, UserExpiry


def day_start(day: str) -> datetime:
    """A YYYY-MM-DD end date as the moment it begins (UTC): the user is disabled then."""
    return datetime.combine(date.fromisoformat(day), time(0, 0), tzinfo=timezone.utc)


def record(session: Session, *, request_id: int, user_name: str, owner_id: str, expires_on: str, grace: timedelta) -> None:
    """Called in the transaction that completes the creating request: a user that exists has its end on record."""
    if session.scalars(select(UserExpiry.id).where(UserExpiry.request_id == request_id)).first() is None:
        at = day_start(expires_on)
        session.add(UserExpiry(request_id=request_id, user_name=user_name, owner_id=owner_id, expires_at=at, delete_at=at + grace))


def current(session: Session, *, user_name: str, account: str = OWN) -> UserExpiry | None:
    """The end on record for a user the bot has now (the latest, for a name made again)."""
    return session.scalars(
        select(UserExpiry).join(AccessRequest, AccessRequest.id == UserExpiry.request_id)
        .where(func.lower(UserExpiry.user_name) == user_name.lower(), AccessRequest.account == account, UserExpiry.deleted_filed_at.is_(None))
        .order_by(UserExpiry.id.desc()).limit(1)
    ).first()


def extend(session: Session, *, user_name: str, account: str = OWN, expires_on: str, grace: timedelta) -> bool:
    """Move the end to `expires_on` (an approved extension); the reminders start over. A user the
    expiry already disabled stays disabled: only its deletion moves. False if there is no end on record."""
    row = current(session, user_name=user_name, account=account)
    if row is None:
        return False
    row.expires_at = day_start(expires_on)
    row.delete_at = row.expires_at + grace
    row.week_reminded_at = row.day_reminded_at = None
    return True


def ended(session: Session, *, user_name: str, account: str = OWN, now: datetime) -> None:
    """The user was offboarded (by request or by its expiry): nothing more to do on its dates."""
    row = current(session, user_name=user_name, account=account)
    if row is not None:
        row.deleted_filed_at = row.deleted_filed_at or now
