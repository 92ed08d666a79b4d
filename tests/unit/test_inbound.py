"""bot.slack.inbound's pure parts: which bodies are Slack payloads, and what identifies a delivery."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack.inbound import delivery_key, malformed

FORM = "application/x-www-form-urlencoded"


def _payload(body: dict) -> bytes:
    return urlencode({"payload": json.dumps(body)}).encode()


CLICK = {
    "type": "block_actions",
    "user": {"id": "U1"},
    "trigger_id": "1.2.3",
    "actions": [{"action_id": "approve_request", "value": "ABC123", "action_ts": "1.5"}],
}
COMMAND = {"command": "/iam", "text": "status", "user_id": "U1", "trigger_id": "1.2.3", "response_url": "https://hooks.slack.com/x"}


def test_real_shapes_pass():
    assert malformed(_payload(CLICK), FORM) is None
    assert malformed(urlencode(COMMAND).encode(), FORM) is None
    event = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "message", "user": "U1", "text": "hi", "channel": "D1"}}
    assert malformed(json.dumps(event).encode(), "application/json") is None


@pytest.mark.parametrize(
    "body, why",
    [
        ({**CLICK, "user": "U1"}, "user has the wrong type"),
        ({**CLICK, "actions": [1]}, "actions are not buttons"),
        ({**CLICK, "user": {"name": "x"}}, "user is incomplete"),
        ({"type": "view_submission", "user": {"id": "U1"}, "view": {"id": "V1"}}, "view is incomplete"),
        ({**CLICK, "trigger_id": 5}, "trigger_id has the wrong type"),
        ({"type": "block_actions", "user": {"id": "U1"}}, "actions missing"),
    ],
)
def test_wrong_shapes_are_named(body, why):
    assert why in (malformed(_payload(body), FORM) or "")


def test_commands_without_what_slack_always_sends_are_refused():
    for field in ("user_id", "trigger_id", "response_url"):
        assert f"{field} missing" in malformed(urlencode({k: v for k, v in COMMAND.items() if k != field}).encode(), FORM)


@settings(max_examples=300)
@given(st.binary(max_size=400), st.sampled_from([FORM, "application/json", "", "text/plain; charset=utf-8"]))
def test_any_bytes_are_judged_without_raising(raw, content_type):
    assert malformed(raw, content_type) in (None,) or isinstance(malformed(raw, content_type), str)


_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)), lambda i: st.one_of(st.lists(i, max_size=3), st.dictionaries(st.text(max_size=8), i, max_size=4)), max_leaves=15)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["type", "user", "actions", "view", "trigger_id", "event", "event_id", "command", "state", "team"]), _json, max_size=6))
def test_made_up_payloads_are_judged_and_keyed_without_raising(body):
    verdict = malformed(_payload(body), FORM)
    assert verdict is None or verdict.startswith("body ")
    key = delivery_key(body)
    assert key is None or (isinstance(key, str) and len(key) <= 200)


def test_delivery_keys():
    assert delivery_key({"type": "event_callback", "event_id": "Ev1"}) == "event:Ev1"
    assert delivery_key(CLICK) == "action:1.2.3:approve_request:1.5"
    assert delivery_key(COMMAND) == "command:1.2.3"
    assert delivery_key({"type": "block_suggestion", "trigger_id": "1"}) is None  # typeahead changes nothing
    assert delivery_key({"type": "event_callback", "event_id": "E" * 500}) == ("event:" + "E" * 500)[:200]
