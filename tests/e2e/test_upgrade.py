"""Requests in flight when the bot is upgraded to plans keep working (migration 0005, then the real bot).

A pending request goes back to being checked: it gets a plan and its approvers are asked again (its
earlier approvals approved no plan, so they no longer count). An approved one resolves its plan when
the worker applies it, as provisioning always did before plans existed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from alembic import command
from sqlalchemy import select, text

from bot.runtime.db import alembic_config, make_engine
from models import AccessRequest, AuditEvent, Decision, Job
from tests.support.harness import RunningBot, wait_until
from tests.support.journeys import APPROVER, APPROVER2, REQUESTER, approval_messages, click, credentials_dm

NOW = datetime.now(timezone.utc)


def _at_0004(url: str) -> None:
    engine = make_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004") if _has_tables(conn) else command.upgrade(cfg, "0004")
    engine.dispose()


def _has_tables(conn) -> bool:  # type: ignore[no-untyped-def]
    return conn.dialect.has_table(conn, "alembic_version")


def _old_request(conn, *, rid: int, short_id: str, user_name: str, state: str, groups: list[str]) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        text(
            "INSERT INTO access_requests (id, short_id, state, requester_id, owner_id, user_name, user_name_lower, console_access, access_key,"
            " groups, policy_arns, path, tags, reason, created_at, updated_at, quorum, approver_users, approver_groups, break_glass, reminders_sent,"
            " decided_by, decided_at)"
            " VALUES (:id, :sid, :state, :req, :req, :name, :name, :console, :key, :groups, '[]', '/', '{}', 'old request', :t, :t, :quorum,"
            " :approvers, '[]', :bg, 0, :decided_by, :decided_at)"
        ),
        {
            "id": rid, "sid": short_id, "state": state, "req": REQUESTER, "name": user_name, "console": False, "key": True,
            "groups": json.dumps(groups), "t": NOW - timedelta(hours=1), "quorum": 2 if state == "pending" else 1,
            "approvers": json.dumps([APPROVER, APPROVER2]), "bg": False,
            "decided_by": APPROVER if state == "approved" else None, "decided_at": NOW if state == "approved" else None,
        },
    )


def test_requests_in_flight_get_a_plan_after_the_upgrade(database_url, standin, moto, iam):
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    _at_0004(database_url)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decisions")), conn.execute(text("DELETE FROM provisioning_jobs")), conn.execute(text("DELETE FROM audit_events"))
        conn.execute(text("DELETE FROM access_requests"))
        _old_request(conn, rid=1, short_id="ROLDPND", user_name="waiting01", state="pending", groups=["readers"])
        # Half-way to its quorum of 2 before the upgrade: that approval approved no plan.
        conn.execute(text("INSERT INTO decisions (request_id, approver_id, approved, created_at) VALUES (1, :a, :yes, :t)"), {"a": APPROVER, "yes": True, "t": NOW})
        _old_request(conn, rid=2, short_id="ROLDAPP", user_name="approved01", state="approved", groups=["readers"])
        conn.execute(
            text("INSERT INTO provisioning_jobs (request_id, state, attempts, next_run_at, steps_done, created_at, updated_at) VALUES (2, 'queued', 0, :t, '[]', :t, :t)"),
            {"t": NOW},
        )
    engine.dispose()

    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url).start()  # migrates to head, starts the worker
    try:
        # The approved request is applied, with the plan resolved when it ran (audited as such).
        credentials_dm(bot, "ROLDAPP")
        assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="approved01")["Groups"]] == ["readers"]
        # The pending one was checked again and its approvers asked, with its plan.
        wait_until(lambda: approval_messages(bot, "ROLDPND"), what="approvers asked again")
        with bot.deps.sessionmaker.begin() as s:
            old = s.scalars(select(AccessRequest).where(AccessRequest.short_id == "ROLDPND")).one()
            assert old.state.value == "pending" and old.plan_digest
            assert s.scalars(select(Job.kind).where(Job.request_id == old.id).order_by(Job.kind)).all() == ["plan"]
            legacy = s.scalars(select(Decision).where(Decision.request_id == old.id)).one()
            assert legacy.plan_digest is None  # kept for the record, counted for no plan
            applied = s.scalars(select(AccessRequest).where(AccessRequest.short_id == "ROLDAPP")).one()
            assert applied.approved_digest == applied.plan_digest and applied.state.value == "completed"
            actions = s.scalars(select(AuditEvent.action).where(AuditEvent.request_id == applied.id)).all()
            assert "plan_adopted" in actions
        assert "Add to group `readers`" in json.dumps(approval_messages(bot, "ROLDPND")[0].args["blocks"])
        # Its plan was judged by the rules in force now (IAM_BOT_APPROVERS, one approval), not those it was
        # asked under; the approval from before the upgrade approved no plan, so a fresh one is needed.
        with bot.deps.sessionmaker.begin() as s:
            old = s.scalars(select(AccessRequest).where(AccessRequest.short_id == "ROLDPND")).one()
            assert (old.rule_name, old.quorum, old.state.value) == ("default", 1, "pending")
        click(bot, APPROVER2, "approve_request", "ROLDPND", approval_messages(bot, "ROLDPND")[-1])
        credentials_dm(bot, "ROLDPND")
    finally:
        bot.stop()
