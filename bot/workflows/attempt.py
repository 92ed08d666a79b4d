"""Running a use case for a person: one transaction, and a refusal audited even though it rolls back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar

from bot.common.errors import Refused
from bot.common.sql import SessionMaker
from bot.requests import usecases

T = TypeVar("T")


def attempt(sm: SessionMaker, clock: Callable[[], datetime], actor: str, use_case: Callable[..., T], **kwargs: Any) -> T:
    """`use_case(session, **kwargs)` in a transaction; on Refused, record it (if worth it) and re-raise."""
    try:
        with sm.begin() as session:
            return use_case(session, **kwargs)
    except Refused as refused:
        if refused.audit:
            with sm.begin() as session:
                usecases.record_refusal(session, refused=refused, actor_id=actor, now=clock())
        raise
