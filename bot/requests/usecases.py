"""Use cases of the request lifecycle. Each goes: check state -> check actor -> change -> audit.

They take the session and keyword arguments and never commit: the caller opens the transaction
(`with sessionmaker.begin() as session:`), so a use case and its audit event land together.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.audit import trail as audit
from bot.policy import approval as rules
from bot.requests.lifecycle import transition
from bot.policy.rulebook import Evaluation
from bot.domain.spec import RequestSpec, spec_columns
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
BOT_ACTOR = "iam-bot"  # decided_by / audit actor when a rule, a guardrail or the clock decides
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


def submit_draft(
    session: Session,
    *,
    draft_id: str,
    actor_id: str,
    now: datetime,
    evaluation: Evaluation,
    expires_at: datetime | None = None,
    next_reminder_at: datetime | None = None,
) -> AccessRequest:
    """Turn a reviewed draft into a pending request, once (a double submit finds the draft gone).

    `evaluation` is the rulebook's verdict on the draft, made by the caller (it needs Slack for
    group membership): its rule, approvers and quorum are stored with the request.
    """
    spec = load_draft(session, draft_id=draft_id, actor_id=actor_id)
    if evaluation.refusals:
        raise Refused("Not submitted: " + " ".join(message for _field, message in evaluation.refusals))
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
        rule_name=evaluation.rule_name,
        quorum=evaluation.quorum,
        approver_users=list(evaluation.approver_users),
        approver_groups=list(evaluation.approver_groups),
        expires_at=expires_at,
        next_reminder_at=next_reminder_at,
        reminders_sent=0,
        break_glass=False,
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
        rule=evaluation.rule_name,
        quorum=evaluation.quorum,
        approvers=[*evaluation.approver_users, *evaluation.approver_groups],
        expires_at=expires_at,
    )
    return req


def get_request(session: Session, *, short_id: str, lock: bool = False) -> AccessRequest:
    stmt = select(AccessRequest).where(AccessRequest.short_id == short_id)
    if lock:
        # Deciders of one request queue here (PostgreSQL; SQLite serialises writers anyway), so
        # two approvals arriving together are counted one after the other: quorum is never missed.
        stmt = stmt.with_for_update()
    req = session.scalars(stmt).first()
    if req is None:
        raise Refused(f"There is no request `{short_id[:20]}`.")
    return req


# ---------------------------------------------------------------- decide


def approvers_of(req: AccessRequest, *, default_approvers: Iterable[str]) -> tuple[list[str], list[str]]:
    """(users, groups) who may approve; requests made before rules existed use the default rule."""
    if req.approver_users is None:
        return sorted(default_approvers), []
    return list(req.approver_users), list(req.approver_groups or [])


def approvals_of(session: Session, *, request_id: int) -> list[str]:
    rows = session.execute(
        select(Decision.approver_id, Decision.approved).where(Decision.request_id == request_id).order_by(Decision.id)
    ).all()
    return rules.distinct_approvals((r[0], r[1]) for r in rows)


def check_may_decide(
    session: Session,
    *,
    short_id: str,
    actor_id: str,
    default_approvers: Iterable[str],
    actor_groups: Iterable[str] = (),
    lock: bool = False,
) -> AccessRequest:
    """`actor_groups`: the Slack user groups the actor belongs to, read at decision time."""
    req = get_request(session, short_id=short_id, lock=lock)
    users, groups = approvers_of(req, default_approvers=default_approvers)
    allowed = rules.may_approve(actor_id, approver_users=users, approver_groups=groups, actor_groups=actor_groups)
    refusal = rules.refusal_to_decide(
        rules.DecisionContext(
            actor_id=actor_id,
            requester_id=req.requester_id,
            owner_id=req.owner_id,
            approvers=frozenset(users) | ({actor_id} if allowed else set()),
            state=RequestState(req.state),
            decided_by=req.decided_by,
            approved_by=frozenset(approvals_of(session, request_id=req.id)),
            quorum=req.quorum,
        )
    )
    if refusal:
        raise Refused(refusal, audit="decision_refused", request_id=req.id)
    return req


def _queue_job(session: Session, *, request_id: int, now: datetime) -> None:
    session.add(
        ProvisioningJob(request_id=request_id, state=JobState.QUEUED, attempts=0, next_run_at=now, steps_done=[], created_at=now, updated_at=now)
    )


def _late(session: Session, req: AccessRequest) -> Refused:
    session.refresh(req)
    return Refused(rules.already_decided_text(RequestState(req.state), req.decided_by), audit="decision_refused", request_id=req.id)


def decide(
    session: Session,
    *,
    short_id: str,
    actor_id: str,
    approve: bool,
    default_approvers: Iterable[str],
    now: datetime,
    actor_groups: Iterable[str] = (),
    reason: str | None = None,
) -> AccessRequest:
    """Record an approval (the request is approved once `quorum` distinct people approved) or deny.

    Any one deny denies. One row per approver and request (a UNIQUE constraint), so a repeated
    approval counts once; the final step is a compare-and-set, so of concurrent last approvals
    exactly one approves and queues the job. The request stays pending until the quorum is met.
    """
    req = check_may_decide(
        session, short_id=short_id, actor_id=actor_id, default_approvers=default_approvers, actor_groups=actor_groups, lock=True
    )
    if not approve:
        if not transition(
            session, request_id=req.id, src=RequestState.PENDING, dst=RequestState.DENIED, now=now,
            decided_by=actor_id, decided_at=now, decision_reason=reason, next_reminder_at=None,
        ):
            raise _late(session, req)
        session.add(Decision(request_id=req.id, approver_id=actor_id, approved=False, reason=reason, created_at=now))
        audit.record(session, action="denied", actor=actor_id, now=now, request_id=req.id, reason=reason)
        return req
    try:
        with session.begin_nested():
            session.add(Decision(request_id=req.id, approver_id=actor_id, approved=True, reason=reason, created_at=now))
    except IntegrityError:
        raise Refused("You already decided on this request; it needs someone else now. Nothing was changed.", audit="decision_refused", request_id=req.id) from None
    approvals = approvals_of(session, request_id=req.id)
    if not rules.quorum_reached(approvals, req.quorum):
        audit.record(
            session, action="approval_recorded", actor=actor_id, now=now, request_id=req.id,
            approvals=len(approvals), quorum=req.quorum,
        )
        return req
    if not transition(
        session, request_id=req.id, src=RequestState.PENDING, dst=RequestState.APPROVED, now=now,
        decided_by=actor_id, decided_at=now, decision_reason=reason, next_reminder_at=None,
    ):
        raise _late(session, req)
    _queue_job(session, request_id=req.id, now=now)
    audit.record(session, action="approved", actor=actor_id, now=now, request_id=req.id, reason=reason, approvals=approvals, quorum=req.quorum)
    return req


def auto_approve(session: Session, *, request_id: int, now: datetime) -> bool:
    """A low-risk request its rule approves at once: still audited, announced and provisioned as usual."""
    req = session.get(AccessRequest, request_id)
    assert req is not None
    why = f"auto-approved by rule {req.rule_name}"
    if not transition(
        session, request_id=request_id, src=RequestState.PENDING, dst=RequestState.APPROVED, now=now,
        decided_by=BOT_ACTOR, decided_at=now, decision_reason=why, next_reminder_at=None,
    ):
        return False
    _queue_job(session, request_id=request_id, now=now)
    audit.record(session, action="auto_approved", actor=BOT_ACTOR, now=now, request_id=request_id, rule=req.rule_name)
    return True


def deny_by_guardrail(session: Session, *, request_id: int, reason: str, now: datetime) -> bool:
    """A guardrail that could only be checked after submission (policy documents, copied permissions)."""
    if not transition(
        session, request_id=request_id, src=RequestState.PENDING, dst=RequestState.DENIED, now=now,
        decided_by=BOT_ACTOR, decided_at=now, decision_reason=reason, next_reminder_at=None,
    ):
        return False
    audit.record(session, action="denied", actor=BOT_ACTOR, now=now, request_id=request_id, reason=reason, guardrail=True)
    return True


def break_glass(session: Session, *, short_id: str, actor_id: str, allowed: bool, reason: str, now: datetime) -> AccessRequest:
    """A break-glass requester approves their own request: reason required, flagged for review."""
    req = get_request(session, short_id=short_id, lock=True)
    if actor_id != req.requester_id or not allowed:
        raise Refused("Only a requester listed for break-glass can approve their own request.", audit="break_glass_refused", request_id=req.id)
    if not reason.strip():
        raise Refused("Say why you need to break the glass.")
    if not transition(
        session, request_id=req.id, src=RequestState.PENDING, dst=RequestState.APPROVED, now=now,
        decided_by=actor_id, decided_at=now, decision_reason=reason, break_glass=True, next_reminder_at=None,
    ):
        raise _late(session, req)
    session.add(Decision(request_id=req.id, approver_id=actor_id, approved=True, reason=reason, created_at=now))
    _queue_job(session, request_id=req.id, now=now)
    audit.record(session, action="break_glass", actor=actor_id, now=now, request_id=req.id, reason=reason, review_required=True)
    return req


def expire(session: Session, *, request_id: int, now: datetime) -> bool:
    if not transition(session, request_id=request_id, src=RequestState.PENDING, dst=RequestState.EXPIRED, now=now, next_reminder_at=None):
        return False
    audit.record(session, action="expired", actor=BOT_ACTOR, now=now, request_id=request_id)
    return True


def cancel(session: Session, *, short_id: str, actor_id: str, now: datetime) -> AccessRequest:
    """The requester withdraws a pending request; like a decision, one change wins."""
    req = get_request(session, short_id=short_id)
    if actor_id != req.requester_id:
        raise Refused("Only the person who made this request can cancel it.", audit="cancel_refused", request_id=req.id)
    if not transition(session, request_id=req.id, src=RequestState.PENDING, dst=RequestState.CANCELLED, now=now, next_reminder_at=None):
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


def awaiting_decision(
    session: Session,
    *,
    approver_id: str,
    approvers: frozenset[str],
    limit: int = 10,
    user_groups: Iterable[str] = (),
    default_approvers: Iterable[str] = (),
) -> list[AccessRequest]:
    """Pending requests this person may decide on now (named by the request's rule, or in its groups)."""
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
    out = []
    for req in session.scalars(stmt):
        users, groups = approvers_of(req, default_approvers=default_approvers)
        if rules.may_approve(approver_id, approver_users=users, approver_groups=groups, actor_groups=user_groups):
            if approver_id not in approvals_of(session, request_id=req.id):
                out.append(req)
        if len(out) == limit:
            break
    return out


@dataclass(frozen=True)
class HomeData:
    mine: list[AccessRequest]
    revealable: frozenset[int]  # ids of requests whose credentials wait for this owner
    awaiting: list[AccessRequest]
    recently_decided: list[AccessRequest]
    is_approver: bool


def home_data(
    session: Session,
    *,
    user_id: str,
    approvers: frozenset[str],
    now: datetime,
    user_groups: Iterable[str] = (),
    default_approvers: Iterable[str] = (),
) -> HomeData:
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
        awaiting=awaiting_decision(
            session, approver_id=user_id, approvers=approvers, limit=15, user_groups=user_groups, default_approvers=default_approvers
        ),
        recently_decided=recent,
        is_approver=is_approver,
    )


def people_to_refresh(session: Session, *, request_id: int, approvers: frozenset[str]) -> set[str]:
    """Whose App Home shows this request: its requester, its owner, and the approvers (users, groups expanded)."""
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
