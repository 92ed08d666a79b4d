"""Self-check for the Slack stand-in and the signed-request sender.

Exercises both through the real libraries (slack_sdk WebClient, slack_bolt App over
HTTP) so the test doubles are known to speak the same protocol as Slack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import Ack, App, Respond, Say
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.demo.slack_sender import FORM, SlackSender
from bot.demo.standin import SlackStandIn

TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"

SECTION = {"type": "section", "block_id": "intro", "text": {"type": "mrkdwn", "text": "*Request* for `alice`"}}
BUTTONS = {
    "type": "actions",
    "block_id": "decide",
    "elements": [
        {
            "type": "button",
            "action_id": "approve",
            "text": {"type": "plain_text", "text": "Approve"},
            "value": "r1",
            "style": "primary",
        },
        {"type": "button", "action_id": "deny", "text": {"type": "plain_text", "text": "Deny"}, "value": "r1"},
    ],
}


def modal(
    title: str = "Request access", *, external_id: str | None = None, section_text: str = "Pick a role"
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "request_form",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "private_metadata": "req-1",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section_text}},
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "reason_input"},
            },
        ],
    }
    if external_id:
        view["external_id"] = external_id
    return view


@pytest.fixture(scope="module")
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(TOKEN) as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(standin: SlackStandIn) -> None:
    standin.reset()


@pytest.fixture
def client(standin: SlackStandIn) -> WebClient:
    return WebClient(token=TOKEN, base_url=standin.url)


# ---------------------------------------------------------------- stand-in


def test_web_client_round_trip(standin: SlackStandIn, client: WebClient) -> None:
    assert client.auth_test()["user_id"] == "UBOT"

    posted = client.chat_postMessage(channel="C0GENERAL", text="Request for alice", blocks=[SECTION, BUTTONS])
    assert posted["channel"] == "C0GENERAL"
    assert posted["ts"].startswith("1700000000.")
    assert posted["message"]["blocks"][1]["elements"][0]["action_id"] == "approve"

    updated = client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="Approved", blocks=[SECTION])
    assert updated["ts"] == posted["ts"] and updated["message"]["text"] == "Approved"
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel="C0GENERAL", ts="1.000000", text="nope")
    assert missing.value.response["error"] == "message_not_found"

    opened = client.views_open(trigger_id="1.2.abc", view=modal(external_id="req-1"))
    view = opened["view"]
    assert view["id"].startswith("V") and view["state"] == {"values": {}} and view["hash"]
    again = client.views_update(external_id="req-1", view=modal("Request (step 2)"))
    assert again["view"]["id"] == view["id"] and again["view"]["external_id"] == "req-1"
    with pytest.raises(SlackApiError) as unknown:
        client.views_update(external_id="nope", view=modal())
    assert unknown.value.response["error"] == "not_found"

    assert client.conversations_open(users="U123")["channel"]["id"] == "D123"
    assert client.users_info(user="U123")["user"]["profile"]["display_name"] == "u123"
    with pytest.raises(SlackApiError) as gone:
        client.users_info(user="UGONE1")
    assert gone.value.response["error"] == "user_not_found"

    # Posting to a user id lands in the DM channel, like Slack.
    assert client.chat_postMessage(channel="U123", text="hi")["channel"] == "D123"

    assert [c.method for c in standin.calls] == [
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.update",
        "views.open",
        "views.update",
        "views.update",
        "conversations.open",
        "users.info",
        "users.info",
        "chat.postMessage",
    ]
    first_post = standin.calls_to("chat.postMessage")[0]
    assert first_post.token == TOKEN and first_post.args["blocks"] == [SECTION, BUTTONS]
    assert standin.calls_to("conversations.open")[0].args == {"users": "U123"}  # form-encoded
    assert standin.problems == []


def test_form_encoded_json_fields_are_parsed(standin: SlackStandIn, client: WebClient) -> None:
    client.api_call("chat.postMessage", params={"channel": "C1", "text": "x", "blocks": json.dumps([SECTION])})
    call = standin.wait_for("chat.postMessage")
    assert call.args["blocks"] == [SECTION] and "token" not in call.args
    assert standin.problems == []


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda c: c.views_open(trigger_id="t", view=modal("A title that is far too long")), "title"),
        (lambda c: c.views_open(trigger_id="t", view=modal(section_text="x" * 3001)), "3000"),
        (
            lambda c: c.chat_postMessage(channel="C1", text="x", blocks=[{"type": "sectoin", "text": "x"}]),
            "unknown block type",
        ),
        (
            lambda c: c.chat_postMessage(
                channel="C1", text="x", blocks=[{"type": "actions", "elements": [{"type": "buton"}]}]
            ),
            "Unknown element detected",
        ),
        (lambda c: c.chat_postMessage(channel="C1", blocks=[SECTION]), "without a `text` fallback"),
        (lambda c: c.chat_postMessage(channel="C1", text="x", blocks=[SECTION] * 51), "limit of 50"),
        (lambda c: c.chat_postMessage(channel="C1", text="x", blocks=[SECTION, SECTION]), "duplicate block_id"),
    ],
)
def test_invalid_payloads_are_recorded(standin: SlackStandIn, client: WebClient, send: Any, expected: str) -> None:
    send(client)
    assert any(expected in p for p in standin.problems), standin.problems


def test_dropped_parts_are_caught_quietly_even_with_clamped_logging(
    standin: SlackStandIn, client: WebClient, caplog: pytest.LogCaptureFixture
) -> None:
    # slack_sdk drops an unknown accessory without raising; only its log warning tells.
    sdk_logger = logging.getLogger("slack_sdk")
    saved = sdk_logger.level
    sdk_logger.setLevel(logging.ERROR)  # as an app might clamp library loggers
    try:
        with caplog.at_level(logging.DEBUG):
            accessory = {"type": "buton", "text": "secret-ish"}
            client.chat_postMessage(channel="C1", text="x", blocks=[{**SECTION, "accessory": accessory}])
    finally:
        sdk_logger.setLevel(saved)
    assert any("Unknown element detected" in p for p in standin.problems), standin.problems
    assert "secret-ish" not in caplog.text  # reported as a problem, not logged by the stand-in


def test_rate_limit_then_retry(standin: SlackStandIn) -> None:
    retrying = WebClient(
        token=TOKEN, base_url=standin.url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    standin.fail_next("chat.postMessage")
    assert retrying.chat_postMessage(channel="C1", text="hello")["ok"]
    first, second = standin.calls_to("chat.postMessage")
    assert (first.status, first.response["error"], second.status) == (429, "ratelimited", 200)
    assert second.at - first.at >= 1.0  # honoured Retry-After

    standin.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(SlackApiError) as failed:
        WebClient(token=TOKEN, base_url=standin.url).chat_postMessage(channel="C1", text="hello")
    assert failed.value.response["error"] == "channel_not_found"


def test_wrong_token_is_rejected(standin: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as failed:
        WebClient(token="xoxb-wrong", base_url=standin.url).chat_postMessage(channel="C1", text="hi")
    assert failed.value.response["error"] == "invalid_auth"
    assert standin.calls[0].token == "xoxb-wrong"


def test_wait_for_times_out_listing_seen_methods(standin: SlackStandIn, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match="calls seen: auth.test"):
        standin.wait_for("chat.postMessage", timeout=0.2)


def test_file_uploads(standin: SlackStandIn, client: WebClient) -> None:
    client.files_upload_v2(channel="C1", content="report body", filename="report.txt")
    assert standin.uploaded(standin.wait_for("upload_url").args["file_id"]) == b"report body"
    assert standin.calls_to("files.completeUploadExternal")[0].args["files"][0]["title"] == "report.txt"
    assert standin.problems == []

    client.files_upload(file=b"legacy bytes", filename="old.txt", channels="C1")  # multipart
    assert standin.calls_to("files.upload")[0].args["file"]["content"] == "legacy bytes"
    assert any("retired" in p for p in standin.problems)


# ---------------------------------------------------------------- file uploads (getUploadURLExternal -> upload_url -> complete)


def _post(url: str, data: bytes, content_type: str | None = None) -> tuple[int, str]:
    """POST to an upload_url as slack_sdk does (urllib, raw bytes); (status, body)."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def _ticket(client: WebClient, length: int, filename: str = "alice.creds.age") -> tuple[str, str]:
    got = client.files_getUploadURLExternal(filename=filename, length=length)
    return got["file_id"], got["upload_url"]


SECRET = b"hunter2-plaintext\x00"


def test_three_steps_by_hand_with_binary_bytes(standin: SlackStandIn, client: WebClient) -> None:
    data = SECRET + os.urandom(300 - len(SECRET))
    file_id, upload_url = _ticket(client, 300)
    assert upload_url == standin.url.removesuffix("/api/") + f"/upload/v1/{file_id}" and file_id.startswith("F")

    assert _post(upload_url, data) == (200, "OK - 300")
    upload = standin.wait_for("upload_url")
    assert upload.args == {"file_id": file_id, "length": 300, "sha256": hashlib.sha256(data).hexdigest()}
    assert standin.uploaded(file_id) == data  # exact bytes, not a decoded string
    with pytest.raises(SlackApiError) as unfinished:
        client.files_info(file=file_id)  # not completed yet: Slack does not know the file
    assert unfinished.value.response["error"] == "file_not_found"

    done = client.files_completeUploadExternal(
        files=[{"id": file_id, "title": "Credentials for alice"}], channel_id="D301", initial_comment="Your credentials"
    )
    (described,) = done["files"]
    assert (described["id"], described["name"], described["title"]) == (file_id, "alice.creds.age", "Credentials for alice")
    assert (described["size"], described["filetype"], described["user"], described["ims"]) == (300, "binary", "UBOT", ["D301"])

    (message,) = client.conversations_history(channel="D301")["messages"]
    assert (message["text"], message["user"], message["upload"]) == ("Your credentials", "UBOT", True)
    assert [(f["id"], f["name"], f["title"], f["size"]) for f in message["files"]] == [
        (file_id, "alice.creds.age", "Credentials for alice", 300)
    ]

    info = client.files_info(file=file_id)["file"]
    assert (info["ims"], info["channels"], info["groups"], info["is_public"]) == (["D301"], [], [], False)
    assert info["shares"]["private"]["D301"][0]["ts"] == message["ts"]

    expected = {"id": file_id, "name": "alice.creds.age", "title": "Credentials for alice", "bytes": data}
    assert standin.files_in("D301") == [{**expected, "ts": message["ts"], "text": "Your credentials"}]
    assert standin.files_in("U301") == standin.files_in("D301")  # a user id means the DM, as when posting
    assert "hunter2" not in standin.all_text()
    assert standin.problems == []


def test_files_upload_v2_end_to_end(standin: SlackStandIn, client: WebClient) -> None:
    data = os.urandom(1000)
    dm = client.conversations_open(users="U555")["channel"]["id"]
    sent = client.files_upload_v2(channel=dm, file=data, filename="bob.creds.age", initial_comment="For you")
    file_id = sent["file"]["id"]
    assert [c.method for c in standin.calls] == [
        "conversations.open",
        "files.getUploadURLExternal",
        "upload_url",
        "files.completeUploadExternal",
    ]
    assert standin.calls_to("files.getUploadURLExternal")[0].args == {"filename": "bob.creds.age", "length": "1000"}
    assert sent["file"]["size"] == 1000 and sent["file"]["ims"] == [dm]
    (shared,) = standin.files_in(dm)
    assert (shared["id"], shared["bytes"], shared["text"]) == (file_id, data, "For you")
    (message,) = client.conversations_history(channel=dm)["messages"]
    assert [f["id"] for f in message["files"]] == [file_id] and message["ts"] == shared["ts"]
    assert standin.problems == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"filename": "x.age"}, "invalid_arguments"),  # no length
        ({"length": 5}, "invalid_arguments"),  # no filename
        ({"filename": "x.age", "length": "five"}, "invalid_arguments"),
        ({"filename": "x.age", "length": -3}, "invalid_arguments"),
        ({"filename": "x.age", "length": 0}, "missing_argument"),  # documented for length 0
        ({"filename": "x.age", "length": 5, "alt_txt": "a" * 1001}, "alt_txt_too_large"),
        ({"filename": "x.py", "length": 2 * 1024 * 1024, "snippet_type": "python"}, "snippet_too_large"),
    ],
)
def test_asking_for_an_upload_url_is_validated(client: WebClient, params: dict[str, Any], error: str) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.api_call("files.getUploadURLExternal", params=params)
    assert refused.value.response["error"] == error


def test_missing_length_through_the_sdk(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.files_getUploadURLExternal(filename="x.age", length=None)  # type: ignore[arg-type]
    assert refused.value.response["error"] == "invalid_arguments"
    assert refused.value.response["response_metadata"]["messages"] == ["[ERROR] missing required field: length"]


def test_upload_url_of_an_unknown_file_is_404(standin: SlackStandIn) -> None:
    assert _post(standin.url.removesuffix("/api/") + "/upload/v1/F0NOSUCH", b"abc")[0] == 404
    assert standin.wait_for("upload_url").status == 404


def test_multipart_upload_keeps_the_bytes_exactly(standin: SlackStandIn, client: WebClient) -> None:
    data = b"\r\n--not-the-boundary\r\n\r" + os.urandom(200) + b"\r\n"
    file_id, upload_url = _ticket(client, len(data))
    body = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; name="filename"; filename="a.age"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--XyZ--\r\n"
    )
    assert _post(upload_url, body, "multipart/form-data; boundary=XyZ") == (200, f"OK - {len(data)}")
    assert standin.uploaded(file_id) == data


def test_completing_refuses_unknown_unuploaded_and_short_files(standin: SlackStandIn, client: WebClient) -> None:
    def refusal(**kwargs: Any) -> str:
        with pytest.raises(SlackApiError) as refused:
            client.files_completeUploadExternal(**kwargs)
        return str(refused.value.response["error"])

    assert refusal(files=[{"id": "F0NOSUCH", "title": "x"}], channel_id="D302") == "file_not_found"
    file_id, upload_url = _ticket(client, 300)
    assert refusal(files=[{"id": file_id}], channel_id="D302") == "file_not_found"  # no bytes arrived yet
    with pytest.raises(KeyError):
        standin.uploaded(file_id)
    assert _post(upload_url, os.urandom(299)) == (200, "OK - 299")
    assert refusal(files=[{"id": file_id}], channel_id="D302") == "file_update_failed"  # 299 of 300 bytes
    with pytest.raises(SlackApiError) as malformed:
        client.api_call("files.completeUploadExternal", params={"files": "nope", "channel_id": "D302"})
    assert malformed.value.response["error"] == "invalid_arguments"
    assert standin.files_in("D302") == [] and client.conversations_history(channel="D302")["messages"] == []

    data = os.urandom(300)  # uploading again before completing replaces the bytes
    assert _post(upload_url, data)[0] == 200
    assert client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="D302")["files"][0]["size"] == 300
    assert [f["bytes"] for f in standin.files_in("D302")] == [data]


def test_completing_again_does_not_post_twice(standin: SlackStandIn, client: WebClient) -> None:
    data = os.urandom(64)
    file_id, upload_url = _ticket(client, 64)
    _post(upload_url, data)
    first = client.files_completeUploadExternal(files=[{"id": file_id, "title": "creds"}], channel_id="D303")
    again = client.files_completeUploadExternal(files=[{"id": file_id, "title": "creds"}], channel_id="D303")
    assert again["ok"] and again["files"][0]["id"] == first["files"][0]["id"] == file_id
    assert len(client.conversations_history(channel="D303")["messages"]) == 1 and len(standin.files_in("D303")) == 1
    assert _post(upload_url, data)[0] == 404  # a completed ticket takes no more bytes

    client.files_completeUploadExternal(files=[{"id": file_id}], channels=["C0OPS"])  # a new channel: shared there
    assert len(standin.files_in("C0OPS")) == 1 and len(standin.files_in("D303")) == 1
    info = client.files_info(file=file_id)["file"]
    assert (info["ims"], info["channels"], info["is_public"]) == (["D303"], ["C0OPS"], True)


def test_completing_without_a_channel_keeps_the_file_private(standin: SlackStandIn, client: WebClient) -> None:
    file_id, upload_url = _ticket(client, 10)
    _post(upload_url, b"0123456789")
    assert client.files_completeUploadExternal(files=[{"id": file_id}])["files"][0]["ims"] == []
    info = client.files_info(file=file_id)["file"]
    assert (info["channels"], info["groups"], info["ims"], info["shares"]) == ([], [], [], {})
    assert standin.uploaded(file_id) == b"0123456789"


def test_failures_can_be_injected_into_the_upload_steps(standin: SlackStandIn, client: WebClient) -> None:
    dm = "D304"
    standin.fail_next("files.completeUploadExternal", status=200, error="internal_error")
    with pytest.raises(SlackApiError) as failed:
        client.files_upload_v2(channel=dm, file=os.urandom(32), filename="c.age")
    assert failed.value.response["error"] == "internal_error"
    assert standin.files_in(dm) == []  # nothing was shared...
    file_id = standin.calls_to("files.getUploadURLExternal")[0].response["file_id"]
    client.files_completeUploadExternal(files=[{"id": file_id}], channel_id=dm)  # ...until completed again
    assert [f["id"] for f in standin.files_in(dm)] == [file_id]

    standin.fail_next("upload_url", status=500, error="upstream down")
    with pytest.raises(urllib.error.HTTPError) as refused:
        client.files_upload_v2(channel=dm, file=os.urandom(32), filename="d.age")
    assert refused.value.code == 500 and len(standin.files_in(dm)) == 1


def test_reset_forgets_files_and_their_messages(standin: SlackStandIn, client: WebClient) -> None:
    sent = client.files_upload_v2(channel="D305", file=os.urandom(16), filename="e.age")
    client.chat_postMessage(channel="D305", text="kept")
    standin.reset()
    with pytest.raises(KeyError):
        standin.uploaded(sent["file"]["id"])
    assert standin.files_in("D305") == []
    assert [m["text"] for m in client.conversations_history(channel="D305")["messages"]][:1] == ["kept"]
    with pytest.raises(SlackApiError) as gone:
        client.files_info(file=sent["file"]["id"])
    assert gone.value.response["error"] == "file_not_found"


# ---------------------------------------------------------------- sender + Bolt app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _build_app(standin: SlackStandIn) -> App:
    app = App(
        signing_secret=SIGNING_SECRET,
        token=TOKEN,
        client=WebClient(token=TOKEN, base_url=standin.url),
        token_verification_enabled=False,
    )

    @app.command("/iam")
    def iam(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        if command["text"] == "request":
            client.views_open(trigger_id=command["trigger_id"], view=modal(external_id=f"req-{command['user_id']}"))
        else:
            respond(text=f"Working on `{command['text']}`")
            client.chat_postMessage(channel=command["user_id"], text="Request for alice", blocks=[SECTION, BUTTONS])

    @app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        text = f"Approved by <@{body['user']['id']}>"
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text=text)

    @app.view("request_form")
    def submit(ack: Ack, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["reason_input"]["value"] or ""
        if len(reason) < 5:
            ack(response_action="errors", errors={"reason": "Say a bit more"})
        else:
            ack()

    @app.view_closed("request_form")
    def closed(ack: Ack) -> None:
        ack()

    @app.options("role")
    def roles(ack: Ack, payload: dict[str, Any]) -> None:
        matching = [r for r in ("admin", "auditor") if payload["value"] in r]
        ack(options=[{"text": {"type": "plain_text", "text": r}, "value": r} for r in matching])

    @app.event("message")
    def dm(event: dict[str, Any], say: Say) -> None:
        say(text=f"echo: {event['text']}")

    @app.event("app_mention")
    def mention(event: dict[str, Any], say: Say) -> None:
        say(text="status: ok")

    return app


@pytest.fixture(scope="module")
def sender(standin: SlackStandIn) -> Iterator[SlackSender]:
    server = make_server("127.0.0.1", 0, SlackRequestHandler(_build_app(standin)), _ThreadingWSGIServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield SlackSender(f"http://127.0.0.1:{server.server_port}", SIGNING_SECRET, response_url_base=standin.hooks_url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_command_is_verified_and_handled(standin: SlackStandIn, sender: SlackSender) -> None:
    assert sender.command("U123", "create alice").status_code == 200
    post = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "U123")
    assert post.response["channel"] == "D123"
    assert standin.wait_for("response_url").args["text"] == "Working on `create alice`"
    assert standin.problems == []


def test_bad_signatures_are_rejected(sender: SlackSender) -> None:
    body = b"command=%2Fiam&text=x&user_id=U123&team_id=T0TEST"
    assert sender.post(body, FORM, signature="v0=" + "0" * 64).status_code == 401
    stale = int(time.time()) - 10 * 60  # correctly signed, but outside Slack's 5-minute window
    assert sender.post(body, FORM, timestamp=stale).status_code == 401


def test_interactive_flow(standin: SlackStandIn, sender: SlackSender) -> None:
    assert sender.command("U123", "request").status_code == 200
    opened = standin.wait_for("views.open")
    view = opened.response["view"]

    def reason(text: str) -> dict[str, Any]:
        return {"reason": {"reason_input": {"type": "plain_text_input", "value": text}}}

    errors = sender.view_submission("U123", view, reason("x"))
    assert errors.json() == {"response_action": "errors", "errors": {"reason": "Say a bit more"}}
    good = sender.view_submission("U123", view, reason("on-call rotation"))
    assert good.status_code == 200 and good.text == ""
    assert sender.view_closed("U123", view).status_code == 200

    bot = WebClient(token=TOKEN, base_url=standin.url)
    post = bot.chat_postMessage(channel="C0GENERAL", text="Request", blocks=[SECTION, BUTTONS])
    clicked = sender.block_action(
        "U999", "approve", "r1", block_id="decide", channel_id="C0GENERAL", message_ts=post["ts"]
    )
    assert clicked.status_code == 200
    update = standin.wait_for("chat.update")
    assert update.response["ok"] and update.args["text"] == "Approved by <@U999>"

    options = sender.block_suggestion("U123", "role", "aud", view=view)
    assert [o["value"] for o in options.json()["options"]] == ["auditor"]
    assert standin.problems == []


def test_events(standin: SlackStandIn, sender: SlackSender) -> None:
    assert sender.dm("U123", "hello").status_code == 200
    assert standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "D123").args["text"] == "echo: hello"
    assert sender.mention("U123", "status", channel="C0OPS").status_code == 200
    assert standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0OPS").args["text"] == "status: ok"
    redelivered = {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "channel": "C2", "ts": "1.2"}
    assert sender.event(redelivered, retry_num=1).status_code == 200
    assert standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C2").args["text"] == "status: ok"
