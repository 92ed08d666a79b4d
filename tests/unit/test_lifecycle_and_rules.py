"""bot.requests.lifecycle (against a real SQLite file database) and bot.policy.approval."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from bot.policy import approval as rules
from bot.runtime.db import make_engine, make_sessionmaker, migrate
from bot.requests.lifecycle import TRANSITIONS, IllegalTransition, allowed, transition
from models import AccessRequest, RequestState
from models.states import FINAL_STATES

S = RequestState
ALL_STATES = list(RequestState)
ALL_PAIRS = list(itertools.product(ALL_STATES, ALL_STATES))
# The lifecycle as specified, written out independently of bot.requests.lifecycle.
EXPECTED_LEGAL = {
    (S.SUBMITTED, S.PENDING),  # planned and judged: the approvers are asked
    (S.SUBMITTED, S.APPROVED),  # its rule approves it
    (S.SUBMITTED, S.DENIED),  # a guardrail judged on the plan
    (S.SUBMITTED, S.CANCELLED),
    (S.SUBMITTED, S.FAILED),  # it names what IAM does not have
    (S.PENDING, S.APPROVED),
    (S.PENDING, S.DENIED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED),
    (S.APPROVED, S.PROVISIONING),
    (S.APPROVED, S.FAILED),
    (S.PROVISIONING, S.COMPLETED),
    (S.PROVISIONING, S.FAILED),
    (S.PROVISIONING, S.SUBMITTED),  # IAM drifted from the approved plan: made again, asked again
}
LEGAL_PAIRS = sorted(EXPECTED_LEGAL, key=lambda p: (p[0].value, p[1].value))
ILLEGAL_PAIRS = [p for p in ALL_PAIRS if p not in EXPECTED_LEGAL]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(minutes=5)


def _pair_id(p: tuple[RequestState, RequestState]) -> str:
    return f"{p[0].value}->{p[1].value}"


# ---------------------------------------------------------------- the table

@pytest.mark.parametrize("pair", ALL_PAIRS, ids=_pair_id)
def test_allowed_matches_table(pair: tuple[RequestState, RequestState]) -> None:
    src, dst = pair
    assert allowed(src, dst) is (dst in TRANSITIONS[src])
    assert allowed(src, dst) is (pair in EXPECTED_LEGAL)


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(RequestState)
    assert all(set(v) <= set(RequestState) for v in TRANSITIONS.values())


@pytest.mark.parametrize("state", ALL_STATES, ids=lambda s: s.value)
def test_final_states_allow_nothing(state: RequestState) -> None:
    exits = [dst for dst in ALL_STATES if allowed(state, dst)]
    if state in FINAL_STATES:
        assert state.is_final
        assert exits == []
    else:
        assert not state.is_final
        assert exits, f"{state.value} is not final but has no way out"


def test_every_final_state_is_reachable_from_pending() -> None:
    reached, frontier = {S.PENDING}, [S.PENDING]
    while frontier:
        for dst in TRANSITIONS[frontier.pop()]:
            if dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(RequestState)


# ---------------------------------------------------------------- transition() on a real database

@pytest.fixture(scope="module")
def sessionmaker_(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    path: Path = tmp_path_factory.mktemp("lifecycle") / "iam-bot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def new_request(sessionmaker_) -> Callable[[RequestState], int]:
    def make(state: RequestState) -> int:
        with sessionmaker_.begin() as s:
            req = AccessRequest(
                short_id="R" + uuid.uuid4().hex[:10].upper(),
                state=state,
                requester_id="UREQUESTER",
                owner_id="UOWNER0001",
                user_name="jane.doe",
                user_name_lower="jane.doe",
                console_access=True,
                access_key=False,
                groups=["dev"],
                policy_arns=[],
                copy_from=None,
                path="/",
                tags={"team": "payments"},
                permissions_boundary=None,
                reason="testing",
                created_at=T0,
                updated_at=T0,
            )
            s.add(req)
            s.flush()
            return req.id

    return make


def _row(sm, request_id: int) -> tuple[RequestState, datetime, str | None]:
    with sm.begin() as s:
        r = s.get(AccessRequest, request_id)
        return RequestState(r.state), r.updated_at, r.decided_by


def test_database_has_the_migrated_schema(sessionmaker_) -> None:
    with sessionmaker_.begin() as s:
        tables = set(s.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars())
    assert "access_requests" in tables


@pytest.mark.parametrize("pair", LEGAL_PAIRS, ids=_pair_id)
def test_legal_transition_from_the_right_state_wins(sessionmaker_, new_request, pair) -> None:
    src, dst = pair
    rid = new_request(src)
    with sessionmaker_.begin() as s:
        assert transition(s, request_id=rid, src=src, dst=dst, now=T1, decided_by="UAPPROVER1") is True
    assert _row(sessionmaker_, rid) == (dst, T1, "UAPPROVER1")


@pytest.mark.parametrize("pair", LEGAL_PAIRS, ids=_pair_id)
def test_transition_from_wrong_state_returns_false_and_changes_nothing(sessionmaker_, new_request, pair) -> None:
    src, dst = pair
    for actual in ALL_STATES:
        if actual is src:
            continue
        rid = new_request(actual)
        with sessionmaker_.begin() as s:
            assert transition(s, request_id=rid, src=src, dst=dst, now=T1, decided_by="UAPPROVER1") is False
        assert _row(sessionmaker_, rid) == (actual, T0, None)


@pytest.mark.parametrize("pair", ILLEGAL_PAIRS, ids=_pair_id)
def test_illegal_pair_raises_and_changes_nothing(sessionmaker_, new_request, pair) -> None:
    src, dst = pair
    rid = new_request(src)
    with pytest.raises(IllegalTransition, match=f"{src.value} -> {dst.value}"):
        with sessionmaker_.begin() as s:
            transition(s, request_id=rid, src=src, dst=dst, now=T1)
    assert _row(sessionmaker_, rid) == (src, T0, None)


def test_unknown_request_id_returns_false(sessionmaker_) -> None:
    with sessionmaker_.begin() as s:
        assert transition(s, request_id=10**9, src=S.PENDING, dst=S.APPROVED, now=T1) is False


def test_loaded_instance_is_refreshed_after_winning(sessionmaker_, new_request) -> None:
    rid = new_request(S.PENDING)
    with sessionmaker_.begin() as s:
        obj = s.get(AccessRequest, rid)
        assert obj.state is S.PENDING
        assert transition(s, request_id=rid, src=S.PENDING, dst=S.APPROVED, now=T1, decided_by="UAPPROVER1")
        assert obj.state is S.APPROVED
        assert obj.decided_by == "UAPPROVER1"


def test_transition_only_touches_its_own_row(sessionmaker_, new_request) -> None:
    a, b = new_request(S.PENDING), new_request(S.PENDING)
    with sessionmaker_.begin() as s:
        assert transition(s, request_id=a, src=S.PENDING, dst=S.CANCELLED, now=T1)
    assert _row(sessionmaker_, a)[0] is S.CANCELLED
    assert _row(sessionmaker_, b) == (S.PENDING, T0, None)


@pytest.mark.parametrize("first,second", [(S.APPROVED, S.DENIED), (S.DENIED, S.APPROVED)], ids=["approve-first", "deny-first"])
def test_compare_and_set_two_sessions_exactly_one_wins(sessionmaker_, new_request, first, second) -> None:
    rid = new_request(S.PENDING)
    # Two approvers, two transactions: both read the request as pending before either decides.
    with sessionmaker_.begin() as s:
        seen_first = RequestState(s.get(AccessRequest, rid).state)
    with sessionmaker_.begin() as s:
        seen_second = RequestState(s.get(AccessRequest, rid).state)
    assert seen_first is seen_second is S.PENDING

    with sessionmaker_.begin() as s1:
        won1 = transition(s1, request_id=rid, src=S.PENDING, dst=first, now=T1, decided_by="UAPPROVER1")
    with sessionmaker_.begin() as s2:
        won2 = transition(s2, request_id=rid, src=S.PENDING, dst=second, now=T1 + timedelta(seconds=1), decided_by="UAPPROVER2")
    assert (won1, won2) == (True, False)
    assert _row(sessionmaker_, rid) == (first, T1, "UAPPROVER1")


def test_compare_and_set_concurrent_threads_exactly_one_wins(sessionmaker_, new_request) -> None:
    rid = new_request(S.PENDING)
    barrier = threading.Barrier(2)
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def decide(dst: RequestState, who: str) -> None:
        try:
            barrier.wait(timeout=10)
            with sessionmaker_.begin() as s:
                results[who] = transition(s, request_id=rid, src=S.PENDING, dst=dst, now=T1, decided_by=who)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=decide, args=(S.APPROVED, "UAPPROVER1")),
        threading.Thread(target=decide, args=(S.DENIED, "UAPPROVER2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(results.values()) == [False, True]
    winner = next(who for who, won in results.items() if won)
    state, _, decided_by = _row(sessionmaker_, rid)
    assert decided_by == winner
    assert state is (S.APPROVED if winner == "UAPPROVER1" else S.DENIED)


def test_rowcount_zero_for_the_loser(sessionmaker_, new_request) -> None:
    """The loser's UPDATE ... WHERE state = 'pending' matches no row."""
    from sqlalchemy import update

    rid = new_request(S.PENDING)
    with sessionmaker_.begin() as s:
        assert transition(s, request_id=rid, src=S.PENDING, dst=S.APPROVED, now=T1)
    with sessionmaker_.begin() as s:
        result = s.execute(
            update(AccessRequest)
            .where(AccessRequest.id == rid, AccessRequest.state == S.PENDING)
            .values(state=S.DENIED)
            .execution_options(synchronize_session=False)
        )
        assert result.rowcount == 0
    with sessionmaker_.begin() as s:
        assert s.scalars(select(AccessRequest.state).where(AccessRequest.id == rid)).one() is S.APPROVED


# ---------------------------------------------------------------- rules

APPROVERS = frozenset({"UAPPROVER1", "UAPPROVER2", "UAPPROVER3"})


def ctx(actor: str, *, requester: str = "UREQUESTER", owner: str = "UOWNER0001", state: RequestState = S.PENDING, decided_by: str | None = None):
    return rules.DecisionContext(
        actor_id=actor, requester_id=requester, owner_id=owner, approvers=APPROVERS, state=state, decided_by=decided_by
    )


def test_approver_may_decide_on_someone_elses_request() -> None:
    assert rules.refusal_to_decide(ctx("UAPPROVER1")) is None


@pytest.mark.parametrize("actor", ["UREQUESTER", "UOWNER0001", "USTRANGER", ""])
def test_non_approver_is_refused(actor: str) -> None:
    refusal = rules.refusal_to_decide(ctx(actor))
    assert refusal is not None and "designated approver" in refusal
    assert "Nothing was changed" in refusal


def test_approver_cannot_decide_own_request() -> None:
    refusal = rules.refusal_to_decide(ctx("UAPPROVER1", requester="UAPPROVER1"))
    assert refusal is not None and "your own request" in refusal
    # ...even when they would also own the account.
    assert rules.refusal_to_decide(ctx("UAPPROVER1", requester="UAPPROVER1", owner="UAPPROVER1")) is not None


def test_approver_cannot_decide_for_an_account_they_would_own() -> None:
    refusal = rules.refusal_to_decide(ctx("UAPPROVER2", owner="UAPPROVER2"))
    assert refusal is not None and "would own" in refusal


@pytest.mark.parametrize(
    "state,fragment",
    [
        (S.APPROVED, "already approved by <@UAPPROVER2>"),
        (S.PROVISIONING, "already approved by <@UAPPROVER2>"),
        (S.COMPLETED, "already approved by <@UAPPROVER2>"),
        (S.FAILED, "already approved (provisioning then failed) by <@UAPPROVER2>"),
        (S.DENIED, "already denied by <@UAPPROVER2>"),
        (S.CANCELLED, "cancelled by the requester"),
        (S.EXPIRED, "expired"),
    ],
)
def test_decided_request_is_refused_even_for_an_eligible_approver(state: RequestState, fragment: str) -> None:
    refusal = rules.refusal_to_decide(ctx("UAPPROVER1", state=state, decided_by="UAPPROVER2"))
    assert refusal is not None
    assert fragment in refusal
    assert refusal.endswith("Nothing was changed.")
    assert refusal == rules.already_decided_text(state, "UAPPROVER2")


@pytest.mark.parametrize("state", [S.CANCELLED, S.EXPIRED])
def test_cancelled_and_expired_name_no_decider(state: RequestState) -> None:
    assert "<@" not in rules.already_decided_text(state, "UAPPROVER2")


def test_already_decided_without_decider_names_nobody() -> None:
    text_ = rules.already_decided_text(S.DENIED, None)
    assert text_ == "This request was already denied. Nothing was changed."


def test_refusal_to_reveal() -> None:
    assert rules.refusal_to_reveal(actor_id="UOWNER0001", owner_id="UOWNER0001") is None
    refusal = rules.refusal_to_reveal(actor_id="UAPPROVER1", owner_id="UOWNER0001")
    assert refusal is not None and "owner" in refusal


def test_eligible_approvers_excludes_requester_and_owner_and_is_sorted() -> None:
    approvers = frozenset({"UZED", "UAPP", "UREQ", "UOWN", "UMID"})
    assert rules.eligible_approvers(approvers=approvers, requester_id="UREQ", owner_id="UOWN") == ["UAPP", "UMID", "UZED"]
    assert rules.eligible_approvers(approvers=frozenset({"UREQ"}), requester_id="UREQ", owner_id="UREQ") == []
    assert rules.eligible_approvers(approvers=frozenset(), requester_id="UREQ", owner_id="UOWN") == []


ids_ = st.sampled_from(["UA", "UB", "UC", "UD", "UE"])


@settings(max_examples=200, deadline=None, database=None)
@given(
    approvers=st.frozensets(ids_, max_size=5),
    actor=ids_,
    requester=ids_,
    owner=ids_,
    state=st.sampled_from(ALL_STATES),
)
def test_rules_agree_with_eligible_approvers(approvers, actor, requester, owner, state) -> None:
    context = rules.DecisionContext(
        actor_id=actor, requester_id=requester, owner_id=owner, approvers=approvers, state=state, decided_by="UA"
    )
    eligible = rules.eligible_approvers(approvers=approvers, requester_id=requester, owner_id=owner)
    assert eligible == sorted(eligible)
    assert requester not in eligible and owner not in eligible
    may_decide = rules.refusal_to_decide(context) is None
    assert may_decide == (state is S.PENDING and actor in eligible)
