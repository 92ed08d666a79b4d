"""Read models: plain snapshots of requests, built in one transaction (bot.requests.store.view_of) and
drawn by the Block Kit builders outside it, so no message needs a session or walks a lazy relationship."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from bot.domain.plan import Plan, PlanKind, bundle_digest
from bot.domain.spec import RequestSpec
from models.states import RequestState


@dataclass(frozen=True)
class MfaState:
    """What the bot knows of a user's MFA enrolment (bot.jobs.mfa_watch looks in IAM)."""

    enrolled: bool
    checked_at: datetime | None  # the last look at IAM; None: not looked yet


@dataclass(frozen=True)
class TemporaryView:
    """A group or policy a request granted for a time, still held (bot.requests.grants)."""

    id: int
    kind: str  # "group" or "policy"
    target: str
    ends_at: datetime
    ending: bool = False  # its revoke request is on its way

    @property
    def label(self) -> str:
        return self.target.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RequestView:
    id: int
    short_id: str
    state: RequestState
    requester_id: str
    spec: RequestSpec
    created_at: datetime
    updated_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    failure_reason: str | None = None
    user_arn: str | None = None
    rule_name: str | None = None
    quorum: int = 1
    approvals: tuple[str, ...] = ()  # who approved the current plan, each once, in order
    risk_flags: tuple[str, ...] = ()
    risk_summary: str = ""
    break_glass: bool = False
    expires_at: datetime | None = None
    plan: Plan | None = None
    plan_digest: str | None = None
    plan_changes: tuple[str, ...] = ()  # why the plan was made again, when it was (shown to approvers)
    kind: str = "create_user"  # bot.domain.plan.PlanKind's value
    mfa: MfaState | None = None  # a user this request created that is watched for MFA
    ends: datetime | None = None  # the end date of the user this request created, as it stands (extensions move it)
    temporary: tuple[TemporaryView, ...] = ()  # what this request granted for a time and the user still holds
    bundle: str | None = None  # asked with others for several accounts: the first one's short id
    members: tuple[RequestView, ...] = ()  # those others (an ask for several accounts), by id

    @property
    def together(self) -> tuple[RequestView, ...]:
        """This request and the others asked with it, by id (just this one, alone)."""
        return tuple(sorted((self, *self.members), key=lambda v: v.id))

    @property
    def presents(self) -> bool:
        """Whether approvers decide the ask through this request: alone, or the first member still waiting."""
        waiting = [v for v in self.together if v.state is RequestState.PENDING]
        return not self.members or bool(waiting and waiting[0].id == self.id)

    @property
    def approval_digest(self) -> str | None:
        """What an Approve click approves: the plan's digest; with others, every waiting member's plan together."""
        if not self.members:
            return self.plan_digest
        digests = [v.plan_digest for v in self.together if v.state is RequestState.PENDING]
        return bundle_digest([d for d in digests if d]) if digests and all(digests) else None

    @property
    def brings(self) -> str:
        """What the request brings, in words: "new IAM user", "new access key"..."""
        return PlanKind(self.kind).brings

    @property
    def owner_id(self) -> str:
        return self.spec.owner_id

    @property
    def user_name(self) -> str:
        return self.spec.user_name

    @property
    def reason(self) -> str:
        return self.spec.reason

    @property
    def pending(self) -> bool:
        return self.state is RequestState.PENDING


@dataclass(frozen=True)
class TimelineEvent:
    action: str
    actor: str
    created_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HomeData:
    mine: tuple[RequestView, ...] = ()
    revealable: frozenset[int] = frozenset()  # ids of requests whose credentials wait for this owner
    awaiting: tuple[RequestView, ...] = ()
    recently_decided: tuple[RequestView, ...] = ()
    is_approver: bool = False
    key_label: str | None = None  # the person's key for encrypted credentials, as shown
    file_only: bool = False  # the rules require one
