"""Requests in the database: rows to plain values (specs, plans, views), plans stored insert-only,
jobs queued. Everything here takes the caller's session and never commits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.common.errors import Refused
from bot.domain.accounts import OWN, qualified
from bot.domain.plan import Plan, plan_digest
from bot.domain.spec import RequestSpec
from bot.domain.views import MfaState, RequestView, TemporaryView
from bot.policy import approval
from bot.requests import grants
from models import AccessRequest, ApprovalMessage, Decision, Job, JobKind, JobState, MfaWatch, PolicyDocument, RequestState, UserExpiry
from models import Plan as PlanRow

OPEN_STATES = (RequestState.SUBMITTED, RequestState.PENDING, RequestState.APPROVED, RequestState.PROVISIONING)


class PlanIntegrityError(Exception):
    """A stored plan whose body no longer hashes to its digest: it was changed after it was made."""


# ---------------------------------------------------------------- the ask


def spec_columns(spec: RequestSpec) -> dict[str, Any]:
    """The AccessRequest columns that hold a spec (the one mapping between the two)."""
    return {
        "owner_id": spec.owner_id,
        "user_name": spec.user_name,
        "user_name_lower": spec.user_name.lower(),
        "console_access": spec.console_access,
        "access_key": spec.access_key,
        "groups": list(spec.groups),
        "policy_arns": list(spec.policy_arns),
        "copy_from": spec.copy_from,
        "path": spec.path,
        "tags": dict(spec.tags),
        "permissions_boundary": spec.permissions_boundary,
        "reason": spec.reason,
        "user_expires_on": spec.expires_on,
        "removals": list(spec.remove) or None,
        "grant_for": spec.grant_for,
        "account": spec.account,
    }


def spec_of(req: AccessRequest) -> RequestSpec:
    return RequestSpec(
        user_name=req.user_name,
        console_access=req.console_access,
        access_key=req.access_key,
        owner_id=req.owner_id,
        reason=req.reason,
        groups=tuple(req.groups or ()),
        policy_arns=tuple(req.policy_arns or ()),
        copy_from=req.copy_from,
        path=req.path,
        tags=tuple((k, v) for k, v in (req.tags or {}).items()),
        permissions_boundary=req.permissions_boundary,
        expires_on=req.user_expires_on,
        remove=tuple(req.removals or ()),
        grant_for=req.grant_for,
        account=req.account or "",
    )


# ---------------------------------------------------------------- finding requests


def get_request(session: Session, *, short_id: str, lock: bool = False) -> AccessRequest:
    """The request a person names; Refused (safe to show) if there is none."""
    stmt = select(AccessRequest).where(AccessRequest.short_id == short_id)
    if lock:
        # Deciders of one request queue here (PostgreSQL; SQLite serialises writers anyway), so two
        # approvals arriving together are counted one after the other: quorum is never missed.
        stmt = stmt.with_for_update()
    req = session.scalars(stmt).first()
    if req is None:
        raise Refused(f"There is no request `{short_id[:20]}`.")
    return req


def load_request(session: Session, request_id: int, *, lock: bool = False) -> AccessRequest:
    """A request the bot itself refers to (a job, an announcement): it always exists."""
    req = session.get(AccessRequest, request_id, with_for_update=lock)
    if req is None:
        raise LookupError(f"request row {request_id} does not exist")
    return req


def bundle_members(session: Session, *, bundle: str, lock: bool = False) -> list[AccessRequest]:
    """Every request of one ask for several accounts, by id (`lock`: decided one click after the other)."""
    stmt = select(AccessRequest).where(AccessRequest.bundle == bundle).order_by(AccessRequest.id)
    if lock:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def held_bundles(session: Session) -> list[str]:
    """Asks for several accounts with a member planned and held, waiting to be asked with the others."""
    return list(session.scalars(
        select(AccessRequest.bundle).where(
            AccessRequest.bundle.is_not(None), AccessRequest.state == RequestState.SUBMITTED, AccessRequest.plan_digest.is_not(None),
        ).distinct()
    ))


def account_of(session: Session, request_id: int) -> str:
    """The account a request acts in ("" for the bot's own): where its user, key or watch lives."""
    return session.scalars(select(AccessRequest.account).where(AccessRequest.id == request_id)).one()


def last_account_of(session: Session, *, requester_id: str) -> str | None:
    """The account of a person's latest request (their form starts on it); None if they never asked."""
    return session.scalars(
        select(AccessRequest.account).where(AccessRequest.requester_id == requester_id, AccessRequest.kind == "create_user")
        .order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc()).limit(1)
    ).first()


def open_request_for_name(session: Session, *, user_name: str, account: str = OWN, besides: int | None = None) -> AccessRequest | None:
    """An open request for this user name in this account, other than request `besides`."""
    where = [AccessRequest.user_name_lower == user_name.lower(), AccessRequest.account == account, AccessRequest.state.in_(OPEN_STATES)]
    if besides is not None:
        where.append(AccessRequest.id != besides)
    return session.scalars(select(AccessRequest).where(*where).limit(1)).first()


LIFE_KINDS = ("create_user", "offboard", "expire_delete")  # the requests that begin and end the bot's hold on a user


def _latest_life(session: Session, *, user_name: str, account: str) -> AccessRequest | None:
    """The latest completed request that began or ended the bot's hold on this user name in this account."""
    return session.scalars(
        select(AccessRequest)
        .where(
            AccessRequest.user_name_lower == user_name.lower(), AccessRequest.account == account,
            AccessRequest.kind.in_(LIFE_KINDS), AccessRequest.state == RequestState.COMPLETED,
        )
        .order_by(AccessRequest.id.desc())
        .limit(1)
    ).first()


def creating_request(session: Session, *, user_name: str, account: str = OWN) -> AccessRequest | None:
    """The completed request that created the IAM user of this name in this account (the latest, if it
    was made again); None once an offboarding completed after it: the bot no longer has that user."""
    req = _latest_life(session, user_name=user_name, account=account)
    return req if req is not None and req.kind == "create_user" else None


def offboarding_of(session: Session, *, user_name: str, account: str = OWN) -> AccessRequest | None:
    """The completed offboarding that ended the bot's hold on this user, if that is the latest word on it."""
    req = _latest_life(session, user_name=user_name, account=account)
    return req if req is not None and req.kind != "create_user" else None


def not_ours(session: Session, *, user_name: str, account: str = OWN) -> str:
    """Why the bot has no user of this name, in words: never made by it, or offboarded."""
    gone = offboarding_of(session, user_name=user_name, account=account)
    where = f" in {account}" if account else ""
    if gone is not None:
        return f"`{gone.user_name}`{where} was offboarded by request {gone.short_id}: the bot no longer has that user"
    return f"`{user_name[:64]}` is not a user the bot created{where}"


def _alive(session: Session) -> dict[tuple[str, str], tuple[str, str]]:
    """Every IAM user the bot has now, by account and lower-cased name (IAM names are unique regardless of
    case), to (its name, its owner): a name made again has its latest owner; an offboarded one is gone."""
    rows = session.execute(
        select(AccessRequest.account, AccessRequest.user_name, AccessRequest.owner_id, AccessRequest.kind)
        .where(AccessRequest.kind.in_(LIFE_KINDS), AccessRequest.state == RequestState.COMPLETED)
        .order_by(AccessRequest.id)
    ).all()
    alive: dict[tuple[str, str], tuple[str, str]] = {}
    for account, name, owner, kind in rows:
        if kind == "create_user":
            alive[(account, name.lower())] = (name, owner)
        else:
            alive.pop((account, name.lower()), None)
    return alive


def users_owned_by(session: Session, *, owner_id: str) -> list[str]:
    """The IAM users the bot created for this owner (and did not offboard since), as people name them:
    `alice` in the bot's own account, `prod:alice` in a member account (bot.domain.accounts.qualified)."""
    return sorted(qualified(account, name) for (account, _), (name, owner) in _alive(session).items() if owner == owner_id)


def managed_users(session: Session, *, account: str | None = None) -> dict[str, str]:
    """Every IAM user the bot has now (in `account`, if given), by lower-cased name, to its owner."""
    return {lower: owner for (acct, lower), (_, owner) in _alive(session).items() if account is None or acct == account}


# ---------------------------------------------------------------- approvals


def approvers_of(req: AccessRequest, *, default_approvers: Iterable[str]) -> tuple[list[str], list[str]]:
    """(users, groups) who may approve; requests made before rules existed use the default rule."""
    if req.approver_users is None:
        return sorted(default_approvers), []
    return list(req.approver_users), list(req.approver_groups or [])


def _for_digest(digest: str | None) -> Any:
    return Decision.plan_digest.is_(None) if digest is None else Decision.plan_digest == digest


def approvals_of(session: Session, *, request_id: int, digest: str | None) -> list[str]:
    """Who approved this plan of the request, each once, in order (approvals of another plan lapsed)."""
    rows = session.execute(
        select(Decision.approver_id, Decision.approved)
        .where(Decision.request_id == request_id, _for_digest(digest))
        .order_by(Decision.id)
    ).all()
    return approval.distinct_approvals((r[0], r[1]) for r in rows)


# ---------------------------------------------------------------- plans and their documents


def save_plan(session: Session, *, request_id: int, plan: Plan, documents: Mapping[str, Mapping[str, Any]], now: datetime) -> str:
    """Store a plan (once per digest) and the documents it names (once per hash); returns its digest."""
    body = plan.to_body()
    digest = plan_digest(body)
    wanted = set(plan.grant.documents) | {s.document for s in plan.steps if s.document}
    have = set(session.scalars(select(PolicyDocument.digest).where(PolicyDocument.digest.in_(wanted)))) if wanted else set()
    for doc_hash in sorted(wanted - have):
        if doc_hash in documents:
            session.add(PolicyDocument(digest=doc_hash, document=dict(documents[doc_hash]), created_at=now))
    exists = session.scalars(select(PlanRow.id).where(PlanRow.request_id == request_id, PlanRow.digest == digest)).first()
    if exists is None:
        session.add(PlanRow(request_id=request_id, digest=digest, body=body, created_at=now))
    session.flush()
    return digest


def plan_of(session: Session, *, request_id: int, digest: str) -> Plan:
    """The stored plan with this digest, checked: a body that no longer hashes to it is refused."""
    row = session.scalars(select(PlanRow).where(PlanRow.request_id == request_id, PlanRow.digest == digest)).first()
    if row is None:
        raise PlanIntegrityError(f"request row {request_id} has no plan {digest[:12]}")
    if plan_digest(row.body) != digest:
        raise PlanIntegrityError(f"the stored plan {digest[:12]} of request row {request_id} does not match its digest")
    return Plan.from_body(row.body)


def documents(session: Session, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    return {d.digest: d.document for d in session.scalars(select(PolicyDocument).where(PolicyDocument.digest.in_(wanted)))}


# ---------------------------------------------------------------- views


def views_of(session: Session, reqs: Sequence[AccessRequest], *, with_plans: bool = False, members: bool = True) -> list[RequestView]:
    """Plain snapshots of requests, with two queries for all of them (approvals, and plans if asked); a
    request asked with others for several accounts carries theirs (`members`)."""
    if not reqs:
        return []
    if members and any(r.bundle for r in reqs):
        bundles = {r.bundle for r in reqs if r.bundle}
        rows = list(session.scalars(select(AccessRequest).where(AccessRequest.bundle.in_(bundles)).order_by(AccessRequest.id)))
        others = {v.id: v for v in views_of(session, rows, with_plans=with_plans, members=False)}
        return [
            replace(v, members=tuple(o for o in others.values() if o.bundle == v.bundle and o.id != v.id)) if v.bundle else v
            for v in views_of(session, reqs, with_plans=with_plans, members=False)
        ]
    ids = [r.id for r in reqs]
    decided: dict[int, list[tuple[str | None, str, bool]]] = defaultdict(list)
    for request_id, digest, who, approved in session.execute(
        select(Decision.request_id, Decision.plan_digest, Decision.approver_id, Decision.approved)
        .where(Decision.request_id.in_(ids))
        .order_by(Decision.id)
    ):
        decided[request_id].append((digest, who, approved))
    plans: dict[tuple[int, str], Plan] = {}
    if with_plans:
        for row in session.scalars(select(PlanRow).where(PlanRow.request_id.in_(ids))):
            plans[(row.request_id, row.digest)] = Plan.from_body(row.body)
    mfa = {
        w.request_id: MfaState(enrolled=w.enrolled_at is not None, checked_at=w.checked_at)
        for w in session.scalars(select(MfaWatch).where(MfaWatch.request_id.in_(ids), MfaWatch.gone_at.is_(None)))
    }
    ends = {e.request_id: e.expires_at for e in session.scalars(select(UserExpiry).where(UserExpiry.request_id.in_(ids)))}
    temporary = {
        request_id: tuple(TemporaryView(id=g.id, kind=g.kind, target=g.target, ends_at=g.ends_at, ending=g.revoke_request_id is not None) for g in rows)
        for request_id, rows in grants.of_requests(session, ids).items()
    }
    out = []
    for req in reqs:
        approvals = approval.distinct_approvals((who, ok) for digest, who, ok in decided[req.id] if digest == req.plan_digest)
        risk = req.risk or {}
        out.append(
            RequestView(
                id=req.id,
                short_id=req.short_id,
                state=req.state,
                requester_id=req.requester_id,
                spec=spec_of(req),
                created_at=req.created_at,
                updated_at=req.updated_at,
                decided_by=req.decided_by,
                decided_at=req.decided_at,
                decision_reason=req.decision_reason,
                failure_reason=req.failure_reason,
                user_arn=req.user_arn,
                rule_name=req.rule_name,
                quorum=req.quorum or 1,
                approvals=tuple(approvals),
                risk_flags=tuple(str(f) for f in risk.get("flags") or ()),
                risk_summary=str(risk.get("summary") or ""),
                break_glass=req.break_glass,
                expires_at=req.expires_at,
                plan=plans.get((req.id, req.plan_digest)) if req.plan_digest else None,
                plan_digest=req.plan_digest,
                plan_changes=tuple(req.plan_changes or ()),
                kind=req.kind,
                mfa=mfa.get(req.id),
                ends=ends.get(req.id),
                temporary=temporary.get(req.id, ()),
                bundle=req.bundle,
            )
        )
    return out


def view_of(session: Session, req: AccessRequest, *, plan: bool = True) -> RequestView:
    """`plan=False` for messages that never show the plan (the credentials DM, the reveal): one read less."""
    return views_of(session, [req], with_plans=plan)[0]


# ---------------------------------------------------------------- where approvers were asked


def approval_places(session: Session, *, request_id: int) -> list[tuple[str, str]]:
    """(channel, ts) of every message that carries (or carried) the request's buttons."""
    return [(m.channel_id, m.ts) for m in session.scalars(select(ApprovalMessage).where(ApprovalMessage.request_id == request_id).order_by(ApprovalMessage.id))]


def add_approval_places(session: Session, *, request_id: int, places: Iterable[tuple[str, str]]) -> None:
    for channel, ts in places:
        session.add(ApprovalMessage(request_id=request_id, channel_id=channel, ts=ts))


# ---------------------------------------------------------------- jobs


def enqueue_job(session: Session, *, request_id: int, kind: JobKind, now: datetime) -> None:
    """Queue the request's job of this kind: a new row, or its row queued again from the start."""
    job = session.scalars(select(Job).where(Job.request_id == request_id, Job.kind == kind.value).with_for_update()).first()
    if job is None:
        session.add(Job(request_id=request_id, kind=kind.value, state=JobState.QUEUED, attempts=0, next_run_at=now, steps_done=[], created_at=now, updated_at=now))
        return
    job.state = JobState.QUEUED
    job.attempts = 0
    job.next_run_at = now
    job.lease_owner = None
    job.lease_expires_at = None
    job.steps_done = []
    job.last_error = None
    job.updated_at = now
