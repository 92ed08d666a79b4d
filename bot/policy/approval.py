"""Approval rules as pure predicates: each returns None when allowed, else the reason refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from bot.common.slack_ids import is_user
from models import RequestState


@dataclass(frozen=True)
class DecisionContext:
    actor_id: str
    requester_id: str
    owner_id: str
    approvers: frozenset[str]
    state: RequestState
    decided_by: str | None = None
    approved_by: frozenset[str] = frozenset()  # who already approved (quorum of several)
    quorum: int = 1


def refusal_to_decide(ctx: DecisionContext) -> str | None:
    if ctx.state is not RequestState.PENDING:
        return already_decided_text(ctx.state, ctx.decided_by)
    if ctx.actor_id not in ctx.approvers:
        return "Only a designated approver can decide on IAM user requests. Nothing was changed."
    if ctx.actor_id == ctx.requester_id:
        return "You can't approve or deny your own request: another approver has to decide. Nothing was changed."
    if ctx.actor_id == ctx.owner_id:
        return "You can't decide on a request for an account you would own: another approver has to. Nothing was changed."
    if ctx.actor_id in ctx.approved_by:
        more = ctx.quorum - len(ctx.approved_by)
        return f"You already approved this request; it needs {more} more approval{'s' if more != 1 else ''} from someone else. Nothing was changed."
    return None


def may_approve(actor_id: str, *, approver_users: Iterable[str], approver_groups: Iterable[str], actor_groups: Iterable[str]) -> bool:
    """Listed by name, or a member (read at decision time) of a listed Slack user group."""
    return actor_id in set(approver_users) or bool(set(approver_groups) & set(actor_groups))


def distinct_approvals(decisions: Iterable[tuple[str, bool]]) -> list[str]:
    """Who approved, each person once, in order (the database also keeps one row per person)."""
    return list(dict.fromkeys(who for who, approved in decisions if approved))


def quorum_reached(approvals: Iterable[str], quorum: int) -> bool:
    return len(set(approvals)) >= quorum


def progress_text(approvals: Sequence[str], quorum: int) -> str:
    """"1 of 2 approvals: <@bob>" for requests needing several approvals."""
    people = ", ".join(f"<@{a}>" for a in approvals)
    noun = "approval" if quorum == 1 else "approvals"
    return f"{len(approvals)} of {quorum} {noun}" + (f": {people}" if people else "")


def already_decided_text(state: RequestState, decided_by: str | None) -> str:
    if state is RequestState.SUBMITTED:
        return "This request is still being checked against IAM; its approvers are asked as soon as that is done. Nothing was changed."
    who = f" by <@{decided_by}>" if decided_by else ""
    if decided_by and not is_user(decided_by):
        who = f" by {decided_by}"
    verbs = {
        RequestState.APPROVED: "already approved",
        RequestState.PROVISIONING: "already approved",
        RequestState.COMPLETED: "already approved",
        RequestState.FAILED: "already approved (provisioning then failed)",
        RequestState.DENIED: "already denied",
        RequestState.CANCELLED: "cancelled by the requester",
        RequestState.EXPIRED: "expired",
    }
    verb = verbs.get(state, state.value)
    if state in (RequestState.CANCELLED, RequestState.EXPIRED):
        return f"This request was {verb}. Nothing was changed."
    return f"This request was {verb}{who}. Nothing was changed."


def refusal_to_reveal(*, actor_id: str, owner_id: str) -> str | None:
    if actor_id != owner_id:
        return "Only the account's owner can reveal these credentials."
    return None


def who_is_asked(*, users: Iterable[str], groups: Iterable[str], requester_id: str, owner_id: str) -> list[str]:
    """A rule's approvers as requesters see them named: its users (never the requester or owner), then its groups."""
    return [*eligible_approvers(approvers=frozenset(users), requester_id=requester_id, owner_id=owner_id), *groups]


def eligible_approvers(*, approvers: frozenset[str], requester_id: str, owner_id: str) -> list[str]:
    """Who can decide on a request: never its requester nor its owner."""
    return sorted(a for a in approvers if a not in (requester_id, owner_id))
