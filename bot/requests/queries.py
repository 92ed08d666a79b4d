"""What people may see of requests (status, Home, timelines), as plain views. Read-only; takes the session."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import and_, or_, select, union
from sqlalchemy.orm import Session

from bot.credentials import keyring
from bot.domain.views import HomeData, RequestView, TimelineEvent
from bot.policy import approval
from bot.requests import store
from models import AccessRequest, AuditEvent, CredentialEnvelope, Decision, RequestState


def visible_request(session: Session, *, query: str, user_id: str, approvers: frozenset[str]) -> RequestView | None:
    """The request a person asks about, by short id, `#<number>` or user name, if they may see it."""
    q = query.strip().lstrip("#")
    conditions = [AccessRequest.short_id == q.upper(), AccessRequest.user_name_lower == q.lower()]
    if q.isascii() and q.isdigit() and len(q) <= 9:  # an id column holds no more; "²" is a digit too
        conditions.append(AccessRequest.id == int(q))
    stmt = select(AccessRequest).where(or_(*conditions))
    if user_id not in approvers:
        stmt = stmt.where(or_(AccessRequest.requester_id == user_id, AccessRequest.owner_id == user_id))
    req = session.scalars(stmt.order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc()).limit(1)).first()
    return store.view_of(session, req) if req is not None else None


def timeline(session: Session, *, request_id: int) -> list[TimelineEvent]:
    return [
        TimelineEvent(action=e.action, actor=e.actor, created_at=e.created_at, details=dict(e.details or {}))
        for e in session.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id))
    ]


def requests_of(session: Session, *, user_id: str, limit: int = 10) -> list[RequestView]:
    """A person's most recent requests, as requester or as owner.

    The latest `limit` of each side, then the latest of those: each side is one short walk down its
    index, where "requester OR owner" would read all of a busy person's requests to keep a few.
    """
    newest = (AccessRequest.created_at.desc(), AccessRequest.id.desc())
    sides = [select(AccessRequest.id).where(column == user_id).order_by(*newest).limit(limit).subquery() for column in (AccessRequest.requester_id, AccessRequest.owner_id)]
    ids = union(*(select(side.c.id) for side in sides))
    stmt = select(AccessRequest).where(AccessRequest.id.in_(ids)).order_by(*newest).limit(limit)
    return store.views_of(session, list(session.scalars(stmt)))


def awaiting_decision(
    session: Session,
    *,
    approver_id: str,
    approvers: frozenset[str],
    limit: int = 10,
    user_groups: Iterable[str] = (),
    default_approvers: Iterable[str] = (),
) -> list[RequestView]:
    """Pending requests this person may decide on now (named by the request's rule, or in its groups),
    with their plans: approvers see what they approve. Requests still being checked are not offered."""
    if approver_id not in approvers:
        return []
    stmt = (
        select(AccessRequest)
        .where(
            AccessRequest.state == RequestState.PENDING,
            AccessRequest.requester_id != approver_id,
            AccessRequest.owner_id != approver_id,
        )
        .order_by(AccessRequest.created_at)
        .limit(200)
    )
    candidates = []
    for req in session.scalars(stmt):
        users, groups = store.approvers_of(req, default_approvers=default_approvers)
        if approval.may_approve(approver_id, approver_users=users, approver_groups=groups, actor_groups=user_groups):
            candidates.append(req)
    # What this person approved already (of the plan now asked about) is not waiting for them. Decided
    # first, in one light query, so that views with plans are built only for the requests shown.
    approved = set(
        session.execute(
            select(Decision.request_id, Decision.plan_digest).where(
                Decision.request_id.in_([r.id for r in candidates]), Decision.approver_id == approver_id, Decision.approved.is_(True)
            )
        ).tuples()
    )
    waiting = [r for r in candidates if (r.id, r.plan_digest) not in approved]
    # An ask for several accounts is decided through the first of its waiting requests, which shows them all.
    return [v for v in store.views_of(session, waiting, with_plans=True) if v.presents][:limit]


def home_data(
    session: Session,
    *,
    user_id: str,
    approvers: frozenset[str],
    now: datetime,
    user_groups: Iterable[str] = (),
    default_approvers: Iterable[str] = (),
    file_only: bool = False,
) -> HomeData:
    mine = requests_of(session, user_id=user_id, limit=15)
    key = keyring.get(session, user_id)
    revealable = frozenset(
        session.scalars(
            select(CredentialEnvelope.request_id)
            .join(AccessRequest, AccessRequest.id == CredentialEnvelope.request_id)
            .where(
                AccessRequest.state == RequestState.COMPLETED,  # partial credentials are never offered
                CredentialEnvelope.owner_id == user_id,
                CredentialEnvelope.ciphertext.is_not(None),
                CredentialEnvelope.revealed_at.is_(None),
                CredentialEnvelope.expires_at > now,
                # Only what was sent for Reveal (never a file's credentials, nor any still being sent).
                or_(CredentialEnvelope.delivery_method == "reveal", and_(CredentialEnvelope.delivery_method.is_(None), CredentialEnvelope.delivered_at.is_not(None))),
            )
        )
    )
    is_approver = user_id in approvers
    recent: list[RequestView] = []
    if is_approver:
        recent = store.views_of(
            session,
            list(
                session.scalars(
                    select(AccessRequest)
                    .where(AccessRequest.decided_by.is_not(None))
                    .order_by(AccessRequest.decided_at.desc(), AccessRequest.id.desc())
                    .limit(10)
                )
            ),
        )
    return HomeData(
        mine=tuple(mine),
        revealable=revealable,
        awaiting=tuple(
            awaiting_decision(
                session, approver_id=user_id, approvers=approvers, limit=15, user_groups=user_groups, default_approvers=default_approvers
            )
        ),
        recently_decided=tuple(recent),
        is_approver=is_approver,
        key_label=key.label if key is not None else None,
        file_only=file_only,
    )
