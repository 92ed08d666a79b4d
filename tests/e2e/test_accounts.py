"""Many AWS accounts: the bot assumes its role in each member account (IAM_BOT_ACCOUNTS), and a request
names the account it acts in. Against moto over HTTP, where credentials from AssumeRole into account B
act in account B, behind the fault proxy (to refuse one account's role), with the Slack stand-in and
real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from sqlalchemy import select

from bot.demo.contract import ACCOUNT_LABEL
from models import AccessRequest
from bot.runtime.db import make_engine, migrate
from tests.e2e.test_doctor import good_env, run_doctor
from tests.support.fault_proxy import FaultProxy
from tests.support.harness import RunningBot, wait_until
from tests.support.moto_gaps import NO_SERVICE_CREDENTIALS
from tests.support.journeys import (
    APPROVER, APPROVER2, REQUESTER, approval_messages, button_value, change_values, click, command, credentials_dm, everything, open_request_modal,
    request_user, submit_form,
)

PROD, STAGING, OWN = "111111111111", "222222222222", "123456789012"
ACCOUNTS = f"prod={PROD},staging={STAGING}"
POWER = "arn:aws:iam::aws:policy/PowerUserAccess"
RULES = """\
accounts:
  prod:
    guardrails:
      forbidden_policies: ["arn:aws:iam::aws:policy/PowerUserAccess"]
rules:
  - name: production-two
    match: {accounts: [prod]}
    approvers: [UAPPROVER1, UAPPROVER2]
    quorum: 2
"""


def iam_in(account_id: str) -> Any:
    """An IAM client acting in `account_id`, as the bot does: through a role assumed there."""
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/test-admin", RoleSessionName="test")["Credentials"]
    return boto3.client("iam", region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def user_names(iam: Any) -> set[str]:
    return {u["UserName"] for u in iam.list_users()["Users"]}


def row(bot: RunningBot, short_id: str) -> AccessRequest:
    with bot.deps.sessionmaker.begin() as s:
        req = s.scalars(select(AccessRequest).where(AccessRequest.short_id == short_id)).one()
        s.expunge(req)
        return req


@pytest.fixture
def org(database_url: str, standin, moto, iam, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[tuple[RunningBot, FaultProxy]]:
    """A bot serving prod and staging (and, through its own credentials, nothing else), behind the fault proxy."""
    proxy = FaultProxy(moto.url)
    proxy.canned["ListServiceSpecificCredentials"] = NO_SERVICE_CREDENTIALS  # moto lacks it, in every account
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    extra: dict[str, Any] = {"accounts_raw": ACCOUNTS, "rules_path": str(rules), **getattr(request, "param", {})}
    running = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra=extra).start()
    yield running, proxy
    running.stop()
    proxy.stop()


def test_a_user_is_made_in_the_account_picked_and_named_everywhere(org: tuple[RunningBot, FaultProxy], iam: Any) -> None:
    bot, _ = org
    prod, staging = iam_in(PROD), iam_in(STAGING)
    prod.create_group(GroupName="developers")
    staging.create_group(GroupName="testers")

    modal = open_request_modal(bot)
    first = modal["blocks"][0]
    assert first["block_id"] == "account" and first["label"]["text"] == ACCOUNT_LABEL  # the contract's label
    assert [o["value"] for o in first["element"]["options"]] == ["prod", "staging"] and [o["value"] for o in first["element"]["initial_options"]] == ["prod"]
    assert "prod (111111111111)" in json.dumps(first)

    # Typeahead reads the account the form has selected.
    def groups_seen(account: str) -> list[str]:
        view = {**modal, "state": {"values": {"account": {"value": {"type": "multi_static_select", "selected_options": [{"value": account}]}}}}}
        return [o["value"] for o in bot.slack.block_suggestion(REQUESTER, "groups_select", "", view=view).json()["options"]]

    assert groups_seen("staging") == ["testers"] and groups_seen("prod") == ["developers"]

    short_id = request_user(bot, user_name="alice", groups=["developers"], account="prod")
    approval = everything(approval_messages(bot, short_id)[0].args)
    assert "AWS account prod (111111111111)" in approval and "*AWS account*\\n`prod`" in approval
    click(bot, APPROVER, "approve_request", short_id)
    click(bot, APPROVER2, "approve_request", short_id)  # rule production-two: two approvals in prod
    credentials_dm(bot, short_id)

    assert "alice" in user_names(prod) and "alice" not in user_names(staging) and "alice" not in user_names(iam)
    assert [g["GroupName"] for g in prod.list_groups_for_user(UserName="alice")["Groups"]] == ["developers"]
    req = row(bot, short_id)
    assert req.account == "prod" and req.user_arn == f"arn:aws:iam::{PROD}:user/alice"
    assert "`alice` in AWS account prod" in command(bot, f"status {short_id}")
    # The sign-in URL of the credentials is the member account's.
    opened = len(bot.standin.calls_to("views.open"))
    click(bot, REQUESTER, "reveal_credentials", short_id, credentials_dm(bot, short_id))
    reveal = json.dumps(wait_until(lambda: bot.standin.calls_to("views.open")[opened:], what="the reveal")[0].args["view"])
    assert f"https://{PROD}.signin.aws.amazon.com/console" in reveal


@pytest.mark.parametrize("org", [{"permissions_boundary": "arn:aws:iam::123456789012:policy/iam-bot-boundary"}], indirect=True)
def test_a_member_accounts_users_get_the_boundary_of_that_account(org: tuple[RunningBot, FaultProxy]) -> None:
    """IAM_BOT_PERMISSIONS_BOUNDARY names the policy in the bot's own account; in prod, its namesake there is required and set."""
    bot, proxy = org
    boundary_doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]})
    iam_in(PROD).create_policy(PolicyName="iam-bot-boundary", PolicyDocument=boundary_doc)
    own = submit_form(bot, user_name="gina", access=["console"], account="prod",
                      boundary="arn:aws:iam::123456789012:policy/iam-bot-boundary")  # the own account's: not the one required in prod
    assert own["response_action"] == "errors" and "iam-bot-boundary" in json.dumps(own["errors"])
    short_id = request_user(bot, user_name="gina", access=["console"], account="prod")  # left empty: filled in with prod's
    click(bot, APPROVER, "approve_request", short_id)
    click(bot, APPROVER2, "approve_request", short_id)
    credentials_dm(bot, short_id)
    (create,) = [p for a, p in proxy.history if a == "CreateUser" and p.get("UserName") == "gina"]
    assert create["PermissionsBoundary"] == f"arn:aws:iam::{PROD}:policy/iam-bot-boundary"


def test_rules_and_guardrails_hold_per_account(org: tuple[RunningBot, FaultProxy]) -> None:
    bot, _ = org
    refused = submit_form(bot, user_name="bob", access=["console"], policies=[POWER], account="prod")
    assert refused["response_action"] == "errors" and "PowerUserAccess" in json.dumps(refused["errors"])
    assert submit_form(bot, user_name="bob", access=["console"], policies=[POWER], account="staging")["response_action"] == "push"

    in_prod = request_user(bot, user_name="carol", access=["console"], account="prod")
    in_staging = request_user(bot, user_name="carol", access=["console"], account="staging")  # the same name in another account
    assert (row(bot, in_prod).rule_name, row(bot, in_prod).quorum) == ("production-two", 2)
    assert (row(bot, in_staging).rule_name, row(bot, in_staging).quorum) == ("default", 1)
    click(bot, APPROVER, "approve_request", in_staging)
    credentials_dm(bot, in_staging)
    click(bot, APPROVER, "approve_request", in_prod)
    bot.settle()
    assert row(bot, in_prod).state.value == "pending"  # one of two approvals
    click(bot, APPROVER2, "approve_request", in_prod)
    credentials_dm(bot, in_prod)
    assert "carol" in user_names(iam_in(PROD)) and "carol" in user_names(iam_in(STAGING))


def test_an_account_whose_role_cannot_be_assumed_is_a_clear_answer_in_the_modal(org: tuple[RunningBot, FaultProxy]) -> None:
    bot, proxy = org
    proxy.refuse("AssumeRole", RoleArn=f"arn:aws:iam::{STAGING}:role/iam-bot")
    answer = submit_form(bot, user_name="dave", access=["console"], account="staging")
    assert answer["response_action"] == "errors"
    assert answer["errors"]["account"].startswith(
        f"The bot cannot act in staging: AccessDenied on sts:AssumeRole for arn:aws:iam::{STAGING}:role/iam-bot.")
    assert submit_form(bot, user_name="dave", access=["console"], account="prod")["response_action"] == "push"  # the others still serve


@pytest.mark.parametrize("org", [{"account_session_seconds": 900}], indirect=True)
def test_the_roles_credentials_are_renewed_in_the_middle_of_a_job(org: tuple[RunningBot, FaultProxy]) -> None:
    """Credentials of 15 minutes are within botocore's refresh window from the start: every call renews them,
    as a long job's would near their end. The job goes on in the same account."""
    bot, proxy = org
    iam_in(STAGING).create_group(GroupName="testers")
    short_id = request_user(bot, user_name="erin", groups=["testers"], access=["console", "access_key"], account="staging")
    before = proxy.seen.count("AssumeRole")
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    assert proxy.seen.count("AssumeRole") - before >= 3  # renewed between the job's calls
    staging = iam_in(STAGING)
    assert [g["GroupName"] for g in staging.list_groups_for_user(UserName="erin")["Groups"]] == ["testers"]
    assert len(staging.list_access_keys(UserName="erin")["AccessKeyMetadata"]) == 1


def test_day_two_acts_in_the_users_own_account(org: tuple[RunningBot, FaultProxy], iam: Any) -> None:
    bot, _ = org
    staging = iam_in(STAGING)
    staging.create_group(GroupName="testers")
    iam.create_user(UserName="frank")  # a user of the same name in the bot's own account, made by hand
    short_id = request_user(bot, user_name="frank", access=["console"], account="staging")
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)

    assert "is not a user the bot created" in command(bot, "offboard frank")  # the bot's own account: not its user
    before = len(bot.standin.calls_to("views.update"))
    bot.slack.command(REQUESTER, "change staging:frank")
    view = wait_until(lambda: [c for c in bot.standin.calls_to("views.update")[before:] if "Change `frank`" in json.dumps(c.response.get("view") or {})],
                      what="the change form filled in")[0].response["view"]
    assert "in AWS account staging (222222222222)" in json.dumps(view)
    resp = bot.slack.view_submission(REQUESTER, view, change_values(groups=["testers"], access=["console"]))
    assert resp.status_code == 200 and not resp.text.strip().startswith('{"response_action": "errors"'), resp.text
    change = wait_until(lambda: [r for r in _requests(bot, "change") if r.state.value == "pending"], timeout=45, what="the change asked")[0]
    assert change.account == "staging"
    wait_until(lambda: approval_messages(bot, change.short_id), what="the change's approval message")
    click(bot, APPROVER, "approve_request", change.short_id)
    wait_until(lambda: [g["GroupName"] for g in staging.list_groups_for_user(UserName="frank")["Groups"]] == ["testers"], what="the change applied")

    wait_until(lambda: [r for r in _requests(bot, "change") if r.state.value == "completed"], timeout=45, what="the change completed")
    assert "It is checked against IAM now" in command(bot, "offboard staging:frank")
    off = wait_until(lambda: [r for r in _requests(bot, "offboard") if r.state.value == "pending"], timeout=45, what="the offboarding asked")[0]
    wait_until(lambda: approval_messages(bot, off.short_id), what="the offboarding's approval message")
    click(bot, APPROVER, "approve_request", off.short_id)
    wait_until(lambda: "frank" not in user_names(staging), what="frank offboarded in staging")
    assert "frank" in user_names(iam)  # the bot's own account is untouched


def _requests(bot: RunningBot, kind: str) -> list[AccessRequest]:
    with bot.deps.sessionmaker.begin() as s:
        rows = list(s.scalars(select(AccessRequest).where(AccessRequest.kind == kind).order_by(AccessRequest.id)))
        s.expunge_all()
        return rows


def test_doctor_checks_every_account_and_names_the_one_misconfigured(sqlite_url: str, standin, moto, iam, tmp_path: Path) -> None:
    migrate(make_engine(sqlite_url))
    workspace = standin  # the channels good_env names, with the bot in them: the rest of the deployment is fine
    workspace.add_channel("CAPPROVALS", "iam-approvals")
    workspace.add_channel("GAUDIT", "iam-audit", is_private=True)
    proxy = FaultProxy(moto.url)
    try:
        proxy.refuse("AssumeRole", RoleArn=f"arn:aws:iam::{STAGING}:role/iam-bot")
        env = good_env(sqlite_url, workspace, moto)
        env.update(AWS_ENDPOINT_URL=proxy.url, IAM_BOT_ACCOUNTS=ACCOUNTS, IAM_BOT_ACCOUNT_EXTERNAL_ID="iam-bot-4f2a",
                   AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        out = run_doctor(env, tmp_path)
    finally:
        proxy.stop()
    status, line = out.lines["accounts"]
    assert status == "OK" and line.startswith(f"2: prod ({PROD}), staging ({STAGING}); the bot assumes role iam-bot with the external id")
    status, line = out.lines["account prod"]
    assert status in ("OK", "WARN") and line.startswith(f"acting as arn:aws:sts::{PROD}:assumed-role/iam-bot/iam-bot;")  # moto's simulator cannot judge: a warning at most
    status, line = out.lines["account staging"]
    assert status == "FAIL"
    assert line.startswith(f"the bot cannot act in staging: AccessDenied on sts:AssumeRole for arn:aws:iam::{STAGING}:role/iam-bot")
    assert "iam-bot policy --member-account" in line and f"trusting arn:aws:iam::{OWN}:user/" in line
    assert out.code == 1 and out.failing() == {"account staging"}, out.stdout  # the rest of a good deployment is fine
    print(out.stdout)  # the closing note shows it


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'doctor.db'}"


def test_the_rules_file_names_accounts_by_name_or_id(tmp_path: Path) -> None:
    from bot.common.errors import ConfigError
    from bot.policy.rules_file import load_rulebook

    bad = tmp_path / "bad.yml"
    bad.write_text(textwrap.dedent("""\
        accounts:
          "Prod Web": {guardrails: {max_groups: 2}}
          prod: {path_prefix: iam-bot, colour: red}
        rules:
          - {name: r, match: {accounts: ["arn:aws:iam::1:root"]}, approvers: [U01]}
        """))
    with pytest.raises(ConfigError) as raised:
        load_rulebook(bad, default_approvers=["U09"])
    text = str(raised.value)
    assert "accounts.Prod Web: an account's name or 12-digit id" in text
    assert "accounts.prod.path_prefix: a path prefix starts and ends with /" in text and "colour" in text
    assert "rules[0].match.accounts[0]" in text


# ---------------------------------------------------------------- one request, several accounts


def _members(bot: RunningBot, bundle: str) -> list[AccessRequest]:
    with bot.deps.sessionmaker.begin() as s:
        rows = list(s.scalars(select(AccessRequest).where(AccessRequest.bundle == bundle).order_by(AccessRequest.id)))
        s.expunge_all()
        return rows


def test_one_request_for_two_accounts_is_approved_once_and_made_in_each(org: tuple[RunningBot, FaultProxy]) -> None:
    bot, _ = org
    prod, staging = iam_in(PROD), iam_in(STAGING)
    for iam in (prod, staging):
        iam.create_group(GroupName="developers")
    review = submit_form(bot, user_name="hana", groups=["developers"], account=["prod", "staging"])
    assert review["response_action"] == "push" and "One plan per account is made when you submit (prod, staging)" in json.dumps(review["view"])
    assert "`prod`, `staging`" in json.dumps(review["view"])
    before = {id(c) for c in bot.standin.calls_to("chat.postMessage")}
    resp = bot.slack.view_submission(REQUESTER, review["view"], {})
    assert resp.json() == {"response_action": "clear"}, resp.text
    first = wait_until(lambda: [r for r in _requests(bot, "create_user") if r.user_name == "hana" and r.account == "prod"], what="the requests")[0]
    bundle = first.bundle
    assert bundle == first.short_id
    wait_until(lambda: all(r.state.value == "pending" for r in _members(bot, bundle)), what="both asked")
    prod_req, staging_req = _members(bot, bundle)
    assert (prod_req.account, staging_req.account) == ("prod", "staging")
    # The strictest rule of the two (prod's: two approvals) is both's.
    assert {(r.rule_name, r.quorum) for r in (prod_req, staging_req)} == {("production-two", 2)}
    # One approval message per approver, presenting both plans; none for the second account's request on its own.
    asked = wait_until(lambda: approval_messages(bot, bundle), what="the approval message")
    assert approval_messages(bot, staging_req.short_id) == []
    text = everything(asked[0].args)
    assert "in 2 AWS accounts" in text and "One request for 2 AWS accounts" in text and "In AWS account staging" in text
    assert f"AWS account prod ({PROD})" in text and f"AWS account staging ({STAGING})" in text
    assert "*AWS account*\\n`prod`, `staging`" in text  # the fields name every account asked for
    def posted() -> list[Any] | None:
        found = [c for c in bot.standin.calls_to("chat.postMessage") if id(c) not in before and _approvable(c)]
        return found if len(found) >= 2 else None

    new = wait_until(posted, what="both approvers asked")
    bot.settle()
    assert len(new) == 2 and {c.args["channel"] for c in new} == {"DAPPROVER1", "DAPPROVER2"}  # one per approver, for both accounts

    click(bot, APPROVER, "approve_request", bundle)
    bot.settle()
    assert {r.state.value for r in _members(bot, bundle)} == {"pending"}  # 1 of 2, in both
    # Withdrawn from both accounts at once; a second withdrawal has nothing to take back.
    value = button_value(asked[0], "approve_request")
    bot.slack.block_action(APPROVER, "withdraw_approval", value)
    wait_until(lambda: dms_or_ephemerals(bot, "is withdrawn"), what="the withdrawal's answer")
    assert _approved_by(bot, bundle) == {prod_req.id: [], staging_req.id: []}
    bot.slack.block_action(APPROVER, "withdraw_approval", value)
    wait_until(lambda: dms_or_ephemerals(bot, "You have no approval of this plan to withdraw"), what="the refusal")
    click(bot, APPROVER, "approve_request", bundle)
    bot.settle()
    assert _approved_by(bot, bundle) == {prod_req.id: [APPROVER], staging_req.id: [APPROVER]}
    click(bot, APPROVER2, "approve_request", bundle)
    credentials_dm(bot, prod_req.short_id)
    credentials_dm(bot, staging_req.short_id)
    assert "hana" in user_names(prod) and "hana" in user_names(staging)
    status = command(bot, f"status {bundle}")
    assert re.search(rf"prod: \*{prod_req.short_id}\* [^·]*user created · staging: \*{staging_req.short_id}\* [^·\\]*user created", status), status


def _approved_by(bot: RunningBot, bundle: str) -> dict[int, list[str]]:
    from models import Decision

    with bot.deps.sessionmaker.begin() as s:
        return {m.id: [d.approver_id for d in s.scalars(select(Decision).where(Decision.request_id == m.id, Decision.approved.is_(True)))]
                for m in _members(bot, bundle)}


def dms_or_ephemerals(bot: RunningBot, fragment: str) -> list[Any]:
    return [c for m in ("chat.postEphemeral", "chat.postMessage", "response_url") for c in bot.standin.calls_to(m) if fragment in everything(c.args)]


def _approvable(call) -> bool:
    return "approve_request" in json.dumps(call.args.get("blocks") or [])


def test_an_account_failing_does_not_undo_the_others_and_status_says_which(org: tuple[RunningBot, FaultProxy]) -> None:
    bot, _ = org
    review = submit_form(bot, user_name="ivan", access=["console"], account=["prod", "staging"])
    bot.slack.view_submission(REQUESTER, review["view"], {})
    first = wait_until(lambda: [r for r in _requests(bot, "create_user") if r.user_name == "ivan" and r.account == "prod"], what="the requests")[0]
    wait_until(lambda: all(r.state.value == "pending" for r in _members(bot, first.bundle)), what="both asked")
    wait_until(lambda: approval_messages(bot, first.short_id), what="the approval message")
    iam_in(STAGING).create_user(UserName="ivan")  # someone makes the name by hand in staging meanwhile
    click(bot, APPROVER, "approve_request", first.short_id)
    click(bot, APPROVER2, "approve_request", first.short_id)
    credentials_dm(bot, first.short_id)
    def staging_failed() -> list[AccessRequest] | None:
        members = _members(bot, first.bundle or "")
        return members if members[1].state.value == "failed" else None

    prod_req, staging_req = wait_until(staging_failed, what="staging failed")
    assert prod_req.state.value == "completed" and "ivan" in user_names(iam_in(PROD))
    assert iam_in(STAGING).list_user_tags(UserName="ivan")["Tags"] == []  # the hand-made one is left alone
    assert "already exists" in (staging_req.failure_reason or "")
    status = command(bot, f"status {first.short_id}")
    assert re.search(rf"prod: \*{prod_req.short_id}\* [^·]*user created · staging: \*{staging_req.short_id}\* [^·\\]*failed", status), status


def test_the_hygiene_report_is_one_accounts(org: tuple[RunningBot, FaultProxy]) -> None:
    bot, _ = org
    short_id = request_user(bot, user_name="jill", access=["console", "access_key"], account="staging")
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    iam_in(PROD).create_user(UserName="by-hand-in-prod")
    assert "Name the account, as in `/iam report prod`: the bot serves `prod`, `staging`" in command(bot, "report", user=APPROVER)
    staging = command(bot, "report staging", user=APPROVER)
    assert "IAM hygiene report: staging (222222222222)" in staging and "jill" in staging and "by-hand-in-prod" not in staging
    assert '"value": "staging:jill"' in staging  # its buttons act on staging's jill
    assert "by-hand-in-prod" in command(bot, "report prod", user=APPROVER)


def test_a_multi_account_request_with_one_accounts_role_missing_is_refused_in_the_modal_naming_it(org: tuple[RunningBot, FaultProxy]) -> None:
    bot, proxy = org
    proxy.refuse("AssumeRole", RoleArn=f"arn:aws:iam::{STAGING}:role/iam-bot")
    answer = submit_form(bot, user_name="kim", access=["console"], account=["prod", "staging"])
    assert answer["response_action"] == "errors" and answer["errors"]["account"].startswith("The bot cannot act in staging: AccessDenied")
    assert _requests(bot, "create_user") == []


def test_the_form_starts_on_the_requesters_last_account(org: tuple[RunningBot, FaultProxy]) -> None:
    bot, _ = org
    request_user(bot, user_name="lou", access=["console"], account="staging")
    first = open_request_modal(bot)["blocks"][0]
    assert [o["value"] for o in first["element"]["initial_options"]] == ["staging"]


def test_the_organizations_accounts_are_listed_and_served(moto, iam, monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM_BOT_ORGANIZATION=true: the accounts come from AWS Organizations (active ones), named after their names."""
    from datetime import timedelta

    from bot.domain.accounts import parse_accounts
    from bot.iam.accounts import Accounts

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    orgs = session.client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    made = orgs.create_account(AccountName="Prod Web", Email="prod-web@example.com")["CreateAccountStatus"]["AccountId"]
    accounts = Accounts(session, members=parse_accounts(f"staging={STAGING}"), organization=True, duration=timedelta(hours=1))
    listed = {a.name: a.id for a in accounts.members()}
    assert listed["staging"] == STAGING and listed["prod-web"] == made  # the configured first, then the organization's
    assert accounts.gateway("prod-web").caller_identity()[0] == made and accounts.several


def test_a_grant_in_two_accounts_ends_in_each_by_a_revoke_of_its_own(database_url: str, standin, moto, iam, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same name in two accounts is two users: each one's time-bound group is taken away in its own account."""
    from tests.support.harness import FakeClock

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False,
                     extra={"accounts_raw": ACCOUNTS}).start()
    try:
        prod, staging = iam_in(PROD), iam_in(STAGING)
        for view in (prod, staging):
            view.create_group(GroupName="operators")
        review = submit_form(bot, user_name="nell", access=["console"], groups=["operators"], grant_for="1h", account=["prod", "staging"])
        bot.slack.view_submission(REQUESTER, review["view"], {})
        first = wait_until(lambda: [r for r in _requests(bot, "create_user") if r.account == "prod"], what="the requests")[0]
        wait_until(lambda: approval_messages(bot, first.short_id), what="the approval message")
        click(bot, APPROVER, "approve_request", first.short_id)
        wait_until(lambda: all(m.state.value == "completed" for m in _members(bot, first.bundle or "")), what="both made")
        clock.advance(hours=1, minutes=1)
        assert bot.deps.grant_ends.run_due() == 2  # one revoke per account's user
        wait_until(lambda: len([r for r in _requests(bot, "revoke") if r.state.value == "completed"]) == 2, timeout=45, what="both revokes done")
        assert {r.account for r in _requests(bot, "revoke")} == {"prod", "staging"}
        for view in (prod, staging):
            assert view.list_groups_for_user(UserName="nell")["Groups"] == []
    finally:
        bot.stop()
