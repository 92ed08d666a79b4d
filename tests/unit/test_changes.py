"""Pure parts of changing a user and of time-bound grants: the change's plan, the form's difference,
how long a grant lasts, and the rules that require or cap an end."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from bot.domain import grants as lasting
from bot.domain.facts import AccessKeyFacts, CredentialFacts, GroupFacts, IamFacts, ManagedPolicy, UserFacts
from bot.domain.plan import HELD, Plan, PlanKind, StepKind
from bot.domain.spec import RequestSpec
from bot.policy.guardrails import Guardrails, change_refusal, grant_end_refusal
from bot.policy.rules_file import load_rulebook
from bot.policy.subject import Subject
from bot.requests.planner import ChangeFacts, Unplannable, plan_change, plan_revoke
from bot.requests.validation import RawForm, grant_for_value, validate_change

RO = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def facts(*, groups=("devs",), attached=(RO,), console=True, keys=("AKIA1",), marker="R1") -> ChangeFacts:
    user = UserFacts(name="alice", groups=tuple(groups), attached=tuple(attached))
    creds = CredentialFacts(user_name="alice", keys=tuple(AccessKeyFacts(k, True) for k in keys), console=console, marker=marker)
    iam = IamFacts(account="123456789012", groups={"devs": GroupFacts("devs"), "ops": GroupFacts("ops", attached=(ADMIN,))},
                   policies={RO: ManagedPolicy(RO, "v1", {}), ADMIN: ManagedPolicy(ADMIN, "v3", {})})
    return ChangeFacts(user=user, credentials=creds, iam=iam)


def change(**kw) -> RequestSpec:
    return RequestSpec(user_name="alice", console_access=kw.pop("console", False), access_key=kw.pop("key", False), owner_id="U1", reason="r", **kw)


def test_a_change_takes_away_first_adds_then_deletes_credentials_and_judges_the_whole_user():
    plan, _ = plan_change(change(groups=("ops",), remove=("group:devs", "key"), grant_for="4h"), facts(), marker="R1", path="/")
    assert [(s.kind, s.target) for s in plan.steps] == [
        (StepKind.REMOVE_FROM_GROUP, "devs"), (StepKind.ADD_TO_GROUP, "ops"), (StepKind.DELETE_ACCESS_KEY, "AKIA1")]
    assert plan.step(StepKind.ADD_TO_GROUP, "ops").lasts == "4h" and plan.time_bound
    assert plan.keeps == (f"policy:{RO}", "console")
    assert [(g.name, g.group, g.origin) for g in plan.grant.policies] == [("AdministratorAccess", "ops", ""), ("ReadOnlyAccess", None, HELD)]
    subject = Subject.of_plan(plan)
    assert subject.groups == ("ops",) and subject.attached == (RO,) and subject.console and not subject.key
    assert Plan.from_body(plan.to_body()) == plan


def test_what_a_change_cannot_do_is_said():
    with pytest.raises(Unplannable, match="Nothing would change"):
        plan_change(change(groups=("devs",), remove=("group:ops",)), facts(), marker="R1", path="/")
    with pytest.raises(Unplannable, match="replaced by hand"):
        plan_change(change(groups=("ops",)), facts(marker="R9"), marker="R1", path="/")
    with pytest.raises(Unplannable, match="rotate-key"):
        plan_change(change(key=True), facts(), marker="R1", path="/")
    with pytest.raises(Unplannable, match="for a time already"):
        plan_change(change(groups=("devs",), console=False), facts(), marker="R1", path="/", temporary={("group", "devs"): "2026-12-04 10:00 UTC"})
    with pytest.raises(Unplannable, match="A time limit applies"):
        plan_change(change(groups=("devs",), grant_for="1h", remove=("console",)), facts(), marker="R1", path="/")


def test_a_new_key_replacing_the_old_is_made_after_the_old_is_deleted():
    plan, _ = plan_change(change(key=True, remove=("key",)), facts(keys=("AKIA1", "AKIA2")), marker="R1", path="/")
    assert [(s.kind, s.target) for s in plan.steps] == [(StepKind.DELETE_ACCESS_KEY, "AKIA1"), (StepKind.DELETE_ACCESS_KEY, "AKIA2"), (StepKind.ADD_ACCESS_KEY, "")]


def test_a_revoke_takes_exactly_what_was_granted_or_nothing_of_a_user_no_longer_the_bots():
    spec = change(remove=("group:ops", f"policy:{RO}"))
    creds = CredentialFacts(user_name="alice", marker="R1")
    plan = plan_revoke(spec, creds, account="1", marker="R1", why="its time ended")
    assert [(s.kind, s.target) for s in plan.steps] == [(StepKind.REMOVE_FROM_GROUP, "ops"), (StepKind.DETACH_POLICY, RO)] and plan.kind is PlanKind.REVOKE
    assert plan_revoke(spec, None, account="1", marker="R1", why="").steps == ()
    assert plan_revoke(spec, CredentialFacts(user_name="alice", marker="R7"), account="1", marker="R1", why="").steps == ()


def test_the_change_form_is_the_difference_from_what_the_user_had():
    had = {"u": "alice", "g": ["devs"], "p": [RO], "c": True, "k": True}
    spec, errors = validate_change(RawForm(groups=("ops",), policy_arns=(RO,), access_types=("console",), reason="why", grant_for="1d"), had=had, today=date(2026, 12, 3))
    assert errors == {} and spec is not None
    assert (spec.groups, spec.policy_arns, spec.remove, spec.grant_for, spec.console_access, spec.access_key) == (("ops",), (), ("group:devs", "key"), "1d", False, False)
    _, errors = validate_change(RawForm(groups=("devs",), policy_arns=(RO,), access_types=("console", "access_key"), reason="why"), had=had)
    assert errors["groups"].startswith("Nothing changes")
    _, errors = validate_change(RawForm(groups=("devs", "x y"), reason=""), had=had)
    assert set(errors) == {"groups", "reason"}


def test_for_and_until():
    today = date(2026, 12, 3)
    assert grant_for_value("4h", "", today=today, adds=True) == ("4h", {})
    assert grant_for_value("forever", "", today=today, adds=False) == (None, {})
    assert grant_for_value("until", "2026-12-10", today=today, adds=True) == ("2026-12-10", {})
    assert "after today" in grant_for_value("until", "2026-12-03", today=today, adds=True)[1]["grant_until"]
    assert "Pick the date" in grant_for_value("until", "", today=today, adds=True)[1]["grant_until"]
    assert "adds none" in grant_for_value("1h", "", today=today, adds=False)[1]["grant_for"]
    assert "Until the date below" in grant_for_value("", "2026-12-10", today=today, adds=True)[1]["grant_until"]
    assert "choices" in grant_for_value("5y", "", today=today, adds=True)[1]["grant_for"]


def test_how_long_a_grant_lasts():
    assert lasting.end_of("4h", start=NOW) == NOW + timedelta(hours=4)
    assert lasting.end_of("2026-12-10", start=NOW) == datetime(2026, 12, 10, tzinfo=timezone.utc)
    moment = lasting.moment(NOW + timedelta(days=2, seconds=30))
    assert moment == "2026-12-05T12:00Z" and lasting.end_of(moment, start=NOW) == NOW + timedelta(days=2)
    assert lasting.words("1w") == "for 1 week" and lasting.words("2026-12-10") == "until 2026-12-10 00:00 UTC"
    assert not lasting.is_valid("tomorrow") and lasting.is_valid("1d")
    assert lasting.remind_before(NOW, NOW + timedelta(hours=1)) == timedelta(minutes=15)
    assert lasting.remind_before(NOW, NOW + timedelta(hours=4)) == timedelta(hours=1)
    assert lasting.remind_before(NOW, NOW + timedelta(weeks=1)) == timedelta(days=1)


def test_the_rules_require_an_end_and_cap_it():
    g = Guardrails(grant_end_groups=("admin*",), grant_end_policies=("*Admin*",), max_grant_hours=24)
    assert "only for a time" in grant_end_refusal(g, groups=[("admins", None)], policies=[], now=None)
    assert "only for a time" in grant_end_refusal(g, groups=[], policies=[(ADMIN, None)], now=None)
    assert grant_end_refusal(g, groups=[("admins", "1d")], policies=[], now=None) is None
    assert "at most 24 hours" in grant_end_refusal(g, groups=[("devs", "1w")], policies=[], now=None)
    assert grant_end_refusal(g, groups=[("devs", "2026-12-20")], policies=[], now=None) is None  # a date is judged where the time is known
    assert "at most 24 hours" in grant_end_refusal(g, groups=[("devs", "2026-12-20")], policies=[], now=NOW)
    assert change_refusal(Guardrails(), path="/bots/", path_prefix="/bots/") is None
    assert "outside `/bots/`" in change_refusal(Guardrails(), path="/old/", path_prefix="/bots/")
    assert change_refusal(Guardrails(changeable_paths=("/old/",)), path="/old/x/", path_prefix="/bots/") is None


def test_the_rules_file_reads_the_new_keys(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text("guardrails:\n  require_grant_end: {groups: [admins], policies: ['*Admin*']}\n  max_grant_hours: 72\n  changeable_paths: [/legacy/]\n")
    book = load_rulebook(path)
    g = book.guardrails
    assert (g.grant_end_groups, g.grant_end_policies, g.max_grant_hours, g.changeable_paths) == (("admins",), ("*Admin*",), 72, ("/legacy/",))
