"""Running a use case from a listener: one transaction, and refusals audited even though it rolls back."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from bot import usecases
from bot.app import Deps

T = TypeVar("T")


def attempt(deps: Deps, actor: str, use_case: Callable[..., T], **kwargs: Any) -> T:
    """Run `use_case(session, **kwargs)` in a transaction; on Refused, audit it and re-raise."""
    try:
        with deps.sessionmaker.begin() as session:
            return use_case(session, **kwargs)
    except usecases.Refused as refused:
        if refused.audit:
            with deps.sessionmaker.begin() as session:
                usecases.record_refusal(session, refused=refused, actor_id=actor, now=deps.clock())
        raise

