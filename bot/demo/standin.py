"""A local stand-in for the Slack Web API, served over real HTTP (used by `iam-bot demo` and the tests).

Point a ``slack_sdk.WebClient(base_url=standin.url)`` at it and the client talks to it
exactly as it would to https://slack.com/api/: same request encodings (form, JSON,
multipart), same HTTP status codes, same response shapes.  Every call is recorded, and
every Block Kit payload the bot sends is validated with slack_sdk's own models, so tests
can assert ``standin.problems == []`` to catch messages/modals that Slack would reject or
render badly.

Besides ``/api/<method>`` the server answers two non-API endpoints so that no request
ever needs the internet:

* ``<hooks_url>...``  - response_url stand-in (pass ``standin.hooks_url`` to SlackSender);
  recorded as pseudo-method ``"response_url"``.
* ``/upload/v1/<file_id>`` - the upload_url handed out by files.getUploadURLExternal
  (used by ``WebClient.files_upload_v2``); recorded as pseudo-method ``"upload_url"`` with
  args ``{"file_id", "length", "sha256"}`` only: the bytes stay out of ``all_text()`` and are
  read with ``standin.uploaded(file_id)``.

File uploads follow Slack's three steps: files.getUploadURLExternal hands out a ticket
(file id + upload_url), the bytes are POSTed there (raw or multipart), and
files.completeUploadExternal finishes it, sharing the file into ``channel_id``/``channels``
as ONE message per channel (``files: [...]``, ``upload: true``), which conversations.history
lists and files.info describes.  Completing a file again does not post it a second time in a
channel it is already in, so a test counting file messages sees what the bot really did.
"""

from __future__ import annotations

import copy
import email.message
import email.parser
import email.policy
import hashlib
import itertools
import json
import logging
import sys
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, quote, urlsplit

from slack_sdk.models.blocks import Block

from bot.slack.scopes import BOT_SCOPES
from slack_sdk.models.views import View

TEAM_ID = "T0TEST"
TEAM_DOMAIN = "t0test"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A0TEST"
# Bot scopes the stand-in's token reports in `x-oauth-scopes` (as Slack does on every Web API
# answer); the app as created from deploy/slack-app-manifest.yml (tests/e2e/test_doctor.py checks).
# What a token made from deploy/slack-app-manifest.yml is granted: the scopes the doctor expects.
DEFAULT_SCOPES = tuple(BOT_SCOPES)

# Form fields whose value slack_sdk serialises as a JSON string (blocks/attachments/view
# given as str, files.completeUploadExternal's `files`, message metadata).
_JSON_FIELDS = ("blocks", "view", "attachments", "metadata", "files")
_MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral", "chat.scheduleMessage"})
_VIEW_METHODS = frozenset({"views.open", "views.push", "views.update", "views.publish"})
_MAX_MESSAGE_BLOCKS = 50
_MAX_SNIPPET_BYTES = 1024 * 1024  # files.getUploadURLExternal: snippets "are limited to 1MB"
_MAX_ALT_TXT = 1000
_MAX_SHARE_CHANNELS = 100  # files.completeUploadExternal: channels_limit_exceeded
# filetype, pretty_type and mimetype Slack reports for a file, by extension; others are "binary".
_FILE_TYPES: dict[str, tuple[str, str, str]] = {
    "txt": ("text", "Plain Text", "text/plain"),
    "log": ("text", "Plain Text", "text/plain"),
    "csv": ("csv", "CSV", "text/csv"),
    "json": ("json", "JSON", "application/json"),
    "md": ("markdown", "Markdown (raw)", "text/plain"),
    "yaml": ("yaml", "YAML", "text/plain"),
    "yml": ("yaml", "YAML", "text/plain"),
    "pdf": ("pdf", "PDF", "application/pdf"),
    "png": ("png", "PNG", "image/png"),
    "jpg": ("jpg", "JPEG", "image/jpeg"),
    "jpeg": ("jpg", "JPEG", "image/jpeg"),
    "gz": ("gzip", "GZip", "application/gzip"),
    "zip": ("zip", "Zip", "application/zip"),
}
_BINARY_FILE_TYPE = ("binary", "Binary", "application/octet-stream")


@dataclass
class Call:
    """One request the bot made to the stand-in."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    # What the stand-in answered; handy for picking up ts / view ids in tests.
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str


@dataclass
class _Reply:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


# The slack_sdk.models loggers that report parts they could not parse.
_MODEL_LOGGERS = (
    "slack_sdk.models.blocks.blocks",
    "slack_sdk.models.blocks.block_elements",
    "slack_sdk.models.blocks.basic_components",
    "slack_sdk.models.views",
)


class _DroppedPartCollector(logging.Filter):
    """Turns slack_sdk.models' "Unknown ... detected and skipped" warnings into problems.

    slack_sdk parses unknown block/element/text types to ``None`` and only logs a warning,
    so validation alone would silently pass a payload Slack rejects.  As a logger filter
    it sees records before any handler: while the current thread is validating, records
    go to its bucket and are swallowed (they would otherwise put the bot's block contents
    into the app's logs); records from the bot's own threads pass through untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    @contextmanager
    def collecting(self) -> Iterator[list[str]]:
        for name in _MODEL_LOGGERS:
            # Records are only created if WARNING is enabled; re-asserted on every use
            # because the app may clamp the "slack_sdk" logger after this module loaded.
            # These loggers only ever log warnings, so this never makes them chattier.
            logging.getLogger(name).setLevel(logging.WARNING)
        bucket: list[str] = []
        self._local.bucket = bucket
        try:
            yield bucket
        finally:
            self._local.bucket = None

    def filter(self, record: logging.LogRecord) -> bool:
        bucket: list[str] | None = getattr(self._local, "bucket", None)
        if bucket is None:
            return True
        if record.levelno >= logging.WARNING:
            bucket.append(record.getMessage())
        return False


def _install_collector() -> _DroppedPartCollector:
    for name in _MODEL_LOGGERS:
        for existing in logging.getLogger(name).filters:
            if isinstance(existing, _DroppedPartCollector):
                return existing  # module imported twice under different names: share it
    collector = _DroppedPartCollector()
    for name in _MODEL_LOGGERS:
        logging.getLogger(name).addFilter(collector)
    return collector


_COLLECTOR = _install_collector()


def _contains_none(value: Any) -> bool:
    """True if a serialised block has a None inside a list (a part slack_sdk dropped)."""
    if isinstance(value, dict):
        return any(_contains_none(v) for v in value.values())
    if isinstance(value, list):
        return any(v is None or _contains_none(v) for v in value)
    return False


def _block_problems(where: str, blocks: Any, max_blocks: int | None) -> list[str]:
    """Validate a blocks array the way Slack would, using slack_sdk's models."""
    if not isinstance(blocks, list):
        return [f"{where}: blocks must be a JSON array, got {type(blocks).__name__}"]
    problems: list[str] = []
    if max_blocks is not None and len(blocks) > max_blocks:
        problems.append(f"{where}: {len(blocks)} blocks exceeds Slack's limit of {max_blocks}")
    seen_block_ids: set[str] = set()
    duplicate_ids: set[str] = set()
    for i, raw in enumerate(blocks):
        at = f"{where}: blocks[{i}]"
        if not isinstance(raw, dict) or "type" not in raw:
            problems.append(f"{at}: not a block object with a type: {raw!r:.200}")
            continue
        block_id = raw.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_block_ids and block_id not in duplicate_ids:
                duplicate_ids.add(block_id)
                problems.append(f"{at}: duplicate block_id {block_id!r}")  # Slack rejects these
            seen_block_ids.add(block_id)
        dropped_part = False
        with _COLLECTOR.collecting() as skipped:
            try:
                parsed = Block.parse(raw)
                if parsed is None or type(parsed) is Block:
                    problems.append(f"{at}: unknown block type {raw.get('type')!r}")
                    continue
                # to_dict() runs validate_json() on the block *and* recursively on its
                # elements/text objects; validate_json() alone is shallow.
                dropped_part = _contains_none(parsed.to_dict())
            except Exception as exc:  # SlackObjectFormationError, TypeError from bad keys, ...
                problems.append(f"{at} ({raw['type']}): {type(exc).__name__}: {exc}")
        problems.extend(f"{at}: {message:.300}" for message in skipped)
        if dropped_part and not skipped:
            problems.append(f"{at} ({raw['type']}): contains a part slack_sdk could not parse")
    return problems


def _view_problems(method: str, view: Any) -> list[str]:
    if not isinstance(view, dict):
        return [f"{method}: view must be a JSON object, got {type(view).__name__}"]
    problems: list[str] = []
    # Shallow on purpose: title/submit/close lengths, block count, metadata size.  Blocks
    # get a deep, per-index check below, which also reports what View's own parse drops.
    with _COLLECTOR.collecting():
        try:
            View(**view).validate_json()
        except Exception as exc:
            problems.append(f"{method}: view: {type(exc).__name__}: {exc}")
    view_type = view.get("type")
    if method == "views.publish" and view_type != "home":
        problems.append(f"{method}: view type must be 'home', got {view_type!r}")
    if method in ("views.open", "views.push") and view_type != "modal":
        problems.append(f"{method}: view type must be 'modal', got {view_type!r}")
    blocks = view.get("blocks")
    if view_type == "modal":
        if not view.get("title"):
            problems.append(f"{method}: a modal needs a title")
        if isinstance(blocks, list) and not view.get("submit"):
            if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks):
                problems.append(f"{method}: a modal with input blocks needs a submit button")
    if blocks is None:
        problems.append(f"{method}: view has no blocks")
    else:
        problems.extend(_block_problems(f"{method}: view", blocks, max_blocks=None))  # View checks <=100
    return problems


def _has_text(args: dict[str, Any]) -> bool:
    for key in ("text", "markdown_text"):
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            return True
    return False


def _message_problems(method: str, args: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    blocks = args.get("blocks")
    if blocks is not None:
        problems.extend(_block_problems(method, blocks, _MAX_MESSAGE_BLOCKS))
        if not _has_text(args):
            # Slack accepts it but notifications/screen readers get nothing.
            problems.append(f"{method}: blocks given without a `text` fallback")
    elif not _has_text(args) and not args.get("attachments") and not args.get("delete_original"):
        problems.append(f"{method}: neither text nor blocks given")
    attachments = args.get("attachments")
    if isinstance(attachments, list):
        for i, attachment in enumerate(attachments):
            if isinstance(attachment, dict) and "blocks" in attachment:
                where = f"{method}: attachments[{i}]"
                problems.extend(_block_problems(where, attachment["blocks"], _MAX_MESSAGE_BLOCKS))
    return problems


def _dm_channel_for(user_id: str) -> str:
    """Deterministic IM channel id for a user, e.g. U123 -> D123."""
    return "D" + user_id[1:]


def _as_length(value: Any) -> int | None:
    """An integer argument as Slack reads it (JSON number or form digits), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _file_type(name: str, snippet_type: str | None) -> tuple[str, str, str]:
    if snippet_type:
        return snippet_type, snippet_type.title(), "text/plain"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _FILE_TYPES.get(extension, _BINARY_FILE_TYPE)


def _multipart_file(content_type: str, body: bytes) -> bytes | None:
    """The file part of a multipart upload, byte for byte (None if there is none).

    Split by hand rather than with the email parser so arbitrary binary content
    (lone CRs, NULs) comes back exactly as sent.
    """
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return None
    fallback: bytes | None = None
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        head, separator, payload = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            continue
        payload = payload.removesuffix(b"\r\n")
        disposition = email.message.Message()
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                disposition[name.strip()] = value.strip()
        if disposition.get_param("filename", header="content-disposition") is not None:
            return payload  # curl -F file=@x / -F filename=@x
        if disposition.get_param("name", header="content-disposition") in ("file", "filename"):
            fallback = payload
    return fallback


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def _error(error: str, **fields: Any) -> dict[str, Any]:
    return {"ok": False, "error": error, **fields}


# Fields Slack fills in on every view it echoes back (views.open answers, interaction payloads).
VIEW_DEFAULTS: dict[str, Any] = {
    "private_metadata": "",
    "callback_id": "",
    "external_id": "",
    "clear_on_close": False,
    "notify_on_close": False,
    "close": None,
    "submit": None,
    "previous_view_id": None,
}


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # several replicas' bursts of calls, as Slack would take them

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # a caller killed on purpose mid-call (chaos tests) is not the stand-in's error
        super().handle_error(request, client_address)


class SlackStandIn:
    """Slack Web API stand-in; see the module docstring."""

    def __init__(self, bot_token: str = "xoxb-test-token", app_token: str = "xapp-test-token") -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        # Where apps.connections.open sends a Socket Mode client (a test's WebSocket server).
        self.socket_mode_url: str | None = None
        # Workspace set-up a test may change (reset() restores it): the token's scopes, fields
        # overriding users.info's answer per user (deleted, is_bot, ...), channels conversations.info knows.
        self.granted_scopes: list[str] = list(DEFAULT_SCOPES)
        self.user_overrides: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition(threading.RLock())
        self._calls: list[Call] = []
        self._problems: list[str] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._view_id_by_external_id: dict[str, str] = {}
        self._home_view_id_by_user: dict[str, str] = {}
        self._usergroups: dict[str, list[str]] = {}  # Slack user groups: id -> member ids
        # Upload tickets from files.getUploadURLExternal and the files they became, by file id:
        # name, title, declared length, uploaded bytes (None until POSTed), completed, shares.
        self._files: dict[str, dict[str, Any]] = {}
        self._seq = itertools.count(1)
        # Called with each Call once Slack has done it but before the caller hears back:
        # a test may kill the caller there, as if the process died with the answer in flight.
        self.after_call: list[Callable[[Call], None]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SlackStandIn:
        standin = self

        class Handler(_RequestHandler):
            owner = standin

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self._base = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """WebClient base_url (trailing slash matters: slack_sdk urljoins the method)."""
        self._require_started()
        return f"{self._base}/api/"

    @property
    def hooks_url(self) -> str:
        """Base for fake response_urls (``SlackSender(response_url_base=...)``)."""
        self._require_started()
        return f"{self._base}/hooks/"

    def _require_started(self) -> None:
        if not self._base:
            raise RuntimeError("SlackStandIn.start() has not been called")

    # ------------------------------------------------------------------ inspection

    @property
    def calls(self) -> list[Call]:
        """Snapshot of every call so far, in arrival order."""
        with self._cond:
            return list(self._calls)

    @property
    def problems(self) -> list[str]:
        with self._cond:
            return list(self._problems)

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self._calls if c.method == method]

    def wait_for(
        self, method: str, predicate: Callable[[Call], bool] = lambda call: True, timeout: float = 10.0
    ) -> Call:
        """Return the first call to `method` matching `predicate`, waiting up to `timeout` s.

        The bot usually answers asynchronously (after ack), so tests wait rather than assert
        immediately.  A predicate raising KeyError/IndexError/TypeError counts as "no match"
        so predicates can index into args without guarding every key.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self._calls:
                    if call.method != method:
                        continue
                    try:
                        if predicate(call):
                            return call
                    except (KeyError, IndexError, TypeError):
                        pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(c.method for c in self._calls) or "(none)"
                    raise AssertionError(f"no matching {method} call within {timeout}s; calls seen: {seen}")
                self._cond.wait(min(remaining, 0.1))

    def uploaded(self, file_id: str) -> bytes:
        """The exact bytes POSTed to `file_id`'s upload_url (KeyError if none were)."""
        with self._cond:
            record = self._files.get(file_id)
            if record is None or record["content"] is None:
                raise KeyError(f"no bytes were uploaded for file {file_id!r}")
            return bytes(record["content"])

    def files_in(self, channel_id: str) -> list[dict[str, Any]]:
        """Files shared into a channel (a user id means the app's DM with them), oldest first.

        One entry per file per share message still in the channel: ``id``, ``name``,
        ``title``, ``bytes`` (the uploaded content), ``ts`` of the message and its ``text``
        (the initial_comment).  Counting them tells a test how often the bot uploaded.
        """
        channel = self._resolve_channel(channel_id)
        with self._cond:
            found: list[dict[str, Any]] = []
            messages = sorted(
                (m for (c, _ts), m in self._messages.items() if c == channel and m.get("files")),
                key=lambda m: float(m["ts"]),
            )
            for message in messages:
                for shared in message["files"]:
                    record = self._files.get(shared["id"])
                    if record is None:
                        continue
                    found.append(
                        {
                            "id": record["id"],
                            "name": record["name"],
                            "title": record["title"],
                            "bytes": bytes(record["content"]),
                            "ts": message["ts"],
                            "text": message.get("text", ""),
                        }
                    )
            return found

    def all_text(self) -> str:
        """Every recorded call's args as JSON, for scanning for leaked secrets."""
        with self._cond:
            return "\n".join(json.dumps(c.args, ensure_ascii=False, sort_keys=True, default=str) for c in self._calls)

    # ------------------------------------------------------------------ control

    def fail_next(
        self, method: str, *, status: int = 429, retry_after: int = 1, error: str = "ratelimited", count: int = 1
    ) -> None:
        """Make the next `count` calls to `method` fail the way Slack does.

        Works for every Web API method, and for the pseudo-method ``"upload_url"`` too: the
        upload then answers `status` with `error` as a plain-text body (use a non-200 status).
        """
        with self._cond:
            queue = self._failures.setdefault(method, deque())
            queue.extend(_Failure(status, retry_after, error) for _ in range(count))

    def set_group_members(self, group_id: str, users: list[str]) -> None:
        """Who is in a Slack user group now, as usergroups.users.list will answer."""
        with self._cond:
            self._usergroups[group_id] = list(users)

    def reset(self) -> None:
        """Forget calls, problems, pending failures, user groups and files (with the messages that
        shared them); other posted messages and views are kept."""
        with self._cond:
            for key in [k for k, m in self._messages.items() if m.get("upload") and m.get("files")]:
                del self._messages[key]
            self._files.clear()
            self._calls.clear()
            self._problems.clear()
            self._failures.clear()
            self.after_call.clear()
            self.granted_scopes = list(DEFAULT_SCOPES)
            self.user_overrides.clear()
            self.channels.clear()
            self._usergroups.clear()

    def set_user(self, user_id: str, **fields: Any) -> None:
        """Override users.info fields for one user, e.g. set_user("U1", deleted=True)."""
        with self._cond:
            self.user_overrides.setdefault(user_id, {}).update(fields)

    def add_channel(
        self, channel_id: str, name: str, *, is_member: bool = True, is_private: bool = False, is_archived: bool = False
    ) -> None:
        """A channel conversations.info knows; a private one the bot is not in stays unknown, as in Slack."""
        with self._cond:
            self.channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "is_channel": not is_private,
                "is_group": False,
                "is_im": False,
                "is_private": is_private,
                "is_archived": is_archived,
                "is_member": is_member,
                "created": 1700000000,
            }

    # ------------------------------------------------------------------ dispatch

    def _handle(self, path: str, headers: Any, body: bytes) -> _Reply:
        """Process one HTTP request; runs on a server thread."""
        at = time.monotonic()
        url = urlsplit(path)
        if url.path.startswith("/upload/v1/"):
            return self._upload(url.path[len("/upload/v1/") :], headers.get("Content-Type", ""), body, at)

        args = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            args.update(_parse_body(headers.get("Content-Type", ""), body))
        except ValueError as exc:  # includes JSON and UTF-8 decode errors
            return _Reply(400, _error("invalid_form_data", detail=str(exc)))

        if url.path.startswith("/hooks/"):
            return self._record("response_url", args, None, at, lambda: self._response_url(args))
        if not url.path.startswith("/api/"):
            return _Reply(404, "Not Found")

        method = url.path[len("/api/") :]
        for key in _JSON_FIELDS:
            value = args.get(key)
            if isinstance(value, str) and value[:1] in ("[", "{"):
                try:
                    args[key] = json.loads(value)
                except json.JSONDecodeError:
                    pass  # left as a string; validation reports it
        # Keep the credential out of args (and out of all_text()).
        token = args.pop("token", None)
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :]
        return self._record(method, args, token, at, lambda: self._api(method, args, token))

    def _record(
        self, method: str, args: dict[str, Any], token: str | None, at: float, answer: Callable[[], _Reply]
    ) -> _Reply:
        # Serialised under the lock: the stores stay consistent, and a call becomes visible
        # to wait_for() only together with its response.
        with self._cond:
            reply = answer()
            if isinstance(reply.body, dict):
                # Snapshot: handlers return live stored messages/views, which later calls
                # mutate, and the body is serialised after the lock is released.
                reply.body = copy.deepcopy(reply.body)
            response = reply.body if isinstance(reply.body, dict) else {}
            call = Call(method, args, token, at, reply.status, response)
            self._calls.append(call)
            self._cond.notify_all()
        for hook in list(self.after_call):
            hook(call)
        return reply

    def _api(self, method: str, args: dict[str, Any], token: str | None) -> _Reply:
        if not token:
            return _Reply(200, _error("not_authed"))
        if method == "apps.connections.open":
            # Socket Mode: only the app-level token may open a connection.
            if token != self.app_token:
                return _Reply(200, _error("invalid_auth"))
            if not self.socket_mode_url:
                return _Reply(200, _error("socket_mode_not_enabled"))
            return _Reply(200, _ok(url=self.socket_mode_url))
        if token != self.bot_token:
            return _Reply(200, _error("invalid_auth"))
        queue = self._failures.get(method)
        if queue:
            failure = queue.popleft()
            if failure.status == 429:
                return _Reply(429, _error(failure.error), {"Retry-After": str(failure.retry_after)})
            return _Reply(failure.status, _error(failure.error))

        if method in _MESSAGE_METHODS:
            self._problems.extend(_message_problems(method, args))
        if method in _VIEW_METHODS and "view" in args:
            self._problems.extend(_view_problems(method, args["view"]))
        handler = _HANDLERS.get(method)
        # Slack reports the token's scopes on every Web API answer.
        return _Reply(200, handler(self, args) if handler else _ok(), {"x-oauth-scopes": ",".join(self.granted_scopes)})

    def _upload(self, file_id: str, content_type: str, body: bytes, at: float) -> _Reply:
        """A POST to an upload_url: raw bytes (what slack_sdk sends, labelled form-encoded by
        urllib, so never parsed) or a multipart form with the file in it."""
        data: bytes | None = body
        if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
            data = _multipart_file(content_type, body)
        # Only a digest is recorded: the bytes may be a secret, and tests scan all_text().
        digest = hashlib.sha256(data).hexdigest() if data is not None else None
        args = {"file_id": file_id, "length": len(data) if data is not None else 0, "sha256": digest}
        return self._record("upload_url", args, None, at, lambda: self._accept_upload(file_id, data))

    def _accept_upload(self, file_id: str, data: bytes | None) -> _Reply:
        queue = self._failures.get("upload_url")
        if queue:
            failure = queue.popleft()
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            return _Reply(failure.status, failure.error, headers)
        record = self._files.get(file_id)
        if record is None or record["completed"]:
            return _Reply(404, "Not Found")  # never handed out, or already completed
        if data is None:
            return _Reply(400, "Bad Request: no file in the multipart form")
        record["content"] = data
        return _Reply(200, f"OK - {len(data)}")

    def _next_ts(self) -> str:
        n = next(self._seq)
        return f"{1700000000 + n // 10000}.{(n % 10000) * 100:06d}"

    def _problem(self, message: str) -> None:
        self._problems.append(message)

    # ------------------------------------------------------------------ methods

    def _response_url(self, args: dict[str, Any]) -> _Reply:
        self._problems.extend(_message_problems("response_url", args))
        return _Reply(200, "ok")  # Slack answers response_url posts with a bare "ok"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return _ok(
            url=f"https://{TEAM_DOMAIN}.slack.com/",
            team="Test Team",
            user="iam-bot",
            team_id=TEAM_ID,
            user_id=BOT_USER_ID,
            bot_id=BOT_ID,
            is_enterprise_install=False,
        )

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return _ok(channel={"id": args["channel"]})
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if not users:
            return _error("users_list_not_supplied")
        if len(users) == 1:
            return _ok(channel={"id": _dm_channel_for(users[0])})
        return _ok(channel={"id": "G" + uuid.uuid5(uuid.NAMESPACE_OID, ",".join(sorted(users))).hex[:10].upper()})

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(str(args.get("channel", "")))
        limit = int(args.get("limit") or 100)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = sorted((m for (c, _ts), m in self._messages.items() if c == channel), key=lambda m: float(m["ts"]), reverse=True)
        messages = []
        for m in found[:limit]:
            m = dict(m)
            if not with_metadata:
                m.pop("metadata", None)  # as Slack: metadata only when asked for
            messages.append(m)
        return _ok(messages=messages, has_more=len(found) > limit)

    def _resolve_channel(self, channel: str) -> str:
        # Posting to a user id lands in the app's DM with that user.
        return _dm_channel_for(channel) if channel[:1] in ("U", "W") else channel

    def _message(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": args.get("text", ""),
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in args:
                message[key] = args[key]
        return message

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return _error("channel_not_found")
        if not _has_text(args) and not args.get("blocks") and not args.get("attachments"):
            return _error("no_text")
        channel = self._resolve_channel(str(args["channel"]))
        ts = self._next_ts()
        message = self._message(args, ts)
        self._messages[(channel, ts)] = message
        return _ok(channel=channel, ts=ts, message=message)

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(str(args.get("channel", "")))
        ts = str(args.get("ts", ""))
        stored = self._messages.get((channel, ts))
        if stored is None:
            return _error("message_not_found")
        if not _has_text(args) and "blocks" not in args and "attachments" not in args:
            return _error("no_text")
        # Fields left out of chat.update keep their previous value.
        stored.update({k: args[k] for k in ("text", "blocks", "attachments", "metadata") if k in args})
        return _ok(channel=channel, ts=ts, text=stored.get("text", ""), message=dict(stored))

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(str(args.get("channel", "")))
        ts = str(args.get("ts", ""))
        if self._messages.pop((channel, ts), None) is None:
            return _error("message_not_found")
        return _ok(channel=channel, ts=ts)

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return _error("channel_not_found")
        if not args.get("user"):
            return _error("user_not_found")
        if not _has_text(args) and not args.get("blocks") and not args.get("attachments"):
            return _error("no_text")
        return _ok(message_ts=self._next_ts())

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        ts = str(args.get("message_ts", ""))
        permalink = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return _ok(channel=channel, permalink=permalink)

    def _store_view(self, view: dict[str, Any], view_id: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        stored: dict[str, Any] = {
            **VIEW_DEFAULTS,
            **view,
            "id": view_id,
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
            "root_view_id": previous["root_view_id"] if previous else view_id,
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "state": {"values": {}},
        }
        if previous and not view.get("external_id"):
            stored["external_id"] = previous.get("external_id", "")
        if previous and previous.get("external_id") and previous["external_id"] != stored["external_id"]:
            self._view_id_by_external_id.pop(previous["external_id"], None)
        if stored["external_id"]:
            self._view_id_by_external_id[stored["external_id"]] = view_id
        self._views[view_id] = stored
        return dict(stored)

    def accept_view_response(self, action: str, submitted: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
        """A view the app answered a submission with (`response_action` push or update): Slack shows it
        and then knows it (views.update by its id or external_id works); so does the stand-in."""
        with self._cond:
            previous = self._views.get(str(submitted.get("id"))) if action == "update" else None
            view_id = str(submitted.get("id")) if action == "update" else self._new_view_id()
            return self._store_view(view, view_id, previous)

    def _new_view_id(self) -> str:
        return f"V{next(self._seq):08d}"

    def _views_open(self, args: dict[str, Any], method: str = "views.open") -> dict[str, Any]:
        if "view" not in args:
            self._problem(f"{method}: no view given")
        if not args.get("trigger_id"):
            # Slack can only open a modal in response to a fresh user interaction.
            self._problem(f"{method}: no trigger_id given")
            messages = ["[ERROR] missing required field: trigger_id"]
            return _error("invalid_arguments", response_metadata={"messages": messages})
        if not isinstance(args.get("view"), dict):
            return _error("invalid_arguments")  # the problem was recorded by _view_problems
        return _ok(view=self._store_view(args["view"], self._new_view_id(), None))

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id") or self._view_id_by_external_id.get(str(args.get("external_id", "")))
        previous = self._views.get(str(view_id)) if view_id else None
        if previous is None:
            return _error("not_found")
        if args.get("hash") and args["hash"] != previous["hash"]:
            return _error("hash_conflict")
        if not isinstance(args.get("view"), dict):
            return _error("invalid_arguments")
        return _ok(view=self._store_view(args["view"], previous["id"], previous))

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user_id", ""))
        if not user_id or not isinstance(args.get("view"), dict):
            return _error("invalid_arguments")
        view_id = self._home_view_id_by_user.setdefault(user_id, self._new_view_id())
        return _ok(view=self._store_view(args["view"], view_id, None))

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user", ""))
        if not user_id or user_id.startswith("UGONE"):
            return _error("user_not_found")
        name = user_id.lower()  # same convention as SlackSender's user_name
        real_name = f"Test User {user_id}"
        user = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "real_name": real_name,
            "deleted": False,
            "is_bot": user_id == BOT_USER_ID,
            "is_admin": False,
            "is_restricted": False,
            "is_app_user": False,
            "tz": "UTC",
            "profile": {
                "display_name": name,
                "real_name": real_name,
                "email": f"{name}@example.com",
                "team": TEAM_ID,
            },
        }
        return _ok(user={**user, **self.user_overrides.get(user_id, {})})

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None or (channel["is_private"] and not channel["is_member"]):
            return _error("channel_not_found")
        return _ok(channel=dict(channel))

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup", ""))
        if group not in self._usergroups:
            return _error("no_such_subteam")
        return _ok(users=list(self._usergroups[group]))

    def _files_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack retired files.upload (Nov 2025); answering ok but flagging it keeps the
        # bot honest about what would fail in production.
        self._problem("files.upload: method is retired by Slack; use WebClient.files_upload_v2")
        return _ok(file={"id": f"F{next(self._seq):08d}", "name": args.get("filename", "")})

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = args.get("filename")
        missing = [name for name in ("filename", "length") if args.get(name) in (None, "")]
        if missing:
            messages = [f"[ERROR] missing required field: {name}" for name in missing]
            return _error("invalid_arguments", response_metadata={"messages": messages})
        length = _as_length(args.get("length"))
        if not isinstance(filename, str) or length is None or length < 0:
            messages = ["[ERROR] filename must be a string and length a non-negative integer"]
            return _error("invalid_arguments", response_metadata={"messages": messages})
        if length == 0:
            return _error("missing_argument")  # documented: "typically only occurs when the length provided is 0"
        alt_txt = args.get("alt_txt")
        if isinstance(alt_txt, str) and len(alt_txt) > _MAX_ALT_TXT:
            return _error("alt_txt_too_large")
        snippet_type = args.get("snippet_type") or None
        if snippet_type and length > _MAX_SNIPPET_BYTES:
            return _error("snippet_too_large")
        file_id = f"F{next(self._seq):08d}"
        self._files[file_id] = {
            "id": file_id,
            "name": filename,
            "title": filename,
            "declared": length,
            "alt_txt": alt_txt if isinstance(alt_txt, str) and alt_txt else None,
            "snippet_type": snippet_type,
            "content": None,
            "completed": False,
            "created": 0,
            "shares": {},  # channel id -> ts of the message that shared it there
        }
        return _ok(upload_url=f"{self._base}/upload/v1/{file_id}", file_id=file_id)

    def _share_targets(self, args: dict[str, Any]) -> list[str] | dict[str, Any]:
        """Where files.completeUploadExternal shares the files (resolved), or an error answer."""
        wanted: list[str] = []
        if args.get("channel_id"):
            wanted.append(str(args["channel_id"]))
        channels = args.get("channels")
        if isinstance(channels, str):
            wanted.extend(c.strip() for c in channels.split(","))
        elif isinstance(channels, list):
            wanted.extend(str(c).strip() for c in channels)
        targets: list[str] = []
        for channel in (self._resolve_channel(c) for c in wanted if c):
            if channel not in targets:
                targets.append(channel)
        if len(targets) > _MAX_SHARE_CHANNELS:
            return _error("channels_limit_exceeded")
        if args.get("thread_ts") and len(targets) > 1:
            messages = ["[ERROR] thread_ts needs exactly one channel"]
            return _error("invalid_arguments", response_metadata={"messages": messages})
        for channel in targets:
            known = self.channels.get(channel)
            if known is not None and not known["is_member"]:
                return _error("channel_not_found" if known["is_private"] else "not_in_channel")
        return targets

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        if (
            not isinstance(files, list)
            or not files
            or not all(isinstance(f, dict) and isinstance(f.get("id"), str) and f["id"] for f in files)
        ):
            messages = ["[ERROR] files must be a JSON array of objects with an id"]
            return _error("invalid_arguments", response_metadata={"messages": messages})
        targets = self._share_targets(args)
        if isinstance(targets, dict):
            return targets
        # Check every file before changing anything: Slack refuses the call as a whole.
        records: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for given in files:
            record = self._files.get(given["id"])
            if record is None or record["content"] is None:
                # Never handed out, or handed out but no bytes arrived at its upload_url.
                return _error("file_not_found")
            if len(record["content"]) != record["declared"]:
                # The docs name no error for this; the file cannot be finished as declared.
                messages = [
                    f"[ERROR] {given['id']}: {len(record['content'])} bytes uploaded, "
                    f"{record['declared']} declared to files.getUploadURLExternal"
                ]
                return _error("file_update_failed", response_metadata={"messages": messages})
            if all(record is not seen for _given, seen in records):
                records.append((given, record))
        for given, record in records:
            if not record["completed"]:
                record["completed"] = True
                record["created"] = int(time.time())
                title = given.get("title")
                if isinstance(title, str) and title:
                    record["title"] = title
        comment = args.get("initial_comment")
        for channel in targets:
            new = [record for _given, record in records if channel not in record["shares"]]
            if not new:
                continue  # already shared there: Slack does not post the file twice
            ts = self._next_ts()
            fields: dict[str, Any] = {"text": comment if isinstance(comment, str) else ""}
            if not fields["text"] and args.get("blocks") is not None:  # blocks are ignored with a comment
                where = "files.completeUploadExternal"
                self._problems.extend(_block_problems(where, args["blocks"], _MAX_MESSAGE_BLOCKS))
                fields["blocks"] = args["blocks"]
            if args.get("thread_ts"):
                fields["thread_ts"] = str(args["thread_ts"])
            message = self._message(fields, ts)
            message.update(
                files=[self._file_object(record, with_shares=False) for record in new],
                upload=True,
                display_as_bot=False,
            )
            self._messages[(channel, ts)] = message
            for record in new:
                record["shares"][channel] = ts
        return _ok(files=[self._file_object(record) for _given, record in records])

    def _channel_kind(self, channel: str) -> str:
        """Which of a file's lists a channel goes in: "ims", "groups" (private) or "channels"."""
        if channel.startswith("D"):
            return "ims"
        known = self.channels.get(channel)
        if known is not None:
            return "groups" if known["is_private"] else "channels"
        return "groups" if channel.startswith("G") else "channels"

    def _file_object(self, record: dict[str, Any], *, with_shares: bool = True) -> dict[str, Any]:
        """A file as Slack describes it (files.info, completeUploadExternal's answer, messages)."""
        file_id, name = record["id"], record["name"]
        filetype, pretty_type, mimetype = _file_type(name, record["snippet_type"])
        kinds = {channel: self._channel_kind(channel) for channel in record["shares"]}
        base = f"https://files.slack.com/files-pri/{TEAM_ID}-{file_id}"
        file: dict[str, Any] = {
            "id": file_id,
            "created": record["created"],
            "timestamp": record["created"],
            "name": name,
            "title": record["title"],
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": pretty_type,
            "user": BOT_USER_ID,
            "user_team": TEAM_ID,
            "editable": bool(record["snippet_type"]),
            "size": len(record["content"]),
            "mode": "snippet" if record["snippet_type"] else "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": "channels" in kinds.values(),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{base}/{quote(name)}",
            "url_private_download": f"{base}/download/{quote(name)}",
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{file_id}/{quote(name)}",
            "has_rich_preview": False,
            "file_access": "visible",
        }
        if record["alt_txt"]:
            file["alt_txt"] = record["alt_txt"]
        if with_shares:
            for kind in ("channels", "groups", "ims"):
                file[kind] = [channel for channel, k in kinds.items() if k == kind]
            shares: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for channel, ts in record["shares"].items():
                entry: dict[str, Any] = {
                    "reply_users": [],
                    "reply_users_count": 0,
                    "reply_count": 0,
                    "ts": ts,
                    "team_id": TEAM_ID,
                    "share_user_id": BOT_USER_ID,
                }
                known = self.channels.get(channel)
                if known is not None:
                    entry["channel_name"] = known["name"]
                visibility = "public" if kinds[channel] == "channels" else "private"
                shares.setdefault(visibility, {})[channel] = [entry]
            file["shares"] = shares
            file["comments_count"] = 0
        return file

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        record = self._files.get(str(args.get("file", "")))
        if record is None or not record["completed"]:
            return _error("file_not_found")  # an upload never completed is discarded, as in Slack
        return _ok(file=self._file_object(record), comments=[], response_metadata={"next_cursor": ""})


_HANDLERS: dict[str, Callable[[SlackStandIn, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackStandIn._auth_test,
    "conversations.open": SlackStandIn._conversations_open,
    "conversations.history": SlackStandIn._conversations_history,
    "conversations.info": SlackStandIn._conversations_info,
    "chat.postMessage": SlackStandIn._chat_post_message,
    "chat.update": SlackStandIn._chat_update,
    "chat.delete": SlackStandIn._chat_delete,
    "chat.postEphemeral": SlackStandIn._chat_post_ephemeral,
    "chat.getPermalink": SlackStandIn._chat_get_permalink,
    "views.open": SlackStandIn._views_open,
    "views.push": lambda standin, args: standin._views_open(args, "views.push"),
    "views.update": SlackStandIn._views_update,
    "views.publish": SlackStandIn._views_publish,
    "users.info": SlackStandIn._users_info,
    "usergroups.users.list": SlackStandIn._usergroups_users_list,
    "files.upload": SlackStandIn._files_upload,
    "files.getUploadURLExternal": SlackStandIn._files_get_upload_url_external,
    "files.completeUploadExternal": SlackStandIn._files_complete_upload_external,
    "files.info": SlackStandIn._files_info,
}


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode a request body in any of the encodings slack_sdk/Bolt use."""
    if not body:
        return {}
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise ValueError("JSON body must be an object")
        return parsed
    if mime == "multipart/form-data":
        return _parse_multipart(content_type, body)
    if mime in ("application/x-www-form-urlencoded", ""):
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    # e.g. raw bytes posted to an upload_url
    return {}


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    # files.upload (v1) sends multipart; the email parser handles it without cgi.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("malformed multipart body")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = str(part.get_param("name", header="content-disposition") or "")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        text = payload.decode("utf-8", "replace")
        fields[name] = {"filename": filename, "length": len(payload), "content": text} if filename else text
    return fields


class _RequestHandler(BaseHTTPRequestHandler):
    owner: SlackStandIn  # set on the per-server subclass

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:  # the async client may GET read methods such as users.info
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.owner._handle(self.path, self.headers, body)
        if isinstance(reply.body, dict):
            payload = json.dumps(reply.body).encode()
            content_type = "application/json; charset=utf-8"
        else:
            payload = reply.body.encode()
            content_type = "text/plain; charset=utf-8"
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet; every call is in SlackStandIn.calls anyway


def poll(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """The first truthy value of `predicate()` within `timeout` seconds, else None.

    The bot answers Slack asynchronously (after ack), so whoever drives it waits for what it
    does instead of asserting at once: the demo and the tests alike.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
