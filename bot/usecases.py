"""Use cases of the request lifecycle. Each goes: check state -> check actor -> change -> audit.

They take the session and keyword arguments and never commit: the caller opens the transaction
(`with sessionmaker.begin() as session:`), so a use case and its audit event land together.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot import audit, rules
from bot.lifecycle import transition
from bot.spec import RequestSpec, spec_columns
from models import (
    AccessRequest,
    AuditEvent,
    CredentialEnvelope,
    Decision,
    JobState,
    ProvisioningJob,
    RequestDraft,
    RequestState,
)

OPEN_STATES = (RequestState.PENDING, RequestState.APPROVED, RequestState.PROVISIONING)
_ID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: easy to read aloud


class Refused(Exception):
    """The actor may not do this now; the message is safe to show them as it is.

    `audit` names the event to record for refusals worth keeping (clicks by the wrong person, late
    clicks); it is written by `record_refusal` in a transaction of its own, since the refused
    one rolls back.
    """

    def __init__(self, message: str, *, audit: str | None = None, request_id: int | None = None):
        super().__init__(message)
        self.audit = audit
        self.request_id = request_id


def record_refusal(session: Session, *, refused: Refused, actor_id: str, now: datetime) -> None:
    if refused.audit:
        audit.record(session, action=refused.audit, actor=actor_id, now=now, request_id=refused.request_id, why=str(refused))


def new_short_id() -> str:
    return "R" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


# ---------------------------------------------------------------- request


def open_request_for_name(session: Session, *, user_name: str) -> AccessRequest | None:
    return session.scalars(
        select(AccessRequest)
        .where(AccessRequest.user_name_lower == user_name.lower(), AccessRequest.state.in_(OPEN_STATES))
        .limit(1)
    ).first()


def save_draft(session: Session, *, requester_id: str, spec: RequestSpec, now: datetime) -> str:
    draft_id = secrets.token_hex(8)
    session.add(RequestDraft(id=draft_id, requester_id=requester_id, payload=spec.to_payload(), created_at=now))
    audit.record(session, action="reviewed", actor=requester_id, now=now, draft=draft_id, user_name=spec.user_name)
    return draft_id


def load_draft(session: Session, *, draft_id: str, actor_id: str) -> RequestSpec:
    draft = session.get(RequestDraft, draft_id)
    if draft is None or draft.requester_id != actor_id:
        raise Refused("This request was already submitted or has expired. Start again with `/iam request`.")
    return RequestSpec.from_payload(draft.payload)


def submit_draft(session: Session, *, draft_id: str, actor_id: str, now: datetime) -> AccessRequest:
    """Turn a reviewed draft into a pending request, once (a double submit finds the draft gone)."""
    spec = load_draft(session, draft_id=draft_id, actor_id=actor_id)
    gone = session.execute(delete(RequestDraft).where(RequestDraft.id == draft_id)).rowcount
    if gone != 1:
        raise Refused("This request was already submitted.")
    if (dup := open_request_for_name(session, user_name=spec.user_name)) is not None:
        raise Refused(f"Request {dup.short_id} for `{dup.user_name}` is already open; wait for it or choose another name.")
    req = AccessRequest(
        short_id=new_short_id(),
        state=RequestState.PENDING,
        requester_id=actor_id,
        created_at=now,
        updated_at=now,
        **spec_columns(spec),
    )
    session.add(req)
    session.flush()
    audit.record(
        session,
        action="requested",
        actor=actor_id,
        now=now,
        request_id=req.id,
        draft=draft_id,
        user_name=spec.user_name,
        owner=spec.owner_id,
        access=spec.access_types,
        groups=list(spec.groups),
        policies=list(spec.policy_arns),
        copy_from=spec.copy_from,
        path=spec.path,
        boundary=spec.permissions_boundary,
    )
    return req


def get_request(session: Session, *, short_id: str) -> AccessRequest:
    req = session.scalars(select(AccessRequest).where(AccessRequest.short_id == short_id)).first()
    if req is None:
        raise Refused(f"There is no request `{short_id[:20]}`.")
    return req


# ---------------------------------------------------------------- decide


@dataclass(frozen=True)
class DecisionResult:
    request: AccessRequest
    won: bool


def check_may_decide(session: Session, *, short_id: str, actor_id: str, approvers: frozenset[str]) -> AccessRequest:
    req = get_request(session, short_id=short_id)
    refusal = rules.refusal_to_decide(
        rules.DecisionContext(
            actor_id=actor_id,
            requester_id=req.requester_id,
            owner_id=req.owner_id,
            approvers=approvers,
            state=RequestState(req.state),
            decided_by=req.decided_by,
        )
    )
    if refusal:
        raise Refused(refusal, audit="decision_refused", request_id=req.id)
    return req


def decide(
    session: Session,
    *,
    short_id: str,
    actor_id: str,
    approve: bool,
    approvers: frozenset[str],
    now: datetime,
    reason: str | None = None,
) -> AccessRequest:
    """Approve or deny; exactly one concurrent decision wins, the others get Refused."""
    req = check_may_decide(session, short_id=short_id, actor_id=actor_id, approvers=approvers)
    dst = RequestState.APPROVED if approve else RequestState.DENIED
    won = transition(
        session,
        request_id=req.id,
        src=RequestState.PENDING,
        dst=dst,
        now=now,
        decided_by=actor_id,
        decided_at=now,
        decision_reason=reason,
    )
    if not won:
        session.refresh(req)
        raise Refused(rules.already_decided_text(RequestState(req.state), req.decided_by), audit="decision_refused", request_id=req.id)
    session.add(Decision(request_id=req.id, approver_id=actor_id, approved=approve, reason=reason, created_at=now))
    if approve:
        session.add(
            ProvisioningJob(request_id=req.id, state=JobState.QUEUED, attempts=0, next_run_at=now, steps_done=[], created_at=now, updated_at=now)
        )
    audit.record(session, action="approved" if approve else "denied", actor=actor_id, now=now, request_id=req.id, reason=reason)
    return req


def cancel(session: Session, *, short_id: str, actor_id: str, now: datetime) -> AccessRequest:
    """The requester withdraws a pending request; like a decision, one change wins."""
    req = get_request(session, short_id=short_id)
    if actor_id != req.requester_id:
        raise Refused("Only the person who made this request can cancel it.", audit="cancel_refused", request_id=req.id)
    if not transition(session, request_id=req.id, src=RequestState.PENDING, dst=RequestState.CANCELLED, now=now):
        session.refresh(req)
        raise Refused(rules.already_decided_text(RequestState(req.state), req.decided_by), audit="cancel_refused", request_id=req.id)
    audit.record(session, action="cancelled", actor=actor_id, now=now, request_id=req.id)
    return req


# ---------------------------------------------------------------- status


def visible_request(session: Session, *, query: str, user_id: str, approvers: frozenset[str]) -> AccessRequest | None:
    """The request a person asks about, by short id, `#<number>` or user name, if they may see it."""
    q = query.strip().lstrip("#")
    conditions = [AccessRequest.short_id == q.upper(), AccessRequest.user_name_lower == q.lower()]
    if q.isascii() and q.isdigit() and len(q) <= 9:  # an id column holds no more; "²" is a digit too
        conditions.append(AccessRequest.id == int(q))
    stmt = select(AccessRequest).where(or_(*conditions))
    if user_id not in approvers:
        stmt = stmt.where(or_(AccessRequest.requester_id == user_id, AccessRequest.owner_id == user_id))
    return session.scalars(stmt.order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc()).limit(1)).first()


def timeline(session: Session, *, request_id: int) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id)))


def requests_of(session: Session, *, user_id: str, limit: int = 10) -> list[AccessRequest]:
    """A person's most recent requests, as requester or as owner."""
    stmt = select(AccessRequest).where(or_(AccessRequest.requester_id == user_id, AccessRequest.owner_id == user_id))
    return list(session.scalars(stmt.order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc()).limit(limit)))


def awaiting_decision(session: Session, *, approver_id: str, approvers: frozenset[str], limit: int = 10) -> list[AccessRequest]:
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
        .limit(limit)
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class HomeData:
    mine: list[AccessRequest]
    revealable: frozenset[int]  # ids of requests whose credentials wait for this owner
    awaiting: list[AccessRequest]
    recently_decided: list[AccessRequest]
    is_approver: bool


def home_data(session: Session, *, user_id: str, approvers: frozenset[str], now: datetime) -> HomeData:
    mine = requests_of(session, user_id=user_id, limit=15)
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
            )
        )
    )
    is_approver = user_id in approvers
    recent: list[AccessRequest] = []
    if is_approver:
        recent = list(
            session.scalars(
                select(AccessRequest)
                .where(AccessRequest.decided_by.is_not(None))
                .order_by(AccessRequest.decided_at.desc(), AccessRequest.id.desc())
                .limit(10)
            )
        )
    return HomeData(
        mine=mine,
        revealable=revealable,
        awaiting=awaiting_decision(session, approver_id=user_id, approvers=approvers, limit=15),
        recently_decided=recent,
        is_approver=is_approver,
    )


def people_to_refresh(session: Session, *, request_id: int, approvers: frozenset[str]) -> set[str]:
    """Whose App Home shows this request: its requester, its owner, and the approvers."""
    req = session.get(AccessRequest, request_id)
    return ({req.requester_id, req.owner_id} if req else set()) | set(approvers)


# ---------------------------------------------------------------- reveal


REVEAL_CLAIM_SECONDS = 60


def claim_reveal(session: Session, *, short_id: str, actor_id: str, now: datetime) -> tuple[AccessRequest, CredentialEnvelope]:
    """Reserve the one reveal; a second click while it is in flight (or after) is refused."""
    req = get_request(session, short_id=short_id)
    if refusal := rules.refusal_to_reveal(actor_id=actor_id, owner_id=req.owner_id):
        raise Refused(refusal, audit="reveal_refused", request_id=req.id)
    if RequestState(req.state) is not RequestState.COMPLETED:
        # While provisioning runs, the envelope holds partial credentials: never show those.
        raise Refused("The account is still being created; the credentials can be revealed once it is ready.")
    env = session.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == req.id)).first()
    if env is None or env.ciphertext is None or env.revealed_at is not None:
        raise Refused("These credentials were already revealed or have expired; they are no longer stored.")
    if env.expires_at <= now:
        raise Refused("These credentials have expired; ask an AWS admin to reset the password or create a new key.")
    stale = env.reveal_claimed_at is not None and (now - env.reveal_claimed_at).total_seconds() > REVEAL_CLAIM_SECONDS
    claimed = session.execute(
        update(CredentialEnvelope)
        .where(
            CredentialEnvelope.id == env.id,
            CredentialEnvelope.revealed_at.is_(None),
            CredentialEnvelope.ciphertext.is_not(None),
            CredentialEnvelope.reveal_claimed_at.is_(None) if not stale else CredentialEnvelope.reveal_claimed_at == env.reveal_claimed_at,
        )
        .values(reveal_claimed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise Refused("The credentials are being revealed in another window.")
    return req, env


def finish_reveal(session: Session, *, envelope_id: int, actor_id: str, now: datetime) -> None:
    env = session.get(CredentialEnvelope, envelope_id)
    assert env is not None
    env.ciphertext = None
    env.revealed_at = now
    env.purged_at = now
    audit.record(session, action="credentials_revealed", actor=actor_id, now=now, request_id=env.request_id)


def release_reveal(session: Session, *, envelope_id: int) -> None:
    """The modal could not be opened: keep the credentials so the owner can try again."""
    env = session.get(CredentialEnvelope, envelope_id)
    if env is not None and env.revealed_at is None:
        env.reveal_claimed_at = None
