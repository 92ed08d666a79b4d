"""`iam-bot demo`: request -> review -> approve -> user in IAM -> reveal -> status, on this machine;
then the other way credentials travel: a file encrypted to the owner's own age key, opened with it.

Everything is real except the two outsiders: AWS IAM is moto (in process, over HTTP, reached the
way production reaches AWS, through AWS_ENDPOINT_URL) and Slack is the Web API stand-in plus
signed requests shaped as Slack sends them. The app, its HTTP server, its worker and its
SQLite database are the ones `iam-bot serve` runs. Each step checks that what it shows really
happened (in the database, in moto, in what Slack was asked to do); the demo exits 0 only if
every check passed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO
from urllib.parse import urlsplit

import pyrage
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.demo.contract import MODAL_LABELS
from bot.demo.render import MASK, masked, render_file_message, render_message, render_view
from bot.demo.slack_sender import SlackSender
from bot.demo.standin import TEAM_ID, Call, SlackStandIn, poll
from bot.slack.ui import ids

ALICE, BOB, CAROL = "UALICE", "UBOB", "UCAROL"
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol"}
USER_NAME = "alice.dev"
# The second journey: an IAM user @alice asks for on behalf of @carol, who has registered an age key.
CAROL_USER = "carol.dev"
CAROL_GROUPS = ("readers",)
CAROL_TAGS = {"team": "payments"}
CAROL_REASON = "Reads the payments reports for the quarterly audit"
CSV_HEADER = ["User name", "Password", "Access key ID", "Secret access key", "Console login link"]
AGE_MAGIC = b"age-encryption.org/v1\n"  # how every age file begins
REGION = "us-east-1"
GROUPS = ("developers", "readers", "billing-admins")
POLICY_NAME = "s3-read-reports"
AWS_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
TAGS = {"team": "payments", "cost-center": "1234"}
# `iam-bot serve` refuses to run without a permissions boundary: the demo's account has one, as a real one would.
BOUNDARY_NAME = "iam-bot-boundary"
BOUNDARY_DOC = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
    ],
}
WAIT = 60.0  # generous: a busy 2-core machine must not fail the demo; normal runs take well under a second per step
README_HINT = (
    "To connect a real workspace: create the Slack app (README.md, \"Set up the Slack app\"), set SLACK_BOT_TOKEN, "
    "SLACK_SIGNING_SECRET, IAM_BOT_APPROVERS and IAM_BOT_PERMISSIONS_BOUNDARY, and run `make run` (or `iam-bot serve`)."
)


class StepFailed(Exception):
    """A step's check found that what it shows did not really happen."""


@dataclass
class StepResult:
    title: str
    ok: bool
    ms: float
    lines: list[str] = field(default_factory=list)
    error: str = ""


class Transcript:
    """Writes what each person sees; refuses to write any registered secret (masks it instead)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.secrets: list[str] = []

    def forbid(self, *values: str) -> None:
        self.secrets.extend(v for v in values if v)

    def write(self, lines: list[str]) -> None:
        safe = masked(lines, self.secrets)
        assert not any(s in line for s in self.secrets for line in safe), "a secret reached the transcript"
        self.out.write("\n".join(safe) + "\n")
        self.out.flush()

    def step(self, number: int, result: StepResult) -> None:
        mark = "" if result.ok else "  FAILED"
        head = f"── {number}. {result.title} "
        self.write(["", f"{head}{'─' * max(3, 72 - len(head))} {result.ms:7.0f} ms{mark}", *result.lines])
        if not result.ok:
            self.write([f"  ✗ {result.error}"])


class Step:
    """Collects the lines of one step and its checks; run by `run_steps`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def show(self, rendered: list[str]) -> None:
        self.lines.extend(f"    {line}" for line in rendered)

    def check(self, ok: object, what: str) -> None:
        if not ok:
            raise StepFailed(what)
        self.lines.append(f"  ✓ {what}")


def run_steps(steps: list[tuple[str, Callable[[Step], None]]], transcript: Transcript) -> list[StepResult]:
    """Run steps in order, printing each with its time; stop at the first that fails."""
    results = []
    for number, (title, action) in enumerate(steps, start=1):
        step = Step()
        started = time.monotonic()
        try:
            action(step)
            result = StepResult(title, True, (time.monotonic() - started) * 1000, step.lines)
        except StepFailed as exc:
            result = StepResult(title, False, (time.monotonic() - started) * 1000, step.lines, f"not verified: {exc}")
        except Exception as exc:  # the demo reports any failure as a failed step, never a traceback
            result = StepResult(title, False, (time.monotonic() - started) * 1000, step.lines, f"{type(exc).__name__}: {exc}")
        transcript.step(number, result)
        results.append(result)
        if not result.ok:
            break
    return results


# ---------------------------------------------------------------- the machinery


@contextmanager
def isolated_aws_env(workdir: Path) -> Iterator[Callable[[str], None]]:
    """No AWS setting of the caller's applies here: nothing this process does can reach real AWS.

    Every AWS_* variable is removed (a profile, a service-specific endpoint such as
    AWS_ENDPOINT_URL_IAM, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), config files point at nothing,
    and the yielded function sets AWS_ENDPOINT_URL to moto. The environment is restored after.
    """
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update(
            AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
            AWS_ACCESS_KEY_ID="demo",  # moto accepts any key; real AWS would reject these
            AWS_SECRET_ACCESS_KEY="demo",
            AWS_DEFAULT_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
            # AWS's managed policies (ReadOnlyAccess, ...) exist in a real account; moto loads them on request.
            MOTO_IAM_LOAD_MANAGED_POLICIES="true",
        )

        def point_at(url: str) -> None:
            os.environ["AWS_ENDPOINT_URL"] = url

        yield point_at
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost")


@dataclass
class World:
    """What the demo started, and handles to look at it."""

    moto_url: str
    standin: SlackStandIn
    slack: SlackSender
    app_url: str
    deps: Any  # bot.runtime.app.Deps
    iam: Any  # a boto3 IAM client on moto, for seeding and for checking what the bot did
    db_path: Path


@contextmanager
def running_world(workdir: Path) -> Iterator[World]:
    """moto, the Slack stand-in, and the real app (HTTP server + worker) on a fresh SQLite file."""
    import boto3
    from moto.server import ThreadedMotoServer

    from bot.runtime.app import build, create_app
    from bot.runtime.db import make_engine, migrate
    from bot.runtime.server import http_server, make_wsgi
    from bot.runtime.settings import Settings, load_settings

    with ExitStack() as stack:
        point_at = stack.enter_context(isolated_aws_env(workdir))
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        point_at(moto_url)

        bot_token = "xoxb-demo-" + secrets.token_hex(8)
        signing_secret = secrets.token_hex(16)
        standin = SlackStandIn(bot_token=bot_token).start()
        stack.callback(standin.stop)

        session = boto3.session.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name=REGION)
        iam = session.client("iam", endpoint_url=moto_url)
        boundary = iam.create_policy(PolicyName=BOUNDARY_NAME, PolicyDocument=json.dumps(BOUNDARY_DOC))["Policy"]["Arn"]

        db_path = workdir / "iam-bot.db"
        # Every setting given: the caller's IAM_BOT_* variables must not change the demo (LOG_LEVEL aside).
        explicit = {name: f.default for name, f in Settings.model_fields.items()}
        explicit.update(
            slack_bot_token=bot_token,
            slack_signing_secret=signing_secret,
            slack_app_token="",
            slack_api_url=standin.url,
            database_url=f"sqlite:///{db_path}",
            approvers_raw=BOB,
            permissions_boundary=boundary,
            user_path_prefix="/engineering/",  # serve insists on a prefix of the bot's own
            encryption_key_raw=Fernet.generate_key().decode(),
            audit_key_raw=secrets.token_urlsafe(32),
            worker_poll_seconds=0.5,
            log_level=os.environ.get("LOG_LEVEL", "WARNING"),
        )
        settings = load_settings(**explicit)
        settings.check_for_serving()  # what `iam-bot serve` insists on, the demo has
        migrate(make_engine(settings.database_url))
        deps = build(settings, boto_session=session, worker_id="demo")
        stack.callback(deps.engine.dispose)
        endpoints = deps.iam.endpoint_urls()
        if not all(_loopback(e) for e in endpoints):
            raise RuntimeError(f"refusing to run: an AWS client points at {endpoints}, not at the local moto")
        app = create_app(settings, deps)
        server = http_server(make_wsgi(app, deps), host="127.0.0.1", port=0, threads=4, ident="iam-bot-demo")
        threading.Thread(target=server.run, name="iam-bot-http", daemon=True).start()
        stack.callback(server.close)
        deps.worker.start()
        stack.callback(deps.worker.stop, 5)
        app_url = f"http://127.0.0.1:{server.effective_port}"
        slack = SlackSender(app_url, signing_secret, team_id=TEAM_ID, response_url_base=standin.hooks_url, timeout=WAIT, on_view_response=standin.accept_view_response)
        yield World(moto_url, standin, slack, app_url, deps, iam, db_path)


def seed(iam: Any) -> str:
    """A small account: three groups (developers may deploy, by an inline policy) and a customer-managed
    policy. Returns the policy's ARN."""
    for group in GROUPS:
        iam.create_group(GroupName=group)
    deploy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:UpdateFunctionCode", "Resource": "*"}]}
    iam.put_group_policy(GroupName="developers", PolicyName="deploy-functions", PolicyDocument=json.dumps(deploy))
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}]}
    return iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=json.dumps(doc))["Policy"]["Arn"]


# ---------------------------------------------------------------- the journey


def _wait(what: str, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
    value = poll(predicate, timeout)
    if not value:
        raise StepFailed(f"{what} (waited {timeout:.0f} s)")
    return value


def _new_call(standin: SlackStandIn, method: str, after: int, match: Callable[[Call], bool], what: str) -> Call:
    """The first call to `method` after the first `after` ones that matches; waits for it."""

    def find() -> Call | None:
        for call in standin.calls[after:]:
            if call.method == method:
                try:
                    if match(call):
                        return call
                except (KeyError, IndexError, TypeError):
                    pass
        return None

    return _wait(what, find)


def _button_value(call: Call, action_id: str) -> str | None:
    for block in call.args.get("blocks") or []:
        for el in block.get("elements") or []:
            if el.get("action_id") == action_id:
                return el.get("value")
    return None


def _input_labels(view: dict[str, Any]) -> list[str]:
    return [b["label"]["text"] for b in view.get("blocks") or [] if b.get("type") == "input"]


def _code_value(view: dict[str, Any], label: str) -> str:
    """What the reveal modal shows under `label` (a ```code``` block); "" if absent."""
    for block in view.get("blocks") or []:
        text = (block.get("text") or {}).get("text", "")
        if text.startswith(f"*{label}*\n```"):
            return text.split("```")[1]
    return ""


def _form_values(
    groups: list[dict[str, Any]],
    policies: list[dict[str, Any]],
    *,
    user_name: str = USER_NAME,
    owner: str = ALICE,
    tags: dict[str, str] = TAGS,
    reason: str = "Deploys the payments service and reads its reports",
) -> dict[str, Any]:
    """state.values as Slack sends them when @alice has filled in the form (for herself unless `owner` says otherwise)."""

    def opts(values: list[str]) -> list[dict[str, Any]]:
        return [{"text": {"type": "plain_text", "text": v}, "value": v} for v in values]

    return {
        ids.B_USER_NAME: {ids.A_VALUE: {"type": "plain_text_input", "value": user_name}},
        ids.B_ACCESS_TYPE: {ids.A_VALUE: {"type": "checkboxes", "selected_options": opts([ids.ACCESS_CONSOLE, ids.ACCESS_KEY])}},
        ids.B_GROUPS: {ids.A_GROUPS: {"type": "multi_external_select", "selected_options": groups}},
        ids.B_POLICIES: {ids.A_POLICIES: {"type": "multi_external_select", "selected_options": policies}},
        ids.B_COPY_FROM: {ids.A_COPY_FROM: {"type": "external_select", "selected_option": None}},
        ids.B_PATH: {ids.A_VALUE: {"type": "plain_text_input", "value": "/engineering/"}},
        ids.B_TAGS: {ids.A_VALUE: {"type": "plain_text_input", "value": "\n".join(f"{k}={v}" for k, v in tags.items())}},
        ids.B_BOUNDARY: {ids.A_BOUNDARY: {"type": "external_select", "selected_option": None}},
        ids.B_OWNER: {ids.A_VALUE: {"type": "users_select", "selected_user": owner}},
        ids.B_REASON: {ids.A_VALUE: {"type": "plain_text_input", "value": reason}},
    }


class Journey:
    """The steps, sharing what earlier steps learnt (the modal, the request id, the DMs)."""

    def __init__(self, world: World, transcript: Transcript) -> None:
        self.w = world
        self.t = transcript
        self.policy_arn = ""
        self.modal: dict[str, Any] = {}
        self.review: dict[str, Any] = {}
        self.groups: list[dict[str, Any]] = []
        self.policies: list[dict[str, Any]] = []
        self.short_id = ""
        self.approve_value = ""
        self.approval: Call | None = None
        self.credentials_dm: Call | None = None
        # @carol's journey: her age identity (the private half stays here), her request, the file she got.
        self.carol_identity: Any = None
        self.carol_short_id = ""
        self.carol_approve_value = ""
        self.carol_approval: Call | None = None
        self.carol_file: dict[str, Any] = {}

    def steps(self) -> list[tuple[str, Callable[[Step], None]]]:
        return [
            ("@alice runs /iam request in #general", self.open_modal),
            ("@alice searches the Groups and Managed policies lists", self.typeahead),
            ("@alice fills in the form and presses Review", self.fill_in),
            ("@alice presses Submit request", self.submit),
            ("@bob presses Approve", self.approve),
            ("iam-bot creates the user in IAM and DMs @alice", self.provision),
            ("@alice presses Reveal credentials", self.reveal),
            ("@alice presses Reveal credentials again", self.reveal_again),
            ("@alice DMs the bot: status", self.status),
            ("@carol registers her age public key: /iam key set", self.carol_sets_key),
            ("@alice asks for an IAM user owned by @carol", self.carol_request),
            ("@bob presses Approve on @carol's user", self.carol_approve),
            ("iam-bot creates the user and sends @carol an encrypted file", self.carol_delivery),
            ("@carol decrypts the file with her own key", self.carol_decrypts),
        ]

    def _request_row(self, short_id: str = "") -> Any:
        from models import AccessRequest

        with self.w.deps.sessionmaker.begin() as s:
            req = s.scalars(select(AccessRequest).where(AccessRequest.short_id == (short_id or self.short_id))).first()
            if req is not None:
                s.expunge(req)
            return req

    # ---- the steps

    def open_modal(self, step: Step) -> None:
        standin, before = self.w.standin, len(self.w.standin.calls)
        resp = self.w.slack.command(ALICE, "request", channel_id="C0GENERAL")
        step.check(resp.status_code == 200, f"Slack got its answer at once (HTTP {resp.status_code})")
        call = _new_call(standin, "views.open", before, lambda c: c.status == 200 and c.response.get("ok"), "the request modal opened")
        self.modal = call.response["view"]
        step.say("Slack opens a modal for @alice:")
        step.show(render_view(self.modal, names=NAMES))
        labels = _input_labels(self.modal)
        missing = [label for label in MODAL_LABELS if label not in labels]
        step.check(not missing, f"the modal asks for every field of the contract ({len(MODAL_LABELS)} labels)" + (f"; missing {missing}" if missing else ""))

    def typeahead(self, step: Step) -> None:
        resp = self.w.slack.block_suggestion(ALICE, ids.A_GROUPS, "", block_id=ids.B_GROUPS, view=self.modal)
        options = resp.json().get("options", []) if resp.status_code == 200 else []
        names = [o["value"] for o in options]
        step.say(f"Groups list (from IAM): {', '.join(names)}")
        step.check(set(GROUPS) <= set(names), "every group in the account is offered")
        self.groups = [o for o in options if o["value"] in ("developers", "readers")]

        found = []
        for query in ("s3-read", "ReadOnlyAccess"):
            resp = self.w.slack.block_suggestion(ALICE, ids.A_POLICIES, query, block_id=ids.B_POLICIES, view=self.modal)
            options = resp.json().get("options", []) if resp.status_code == 200 else []
            step.say(f"Managed policies matching {query!r}: " + ", ".join(o["text"]["text"] for o in options[:4]) + (" …" if len(options) > 4 else ""))
            found += options[:1]
        self.policies = found
        chosen = [o["value"] for o in found]
        step.check(chosen == [self.policy_arn, AWS_POLICY], "the customer policy and AWS's ReadOnlyAccess come first for their searches")

    def fill_in(self, step: Step) -> None:
        values = _form_values(self.groups, self.policies)
        step.say(f"@alice types: User name {USER_NAME}; Console access + Access key; groups developers, readers;")
        step.say(f"  policies {POLICY_NAME}, ReadOnlyAccess; path /engineering/; tags team=payments, cost-center=1234;")
        step.say("  owner @alice; reason \"Deploys the payments service and reads its reports\"")
        resp = self.w.slack.view_submission(ALICE, self.modal, values)
        answer = resp.json() if resp.status_code == 200 and resp.text else {}
        step.check(answer.get("response_action") == "push", "the form is valid: Slack is told to push the review screen")
        self.review = answer["view"]
        step.say("Slack shows @alice the review:")
        step.show(render_view(self.review, names=NAMES))
        shown = json.dumps(self.review)
        step.check(all(x in shown for x in (USER_NAME, "developers", "readers", POLICY_NAME, "ReadOnlyAccess", "team=payments")), "the review repeats everything asked for")

    def submit(self, step: Step) -> None:
        from models import RequestState

        standin, before = self.w.standin, len(self.w.standin.calls)
        resp = self.w.slack.view_submission(ALICE, self.review, {})
        step.check(resp.status_code == 200 and resp.json() == {"response_action": "clear"}, "Slack is told to close the modal")
        self.approval = _new_call(
            standin, "chat.postMessage", before, lambda c: _button_value(c, ids.A_APPROVE) is not None, "the approver's DM with Approve was sent"
        )
        # Approve carries the request's short id and the digest of the plan the message shows.
        self.approve_value = _button_value(self.approval, ids.A_APPROVE) or ""
        self.short_id = ids.parse_approval_value(self.approve_value)[0]
        confirmation = _new_call(
            standin, "chat.postMessage", before, lambda c: c.response["channel"] == "D" + ALICE[1:] and self.short_id in c.args["text"], "@alice's confirmation was sent"
        )
        step.say(f"@bob gets a DM ({self.approval.response['channel']}):")
        step.show(render_message(self.approval.args, names=NAMES))
        step.say(f"@alice gets a DM ({confirmation.response['channel']}):")
        step.show(render_message(confirmation.args, names=NAMES))
        req = self._request_row()
        step.check(req is not None and req.state is RequestState.PENDING, f"request {self.short_id} is stored, pending")
        step.check(self.approval.response["channel"] == "D" + BOB[1:], "the approval went to @bob, who did not ask for it")
        shown = json.dumps(self.approval.args.get("blocks"))
        digest = ids.parse_approval_value(self.approve_value)[1] or ""
        step.check(
            req is not None and digest == req.plan_digest and digest[:12] in shown and "deploy-functions" in shown,
            "@bob sees the plan read from IAM (with what group developers grants) and Approve carries its digest",
        )

    def approve(self, step: Step) -> None:
        assert self.approval is not None
        updated = self._approve(step, self.approval, self.approve_value)
        step.say("@bob's DM now reads:")
        step.show(render_message(updated.args, names=NAMES))
        self._approval_recorded(step, self._request_row(), digest_words="what @bob approved is the plan's digest: exactly that plan is applied")

    def _approve(self, step: Step, approval: Call, value: str) -> Call:
        """@bob clicks Approve on `approval`; the message updated with the decision."""
        standin, before = self.w.standin, len(self.w.standin.calls)
        message = approval.response
        resp = self.w.slack.block_action(BOB, ids.A_APPROVE, value, channel_id=message["channel"], message_ts=message["ts"], message=message.get("message"))
        step.check(resp.status_code == 200, "Slack got its answer at once")
        return _new_call(
            standin,
            "chat.update",
            before,
            lambda c: c.args["ts"] == message["ts"] and ids.A_APPROVE not in json.dumps(c.args.get("blocks")),
            "@bob's message was updated with the decision",
        )

    @staticmethod
    def _approval_recorded(step: Step, req: Any, *, digest_words: str) -> None:
        from models import RequestState

        step.check(req is not None and req.decided_by == BOB and req.state is not RequestState.PENDING, "the approval is recorded, by @bob")
        step.check(req is not None and req.approved_digest == req.plan_digest, digest_words)

    def provision(self, step: Step) -> None:
        from models import RequestState

        standin = self.w.standin
        self.credentials_dm = _new_call(
            standin, "chat.postMessage", 0, lambda c: _button_value(c, ids.A_REVEAL) == self.short_id, "the owner's credentials DM was sent"
        )
        step.say(f"@alice gets a DM ({self.credentials_dm.response['channel']}):")
        step.show(render_message(self.credentials_dm.args, names=NAMES))
        iam = self.w.iam
        user = iam.get_user(UserName=USER_NAME)["User"]
        groups = sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=USER_NAME)["Groups"])
        attached = sorted(p["PolicyName"] for p in iam.list_attached_user_policies(UserName=USER_NAME)["AttachedPolicies"])
        tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=USER_NAME)["Tags"]}
        keys = iam.list_access_keys(UserName=USER_NAME)["AccessKeyMetadata"]
        login = iam.get_login_profile(UserName=USER_NAME)["LoginProfile"]
        step.say(f"IAM (moto) now has {user['Arn']}:")
        step.say(f"  groups {', '.join(groups)}; policies {', '.join(attached)}")
        step.say(f"  tags {', '.join(f'{k}={v}' for k, v in sorted(tags.items()))}")
        step.say(f"  a console login profile (created {login['CreateDate']:%H:%M:%S}); access key {', '.join(k['AccessKeyId'] for k in keys)}")
        step.check(user["Path"] == "/engineering/", "the user exists under /engineering/")
        step.check(groups == ["developers", "readers"] and attached == sorted([POLICY_NAME, "ReadOnlyAccess"]), "with exactly the groups and policies asked")
        step.check(all(tags.get(k) == v for k, v in TAGS.items()) and tags.get("iam-bot:request") == self.short_id, "with the tags asked, and the request's own tag")
        step.check(len(keys) == 1 and keys[0]["Status"] == "Active", "one active access key and a console password exist")
        req = self._request_row()
        step.check(req is not None and req.state is RequestState.COMPLETED, f"request {self.short_id} is completed")

    def reveal(self, step: Step) -> None:
        assert self.credentials_dm is not None
        standin, before = self.w.standin, len(self.w.standin.calls)
        dm = self.credentials_dm.response
        resp = self.w.slack.block_action(ALICE, ids.A_REVEAL, self.short_id, channel_id=dm["channel"], message_ts=dm["ts"], message=dm.get("message"))
        step.check(resp.status_code == 200, "Slack got its answer at once")
        opened = _new_call(standin, "views.open", before, lambda c: c.args["view"]["callback_id"] == ids.REVEAL_VIEW, "the reveal modal opened")
        view = opened.args["view"]
        password, secret = _code_value(view, "Password"), _code_value(view, "Secret access key")
        key_id = _code_value(view, "Access key ID")
        self.t.forbid(password, secret)  # from here on the transcript cannot print them, even by mistake
        step.say("Slack opens a modal for @alice (the password and secret key are really in it; masked here):")
        step.show(render_view(view, names=NAMES))
        step.check(len(password) >= 8 and password != MASK, "it holds a console password")
        profile = self.w.iam.get_login_profile(UserName=USER_NAME)["LoginProfile"]
        step.check(profile["UserName"] == USER_NAME, "for which IAM has the login profile")
        live = {k["AccessKeyId"] for k in self.w.iam.list_access_keys(UserName=USER_NAME)["AccessKeyMetadata"]}
        step.check(key_id in live, f"its access key ID {key_id} is the user's key in IAM")
        step.check(len(secret) == 40, "with a 40-character secret access key")
        _new_call(
            standin, "chat.update", before, lambda c: c.args["ts"] == dm["ts"] and "no longer available" in c.args["text"], "the DM was updated"
        )
        step.check(self._envelope_destroyed(), "the stored ciphertext is destroyed, and the DM says so")
        raw = self._database_bytes()
        step.check(password.encode() not in raw and secret.encode() not in raw, "neither secret is anywhere in the database file, byte for byte")

    def _database_bytes(self) -> bytes:
        """The SQLite file and its journals, as they are on disk."""
        return b"".join(p.read_bytes() for p in self.w.db_path.parent.glob(self.w.db_path.name + "*"))

    def _delivered_by(self, request_id: int) -> list[str]:
        """How the audit trail says a request's credentials were delivered (one entry per delivery)."""
        from models import AuditEvent

        with self.w.deps.sessionmaker.begin() as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id, AuditEvent.action == "credentials_delivered")).all()
            return [str((e.details or {}).get("method")) for e in events]

    def _envelope_destroyed(self, short_id: str = "") -> bool:
        from models import AccessRequest, CredentialEnvelope

        with self.w.deps.sessionmaker.begin() as s:
            env = s.scalars(
                select(CredentialEnvelope)
                .join(AccessRequest, AccessRequest.id == CredentialEnvelope.request_id)
                .where(AccessRequest.short_id == (short_id or self.short_id))
            ).first()
            return env is None  # the envelope row is deleted, ciphertext and all

    def reveal_again(self, step: Step) -> None:
        assert self.credentials_dm is not None
        standin, before = self.w.standin, len(self.w.standin.calls)
        dm = self.credentials_dm.response
        self.w.slack.block_action(ALICE, ids.A_REVEAL, self.short_id, channel_id=dm["channel"], message_ts=dm["ts"], message=dm.get("message"))
        refusal = _new_call(standin, "chat.postEphemeral", before, lambda c: c.args["user"] == ALICE, "@alice was told why not")
        step.say("Only @alice sees, in the DM:")
        step.show(render_message(refusal.args, names=NAMES))
        step.check("already revealed" in refusal.args["text"], "the second reveal is refused")
        reveals = [c for c in standin.calls_to("views.open") if c.args["view"].get("callback_id") == ids.REVEAL_VIEW]
        step.check(len(reveals) == 1, "the credentials were shown exactly once")

    def status(self, step: Step) -> None:
        standin, before = self.w.standin, len(self.w.standin.calls)
        self.w.slack.dm(ALICE, "status")
        reply = _new_call(
            standin, "chat.postMessage", before, lambda c: c.args["channel"] == "D" + ALICE[1:] and self.short_id in json.dumps(c.args.get("blocks")), "the bot answered"
        )
        step.say("The bot answers @alice:")
        step.show(render_message(reply.args, names=NAMES))
        step.check("user created" in json.dumps(reply.args.get("blocks")), "status says the request is completed: user created")
        problems = standin.problems
        step.check(not problems, "every message and view Slack was asked to show is valid Block Kit" + (f": {problems[:3]}" if problems else ""))

    # ---- @carol: credentials as a file encrypted to her own key

    def carol_sets_key(self, step: Step) -> None:
        from models import OwnerKey

        # What `age-keygen -o key.txt` makes: an X25519 identity; @carol keeps it, only its public half is sent.
        self.carol_identity = pyrage.x25519.Identity.generate()
        private, public = str(self.carol_identity), str(self.carol_identity.to_public())
        self.t.forbid(private)  # the private half can never reach the transcript
        standin, before = self.w.standin, len(self.w.standin.calls)
        step.say("@carol made a key pair (as `age-keygen -o key.txt` does) and types, in her DM with iam-bot:")
        step.show([f"/iam key set {public}"])
        resp = self.w.slack.command(CAROL, f"key set {public}", channel_id="D" + CAROL[1:])
        step.check(resp.status_code == 200, f"Slack got its answer at once (HTTP {resp.status_code})")
        answer = _new_call(standin, "response_url", before, lambda c: bool(c.args.get("text")), "the bot answered @carol")
        step.say("Only @carol sees the answer:")
        step.show(render_message(answer.args, names=NAMES))
        step.check(answer.args.get("response_type", "ephemeral") == "ephemeral", "the answer is private to @carol")
        with self.w.deps.sessionmaker.begin() as s:
            row = s.get(OwnerKey, CAROL)
            stored = (row.kind, row.public_key, row.fingerprint) if row is not None else None
        step.check(stored is not None and stored[:2] == ("age", public), "the bot stored @carol's public key, as an age recipient")
        fingerprint = stored[2] if stored else ""
        shown = json.dumps(answer.args, ensure_ascii=False)
        step.check(
            fingerprint.startswith(public[:12]) and fingerprint.endswith(public[-6:]) and fingerprint in shown,
            f"the answer names the key by its fingerprint, {fingerprint}",
        )
        step.check("age -d -i key.txt" in shown, "and says how the files will be opened: age -d -i key.txt …")
        step.check(private not in standin.all_text(), "the private half never went to Slack")

    def carol_request(self, step: Step) -> None:
        from models import RequestState

        standin, before = self.w.standin, len(self.w.standin.calls)
        self.w.slack.command(ALICE, "request", channel_id="C0GENERAL")
        opened = _new_call(standin, "views.open", before, lambda c: c.status == 200 and c.response.get("ok"), "the request modal opened")
        groups = [o for o in self.groups if o["value"] in CAROL_GROUPS]
        values = _form_values(groups, [], user_name=CAROL_USER, owner=CAROL, tags=CAROL_TAGS, reason=CAROL_REASON)
        step.say(f"@alice runs /iam request again and types: User name {CAROL_USER}; Console access + Access key; group readers;")
        step.say(f"  tags team=payments; owner @carol; reason \"{CAROL_REASON}\"")
        resp = self.w.slack.view_submission(ALICE, opened.response["view"], values)
        answer = resp.json() if resp.status_code == 200 and resp.text else {}
        step.check(answer.get("response_action") == "push", "the form is valid: Slack is told to push the review screen")
        review = answer["view"]
        step.say("The review tells @alice how the credentials will travel:")
        step.show([line for line in render_view(review, names=NAMES) if "Credentials go to" in line])
        shown = json.dumps(review, ensure_ascii=False)
        step.check(
            "encrypted to their key" in shown and str(self.carol_identity.to_public())[:12] in shown and f"<@{CAROL}>" in shown,
            "to @carol, as a file encrypted to the key she registered",
        )
        before = len(standin.calls)
        resp = self.w.slack.view_submission(ALICE, review, {})
        step.check(resp.status_code == 200 and resp.json() == {"response_action": "clear"}, "Submit request: Slack is told to close the modal")
        self.carol_approval = _new_call(
            standin,
            "chat.postMessage",
            before,
            lambda c: c.response["channel"] == "D" + BOB[1:] and _button_value(c, ids.A_APPROVE) not in (None, self.approve_value),
            "the approver's DM with Approve was sent",
        )
        self.carol_approve_value = _button_value(self.carol_approval, ids.A_APPROVE) or ""
        self.carol_short_id = ids.parse_approval_value(self.carol_approve_value)[0]
        lines = render_message(self.carol_approval.args, names=NAMES)
        step.say(f"@bob gets a DM ({self.carol_approval.response['channel']}), as for @alice's user; it begins:")
        step.show([*lines[:4], "…", *[line for line in lines if "[ Approve ]" in line]])
        req = self._request_row(self.carol_short_id)
        step.check(req is not None and req.state is RequestState.PENDING, f"request {self.carol_short_id} is stored, pending")
        step.check(req is not None and (req.requester_id, req.owner_id) == (ALICE, CAROL), "asked for by @alice, owned by @carol")

    def carol_approve(self, step: Step) -> None:
        assert self.carol_approval is not None
        updated = self._approve(step, self.carol_approval, self.carol_approve_value)
        step.say("@bob's DM now ends:")
        step.show(render_message(updated.args, names=NAMES)[-1:])
        self._approval_recorded(step, self._request_row(self.carol_short_id), digest_words="what @bob approved is the plan's digest")

    def carol_delivery(self, step: Step) -> None:
        from models import RequestState

        standin = self.w.standin
        shared = _wait("the credentials file reached @carol's DM", lambda: standin.files_in(CAROL))
        f = self.carol_file = shared[0]
        filename = f"{CAROL_USER}-credentials.csv.age"
        step.say(f"@carol gets, in her DM ({'D' + CAROL[1:]}), a message with a file:")
        step.show(render_file_message(f["text"], [f], names=NAMES))
        step.check(len(shared) == 1 and f["name"] == filename, f"one file, {filename}, shared into @carol's DM")
        step.check(f"age -d -i key.txt {filename}" in f["text"], f"the message gives the command that opens it: age -d -i key.txt {filename}")
        step.check(
            f["bytes"].startswith(AGE_MAGIC) and standin.uploaded(f["id"]) == f["bytes"],
            f"what Slack received is an age-encrypted file ({len(f['bytes'])} bytes, uploaded once, shared as is)",
        )
        iam = self.w.iam
        user = iam.get_user(UserName=CAROL_USER)["User"]
        groups = sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=CAROL_USER)["Groups"])
        keys = iam.list_access_keys(UserName=CAROL_USER)["AccessKeyMetadata"]
        iam.get_login_profile(UserName=CAROL_USER)  # raises NoSuchEntity if there is none
        step.say(f"IAM (moto) now has {user['Arn']}: group {', '.join(groups)}; a console login profile; access key {', '.join(k['AccessKeyId'] for k in keys)}")
        step.check(user["Path"] == "/engineering/" and groups == list(CAROL_GROUPS), "the user exists under /engineering/, in group readers")
        step.check(len(keys) == 1 and keys[0]["Status"] == "Active", "with one active access key and a console password")

        def completed() -> Any:
            req = self._request_row(self.carol_short_id)
            return req if req is not None and req.state is RequestState.COMPLETED else None

        req = _wait(f"request {self.carol_short_id} is completed", completed)
        step.check(req.owner_id == CAROL, f"request {self.carol_short_id} is completed")
        step.check(
            _wait("the sealed credentials were destroyed", lambda: self._envelope_destroyed(self.carol_short_id)),
            "once Slack confirmed the file, the sealed credentials are destroyed: no row is left in the database",
        )
        step.check(self._delivered_by(req.id) == ["encrypted_file"], "the audit trail records one delivery, as an encrypted file")
        reveal_dms = [c for c in standin.calls_to("chat.postMessage") if _button_value(c, ids.A_REVEAL) == self.carol_short_id]
        step.check(not reveal_dms, "no Reveal button was sent: the file is the only way they travel")
        notice = _new_call(
            standin, "chat.postMessage", 0, lambda c: c.response["channel"] == "D" + ALICE[1:] and CAROL_USER in c.args["text"] and "sent to" in c.args["text"], "@alice was told"
        )
        step.say(f"@alice, who asked, gets a DM ({notice.response['channel']}):")
        step.show(render_message(notice.args, names=NAMES))

    def carol_decrypts(self, step: Step) -> None:
        f = self.carol_file
        plaintext = pyrage.decrypt(f["bytes"], [self.carol_identity]).decode()
        rows = list(csv.reader(io.StringIO(plaintext)))
        header, row = rows[0], (rows[1:2] or [[]])[0]
        user_name, password, key_id, secret, url = (row + [""] * len(CSV_HEADER))[: len(CSV_HEADER)]
        self.t.forbid(password, secret)  # from here on the transcript cannot print them, even by mistake
        step.say("@carol saves the file and runs, with her key.txt (the password and secret key are really printed; masked here):")
        shown = [f"$ age -d -i key.txt {f['name']}", *plaintext.rstrip("\n").split("\n")]
        step.show(masked(shown, [password, secret]))
        step.say("(the demo decrypts the bytes Slack received with @carol's identity, using pyrage, the age library)")
        step.check(header == CSV_HEADER and len(rows) == 2, "it is the CSV the AWS console offers: " + ", ".join(CSV_HEADER))
        step.check(user_name == CAROL_USER and url.endswith(".signin.aws.amazon.com/console"), f"for user {CAROL_USER}, with the console sign-in URL")
        live = [k["AccessKeyId"] for k in self.w.iam.list_access_keys(UserName=CAROL_USER)["AccessKeyMetadata"]]
        step.check(live == [key_id], f"its access key ID {key_id} is the user's only key in IAM")
        step.check(len(password) >= 8 and password != MASK and len(secret) == 40, "with a console password and a 40-character secret access key")
        try:
            pyrage.decrypt(f["bytes"], [pyrage.x25519.Identity.generate()])
            opened_by_another = True
        except pyrage.DecryptError:
            opened_by_another = False
        step.check(not opened_by_another, "any other key fails to open it")
        sent = self.w.standin.all_text()
        step.check(
            all(v not in sent and v.encode() not in f["bytes"] for v in (password, secret)),
            "Slack saw ciphertext only: neither secret is in the message, the upload calls or the uploaded bytes",
        )
        raw = self._database_bytes()
        step.check(password.encode() not in raw and secret.encode() not in raw, "neither secret is anywhere in the database file, byte for byte")
        problems = self.w.standin.problems
        step.check(not problems, "every message, view and file Slack was asked to show is valid" + (f": {problems[:3]}" if problems else ""))


def run_demo(out: TextIO = sys.stdout) -> int:
    """Start everything, run the journey, print the transcript; 0 only if every step was verified."""
    from bot.runtime.logsetup import setup_logging

    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="replace")  # a terminal without UTF-8 gets "?" for the box lines, not a crash
    transcript = Transcript(out)
    level = os.environ.get("LOG_LEVEL", "WARNING").upper()  # quiet by default: the transcript is the output
    setup_logging(level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "WARNING")
    started = time.monotonic()
    results: list[StepResult] = []
    steps: list[tuple[str, Callable[[Step], None]]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="iam-bot-demo-") as tmp, running_world(Path(tmp)) as world:
            journey = Journey(world, transcript)
            journey.policy_arn = seed(world.iam)
            steps = journey.steps()
            transcript.write(
                [
                    "iam-bot demo: the whole journey on this machine. Nothing here talks to Slack or AWS.",
                    f"  AWS IAM  moto, in this process, at {world.moto_url} (groups {', '.join(GROUPS)}; policy {POLICY_NAME}; boundary {BOUNDARY_NAME})",
                    f"  Slack    a Web API stand-in at {world.standin.url}; requests to the bot signed as Slack signs them",
                    f"  iam-bot  the real app at {world.app_url}/slack/events, its worker, SQLite at {world.db_path}",
                    "  People   @alice asks for an IAM user for herself (no key: a one-time Reveal), then one for @carol",
                    f"           (who registers an age key: an encrypted file); @bob approves   (all started in {(time.monotonic() - started) * 1000:.0f} ms)",
                ]
            )
            results = run_steps(steps, transcript)
    except Exception as exc:  # start-up or shut-down: one line, never a traceback
        transcript.write([f"iam-bot demo: could not {'finish' if results else 'start'}: {type(exc).__name__}: {exc}"])
        return 1
    passed = [r for r in results if r.ok]
    if steps and len(passed) == len(steps):
        total = sum(r.ms for r in results)
        transcript.write(["", f"All {len(passed)} steps happened and were verified, in {total:.0f} ms.", README_HINT])
        return 0
    failed = results[-1]
    transcript.write(["", f"FAILED at step {len(results)} ({failed.title}): {failed.error}", f"{len(passed)} of {len(steps)} steps passed."])
    return 1
