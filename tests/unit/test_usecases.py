"""bot.requests.usecases and store on a real SQLite database: submission, plans, decisions by digest, drift, jobs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select, update

from bot.common.errors import Refused
from bot.domain.facts import GroupFacts, IamFacts, ManagedPolicy
from bot.domain.spec import RequestSpec
from bot.policy.guardrails import Guardrails
from bot.policy.rulebook import Evaluation, Rule, Rulebook
from bot.requests import store, usecases
from bot.requests.planner import plan_create_user
from bot.runtime.db import make_engine, make_sessionmaker, migrate
from models import AccessRequest, AuditEvent, Job, JobState, Plan, RequestState

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
REQUESTER, A1, A2 = "UREQ0001", "UAPP0001", "UAPP0002"
TWO = Evaluation(rule_name="two", approver_users=(A1, A2), approver_groups=(), quorum=2, auto_approve=False)
BOOK = Rulebook(rules=(Rule("two", approvers=(A1, A2), quorum=2),))


@pytest.fixture
def sm(tmp_path: Path) -> Iterator:
    engine = make_engine(f"sqlite:///{tmp_path / 'iam-bot.db'}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def _facts(*attached: str) -> IamFacts:
    return IamFacts(
        account="123456789012",
        groups={"readers": GroupFacts("readers", attached=attached)},
        policies={a: ManagedPolicy(a, "v1", {"Statement": []}) for a in attached},
    )


SPEC = RequestSpec(user_name="alice", console_access=False, access_key=True, owner_id=REQUESTER, reason="work", groups=("readers",))


def _submitted(sm, evaluation: Evaluation = TWO) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with sm.begin() as s:
        draft = usecases.save_draft(s, requester_id=REQUESTER, spec=SPEC, now=T0)
    with sm.begin() as s:
        req = usecases.submit_draft(s, draft_id=draft, actor_id=REQUESTER, now=T0, evaluation=evaluation, expires_at=T0 + timedelta(hours=72))
        return req.id, req.short_id


def _plan_and_ask(sm, rid: int, short_id: str, facts: IamFacts) -> str:  # type: ignore[no-untyped-def]
    plan, docs = plan_create_user(SPEC, facts, marker=short_id)
    with sm.begin() as s:
        digest = usecases.record_plan(s, request_id=rid, plan=plan, documents=docs, risk={"flags": [], "summary": ""}, changes=[], now=T0)
        assert usecases.ask(s, request_id=rid, now=T0, expires_at=T0 + timedelta(hours=72), next_reminder_at=None)
    return digest


def _decide(sm, short_id: str, actor: str, digest: str | None, approve: bool = True, book: Rulebook = BOOK):  # type: ignore[no-untyped-def]
    with sm.begin() as s:
        return usecases.decide(s, short_id=short_id, actor_id=actor, approve=approve, digest=digest, rulebook=book, now=T0).state


def _jobs(sm, rid: int) -> dict[str, JobState]:  # type: ignore[no-untyped-def]
    with sm.begin() as s:
        return {j.kind: j.state for j in s.scalars(select(Job).where(Job.request_id == rid))}


def test_a_submission_is_checked_before_anyone_is_asked(sm) -> None:
    rid, short_id = _submitted(sm)
    assert _jobs(sm, rid) == {"plan": JobState.QUEUED}
    # Nobody can decide on it while it is being checked, and the refusal says why.
    with pytest.raises(Refused, match="still being checked"):
        _decide(sm, short_id, A1, None)
    digest = _plan_and_ask(sm, rid, short_id, _facts(READONLY))
    with sm.begin() as s:
        req = store.load_request(s, rid)
        assert req.state is RequestState.PENDING and req.plan_digest == digest
        assert store.plan_of(s, request_id=rid, digest=digest).user_name == "alice"


def test_approvals_count_for_the_plan_they_approved_only(sm) -> None:
    rid, short_id = _submitted(sm)
    first = _plan_and_ask(sm, rid, short_id, _facts(READONLY))
    with pytest.raises(Refused, match="earlier plan"):
        _decide(sm, short_id, A1, "0" * 64)  # a message showing another plan
    with pytest.raises(Refused, match="earlier plan"):
        _decide(sm, short_id, A1, None)  # a button without a digest approves nothing
    assert _decide(sm, short_id, A1, first) is RequestState.PENDING  # 1 of 2
    assert _decide(sm, short_id, A2, first) is RequestState.APPROVED
    with sm.begin() as s:
        req = store.load_request(s, rid)
        assert req.approved_digest == first
        assert s.scalars(select(AuditEvent.details).where(AuditEvent.action == "approved")).one()["digest"] == first
    assert _jobs(sm, rid)["apply"] is JobState.QUEUED


def test_drift_sends_it_back_and_earlier_approvals_lapse(sm) -> None:
    rid, short_id = _submitted(sm)
    first = _plan_and_ask(sm, rid, short_id, _facts(READONLY))
    _decide(sm, short_id, A1, first)
    _decide(sm, short_id, A2, first)
    with sm.begin() as s:
        assert usecases.start_applying(s, request_id=rid, now=T0)
        assert usecases.replan(s, request_id=rid, changes=["group `readers` now also has `AdministratorAccess` attached"], now=T0)
        req = store.load_request(s, rid)
        assert (req.state, req.approved_digest, req.decided_by) == (RequestState.SUBMITTED, None, None)
    assert _jobs(sm, rid)["plan"] is JobState.QUEUED  # queued again, from the start
    second = _plan_and_ask(sm, rid, short_id, _facts(READONLY, ADMIN))
    assert second != first
    with sm.begin() as s:
        assert store.approvals_of(s, request_id=rid, digest=second) == []  # nobody approved this one yet
        assert store.approvals_of(s, request_id=rid, digest=first) == [A1, A2]  # kept, for the record
        assert len(s.scalars(select(Plan).where(Plan.request_id == rid)).all()) == 2
    assert _decide(sm, short_id, A1, second) is RequestState.PENDING  # the same person may approve the new plan
    assert _decide(sm, short_id, A2, second) is RequestState.APPROVED


def test_who_may_approve_is_judged_by_the_rules_in_force_at_the_click(sm) -> None:
    rid, short_id = _submitted(sm)
    digest = _plan_and_ask(sm, rid, short_id, _facts(READONLY))
    # The bot restarted with A2 removed from the rule (and a new approver A3): A2's click is refused.
    a3 = "UAPP0003"
    narrower = Rulebook(rules=(Rule("two", approvers=(A1, a3), quorum=2),))
    with pytest.raises(Refused, match="designated approver"):
        _decide(sm, short_id, A2, digest, book=narrower)
    assert _decide(sm, short_id, A1, digest, book=narrower) is RequestState.PENDING
    assert _decide(sm, short_id, a3, digest, book=narrower) is RequestState.APPROVED
    with sm.begin() as s:
        req = store.load_request(s, rid)
        assert list(req.approver_users) == [A1, a3]
        changed = s.scalars(select(AuditEvent.details).where(AuditEvent.action == "rule_reevaluated")).one()
        assert changed["was"]["approvers"] == [A1, A2] and changed["approvers"] == [A1, a3]


def test_a_guardrail_added_since_refuses_the_click(sm) -> None:
    rid, short_id = _submitted(sm)
    digest = _plan_and_ask(sm, rid, short_id, _facts(ADMIN))
    guarded = Rulebook(rules=BOOK.rules, guardrails=Guardrails(forbidden_policies=("AdministratorAccess",)))
    with pytest.raises(Refused, match="guardrail now refuses it: joining group readers would grant AdministratorAccess"):
        _decide(sm, short_id, A1, digest, book=guarded)
    with sm.begin() as s:
        assert store.load_request(s, rid).state is RequestState.PENDING


def test_an_approval_can_be_withdrawn_before_quorum_only(sm) -> None:
    rid, short_id = _submitted(sm)
    digest = _plan_and_ask(sm, rid, short_id, _facts(READONLY))
    with sm.begin() as s, pytest.raises(Refused, match="no approval of this plan"):
        usecases.withdraw_approval(s, short_id=short_id, actor_id=A1, digest=digest, now=T0)
    _decide(sm, short_id, A1, digest)
    with sm.begin() as s:
        usecases.withdraw_approval(s, short_id=short_id, actor_id=A1, digest=digest, now=T0)
    with sm.begin() as s:
        assert store.approvals_of(s, request_id=rid, digest=digest) == []
    # Withdrawn, A2's approval alone is not a quorum of two; A1 may approve again.
    assert _decide(sm, short_id, A2, digest) is RequestState.PENDING
    assert _decide(sm, short_id, A1, digest) is RequestState.APPROVED
    with sm.begin() as s, pytest.raises(Refused, match="can no longer be withdrawn"):
        usecases.withdraw_approval(s, short_id=short_id, actor_id=A1, digest=digest, now=T0)


def test_a_stored_plan_that_was_changed_is_refused(sm) -> None:
    rid, short_id = _submitted(sm)
    digest = _plan_and_ask(sm, rid, short_id, _facts(READONLY))
    with sm.begin() as s:
        row = s.scalars(select(Plan).where(Plan.request_id == rid)).one()
        body = dict(row.body)
        body["steps"] = [*body["steps"], {"kind": "attach_policy", "target": ADMIN}]
        s.execute(update(Plan).where(Plan.id == row.id).values(body=body))
    with sm.begin() as s, pytest.raises(store.PlanIntegrityError):
        store.plan_of(s, request_id=rid, digest=digest)


def test_the_requester_can_cancel_while_it_is_being_checked(sm) -> None:
    rid, short_id = _submitted(sm)
    with sm.begin() as s:
        usecases.cancel(s, short_id=short_id, actor_id=REQUESTER, now=T0)
    with sm.begin() as s:
        assert store.load_request(s, rid).state is RequestState.CANCELLED
        # The plan job that then runs finds nothing to do: ask() no longer wins.
        assert not usecases.ask(s, request_id=rid, now=T0, expires_at=None, next_reminder_at=None)


def test_auto_approval_approves_the_plan_it_judged(sm) -> None:
    auto = Evaluation(rule_name="ro", approver_users=(), approver_groups=(), quorum=1, auto_approve=True)
    rid, short_id = _submitted(sm, auto)
    plan, docs = plan_create_user(SPEC, _facts(READONLY), marker=short_id)
    with sm.begin() as s:
        digest = usecases.record_plan(s, request_id=rid, plan=plan, documents=docs, risk={}, changes=[], now=T0)
        assert usecases.auto_approve(s, request_id=rid, now=T0)
        req = s.get(AccessRequest, rid)
        assert req is not None and req.approved_digest == digest and req.decided_by == "iam-bot"
    assert _jobs(sm, rid)["apply"] is JobState.QUEUED


def test_documents_are_stored_once_by_hash(sm) -> None:
    rid, short_id = _submitted(sm)
    plan, docs = plan_create_user(SPEC, _facts(READONLY), marker=short_id)
    with sm.begin() as s:
        store.save_plan(s, request_id=rid, plan=plan, documents=docs, now=T0)
        store.save_plan(s, request_id=rid, plan=plan, documents=docs, now=T0)  # the same plan again: nothing new
    with sm.begin() as s:
        assert store.documents(s, docs) == {h: dict(d) for h, d in docs.items()}
        assert len(s.scalars(select(Plan).where(Plan.request_id == rid)).all()) == 1


def test_waiting_for_me_leaves_out_what_i_approved_of_the_plan_asked_about(sm) -> None:
    from bot.requests import queries

    approvers = frozenset({A1, A2})
    rid, short_id = _submitted(sm)
    first = _plan_and_ask(sm, rid, short_id, _facts(READONLY))
    waiting = lambda who: [v.short_id for v in queries.awaiting_decision(sm_session, approver_id=who, approvers=approvers)]  # noqa: E731
    with sm.begin() as sm_session:
        assert waiting(A1) == [short_id] and waiting(A2) == [short_id]
    _decide(sm, short_id, A1, first)  # 1 of 2
    with sm.begin() as sm_session:
        assert waiting(A1) == [] and waiting(A2) == [short_id]
        assert queries.awaiting_decision(sm_session, approver_id=A2, approvers=approvers)[0].plan is not None  # shown with its plan
    with sm.begin() as s:  # checked again (the rules changed): a new plan, and A1's approval of the old one no longer counts
        s.execute(update(AccessRequest).where(AccessRequest.id == rid).values(state=RequestState.SUBMITTED))
    _plan_and_ask(sm, rid, short_id, _facts(READONLY, ADMIN))
    with sm.begin() as sm_session:
        assert waiting(A1) == [short_id]


def test_my_requests_are_the_latest_as_requester_or_owner(sm) -> None:
    from bot.requests import queries

    made = []
    for i in range(6):
        spec = RequestSpec(user_name=f"u{i}", console_access=True, access_key=False, owner_id=A1 if i % 2 else REQUESTER, reason="work")
        with sm.begin() as s:
            draft = usecases.save_draft(s, requester_id=REQUESTER if i % 3 else A1, spec=spec, now=T0 + timedelta(minutes=i))
        with sm.begin() as s:
            req = usecases.submit_draft(s, draft_id=draft, actor_id=REQUESTER if i % 3 else A1, now=T0 + timedelta(minutes=i), evaluation=TWO, expires_at=T0 + timedelta(hours=72))
            made.append((req.short_id, req.requester_id, req.owner_id))
    with sm.begin() as s:
        for who in (REQUESTER, A1):
            mine = [sid for sid, requester, owner in reversed(made) if who in (requester, owner)]
            assert [v.short_id for v in queries.requests_of(s, user_id=who, limit=3)] == mine[:3]
            assert [v.short_id for v in queries.requests_of(s, user_id=who, limit=10)] == mine
