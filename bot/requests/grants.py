"""Time-bound grants on record: written in the transaction that completes the request that granted
them, moved by an approved extension, ended by the revoke request that took them away (or by a change
or an offboarding that took the user's access first). bot.jobs.grant_ends acts on them."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain import grants as lasting
from bot.domain.plan import Plan, Step, StepKind
from bot.domain.accounts import OWN
from models import AccessRequest, TemporaryGrant

G = TemporaryGrant
KIND_OF_STEP = {StepKind.ADD_TO_GROUP: "group", StepKind.ATTACH_POLICY: "policy", StepKind.REMOVE_FROM_GROUP: "group", StepKind.DETACH_POLICY: "policy"}


def one(session: Session, grant_id: int) -> TemporaryGrant | None:
    return session.get(G, grant_id)


def active(session: Session, *, user_name: str, account: str = OWN) -> list[TemporaryGrant]:
    """The user's grants not taken away yet (a revoke may be on its way), soonest end first."""
    return list(session.scalars(
        select(G).join(AccessRequest, AccessRequest.id == G.request_id)
        .where(func.lower(G.user_name) == user_name.lower(), AccessRequest.account == account, G.ended_at.is_(None))
        .order_by(G.ends_at, G.id)
    ))


def of_requests(session: Session, request_ids: Iterable[int]) -> dict[int, list[TemporaryGrant]]:
    """The grants each request made that are still on (status and Home show them)."""
    out: dict[int, list[TemporaryGrant]] = {}
    ids = list(request_ids)
    if ids:
        for g in session.scalars(select(G).where(G.request_id.in_(ids), G.ended_at.is_(None)).order_by(G.ends_at, G.id)):
            out.setdefault(g.request_id, []).append(g)
    return out


def record(session: Session, *, plan: Plan, request_id: int, owner_id: str, requester_id: str, now: datetime) -> int:
    """A completed request's time-bound steps on record (an extension moves the grant it extends
    instead). Each ends a fixed time after `now`, or on the date or at the moment the step names."""
    made = 0
    account = session.get(AccessRequest, request_id).account  # type: ignore[union-attr]
    held = {(g.kind, g.target): g for g in active(session, user_name=plan.user_name, account=account)}
    for step in plan.time_bound:
        kind, ends = KIND_OF_STEP[step.kind], lasting.end_of(step.lasts or "", start=now)
        if (g := held.get((kind, step.target))) is not None and g.revoke_request_id is None:
            g.ends_at, g.reminded_at = ends, None  # extended: the reminder is offered again before the new end
            continue
        session.add(G(request_id=request_id, user_name=plan.user_name, kind=kind, target=step.target, owner_id=owner_id,
                      requester_id=requester_id, granted_at=now, ends_at=ends))
        made += 1
    return made


def taken_away(session: Session, *, user_name: str, account: str = OWN, steps: Iterable[Step], now: datetime, how: str) -> list[TemporaryGrant]:
    """Grants whose group or policy a completed request took from the user: they have ended."""
    gone = {(KIND_OF_STEP[s.kind], s.target) for s in steps if s.kind in (StepKind.REMOVE_FROM_GROUP, StepKind.DETACH_POLICY)}
    ended = []
    for g in active(session, user_name=user_name, account=account):
        if (g.kind, g.target) in gone:
            g.ended_at, g.how_ended = now, how
            ended.append(g)
    return ended


def user_gone(session: Session, *, user_name: str, account: str = OWN, now: datetime) -> None:
    """The user was offboarded: none of its grants is left to take away."""
    for g in active(session, user_name=user_name, account=account):
        g.ended_at, g.how_ended = now, "the user was offboarded"


def ended_by_revoke(session: Session, *, revoke_request_id: int, now: datetime, how: str) -> list[TemporaryGrant]:
    """The grants a completed (or failed) revoke request was filed for."""
    rows = list(session.scalars(select(G).where(G.revoke_request_id == revoke_request_id, G.ended_at.is_(None))))
    for g in rows:
        g.ended_at, g.how_ended = now, how
    return rows


def release(session: Session, *, revoke_request_id: int) -> None:
    """A revoke request failed: its grants are filed again at the next round (they are still held)."""
    for g in session.scalars(select(G).where(G.revoke_request_id == revoke_request_id, G.ended_at.is_(None))):
        g.revoke_request_id = None
