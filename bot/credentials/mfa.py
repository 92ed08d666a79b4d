"""Which users the bot created are watched for MFA (what is known of each is shown by status and Home).

`watch` is called in the transaction that completes a new user's request, so a user that exists
is always on record; the worker's MfaWatcher (bot.jobs.mfa_watch) checks IAM and reminds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import AccessRequest, MfaWatch


def watch(session: Session, *, request_id: int, user_name: str, owner_id: str, now: datetime, key_held: bool = False) -> None:
    """Watch the user request `request_id` created; `key_held`: its approved access key waits for MFA."""
    if session.scalars(select(MfaWatch.id).where(MfaWatch.request_id == request_id)).first() is None:
        session.add(MfaWatch(request_id=request_id, user_name=user_name, owner_id=owner_id, since=now, key_held=key_held))


def forget(session: Session, *, user_name: str, now: datetime, account: str = "") -> None:
    """The user (of `account`) was disabled or offboarded: nothing left to watch or remind about."""
    in_account = MfaWatch.request_id.in_(select(AccessRequest.id).where(AccessRequest.account == account))
    session.execute(
        update(MfaWatch).where(func.lower(MfaWatch.user_name) == user_name.lower(), in_account, MfaWatch.gone_at.is_(None)).values(gone_at=now)
        .execution_options(synchronize_session=False)
    )
