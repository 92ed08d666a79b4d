"""The old key of a rotation: when it is deactivated and deleted (the owner switches meanwhile).

`schedule` is called in the transaction that completes the rotation, so a rotation that completed
always has its old key's retirement on record, whatever happens to the process next.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import AccessRequest, KeyRetirement


def schedule(session: Session, *, request_id: int, user_name: str, key_id: str, now: datetime, grace: timedelta) -> KeyRetirement:
    """Deactivate `key_id` after `grace`, delete it after another `grace`; once per rotation request."""
    found = session.scalars(select(KeyRetirement).where(KeyRetirement.request_id == request_id)).first()
    if found is not None:
        return found
    req = session.get(AccessRequest, request_id)
    assert req is not None
    row = KeyRetirement(
        request_id=request_id, user_name=user_name, key_id=key_id, owner_id=req.owner_id, created_at=now,
        deactivate_at=now + grace, delete_at=now + 2 * grace,
    )
    session.add(row)
    return row



def forget(session: Session, *, user_name: str, now: datetime, account: str = "") -> None:
    """The user (of `account`) was offboarded, its keys with it: no retirement is left to run or to tell its owner about."""
    R = KeyRetirement
    in_account = R.request_id.in_(select(AccessRequest.id).where(AccessRequest.account == account))
    session.execute(
        update(R).where(func.lower(R.user_name) == user_name.lower(), in_account, R.deleted_at.is_(None))
        .values(deleted_at=now, deactivated_at=func.coalesce(R.deactivated_at, now)).execution_options(synchronize_session=False)
    )
