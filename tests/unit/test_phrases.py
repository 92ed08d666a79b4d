from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack.phrases import Query, parse


@pytest.mark.parametrize(
    "text,expected",
    [
        ("status", Query("mine")),
        ("<@UBOT> status", Query("mine")),
        ("Status?", Query("mine")),
        ("my requests", Query("mine")),
        ("My request", Query("mine")),
        ("status developer01", Query("one", "developer01")),
        ("<@UBOT>   status   #12", Query("one", "12")),
        ("status #R7KQ2ZX", Query("one", "R7KQ2ZX")),
        ("what's pending", Query("pending")),
        ("what’s pending?", Query("pending")),
        ("whats pending", Query("pending")),
        ("pending", Query("pending")),
        ("help", Query("help")),
        ("", Query("help")),
        ("<@UBOT>", Query("help")),
        ("make me admin", Query("unknown", "make me admin")),
    ],
)
def test_phrasings(text: str, expected: Query) -> None:
    assert parse(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=5000))
def test_any_text_gets_an_answer(text: str) -> None:
    q = parse(text)
    assert q.kind in {"help", "mine", "one", "pending", "unknown"}
    assert q.arg is None or len(q.arg) <= 100
