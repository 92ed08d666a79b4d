"""Many accounts, the pure parts: the setting, names of users, ARNs moved to a member account, the
rules and guardrails as they hold in one account, the plan naming it, and the member-account role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.domain.accounts import MemberAccount, arn_in, name_for, parse_accounts, parse_target, qualified, valid_role
from bot.domain.plan import Plan, PlanKind, Step, StepKind
from bot.domain.spec import RequestSpec
from bot.ops import deploy_policy
from bot.ops.deploy_policy import assume_statements, in_member_account, render_member_role, render_member_stackset, render_policy
from bot.policy.guardrails import Guardrails, stricter
from bot.policy.rulebook import AccountGuardrails, Match, Rule, Rulebook
from bot.policy.subject import Subject
from bot.runtime.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
PROD = MemberAccount("prod", "111111111111")


def test_the_accounts_setting_is_read_and_each_mistake_named() -> None:
    assert parse_accounts(" prod=111111111111 , staging=222222222222,") == (PROD, MemberAccount("staging", "222222222222"))
    assert parse_accounts("") == ()
    for raw, said in [
        ("prod", "'prod' is not name=account_id"),
        ("Prod=111111111111", "'Prod' is not an account name"),
        ("prod=1111", "prod: '1111' is not a 12-digit AWS account id"),
        ("prod=111111111111,prod=222222222222", "prod is named twice"),
        ("prod=111111111111,dev=111111111111", "account 111111111111 is listed twice"),
    ]:
        with pytest.raises(ValueError) as raised:
            parse_accounts(raw)
        assert str(raised.value).startswith(said), raised.value


def test_settings_refuse_a_bad_account_list_or_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IAM_BOT_ACCOUNTS", "prod=12")
    monkeypatch.setenv("IAM_BOT_ACCOUNT_ROLE", "arn:aws:iam::111111111111:role/iam-bot")
    monkeypatch.setenv("IAM_BOT_ACCOUNT_SESSION_SECONDS", "60")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    lines = str(raised.value).splitlines()
    assert "IAM_BOT_ACCOUNTS: prod: '12' is not a 12-digit AWS account id" in lines
    assert any(line.startswith("IAM_BOT_ACCOUNT_ROLE: must be an IAM role name") for line in lines)
    assert any(line.startswith("IAM_BOT_ACCOUNT_SESSION_SECONDS:") for line in lines)
    assert valid_role("ops/iam-bot") and not valid_role("arn:aws:iam::1:role/x")


def test_users_are_named_with_their_account_and_arns_moved_into_one() -> None:
    assert qualified("", "alice") == "alice" and qualified("prod", "alice") == "prod:alice"
    assert parse_target("prod:alice") == ("prod", "alice") and parse_target(" alice ") == ("", "alice")
    assert arn_in("arn:aws:iam::123456789012:policy/iam-bot-boundary", PROD.id) == "arn:aws:iam::111111111111:policy/iam-bot-boundary"
    assert arn_in("arn:aws:iam::aws:policy/ReadOnlyAccess", PROD.id) == "arn:aws:iam::aws:policy/ReadOnlyAccess"  # AWS-managed: everywhere
    assert arn_in("arn:aws:iam::123456789012:policy/b", "") == "arn:aws:iam::123456789012:policy/b"
    assert name_for("Prod Web (EU)", "333333333333") == "prod-web-eu" and name_for("!!!", "333333333333") == "333333333333"
    assert PROD.role_arn("ops/iam-bot") == "arn:aws:iam::111111111111:role/ops/iam-bot" and PROD.label == "prod (111111111111)"


def test_an_accounts_guardrails_are_added_the_stricter_winning() -> None:
    base = Guardrails(forbidden_policies=("AdministratorAccess",), max_groups=5, allowed_groups=("dev-*",), required_boundaries=(("/", "arn:b0"),))
    more = Guardrails(forbidden_policies=("PowerUserAccess",), max_groups=8, max_grant_hours=8, allowed_groups=("prod-*",),
                      required_boundaries=(("/", "arn:b1"), ("/x/", "arn:b2")))
    g = stricter(base, more)
    assert g.forbidden_policies == ("AdministratorAccess", "PowerUserAccess")
    assert g.max_groups == 5 and g.max_grant_hours == 8  # the lower limit, and a limit only the account sets
    assert g.allowed_groups == ("prod-*",)  # an allowlist the account sets replaces the file's there
    assert g.required_boundaries == (("/", "arn:b1"), ("/x/", "arn:b2"))  # the account's boundary for "/" replaces the file's


def test_rules_and_prefixes_as_they_hold_in_one_account() -> None:
    book = Rulebook(
        guardrails=Guardrails(forbidden_policies=("AdministratorAccess",)),
        account_guardrails=(
            AccountGuardrails(pattern="prod*", guardrails=Guardrails(forbidden_policies=("PowerUserAccess",)), path_prefix="/iam-bot/prod/"),
            AccountGuardrails(pattern="2222*", path_prefix="/elsewhere/"),  # outside the setting's prefix: ignored
        ),
        rules=(Rule(name="prod-two", approvers=("U1", "U2"), quorum=2, match=Match(accounts=("prod", "1111*"))),),
        default_approvers=("U9",),
    )
    assert book.for_account("prod", PROD.id).guardrails.forbidden_policies == ("AdministratorAccess", "PowerUserAccess")
    assert book.for_account("staging", "222222222222").guardrails == book.guardrails and book.for_account() is book
    assert book.path_prefix_for("prod", PROD.id, default="/iam-bot/") == "/iam-bot/prod/"
    assert book.path_prefix_for("staging", "222222222222", default="/iam-bot/") == "/iam-bot/"

    def subject(*accounts: str) -> Subject:
        return Subject(path="/", console=True, key=False, accounts=accounts)

    assert book.choose(subject("prod", PROD.id)).rule.name == "prod-two"
    assert book.choose(subject("other", "111100000000")).rule.name == "prod-two"  # by id glob
    assert book.choose(subject("staging", "222222222222")).rule.name == "default"
    assert book.choose(subject()).rule.name == "default"  # the bot's own account: no name to match
    auto = Match(accounts=("staging",), policies=("ReadOnlyAccess",))
    assert auto.uncovered(subject("prod", PROD.id)) == ["account `prod`"]
    assert auto.uncovered(subject("staging", "222222222222")) == []


def _plan(**kw: object) -> Plan:
    return Plan(kind=PlanKind.CREATE_USER, account=PROD.id, user_name="alice", steps=(Step(kind=StepKind.CREATE_USER, path="/"),), **kw)  # type: ignore[arg-type]


def test_a_plan_names_its_member_account_and_rules_see_it() -> None:
    own, named = _plan(), _plan(account_name="prod")
    assert "account_name" not in own.to_body() and own.digest != named.digest  # older plans' digests are unchanged
    assert Plan.from_body(named.to_body()) == named
    assert Subject.of_plan(named).accounts == ("prod", PROD.id) and Subject.of_plan(own).accounts == ()
    spec = RequestSpec(user_name="alice", console_access=True, access_key=False, owner_id="U1", reason="r")
    assert "account" not in spec.to_payload()
    with_account = RequestSpec.from_payload({**spec.to_payload(), "account": "prod"})
    assert with_account.account == "prod" and with_account.to_payload()["account"] == "prod"


def test_the_member_account_role_trusts_the_bot_with_its_external_id() -> None:
    policy = render_policy(account="*", path_prefix="/iam-bot/", boundary_arn=deploy_policy.EXAMPLE_BOUNDARY)
    role = render_member_role(role="ops/iam-bot", principal="arn:aws:iam::123456789012:role/iam-bot", external_id="x-42", policy=policy)
    assert (role["RoleName"], role["Path"]) == ("iam-bot", "/ops/")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/iam-bot"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": "x-42"}}
    bare = render_member_role(role="iam-bot", principal="arn:aws:iam::123456789012:role/iam-bot", external_id=None, policy=policy)
    assert "Condition" not in bare["AssumeRolePolicyDocument"]["Statement"][0]
    # The boundary is the member account's own policy of that name.
    moved = json.dumps(in_member_account(policy, own_account="123456789012", member=PROD.id))
    assert "arn:aws:iam::111111111111:policy/iam-bot-boundary" in moved and "123456789012" not in moved


def test_the_stackset_template_is_the_rendered_example() -> None:
    """deploy/member-account-stackset.yml is `iam-bot policy --member-account --stackset` for the README's example settings."""
    policy = render_policy(account="*", path_prefix=deploy_policy.EXAMPLE_PATH_PREFIX, boundary_arn=deploy_policy.EXAMPLE_BOUNDARY)
    rendered = render_member_stackset(role="iam-bot", policy=policy, own_account=deploy_policy.EXAMPLE_ACCOUNT)
    assert (ROOT / "deploy" / "member-account-stackset.yml").read_text() == rendered, (
        "regenerate it: IAM_BOT_USER_PATH_PREFIX=/iam-bot/ IAM_BOT_PERMISSIONS_BOUNDARY=arn:aws:iam::123456789012:policy/iam-bot-boundary "
        "iam-bot policy --member-account --stackset > deploy/member-account-stackset.yml")
    template = json.loads(rendered)
    role = template["Resources"]["IamBotRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"AWS": {"Ref": "BotPrincipalArn"}}
    assert "123456789012" not in rendered and "${AWS::AccountId}:policy/iam-bot-boundary" in rendered


def test_the_bots_own_policy_may_assume_the_member_roles() -> None:
    (listed,) = assume_statements(role="iam-bot", account_ids=["111111111111", "222222222222"], organization=False)
    assert listed["Action"] == "sts:AssumeRole" and listed["Resource"] == [
        "arn:aws:iam::111111111111:role/iam-bot", "arn:aws:iam::222222222222:role/iam-bot"]
    assume, orgs = assume_statements(role="iam-bot", account_ids=[], organization=True)
    assert assume["Resource"] == "arn:aws:iam::*:role/iam-bot" and orgs["Action"] == "organizations:ListAccounts"
