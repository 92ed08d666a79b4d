"""The request modal: opens at once, typeahead from IAM, every bad field reported in the modal."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from models import AccessRequest, RequestDraft
from tests.support.journeys import REQUESTER, form_values, open_request_modal, submit_form
from bot.demo.contract import MODAL_LABELS


def _stored(bot) -> tuple[int, int]:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalar(select(func.count()).select_from(AccessRequest)), s.scalar(select(func.count()).select_from(RequestDraft))


def test_modal_labels_and_immediate_open(bot):
    view = open_request_modal(bot)
    labels = [b["label"]["text"] for b in view["blocks"] if b["type"] == "input"]
    assert labels == MODAL_LABELS
    # No AWS call happened before the modal opened: it needs none.
    assert bot.standin.problems == []


def test_bare_command_shows_help_with_request_button(bot):
    bot.slack.command(REQUESTER, "")
    reply = bot.standin.wait_for("response_url")
    assert "open_request_modal" in json.dumps(reply.args["blocks"]) and reply.args["response_type"] == "ephemeral"
    bot.slack.block_action(REQUESTER, "open_request_modal", channel_id="C0GENERAL", message_ts="1.2")
    assert bot.standin.wait_for("views.open").args["view"]["callback_id"] == "iam_request"


def test_every_invalid_field_is_reported_inline_and_nothing_is_stored(bot):
    answer = submit_form(
        bot,
        user_name="has space",
        access=[],
        path="no-slashes",
        tags="team=payments\nnot a tag",
        reason="   ",
        owner="not-a-user",
        policies=["arn:aws:iam::aws:policy/AdministratorAccess", "definitely-not-an-arn"],
    )
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert set(errors) == {"user_name", "access_type", "path", "tags", "reason", "owner", "policies"}
    assert "no spaces" in errors["user_name"]
    assert "Line 2" in errors["tags"]
    assert _stored(bot) == (0, 0)


def test_existing_iam_user_name_is_refused_in_the_modal(bot, iam):
    iam.create_user(UserName="Taken.Name")
    answer = submit_form(bot, user_name="taken.name")  # IAM names are case-insensitive
    assert answer["response_action"] == "errors" and "already exists" in answer["errors"]["user_name"]
    assert _stored(bot) == (0, 0)


def test_typeahead_serves_groups_policies_and_users_from_iam(bot, iam):
    for name in ("developers", "dev-ops", "finance"):
        iam.create_group(GroupName=name)
    iam.create_user(UserName="template-user")
    # `iam-bot serve` fills the listings at start (IamGateway.warm): listing moto's ~1,600 managed
    # policies takes over a second, which a busy 2-core machine can stretch past Slack's 3 s.
    bot.deps.iam.warm()
    groups = bot.slack.block_suggestion(REQUESTER, "groups_select", "dev").json()["options"]
    assert [o["value"] for o in groups] == ["dev-ops", "developers"]
    policies = bot.slack.block_suggestion(REQUESTER, "policies_select", "ReadOnlyAccess").json()["options"]
    assert "arn:aws:iam::aws:policy/ReadOnlyAccess" in [o["value"] for o in policies]
    everything = bot.slack.block_suggestion(REQUESTER, "boundary_select", "").json()["options"]
    assert len(everything) == 100  # Slack's cap; an account has over a thousand managed policies
    users = bot.slack.block_suggestion(REQUESTER, "copy_from_select", "templ").json()["options"]
    assert [o["value"] for o in users] == ["template-user"]


def test_copy_from_review_shows_what_will_be_copied(bot, iam):
    iam.create_group(GroupName="deployers")
    iam.create_user(UserName="template-user")
    iam.add_user_to_group(UserName="template-user", GroupName="deployers")
    iam.attach_user_policy(UserName="template-user", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.put_user_policy(UserName="template-user", PolicyName="inline-s3", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    answer = submit_form(bot, user_name="copycat", copy_from="template-user")
    assert answer["response_action"] == "push"
    assert "Reading" in json.dumps(answer["view"])  # pushed at once, filled in after the ack
    update = bot.standin.wait_for("views.update", lambda c: c.args["external_id"] == answer["view"]["external_id"])
    assert update.response["ok"], update.response  # the pushed review is known to Slack: the update lands
    shown = json.dumps(update.args["view"])
    for expected in ("deployers", "ReadOnlyAccess", "inline-s3", "copied from template-user"):
        assert expected in shown
    assert bot.standin.problems == []


def test_form_answers_within_slacks_three_seconds_when_iam_hangs(database_url, standin, moto, iam, monkeypatch):
    import socket
    import threading
    import time

    from tests.support.harness import RunningBot

    # A "server" that accepts connections and never answers: the worst AWS can do to us.
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    held: list[socket.socket] = []

    def accept_forever() -> None:
        try:
            while True:
                held.append(hang.accept()[0])
        except OSError:
            pass  # closed at the end of the test

    threading.Thread(target=accept_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{hang.getsockname()[1]}")
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, start_worker=False).start()
    try:
        view = open_request_modal(bot)
        started = time.monotonic()
        resp = bot.slack.view_submission(REQUESTER, view, form_values(copy_from="template-user"))
        elapsed = time.monotonic() - started
        assert resp.json()["response_action"] == "push"  # not blocked: re-checked at provisioning
        assert elapsed < 3.0, f"answered after {elapsed:.2f}s"
    finally:
        bot.stop()
        hang.close()
        for c in held:
            c.close()


def test_typeahead_lists_iam_only_to_people_who_may_request(database_url, standin, moto, iam, tmp_path):
    """Anyone in the workspace can send a block_suggestion: someone the rules' `guardrails.requesters`
    leave out gets no options (and the names are logged nowhere), a requester named directly or through
    a Slack user group gets the lists."""
    from tests.support.harness import RunningBot
    from tests.support.journeys import OUTSIDER

    member = "UGROUPMEMBER1"
    iam.create_group(GroupName="payroll-admins")
    iam.create_user(UserName="cfo-template")
    rules = tmp_path / "rules.yml"
    rules.write_text('guardrails:\n  requesters: ["UREQUESTER1", "SREQUESTERS"]\nrules:\n  - name: everyone\n    approvers: ["UAPPROVER1"]\n')
    standin.set_group_members("SREQUESTERS", [member])
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"rules_path": str(rules)}).start()
    asks = (
        ("groups_select", "payroll", "payroll-admins"),
        ("policies_select", "ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
        ("boundary_select", "ReadOnlyAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
        ("copy_from_select", "cfo", "cfo-template"),
    )
    try:
        for action, typed, expected in asks:
            for user in (REQUESTER, member):
                resp = bot.slack.block_suggestion(user, action, typed)
                assert resp.status_code == 200 and expected in [o["value"] for o in resp.json()["options"]], (user, action)
            resp = bot.slack.block_suggestion(OUTSIDER, action, typed)
            assert resp.status_code == 200 and resp.json() == {"options": []}, (action, resp.text)
            # An empty query (everything, up to Slack's 100) is refused the same way.
            assert bot.slack.block_suggestion(OUTSIDER, action, "").json() == {"options": []}
        logs = bot.logs.text()
        assert "payroll-admins" not in logs and "cfo-template" not in logs
        assert standin.problems == []
    finally:
        bot.stop()
