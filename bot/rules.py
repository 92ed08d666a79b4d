"""Approval rules as pure predicates: each returns None when allowed, else the reason refused."""

from __future__ import annotations

from dataclasses import dataclass

from models import RequestState


@dataclass(frozen=True)
class DecisionContext:
    actor_id: str
    requester_id: str
    owner_id: str
    approvers: frozenset[str]
    state: RequestState
    decided_by: str | None = None


def refusal_to_decide(ctx: DecisionContext) -> str | None:
    if ctx.state is not RequestState.PENDING:
        return already_decided_text(ctx.state, ctx.decided_by)
    if ctx.actor_id not in ctx.approvers:
        return "Only a designated approver can decide on IAM user requests. Nothing was changed."
    if ctx.actor_id == ctx.requester_id:
        return "You can't approve or deny your own request: another approver has to decide. Nothing was changed."
    if ctx.actor_id == ctx.owner_id:
        return "You can't decide on a request for an account you would own: another approver has to. Nothing was changed."
    return None


def already_decided_text(state: RequestState, decided_by: str | None) -> str:
    who = f" by <@{decided_by}>" if decided_by else ""
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


def eligible_approvers(*, approvers: frozenset[str], requester_id: str, owner_id: str) -> list[str]:
    """Who can decide on a request: never its requester nor its owner."""
    return sorted(a for a in approvers if a not in (requester_id, owner_id))
