"""Use cases of the request lifecycle. Each goes: check state -> check actor -> change -> audit.

They take the session and keyword arguments and never commit: the caller (a workflow or a job, at
the edge) opens the transaction, so a use case and its audit event land together. No Slack, no AWS.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import or_, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.audit import trail as audit
from bot.common.sql import compare_and_set
from bot.common.constants import BOT_ACTOR, REVEAL_CLAIM_WINDOW
from bot.common.errors import Refused
from bot.credentials import envelopes
from bot.domain.accounts import OWN
from bot.domain.plan import Plan, PlanKind, bundle_digest
from bot.domain.spec import RequestSpec
from bot.policy import approval, gate
from bot.policy.gate import Verdict
from bot.policy.rulebook import Evaluation, Rulebook
from bot.requests import expiries, grants, store
from bot.requests.lifecycle import transition
from models import AccessRequest, CredentialEnvelope, Decision, JobKind, RequestDraft, RequestState, TemporaryGrant

S = RequestState
_ID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: easy to read aloud


def record_refusal(session: Session, *, refused: Refused, actor_id: str, now: datetime) -> None:
    if refused.audit:
        audit.record(session, action=refused.audit, actor=actor_id, now=now, request_id=refused.request_id, why=str(refused))


def new_short_id() -> str:
    return "R" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


def _late(session: Session, req: AccessRequest, *, audit_as: str = "decision_refused") -> Refused:
    session.refresh(req)
    return Refused(approval.already_decided_text(req.state, req.decided_by), audit=audit_as, request_id=req.id)


# ---------------------------------------------------------------- the ask


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
    session: Session, *, draft_id: str, actor_id: str, now: datetime, evaluation: Evaluation, expires_at: datetime | None = None,
    evaluations: Mapping[str, Evaluation] | None = None, specs: Mapping[str, RequestSpec] | None = None,
) -> AccessRequest:
    """Turn a reviewed draft into a submitted request, once (a double submit finds the draft gone),
    and queue its plan job: the worker resolves it against IAM, judges it and asks the approvers.

    `evaluation` is the rulebook's verdict on the draft, made by the caller (it needs Slack for
    group membership): its rule, approvers, quorum and auto-approval are stored with the request.
    A draft for several accounts becomes a request per account (`evaluations`: the verdict in each;
    `specs`: what is asked in each), asked together: they carry the first one's short id as their bundle.
    Returns the first.
    """
    spec = load_draft(session, draft_id=draft_id, actor_id=actor_id)
    verdicts = {spec.account: evaluation, **(evaluations or {})}
    for account in spec.accounts:
        if (ev := verdicts.get(account)) is None:
            raise Refused("This request changed since it was checked; start again with `/iam request`.")
        if ev.refusals:
            where = f" (in {account})" if len(spec.accounts) > 1 else ""
            raise Refused(f"Not submitted{where}: " + " ".join(message for _field, message in ev.refusals))
    gone = session.execute(delete(RequestDraft).where(RequestDraft.id == draft_id)).rowcount
    if gone != 1:
        raise Refused("This request was already submitted.")
    bundle = new_short_id() if len(spec.accounts) > 1 else None  # also the first member's short id
    made = [
        _submit_one(session, spec=(specs or {}).get(account) or replace(spec, account=account, also_accounts=()), actor_id=actor_id, now=now, evaluation=verdicts[account],
                    expires_at=expires_at, draft_id=draft_id, bundle=bundle, short_id=bundle if i == 0 else None)
        for i, account in enumerate(spec.accounts)
    ]
    return made[0]


def _submit_one(
    session: Session, *, spec: RequestSpec, actor_id: str, now: datetime, evaluation: Evaluation, expires_at: datetime | None, draft_id: str,
    bundle: str | None, short_id: str | None,
) -> AccessRequest:
    if (dup := store.open_request_for_name(session, user_name=spec.user_name, account=spec.account)) is not None:
        where = f" in {spec.account}" if spec.account else ""
        raise Refused(f"Request {dup.short_id} for `{dup.user_name}`{where} is already open; wait for it or choose another name.")
    req = AccessRequest(
        short_id=short_id or new_short_id(),
        kind="create_user",
        state=S.SUBMITTED,
        requester_id=actor_id,
        created_at=now,
        updated_at=now,
        rule_name=evaluation.rule_name,
        quorum=evaluation.quorum,
        approver_users=list(evaluation.approver_users),
        approver_groups=list(evaluation.approver_groups),
        auto_approve=evaluation.auto_approve,
        expires_at=expires_at,
        next_reminder_at=None,
        reminders_sent=0,
        break_glass=False,
        bundle=bundle,
        **store.spec_columns(spec),
    )
    session.add(req)
    session.flush()
    store.enqueue_job(session, request_id=req.id, kind=JobKind.PLAN, now=now)
    audit.record(
        session,
        action="requested",
        actor=actor_id,
        now=now,
        request_id=req.id,
        draft=draft_id,
        user_name=spec.user_name,
        **({"account": spec.account} if spec.account else {}),
        **({"bundle": bundle} if bundle else {}),
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


# ---------------------------------------------------------------- day two: new credentials

def file_held_key(session: Session, *, creating_id: int, now: datetime) -> AccessRequest | None:
    """The access key that create request `creating_id` held until its user had MFA on, asked for now on
    the owner's behalf (its approval covers it: bot.policy.gate.HELD_KEY_RULE). None while another
    request for the user is open: asked again at the next look."""
    creating = store.load_request(session, creating_id)
    if store.open_request_for_name(session, user_name=creating.user_name, account=creating.account) is not None:
        return None
    req = _day_two_request(session, kind="held_key", requester_id=creating.owner_id, creating=creating, now=now)
    audit.record(session, action="requested", actor=BOT_ACTOR, now=now, request_id=req.id, kind="held_key", user_name=creating.user_name,
                 owner=creating.owner_id, approved_with=creating.short_id)
    return req


def file_credentials_request(
    session: Session, *, kind: str, actor_id: str, user_name: str, is_approver: bool, now: datetime, account: str = OWN
) -> AccessRequest:
    """Ask for new credentials (`rotate_key`, `reset_password`) for a user the bot created, for its owner.

    Only the owner, or an approver, may ask; the plan job reads IAM, plans and judges it (an owner's
    own ask is served at once where the rules allow). The credentials go to the owner, as at creation.
    """
    what = "a " + PlanKind(kind).brings
    return _ask_about_user(
        session, kind=kind, actor_id=actor_id, user_name=user_name, account=account, is_approver=is_approver, now=now,
        not_ours=f"so it cannot give it {what}. Ask your AWS admins.", may=f"ask for {what}",
    )


def file_removal_request(
    session: Session, *, kind: str, actor_id: str, user_name: str, is_approver: bool, now: datetime, reason: str = "", beside: int | None = None,
    account: str = OWN,
) -> AccessRequest:
    """Ask to disable or offboard a user the bot created: its owner or an approver may ask; a person
    decides (bot.policy.gate.judge_removal). Users the bot did not create are not its to remove.
    `beside`: the open request this one may run beside (a departed owner's offboarding, while its user is disabled now)."""
    verb = "offboard" if kind == "offboard" else "disable"
    return _ask_about_user(
        session, kind=kind, actor_id=actor_id, user_name=user_name, account=account, is_approver=is_approver, now=now, beside=beside, reason=reason,
        not_ours=f"so the bot does not {verb} it: a user made by hand is removed by hand, by your AWS admins.", may=f"ask to {verb} it",
    )


def file_extension_request(
    session: Session, *, actor_id: str, user_name: str, is_approver: bool, expires_on: str, now: datetime, account: str = OWN
) -> AccessRequest:
    """Ask for a later end date for a user the bot created with one: its owner or an approver may ask; a person decides."""

    def has_an_end(creating: AccessRequest) -> None:
        if expiries.current(session, user_name=user_name, account=account) is None:
            raise Refused(f"`{creating.user_name}` has no end date: there is nothing to extend.")

    return _ask_about_user(
        session, kind="extend", actor_id=actor_id, user_name=user_name, account=account, is_approver=is_approver, now=now, expires_on=expires_on,
        reason=lambda creating: f"More time for `{creating.user_name}`: until {expires_on}.",
        not_ours="so it has no end date the bot could move.", may="ask for more time", check=has_an_end,
    )


def _ask_about_user(
    session: Session, *, kind: str, actor_id: str, user_name: str, is_approver: bool, now: datetime, not_ours: str, may: str,
    account: str = OWN, beside: int | None = None, reason: str | Callable[[AccessRequest], str] = "", expires_on: str | None = None,
    check: Callable[[AccessRequest], None] | None = None, spec: Callable[[AccessRequest], RequestSpec] | None = None,
) -> AccessRequest:
    """A day-two request about a user the bot created: only for such a user, asked by its owner or an
    approver, with no other request for it open (but `beside`); `check` refuses what else the kind needs."""
    creating = store.creating_request(session, user_name=user_name, account=account)
    if creating is None:
        raise Refused(f"{store.not_ours(session, user_name=user_name, account=account)}, {not_ours}")
    if check is not None:
        check(creating)
    if actor_id != creating.owner_id and not is_approver:
        raise Refused(f"`{creating.user_name}` belongs to <@{creating.owner_id}>: only its owner (or an approver) can {may}.")
    if (dup := store.open_request_for_name(session, user_name=user_name, account=account, besides=beside)) is not None:
        raise Refused(f"Request {dup.short_id} for `{dup.user_name}` is still open; wait until it is done, then ask again.")
    said = reason(creating) if callable(reason) else reason
    asked = spec(creating) if spec is not None else None
    req = _day_two_request(session, kind=kind, requester_id=actor_id, creating=creating, now=now, reason=said, expires_on=expires_on, spec=asked)
    details: dict[str, Any] = {"expires_on": expires_on} if expires_on else {}
    if asked is not None:  # a change: what it adds and takes away, as asked
        details.update(access=asked.access_types, groups=list(asked.groups), policies=list(asked.policy_arns), remove=list(asked.remove),
                       grant_for=asked.grant_for)
    if creating.account:
        details["account"] = creating.account
    audit.record(session, action="requested", actor=actor_id, now=now, request_id=req.id, kind=kind, user_name=creating.user_name,
                 owner=creating.owner_id, **details)
    return req


def _day_two_request(
    session: Session, *, kind: str, requester_id: str, creating: AccessRequest, now: datetime, reason: str = "", expires_on: str | None = None,
    spec: RequestSpec | None = None,
) -> AccessRequest:
    """`spec`: what a change or a grant's end asks (else the kind says it: a key, a password, nothing)."""
    spec = spec or RequestSpec(
        user_name=creating.user_name, console_access=kind == "reset_password", access_key=kind in ("rotate_key", "held_key"),
        owner_id=creating.owner_id, reason=reason or f"No reason given; the plan below says what it does ({PlanKind(kind).brings}).", path=creating.path,
        expires_on=expires_on,
    )
    spec = replace(spec, account=creating.account)  # a user is acted on in the account it was made in
    req = AccessRequest(
        short_id=new_short_id(),
        kind=kind,
        state=S.SUBMITTED,
        requester_id=requester_id,
        created_at=now,
        updated_at=now,
        quorum=1,
        approver_users=None,  # the plan job's verdict names them
        approver_groups=None,
        expires_at=None,
        next_reminder_at=None,
        reminders_sent=0,
        break_glass=False,
        **store.spec_columns(spec),
    )
    session.add(req)
    session.flush()
    store.enqueue_job(session, request_id=req.id, kind=JobKind.PLAN, now=now)
    return req


# ---------------------------------------------------------------- day two: change a user, grants for a time


def file_change_request(
    session: Session, *, actor_id: str, is_approver: bool, change: RequestSpec, now: datetime, expires_at: datetime | None = None
) -> AccessRequest:
    """Ask to change a user the bot created (`change`: what it adds and takes away): its owner or an
    approver may ask; the plan job reads IAM, plans the difference and judges the user's whole grant after it."""

    def fill(creating: AccessRequest) -> RequestSpec:
        return replace(change, user_name=creating.user_name, owner_id=creating.owner_id, path=creating.path,
                       permissions_boundary=creating.permissions_boundary, copy_from=None, tags=(), expires_on=None)

    req = _ask_about_user(
        session, kind="change", actor_id=actor_id, user_name=change.user_name, account=change.account, is_approver=is_approver, now=now,
        not_ours="so the bot does not change it: a user made by hand is changed by hand, by your AWS admins.", may="change it", spec=fill,
    )
    req.expires_at = expires_at  # unanswered, it expires like a new user's request
    return req


def file_grant_extension(
    session: Session, *, actor_id: str, grant_id: int, is_approver: bool, ends: str, now: datetime, expires_at: datetime | None = None
) -> AccessRequest:
    """Ask to keep a time-bound grant until `ends` (a moment): a new request, planned and judged like a change."""
    grant = session.get(TemporaryGrant, grant_id)
    if grant is None or grant.ended_at is not None:
        raise Refused("That temporary grant has ended already. To have it again, ask for it with `/iam change`.")
    if grant.revoke_request_id is not None:
        raise Refused("That temporary grant is being taken away now; ask for it again with `/iam change` once it is done.")
    if actor_id not in (grant.owner_id, grant.requester_id) and not is_approver:
        raise Refused(f"Only the owner <@{grant.owner_id}>, who asked for it, or an approver can extend this grant.")
    label = grant.target.rsplit("/", 1)[-1]

    def fill(creating: AccessRequest) -> RequestSpec:
        return RequestSpec(
            user_name=creating.user_name, console_access=False, access_key=False, owner_id=creating.owner_id, path=creating.path,
            reason=f"Keep {grant.kind} `{label}` until {ends.replace('T', ' ').replace('Z', ' UTC')} (it was to end {grant.ends_at:%Y-%m-%d %H:%M} UTC).",
            groups=(grant.target,) if grant.kind == "group" else (), policy_arns=(grant.target,) if grant.kind == "policy" else (),
            permissions_boundary=creating.permissions_boundary, grant_for=ends,
        )

    req = _ask_about_user(
        session, kind="extend_grant", actor_id=actor_id, user_name=grant.user_name, account=store.load_request(session, grant.request_id).account,
        is_approver=True, now=now,
        not_ours="so it has no grant the bot could extend.", may="extend it", spec=fill,
    )
    req.expires_at = expires_at
    return req


def file_revoke_request(session: Session, *, grant_ids: list[int], actor_id: str, now: datetime, why: str) -> AccessRequest | None:
    """Take away time-bound grants of one user: their time ended (`actor_id` the bot) or their owner is done
    with them. Each grant is claimed by compare-and-set, so of several replicas (or clicks) one files it;
    None if none was left to claim. Filed beside any other open request for the user: an end is kept on time."""
    rows = [g for g in (session.get(TemporaryGrant, i) for i in grant_ids) if g is not None and g.ended_at is None and g.revoke_request_id is None]
    if not rows:
        return None
    user_name = rows[0].user_name
    creating = store.load_request(session, rows[0].request_id)
    creator = store.creating_request(session, user_name=user_name, account=creating.account)
    spec = RequestSpec(
        user_name=user_name, console_access=False, access_key=False, owner_id=rows[0].owner_id, reason=why, path=creating.path,
        remove=tuple(f"{g.kind}:{g.target}" for g in rows),
    )
    # The bot's hold on the user is named by the request that created it (a change's grant, too); gone: nothing to take.
    anchor = creator or creating
    req = _day_two_request(session, kind="revoke", requester_id=actor_id, creating=anchor, now=now, spec=spec)
    claimed = [g.id for g in rows if compare_and_set(session, TemporaryGrant, where=[TemporaryGrant.id == g.id, TemporaryGrant.revoke_request_id.is_(None)],
                                                       values={"revoke_request_id": req.id})]
    if len(claimed) != len(rows):  # another replica or click took some meanwhile: file nothing, the caller's transaction rolls back
        raise Refused("Someone else is taking that grant away already.")
    audit.record(session, action="requested", actor=actor_id, now=now, request_id=req.id, kind="revoke", user_name=user_name,
                 owner=rows[0].owner_id, grants=[f"{g.kind}:{g.target}" for g in rows], why=why)
    return req


# ---------------------------------------------------------------- the plan


def record_plan(
    session: Session,
    *,
    request_id: int,
    plan: Plan,
    documents: dict[str, Any],
    risk: dict[str, Any],
    changes: list[str],
    now: datetime,
    verdict: Verdict | None = None,
    rulebook: Rulebook | None = None,
) -> str:
    """Store the plan the request is now about (and what the bot judged of it); returns its digest.

    With a `verdict`, the rule it chose (who approves, how many) becomes the request's: the rule
    is decided on the plan's effective grant, never on the form.
    """
    digest = store.save_plan(session, request_id=request_id, plan=plan, documents=documents, now=now)
    req = store.load_request(session, request_id)
    previous = req.plan_digest
    req.plan_digest = digest
    req.risk = risk
    req.plan_changes = changes or None
    if verdict is not None and rulebook is not None:
        _assign_rule(req, verdict, rulebook)
    audit.record(
        session,
        action="planned",
        actor=BOT_ACTOR,
        now=now,
        request_id=request_id,
        digest=digest,
        account=plan.account,
        steps=[s.key for s in plan.steps],
        grants=len(plan.grant.policies),
        unknown=list(plan.grant.unknown),
        replaces=previous,
        changes=changes,
    )
    return digest


def ask(session: Session, *, request_id: int, now: datetime, expires_at: datetime | None, next_reminder_at: datetime | None) -> bool:
    """The plan is made and judged: the request now waits for its approvers."""
    return transition(
        session, request_id=request_id, src=S.SUBMITTED, dst=S.PENDING, now=now,
        expires_at=expires_at, next_reminder_at=next_reminder_at, reminders_sent=0,
    )


def finalize_bundle(
    session: Session, *, bundle: str, now: datetime, expires_at: datetime | None, next_reminder_at: datetime | None,
) -> tuple[str, list[int]] | None:
    """An ask for several accounts, once every account's plan is made and judged: the strictest rule of
    them (the most approvals) becomes each one's, and they are asked together (the first waiting one
    presents them all to the approvers), or approved together if every one's rule approves it at once.
    Returns ("asked" | "auto_approved", their ids); None while a plan is still being made, or once done
    (two workers finishing the last plans together: the locks let one of them do it)."""
    members = store.bundle_members(session, bundle=bundle, lock=True)
    if any(m.state is S.SUBMITTED and (not m.plan_digest or m.plan_changes) for m in members):
        return None  # still being planned (or one being planned again on its own)
    if any(m.state not in (S.SUBMITTED, S.DENIED, S.FAILED, S.CANCELLED) for m in members):
        return None  # asked already
    held = [m for m in members if m.state is S.SUBMITTED]
    if not held:
        return None  # every account refused or failed: each was told on its own
    strictest = max(held, key=lambda m: (m.quorum or 1, -m.id))
    auto = all(m.auto_approve for m in held)
    for m in held:
        m.rule_name, m.quorum, m.auto_approve = strictest.rule_name, strictest.quorum, auto
        m.approver_users, m.approver_groups = list(strictest.approver_users or []), list(strictest.approver_groups or [])
    session.flush()
    ids = [m.id for m in held]
    if auto:
        for m in held:
            auto_approve(session, request_id=m.id, now=now)
        return "auto_approved", ids
    for i, m in enumerate(held):
        ask(session, request_id=m.id, now=now, expires_at=expires_at, next_reminder_at=next_reminder_at if i == 0 else None)
    audit.record(session, action="bundle_asked", actor=BOT_ACTOR, now=now, request_id=held[0].id, bundle=bundle,
                 members=[m.short_id for m in held], accounts=[m.account for m in held], rule=strictest.rule_name, quorum=strictest.quorum)
    return "asked", ids


def auto_approve(session: Session, *, request_id: int, now: datetime) -> bool:
    """A low-risk request its rule approves at once: still audited, announced and applied as usual."""
    req = store.load_request(session, request_id)
    why = f"auto-approved by rule {req.rule_name}"
    if not transition(
        session, request_id=request_id, src=S.SUBMITTED, dst=S.APPROVED, now=now,
        decided_by=BOT_ACTOR, decided_at=now, decision_reason=why, approved_digest=req.plan_digest, next_reminder_at=None,
    ):
        return False
    store.enqueue_job(session, request_id=request_id, kind=JobKind.APPLY, now=now)
    audit.record(session, action="auto_approved", actor=BOT_ACTOR, now=now, request_id=request_id, rule=req.rule_name, digest=req.plan_digest)
    return True


def deny_by_guardrail(session: Session, *, request_id: int, reason: str, now: datetime, waiting: bool = False) -> bool:
    """A guardrail judged on the plan (what groups and copied users bring, policy documents); `waiting`:
    a request already asked, which the current rules' guardrails refuse (the rules changed since)."""
    if not transition(
        session, request_id=request_id, src=S.PENDING if waiting else S.SUBMITTED, dst=S.DENIED, now=now,
        decided_by=BOT_ACTOR, decided_at=now, decision_reason=reason, next_reminder_at=None,
    ):
        return False
    audit.record(session, action="denied", actor=BOT_ACTOR, now=now, request_id=request_id, reason=reason, guardrail=True)
    return True


def fail_planning(session: Session, *, request_id: int, reason: str, now: datetime) -> bool:
    """The request cannot be done as asked (it names something IAM does not have)."""
    if not transition(session, request_id=request_id, src=S.SUBMITTED, dst=S.FAILED, now=now, failure_reason=reason):
        return False
    grants.release(session, revoke_request_id=request_id)  # a grant's end that failed is tried again, never forgotten
    audit.record(session, action="failed", actor=BOT_ACTOR, now=now, request_id=request_id, stage="plan", reason=reason)
    return True


def replan(session: Session, *, request_id: int, changes: list[str], now: datetime) -> bool:
    """IAM drifted from the approved plan before it was fully applied: make the plan again and ask again.

    The approved digest is cleared, so nothing of the old approval can be applied; approvals lapse
    with their plan (they are counted per digest).
    """
    if not transition(
        session, request_id=request_id, src=S.PROVISIONING, dst=S.SUBMITTED, now=now,
        approved_digest=None, decided_by=None, decided_at=None, decision_reason=None, plan_changes=changes,
    ):
        return False
    store.enqueue_job(session, request_id=request_id, kind=JobKind.PLAN, now=now)
    audit.record(session, action="plan_drift", actor=BOT_ACTOR, now=now, request_id=request_id, changes=changes)
    return True


# ---------------------------------------------------------------- who decides, judged now


def _assign_rule(req: AccessRequest, verdict: Verdict, rulebook: Rulebook) -> bool:
    """Make the verdict's rule the request's; True if who approves (or how many) changed."""
    escalated = bool(rulebook.reminders and req.reminders_sent >= rulebook.reminders.max)
    users, groups = rulebook.approvers_for(verdict.rule, escalated=escalated)
    now_is = (verdict.rule.name, verdict.rule.quorum, list(users), list(groups), verdict.auto)
    was = (req.rule_name, req.quorum, list(req.approver_users or []), list(req.approver_groups or []), bool(req.auto_approve))
    if req.approver_users is not None and now_is == was:
        return False
    req.rule_name, req.quorum, req.approver_users, req.approver_groups, req.auto_approve = now_is
    return True


def rejudge(session: Session, req: AccessRequest, *, rulebook: Rulebook, now: datetime) -> Verdict | None:
    """The request's plan judged again by the rules and settings in force now, and who approves it
    updated to match (audited when it changed): someone removed from the rules or from
    IAM_BOT_APPROVERS may no longer decide, whenever the request was asked. None: no plan yet.
    Asked with others for several accounts: each is judged again, and the strictest rule stays all of theirs."""
    if req.bundle and req.state is S.PENDING:
        waiting = [m for m in store.bundle_members(session, bundle=req.bundle) if m.state is S.PENDING]
        verdicts = {m.id: _rejudge_one(session, m, rulebook=rulebook, now=now) for m in waiting}
        judged = [(v, m) for m in waiting if (v := verdicts[m.id]) is not None]
        if judged:
            verdict, _ = max(judged, key=lambda t: (t[0].rule.quorum, -t[1].id))
            for m in waiting:
                _assign_rule(m, replace(verdict, auto=False), rulebook)
        return verdicts.get(req.id)
    return _rejudge_one(session, req, rulebook=rulebook, now=now)


def _rejudge_one(session: Session, req: AccessRequest, *, rulebook: Rulebook, now: datetime) -> Verdict | None:
    if not req.plan_digest:
        return None
    plan = store.plan_of(session, request_id=req.id, digest=req.plan_digest)
    docs = store.documents(session, [*plan.grant.documents, *(st.document for st in plan.steps if st.document)])
    if plan.account_name:  # the rules as they hold in the plan's member account (its guardrails on top)
        rulebook = rulebook.for_account(plan.account_name, plan.account)
    verdict = gate.judge(rulebook, plan, docs, store.spec_of(req))
    before = (req.rule_name, req.quorum, [*(req.approver_users or []), *(req.approver_groups or [])])
    if _assign_rule(req, verdict, rulebook):
        audit.record(
            session, action="rule_reevaluated", actor=BOT_ACTOR, now=now, request_id=req.id,
            rule=verdict.rule.name, quorum=verdict.rule.quorum, approvers=[*(req.approver_users or []), *(req.approver_groups or [])],
            was={"rule": before[0], "quorum": before[1], "approvers": before[2]},
        )
    return verdict


# ---------------------------------------------------------------- decide


def check_may_decide(
    session: Session,
    *,
    short_id: str,
    actor_id: str,
    rulebook: Rulebook,
    now: datetime,
    actor_groups: Iterable[str] = (),
    lock: bool = False,
) -> AccessRequest:
    """Who may decide is judged now, against the rules in force (`rejudge`), never as frozen at submission.

    `actor_groups`: the Slack user groups the actor belongs to, read at decision time.
    """
    req = store.get_request(session, short_id=short_id, lock=lock)
    verdict = rejudge(session, req, rulebook=rulebook, now=now) if req.state is S.PENDING else None
    if verdict is not None and verdict.denial:
        raise Refused(
            f"The rules changed since this request was asked, and a guardrail now refuses it: {verdict.denial}. Nothing was changed.",
            audit="decision_refused", request_id=req.id,
        )
    users, groups = store.approvers_of(req, default_approvers=rulebook.default_approvers)
    allowed = approval.may_approve(actor_id, approver_users=users, approver_groups=groups, actor_groups=actor_groups)
    refusal = approval.refusal_to_decide(
        approval.DecisionContext(
            actor_id=actor_id,
            requester_id=req.requester_id,
            owner_id=req.owner_id,
            approvers=frozenset(users) | ({actor_id} if allowed else set()),
            state=req.state,
            decided_by=req.decided_by,
            approved_by=frozenset(store.approvals_of(session, request_id=req.id, digest=req.plan_digest)),
            quorum=req.quorum,
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
    rulebook: Rulebook,
    now: datetime,
    digest: str | None = None,
    actor_groups: Iterable[str] = (),
    reason: str | None = None,
) -> AccessRequest:
    """Approve the plan with `digest` (approved once `quorum` distinct people approved that plan), or deny.

    An approval names the digest it approves: a click on a message showing an earlier plan is
    refused. Any one deny denies. One row per approver and plan (a UNIQUE constraint), so a repeated
    approval counts once; the last step is a compare-and-set, so of concurrent last approvals
    exactly one approves and queues the apply job, with the approved digest.
    """
    req = check_may_decide(session, short_id=short_id, actor_id=actor_id, rulebook=rulebook, now=now, actor_groups=actor_groups, lock=True)
    if req.bundle:
        return _decide_bundle(session, req, actor_id=actor_id, approve=approve, digest=digest, now=now, reason=reason)
    if not approve:
        if not _deny_one(session, req, actor_id=actor_id, now=now, reason=reason):
            raise _late(session, req)
        return req
    if digest != req.plan_digest:
        raise Refused(
            "This message shows an earlier plan of the request: IAM changed and the plan was made again. "
            "Approve it from the updated message, after reading what changed. Nothing was changed.",
            audit="decision_refused",
            request_id=req.id,
        )
    _approve_one(session, req, actor_id=actor_id, now=now, reason=reason, clicked=req)
    return req


def _deny_one(session: Session, req: AccessRequest, *, actor_id: str, now: datetime, reason: str | None) -> bool:
    """A deny of one waiting request; False if it no longer waits."""
    if not transition(
        session, request_id=req.id, src=S.PENDING, dst=S.DENIED, now=now,
        decided_by=actor_id, decided_at=now, decision_reason=reason, next_reminder_at=None,
    ):
        return False
    session.add(Decision(request_id=req.id, approver_id=actor_id, approved=False, reason=reason, created_at=now, plan_digest=req.plan_digest))
    audit.record(session, action="denied", actor=actor_id, now=now, request_id=req.id, reason=reason, **_bundled(req))
    return True


def _approve_one(session: Session, req: AccessRequest, *, actor_id: str, now: datetime, reason: str | None, clicked: AccessRequest) -> None:
    """One approval of a waiting request's current plan: recorded once per approver (a UNIQUE constraint),
    and at quorum the request is approved by compare-and-set and its apply job queued. `clicked`: the
    request the approver clicked on (refusals name it)."""
    digest = req.plan_digest
    try:
        with session.begin_nested():
            session.add(Decision(request_id=req.id, approver_id=actor_id, approved=True, reason=reason, created_at=now, plan_digest=digest))
    except IntegrityError:
        raise Refused("You already decided on this request; it needs someone else now. Nothing was changed.", audit="decision_refused", request_id=clicked.id) from None
    approvals = store.approvals_of(session, request_id=req.id, digest=digest)
    if not approval.quorum_reached(approvals, req.quorum):
        audit.record(
            session, action="approval_recorded", actor=actor_id, now=now, request_id=req.id,
            approvals=len(approvals), quorum=req.quorum, digest=digest, **_bundled(req),
        )
        return
    if not transition(
        session, request_id=req.id, src=S.PENDING, dst=S.APPROVED, now=now,
        decided_by=actor_id, decided_at=now, decision_reason=reason, next_reminder_at=None, approved_digest=digest,
    ):
        raise _late(session, req)
    store.enqueue_job(session, request_id=req.id, kind=JobKind.APPLY, now=now)
    audit.record(session, action="approved", actor=actor_id, now=now, request_id=req.id, reason=reason, approvals=approvals, quorum=req.quorum,
                 digest=digest, **_bundled(req))


def _bundled(req: AccessRequest) -> dict[str, str]:
    """An audit event's mention of the ask for several accounts the request is part of, if it is."""
    return {"bundle": req.bundle} if req.bundle else {}


def _waiting_together(session: Session, req: AccessRequest, digest: str | None) -> list[AccessRequest]:
    """The members of an ask for several accounts that wait for a decision, if `digest` is what the
    click was shown (all of their plans as they are now); else Refused, nothing changed."""
    waiting = [m for m in store.bundle_members(session, bundle=req.bundle or "", lock=True) if m.state is S.PENDING]
    if not waiting or waiting[0].id != req.id or any(not m.plan_digest for m in waiting) or digest != bundle_digest([m.plan_digest or "" for m in waiting]):
        raise Refused(
            "This message shows an earlier state of the request: one of its accounts was decided, or planned again. "
            "Decide it from the updated message. Nothing was changed.",
            audit="decision_refused", request_id=req.id,
        )
    return waiting


def _decide_bundle(
    session: Session, req: AccessRequest, *, actor_id: str, approve: bool, digest: str | None, now: datetime, reason: str | None,
) -> AccessRequest:
    """One decision for every account an ask names (they share the strictest rule, so quorum is reached
    together); each account's request is then applied and reported on its own."""
    if approve:
        waiting = _waiting_together(session, req, digest)
        for m in waiting:
            _approve_one(session, m, actor_id=actor_id, now=now, reason=reason, clicked=req)
    else:
        waiting = [m for m in store.bundle_members(session, bundle=req.bundle or "", lock=True) if m.state is S.PENDING]
        for m in waiting:
            _deny_one(session, m, actor_id=actor_id, now=now, reason=reason)
    if not waiting:
        raise _late(session, req)
    session.refresh(req)
    return req


def withdraw_approval(session: Session, *, short_id: str, actor_id: str, digest: str | None, now: datetime) -> AccessRequest:
    """An approver takes back their approval of this plan while it still waits for more (locked like a
    decision, so a withdrawal and the approval that would reach quorum are taken one after the other)."""
    req = store.get_request(session, short_id=short_id, lock=True)
    if req.state is not S.PENDING:
        raise Refused(
            approval.already_decided_text(req.state, req.decided_by).replace("Nothing was changed.", "Approvals can no longer be withdrawn."),
            audit="withdraw_refused", request_id=req.id,
        )
    # An ask for several accounts: withdrawn from every account the approval was given for (the digest shown covers them all).
    together = _waiting_together(session, req, digest) if req.bundle else [req] if digest == req.plan_digest else []
    gone = 0
    for m in together:
        if session.execute(delete(Decision).where(
            Decision.request_id == m.id, Decision.approver_id == actor_id, Decision.approved.is_(True), Decision.plan_digest == m.plan_digest,
        )).rowcount:
            gone += 1
            audit.record(session, action="approval_withdrawn", actor=actor_id, now=now, request_id=m.id, digest=m.plan_digest, **_bundled(m))
    if not gone:
        raise Refused("You have no approval of this plan to withdraw. Nothing was changed.", audit="withdraw_refused", request_id=req.id)
    return req


def break_glass(session: Session, *, short_id: str, actor_id: str, allowed: bool, reason: str, now: datetime) -> AccessRequest:
    """A break-glass requester approves their own request's plan: reason required, flagged for review."""
    req = store.get_request(session, short_id=short_id, lock=True)
    if actor_id != req.requester_id or not allowed:
        raise Refused("Only a requester listed for break-glass can approve their own request.", audit="break_glass_refused", request_id=req.id)
    if not reason.strip():
        raise Refused("Say why you need to break the glass.")
    if req.bundle:  # break-glass is for one account's urgent need, never for several at once
        raise Refused("Break-glass approves a request for one AWS account; this one asks for several. Ask for the one account you need now.",
                      audit="break_glass_refused", request_id=req.id)
    if not transition(
        session, request_id=req.id, src=S.PENDING, dst=S.APPROVED, now=now,
        decided_by=actor_id, decided_at=now, decision_reason=reason, break_glass=True, next_reminder_at=None,
        approved_digest=req.plan_digest,
    ):
        raise _late(session, req)
    session.add(Decision(request_id=req.id, approver_id=actor_id, approved=True, reason=reason, created_at=now, plan_digest=req.plan_digest))
    store.enqueue_job(session, request_id=req.id, kind=JobKind.APPLY, now=now)
    audit.record(session, action="break_glass", actor=actor_id, now=now, request_id=req.id, reason=reason, review_required=True, digest=req.plan_digest)
    return req


def expire(session: Session, *, request_id: int, now: datetime) -> bool:
    if not transition(session, request_id=request_id, src=S.PENDING, dst=S.EXPIRED, now=now, next_reminder_at=None):
        return False
    audit.record(session, action="expired", actor=BOT_ACTOR, now=now, request_id=request_id)
    return True


def cancel(session: Session, *, short_id: str, actor_id: str, now: datetime) -> AccessRequest:
    """The requester withdraws a request still being checked or waiting; like a decision, one change wins."""
    req = store.get_request(session, short_id=short_id)
    if actor_id != req.requester_id:
        raise Refused("Only the person who made this request can cancel it.", audit="cancel_refused", request_id=req.id)
    together = store.bundle_members(session, bundle=req.bundle) if req.bundle else [req]  # one ask: cancelled in every account
    cancelled = False
    for m in together:
        for src in (S.PENDING, S.SUBMITTED):
            if transition(session, request_id=m.id, src=src, dst=S.CANCELLED, now=now, next_reminder_at=None):
                audit.record(session, action="cancelled", actor=actor_id, now=now, request_id=m.id)
                cancelled = True
                break
    if cancelled:
        return req
    raise _late(session, req, audit_as="cancel_refused")


# ---------------------------------------------------------------- applying the approved plan


def start_applying(session: Session, *, request_id: int, now: datetime) -> bool:
    return transition(session, request_id=request_id, src=S.APPROVED, dst=S.PROVISIONING, now=now)


def adopt_plan(session: Session, *, request_id: int, digest: str, now: datetime) -> None:
    """A request approved before plans existed: the plan resolved when it is applied is the one applied."""
    req = store.load_request(session, request_id)
    req.plan_digest = req.approved_digest = digest
    audit.record(session, action="plan_adopted", actor=BOT_ACTOR, now=now, request_id=request_id, digest=digest,
                 why="approved before the upgrade that introduced plans; resolved at apply time, as before")


def complete(session: Session, *, request_id: int, arn: str, now: datetime) -> bool:
    if not transition(session, request_id=request_id, src=S.PROVISIONING, dst=S.COMPLETED, now=now, user_arn=arn):
        return False
    audit.record(session, action="completed", actor=BOT_ACTOR, now=now, request_id=request_id, arn=arn)
    return True


def fail(session: Session, *, request_id: int, reason: str, code: str, aws_request_id: str | None, rolled_back: bool, now: datetime) -> bool:
    if not transition(session, request_id=request_id, src=S.PROVISIONING, dst=S.FAILED, now=now, failure_reason=reason):
        return False
    grants.release(session, revoke_request_id=request_id)
    audit.record(session, action="failed", actor=BOT_ACTOR, now=now, request_id=request_id, code=code, aws_request_id=aws_request_id, rolled_back=rolled_back)
    return True


# ---------------------------------------------------------------- reveal


def claim_reveal(session: Session, *, short_id: str, actor_id: str, now: datetime) -> tuple[AccessRequest, CredentialEnvelope]:
    """Reserve the one reveal; a second click while it is in flight (or after) is refused."""
    req = store.get_request(session, short_id=short_id)
    if refusal := approval.refusal_to_reveal(actor_id=actor_id, owner_id=req.owner_id):
        raise Refused(refusal, audit="reveal_refused", request_id=req.id)
    if req.state is not S.COMPLETED:
        # While provisioning runs, the envelope holds partial credentials: never show those.
        raise Refused("The account is still being created; the credentials can be revealed once it is ready.")
    env = session.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == req.id)).first()
    if env is None or env.ciphertext is None or env.revealed_at is not None:
        raise Refused("These credentials were already revealed or have expired; they are no longer stored.")
    if env.expires_at <= now:
        raise Refused("These credentials have expired; ask an AWS admin to reset the password or create a new key.")
    if env.delivery_method not in (None, "reveal"):
        # Delivered (or to be delivered) as a file encrypted to the owner's key: never also shown here.
        raise Refused("These credentials come as a file encrypted to your key, in your DM with the bot, not by Reveal; look for the .age file there.")
    if env.delivery_method is None and env.delivered_at is None:
        raise Refused("The credentials are being sent to you right now; use the button in the DM that follows.")
    stale = env.reveal_claimed_at is not None and now - env.reveal_claimed_at > REVEAL_CLAIM_WINDOW
    claimed = compare_and_set(
        session,
        CredentialEnvelope,
        where=[
            CredentialEnvelope.id == env.id,
            CredentialEnvelope.revealed_at.is_(None),
            CredentialEnvelope.ciphertext.is_not(None),
            CredentialEnvelope.reveal_claimed_at == env.reveal_claimed_at if stale else CredentialEnvelope.reveal_claimed_at.is_(None),
            # The delivery's choice of a file is made under the same row: it cannot slip in meanwhile.
            or_(CredentialEnvelope.delivery_method == "reveal", CredentialEnvelope.delivery_method.is_(None)),
        ],
        values={"reveal_claimed_at": now},
    )
    if not claimed:
        raise Refused("The credentials are being revealed in another window.")
    return req, env


def finish_reveal(session: Session, *, envelope_id: int, actor_id: str, now: datetime) -> tuple[str, str] | None:
    """The modal opened: the envelope row is deleted (bot.credentials.envelopes) and the reveal recorded.

    With no row left, a later click finds nothing to reveal (claim_reveal) and the status timeline
    reads the reveal from the audit trail. The caller empties SQLite's log once this commits.
    Returns where the credentials DM is, as known now: a click can race the delivery recording it.
    """
    env = session.get(CredentialEnvelope, envelope_id)
    if env is None:
        return None
    request_id = env.request_id
    place = (env.dm_channel_id, env.dm_ts) if env.dm_channel_id and env.dm_ts else None
    envelopes.destroy(session, envelope_id)
    audit.record(session, action="credentials_revealed", actor=actor_id, now=now, request_id=request_id)
    return place


def release_reveal(session: Session, *, envelope_id: int) -> None:
    """The modal could not be opened: keep the credentials so the owner can try again."""
    env = session.get(CredentialEnvelope, envelope_id)
    if env is not None and env.revealed_at is None:
        env.reveal_claimed_at = None
