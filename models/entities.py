from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.states import JobState, RequestState


def _enum(cls: type) -> Enum:
    # Plain VARCHAR on every backend, storing the enum's value: migrations stay portable.
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class RequestDraft(Base):
    """A validated request between the form and the final "Submit request" on the review screen."""

    __tablename__ = "request_drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requester_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class AccessRequest(Base):
    """A request and where it stands; what it will do in IAM is its current plan (`plan_digest`)."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_user_name_lower_state", "user_name_lower", "state"),
        # A person's latest requests (status, Home): each side of "requester or owner" stops at its limit.
        Index("ix_access_requests_requester_recent", "requester_id", "created_at", "id"),
        Index("ix_access_requests_owner_recent", "owner_id", "created_at", "id"),
        # "Recently decided" on approvers' Home: only decided rows, in the order shown.
        Index(
            "ix_access_requests_recently_decided", "decided_at", "id",
            postgresql_where=text("decided_by IS NOT NULL"), sqlite_where=text("decided_by IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    short_id: Mapped[str] = mapped_column(String(12), unique=True)
    kind: Mapped[str] = mapped_column(String(32), default="create_user", server_default="create_user")
    # The AWS account it acts in: its name in IAM_BOT_ACCOUNTS, or "" for the bot's own (bot.domain.accounts).
    account: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # One ask for several accounts: every member carries the first member's short id; None for a lone request.
    bundle: Mapped[str | None] = mapped_column(String(12), index=True)
    state: Mapped[RequestState] = mapped_column(_enum(RequestState), index=True)
    requester_id: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(String(32))

    user_name: Mapped[str] = mapped_column(String(64))
    # IAM names are unique case-insensitively; this column lets the database check it.
    user_name_lower: Mapped[str] = mapped_column(String(64))
    console_access: Mapped[bool]
    access_key: Mapped[bool]
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_arns: Mapped[list[str]] = mapped_column(JSON, default=list)
    copy_from: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512), default="/")
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    permissions_boundary: Mapped[str | None] = mapped_column(String(2048))
    reason: Mapped[str] = mapped_column(Text)
    user_expires_on: Mapped[str | None] = mapped_column(String(10))  # YYYY-MM-DD asked for (a new user's end, an extension's)
    removals: Mapped[list[str] | None] = mapped_column(JSON)  # a change: what it takes away (RequestSpec.remove)
    grant_for: Mapped[str | None] = mapped_column(String(20))  # added groups and policies last this long (bot.domain.grants)

    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    user_arn: Mapped[str | None] = mapped_column(String(2048))

    # Set at submission from the rule that won (bot.policy.rulebook); escalation may add approvers.
    rule_name: Mapped[str | None] = mapped_column(String(64))
    quorum: Mapped[int] = mapped_column(default=1, server_default="1")
    approver_users: Mapped[list[str] | None] = mapped_column(JSON)  # None: made before rules existed
    approver_groups: Mapped[list[str] | None] = mapped_column(JSON)
    # {"flags": [...], "summary": "..."}, computed once after submission so messages need no AWS call.
    risk: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    break_glass: Mapped[bool] = mapped_column(default=False, server_default=false())
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    # Claimed by compare-and-set, so of several workers exactly one sends each reminder.
    next_reminder_at: Mapped[datetime | None] = mapped_column(index=True)
    reminders_sent: Mapped[int] = mapped_column(default=0, server_default="0")

    auto_approve: Mapped[bool] = mapped_column(default=False, server_default=false())  # the rule's verdict at submission

    # The plan approvers are asked about (plans.digest), and the one they approved: the worker applies
    # exactly that one. A plan made again (IAM drifted) gets a new digest; approvals of the old one lapse.
    plan_digest: Mapped[str | None] = mapped_column(String(64))
    approved_digest: Mapped[str | None] = mapped_column(String(64))
    plan_changes: Mapped[list[str] | None] = mapped_column(JSON)  # why the plan was made again, in words


class Plan(Base):
    """A request's plan, insert-only: `body` is bot.domain.plan.Plan.to_body(), `digest` its SHA-256."""

    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("request_id", "digest", name="uq_plans_request_id_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class PolicyDocument(Base):
    """A policy document a plan names, stored once by the SHA-256 of its canonical JSON."""

    __tablename__ = "policy_documents"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class Decision(Base):
    """One approver's decision on one plan of a request (`plan_digest`: what they approved)."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("request_id", "approver_id", "plan_digest", name="uq_decisions_request_approver_plan"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"))
    approver_id: Mapped[str] = mapped_column(String(32))
    approved: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    plan_digest: Mapped[str | None] = mapped_column(String(64))  # None: decided before plans existed


class ApprovalMessage(Base):
    """A Slack message that carries Approve/Deny buttons, to be updated after the decision."""

    __tablename__ = "approval_messages"
    __table_args__ = (UniqueConstraint("channel_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))


class Job(Base):
    """Durable work on a request, claimed by workers with a lease: one row per request and kind.

    `plan`: resolve the request into a plan against IAM, judge it, and ask (or deny, or approve);
    `apply`: apply the approved plan. A row is queued again when its work is needed again.
    """

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("request_id", "kind", name="uq_jobs_request_id_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[JobState] = mapped_column(_enum(JobState), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_run_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    steps_done: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CredentialEnvelope(Base):
    """Fernet ciphertext of a new user's credentials: shown to the owner once, then destroyed."""

    __tablename__ = "credential_envelopes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), unique=True)
    owner_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # Set while a reveal is in flight, so two clicks cannot both open the secret.
    reveal_claimed_at: Mapped[datetime | None]
    revealed_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    # Claimed before the DM is sent, so two workers never both send it; retried when stale.
    delivery_attempted_at: Mapped[datetime | None]
    dm_channel_id: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))
    # How the owner gets them: "reveal" (the one-time button), "file" (encrypted to `recipient`, the
    # owner's public key when it was chosen), or "held" (a key is required and none is registered yet).
    # Once "reveal" or "file", never the other: the credentials are never both revealed and uploaded.
    delivery_method: Mapped[str | None] = mapped_column(String(8))
    recipient: Mapped[str | None] = mapped_column(Text)
    # The Slack file of an upload in progress: looked for in the DM before anything is uploaded again.
    file_id: Mapped[str | None] = mapped_column(String(32))


class OwnerKey(Base):
    """A person's public key (age recipient or SSH): credentials for them arrive as a file only it opens."""

    __tablename__ = "owner_keys"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # age | ssh-ed25519 | ssh-rsa
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class KeyRetirement(Base):
    """The old access key of a rotation, deactivated and later deleted on schedule, with the owner told before each.

    Every `*_at` of something done is set by compare-and-set, so however many replicas run the
    schedule, each reminder is sent once and each change is recorded once (the IAM calls repeat harmlessly).
    """

    __tablename__ = "key_retirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), unique=True)
    user_name: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(128))
    owner_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    deactivate_at: Mapped[datetime] = mapped_column(index=True)
    delete_at: Mapped[datetime] = mapped_column(index=True)
    deactivate_reminded_at: Mapped[datetime | None]
    delete_reminded_at: Mapped[datetime | None]
    deactivated_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class ScheduledRun(Base):
    """A task that runs on a schedule on one replica at a time (the hygiene report, the daily sweep).

    Claimed by compare-and-set with a lease, and moved on once done: a restart loses nothing, and a
    replica that died holding it gives it up when the lease runs out.
    """

    __tablename__ = "scheduled_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))


class UserExpiry(Base):
    """A user the bot created with an end date: reminded before, disabled on it, deleted after a grace
    period unless extended. Each `*_at` of something done is set once, by compare-and-set."""

    __tablename__ = "user_expiries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), unique=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    owner_id: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    delete_at: Mapped[datetime] = mapped_column(index=True)
    week_reminded_at: Mapped[datetime | None]
    day_reminded_at: Mapped[datetime | None]
    disabled_filed_at: Mapped[datetime | None]  # the expire request was filed
    deleted_filed_at: Mapped[datetime | None]  # the expire_delete request was filed, or the user went otherwise


class Notice(Base):
    """A notice sent at most once across replicas (a nudge about one key, a reminder): its key is
    inserted before it is sent, and only the replica whose insert went through sends it."""

    __tablename__ = "notices"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(index=True)


class MfaWatch(Base):
    """A user the bot created, watched until it has an MFA device: the owner is reminded after some days,
    the approvers told after more. Reminders are set by compare-and-set, so each is sent once."""

    __tablename__ = "mfa_watch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), unique=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    owner_id: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime]
    checked_at: Mapped[datetime | None]
    enrolled_at: Mapped[datetime | None]
    owner_reminded_at: Mapped[datetime | None]
    approvers_told_at: Mapped[datetime | None]
    gone_at: Mapped[datetime | None]  # the user no longer exists in IAM: nothing more to watch
    key_held: Mapped[bool] = mapped_column(default=False, server_default=false())  # its approved key waits for MFA
    key_released_at: Mapped[datetime | None]  # when the held_key request was filed


class AuditEvent(Base):
    """Append-only record of what happened; details never hold secrets.

    Rows are chained: each carries the digest of the one before and its own (an HMAC under the audit
    key, bot.audit.keys), so an edited, deleted or reordered row breaks the chain, and so does a chain
    recomputed without the key (`iam-bot audit verify`).
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("access_requests.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    hash: Mapped[str] = mapped_column(String(64), default="")
    # The audit key that signed `hash` (an HMAC-SHA256, bot.audit.keys); None: written before the
    # audit key existed, `hash` is a plain SHA-256. No unkeyed event may follow a keyed one.
    key_id: Mapped[str | None] = mapped_column(String(16))


class AuditAnchor(Base):
    """The chain's head as anchored (posted to the audit channel, written into an export): the log had
    `event_count` events ending with `head_id`, whose digest was `head_hash`. `mac` (HMAC under the
    audit key `key_id`) makes a forged row detectable; the copies outside the database are the proof.
    """

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_count: Mapped[int]
    head_id: Mapped[int]
    head_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(16))  # schedule | export
    actor: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    mac: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[datetime | None]
    channel: Mapped[str | None] = mapped_column(String(32))


class InboundDelivery(Base):
    """A Slack event or interaction already received: Slack's retries and duplicates are dropped.

    `acked_at` is set once Slack has been answered; a row left without it (the process died
    between receipt and answer) lets a later retry through instead of losing the event.
    """

    __tablename__ = "inbound_deliveries"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    acked_at: Mapped[datetime | None]


class TemporaryGrant(Base):
    """A group or policy granted for a time: taken away at `ends_at` by a revoke request, filed once
    (by compare-and-set on `revoke_request_id`); the owner is offered Extend and I'm done before."""

    __tablename__ = "temporary_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)  # the request that granted it
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "group" or "policy"
    target: Mapped[str] = mapped_column(String(2048))  # the group's name or the policy's ARN
    owner_id: Mapped[str] = mapped_column(String(32))
    requester_id: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None]
    revoke_request_id: Mapped[int | None] = mapped_column(ForeignKey("access_requests.id"))  # filed to take it away
    ended_at: Mapped[datetime | None]
    how_ended: Mapped[str | None] = mapped_column(String(200))  # in words: "its time ended", "given back", ...
