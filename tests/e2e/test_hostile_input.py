"""Bad or hostile requests: rejected with 401/400/413 before anything runs, or answered clearly.

Never a 500, never a traceback, never a change: checked with hand-picked bodies and with
payloads hypothesis makes up, signed as Slack signs them and sent over HTTP to the running app.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.slack import inbound
from models import AccessRequest, AuditEvent, InboundDelivery
from tests.support.harness import wait_until
from tests.support.journeys import APPROVER, REQUESTER

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

MALFORMED = {
    "payload that is not JSON": (b"payload=notjson", FORM),
    "payload that is a list": (b"payload=%5B1%2C2%5D", FORM),
    "payload without a type": (b"payload=%7B%7D", FORM),
    "JSON that does not parse": (b"{not json", JSON),
    "JSON that is a list": (b"[1,2]", JSON),
    "an empty body": (b"", FORM),
    "bytes that are not UTF-8": (b"payload=\xff\xfe{}", FORM),
    "form fields without a command": (b"text=hello&user_id=U1", FORM),
    "plain text": (b"hello", "text/plain"),
    "a NUL character in a command": (b"command=%2Fiam&text=status%00x&user_id=UREQUESTER1&trigger_id=1.2.3", FORM),
    "a NUL character in a payload": (b'payload={"type":"block_actions","user":{"id":"U1\\u0000"}}', FORM),
}


def _nothing_changed(bot) -> None:
    bot.settle()  # anything a wrongly accepted request set off has run by now
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalar(select(func.count()).select_from(AccessRequest)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 0
        assert s.scalar(select(func.count()).select_from(InboundDelivery)) == 0
    assert [c.method for c in bot.standin.calls if c.method != "auth.test"] == []
    assert "Traceback" not in bot.logs.text()


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_signed_but_malformed_requests_get_400_and_change_nothing(bot, what):
    body, content_type = MALFORMED[what]
    resp = bot.slack.post(body, content_type)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]
    _nothing_changed(bot)


def test_unsigned_malformed_and_oversized_requests_are_refused_before_parsing(bot):
    url = bot.url + "/slack/events"
    assert requests.post(url, data=b"payload=notjson", headers={"Content-Type": FORM}, timeout=10).status_code == 401
    assert bot.slack.post(b"payload=notjson", FORM, signature="v0=" + "1" * 64).status_code == 401
    assert bot.slack.post(b"text=" + b"a" * (2 * 1024 * 1024), FORM).status_code == 413
    _nothing_changed(bot)


def _status_line(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """The first line the server answers on `sock`, and how long it took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    reply = b""
    while b"\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply.split(b"\r\n", 1)[0], time.monotonic() - started


def _closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("length", [2_000_000_000, 2 * 1024 * 1024, inbound.MAX_BODY + 1], ids=["2GB", "2MiB", "limit+1"])
def test_a_body_announced_past_the_limit_is_refused_at_once_unread(bot, length):
    """waitress checks the announced length against its own limit (serve_http's HTTP_LIMITS) before it
    reads or buffers any body: 413 within a second, with only the headers and a few bytes sent.
    (waitress's default limit, 1 GiB, would refuse 2 GB but wait for, and buffer, 2 MiB.)"""
    host, port = "127.0.0.1", bot.server.effective_port
    head = (
        f"POST /slack/events HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {FORM}\r\n"
        f"X-Slack-Request-Timestamp: 1\r\nX-Slack-Signature: v0=00\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head + b"payload=")
        sent = len(head) + len(b"payload=")
        status, took = _status_line(sock, timeout=1.0)
        assert status.split(b" ")[1:2] == [b"413"], status
        assert took < 1.0 and sent < 512
        assert _closed_by_server(sock, timeout=5.0)  # and it does not wait for the rest
    _nothing_changed(bot)


def test_a_body_at_the_limit_is_read_and_then_judged(bot):
    """The limit is inbound.MAX_BODY exactly: a body that size reaches the signature check."""
    body = b"text=" + b"a" * (inbound.MAX_BODY - 5)
    assert requests.post(bot.url + "/slack/events", data=body, headers={"Content-Type": FORM}, timeout=10).status_code == 401
    assert bot.slack.post(body + b"a", FORM).status_code == 413


def test_a_chunked_body_is_cut_off_at_the_limit(bot):
    """With no length announced (chunked), waitress counts what arrives and stops at the limit."""
    host, port = "127.0.0.1", bot.server.effective_port
    head = (
        f"POST /slack/events HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * 64 * 1024)
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < 8 * inbound.MAX_BODY:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        status, _ = _status_line(sock, timeout=5.0)
    assert status.split(b" ")[1:2] == [b"413"], status
    _nothing_changed(bot)


def test_headers_past_the_limit_are_refused(bot):
    host, port = "127.0.0.1", bot.server.effective_port
    filler = "".join(f"X-Filler-{i}: {'a' * 1000}\r\n" for i in range(80))  # 80 KB of headers
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\n{filler}Content-Length: 0\r\n\r\n".encode())
        status, _ = _status_line(sock, timeout=5.0)
    assert status.split(b" ")[1:2] == [b"431"], status  # waitress answers it as HTTP/1.0
    _nothing_changed(bot)


@pytest.mark.parametrize("action", ["approve_request", "deny_request", "reveal_credentials", "cancel_request"])
def test_clicks_naming_a_request_that_does_not_exist_get_a_clear_answer(bot, action):
    resp = bot.slack.block_action(APPROVER, action, "ZZZZZZ", channel_id="C0GENERAL", message_ts="1700000000.000100")
    assert resp.status_code == 200
    answer = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == APPROVER)
    assert "There is no request `ZZZZZZ`" in answer.args["text"]
    assert "Traceback" not in bot.logs.text()


@pytest.mark.parametrize(
    "text",
    ["status \u202eevil\u202c", "status " + "x" * 5000, "status 👾🔥", "status #999999999999999999999", "status <@U0NOBODY>", "status \x01\x7f"],
)
def test_status_for_odd_or_unknown_names_is_answered_plainly(bot, text):
    before = len(bot.standin.calls_to("response_url"))
    assert bot.slack.command(REQUESTER, text).status_code == 200
    answer = wait_until(lambda: bot.standin.calls_to("response_url")[before:], what="the answer")[0]
    shown = json.dumps(answer.args)
    assert "No request" in shown or "no request" in shown, shown[:500]
    assert len(shown) < 20000
    assert "Traceback" not in bot.logs.text()


# What hypothesis sends: JSON-ish values in the shapes Slack payloads have, with the keys our
# handlers read (types, action ids, values, view ids, user ids) drawn from real and made-up ones.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40), st.sampled_from(["approve_request", "deny_request", "reveal_credentials", "cancel_request", "iam_request", "iam_review", "UAPPROVER1", "ZZZZZZ"]))
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=20)
_payloads = st.fixed_dictionaries(
    {"type": st.sampled_from(["block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut", "event_callback", "url_verification", "nonsense"])},
    optional={
        "user": st.one_of(_json, st.fixed_dictionaries({"id": st.sampled_from(["UAPPROVER1", "UREQUESTER1", "U0X", ""])})),
        "actions": st.one_of(_json, st.lists(st.fixed_dictionaries({"action_id": _scalars, "value": _scalars}), max_size=2)),
        "view": st.one_of(_json, st.fixed_dictionaries({"callback_id": _scalars, "id": _scalars, "private_metadata": _scalars, "state": _json})),
        "event": _json,
        "trigger_id": st.text(max_size=20),
        "team": _json,
        "channel": _json,
        "container": _json,
        "action_id": _scalars,
        "value": _scalars,
        "event_id": st.text(max_size=20),
        "challenge": _scalars,
    },
)
_commands = st.fixed_dictionaries(
    {"command": st.sampled_from(["/iam", "/other"]), "text": st.text(max_size=200), "user_id": st.sampled_from(["UREQUESTER1", "UAPPROVER1", ""])},
    optional={"trigger_id": st.text(max_size=20), "channel_id": st.text(max_size=12), "response_url": st.just("stand-in")},
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=_payloads)
def test_made_up_interaction_payloads_never_make_a_server_error(bot, payload):
    from urllib.parse import urlencode

    if payload["type"] == "event_callback":
        resp = bot.slack.post(json.dumps(payload).encode(), JSON)
    else:
        resp = bot.slack.post(urlencode({"payload": json.dumps(payload)}).encode(), FORM)
    assert resp.status_code in (200, 400, 404), (resp.status_code, resp.text[:200])
    assert "Traceback" not in bot.logs.text()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fields=_commands)
def test_made_up_slash_commands_never_make_a_server_error(bot, fields):
    from urllib.parse import urlencode

    if "response_url" in fields:  # Slack's is always one that answers: the stand-in's
        fields["response_url"] = bot.standin.hooks_url + "commands/T0TEST/1/made-up"
    resp = bot.slack.post(urlencode(fields).encode(), FORM)
    assert resp.status_code in (200, 400, 404), (resp.status_code, resp.text[:200])
    assert "Traceback" not in bot.logs.text()
