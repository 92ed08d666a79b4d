"""How fast the bot answers the three questions people ask it most, on a database with history.

What it measures, with the bot's own code (bot.requests.queries / store and bot.workflows.status,
never copies of their SQL), on PostgreSQL:

  (1) status of one request by short id: `StatusDesk.answer(Query("one", <short id>))`, i.e.
      queries.visible_request + queries.timeline (which reads the request's audit events);
  (2) a person's App Home: `StatusDesk.publish_home`, i.e. queries.home_data (their requests, the
      credentials they may reveal, what waits for them and what was decided recently, for approvers);
  (3) "what's pending" from an approver: `StatusDesk.answer(Query("pending"))`, i.e.
      queries.requests_of + queries.awaiting_decision.

Each is timed twice: "queries" is the transaction StatusDesk opens, with the same calls in it (the
database part; the goal applies to it), and "desk" is the whole StatusDesk method, Block Kit included,
with Slack stubbed (group membership from memory, nothing sent). Each runs --runs times (500) after a
warm-up, with varied people and requests, and reports p50 / p99 / max. In the same run, the floor: a
`SELECT 1` round trip on a held connection, the same in a session transaction (pool checkout with its
pre-ping, BEGIN, COMMIT: what every read path pays), and a primary-key lookup (store.load_request).

Goal: p99 < 50 ms for each of (1), (2) and (3).

It also times every SQL statement the three send (captured with the engine's before/after_cursor_execute
events), splits each path's time into "in SQL" and "outside SQL" (pool, ORM, JSON, plans, Python), and
prints EXPLAIN (ANALYZE, BUFFERS), with the parameters of its slowest call, of the main statement behind
each, and of any statement that scans a large table sequentially or takes the server over 5 ms. App
Home is also reported apart for approvers (who get "waiting for me" and "recently decided") and for
everyone else. A missing index is reported, not added: models and migrations are not touched.

The data: a throwaway database (created on the server --database-url points at, migrated with
bot.runtime.db.migrate, dropped at the end unless --keep) seeded with --requests requests (100,000)
over three years from 200 requesters (Zipf-like: the busiest files ~10% of all requests) and 20
approvers under four rules and the default approvers (one rule with a quorum of two and a Slack
user group), in states as a real history has them (most completed; some denied, expired, cancelled,
failed; ~1% pending, i.e. a backlog of ~1,000 waiting; a few being checked or applied), the oldest
10% from before rules and plans existed. With them: their plans (bot.domain.plan bodies; 2% made
again after IAM drifted), every approver's decision, the audit events the bot writes for each step
(about 11 per completed request, ~1M in all), and credential envelopes for the few recent requests
whose owner has not revealed them yet.
The audit events (which the status timeline reads) are chained as bot.audit.trail.record chains
them, in bulk: in time order, each HMAC'd with trail.keyed_body and AuditKeys.mac under a random audit
key made for the run and never printed or kept (trail.verify given that key accepts the chain).
Rows are written with COPY through the SQLAlchemy connection, not with the ORM; then VACUUM (ANALYZE).
Not seeded, because none of the three reads them: jobs, approval messages, drafts, policy
documents, inbound deliveries, audit anchors.

Run (from the repository root; the PostgreSQL server must be up):

    .venv/bin/python bench/queries.py [--requests 100000] [--database-url URL] [--runs 500] [--keep]

--database-url: a database on the server to connect to while creating the throwaway one (default:
$IAM_BOT_TEST_PG, else postgresql://postgres@127.0.0.1:5432/test). It prints figures and asserts
nothing; seeding 100,000 requests takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, text  # noqa: E402

from bench._db import Executed, StatementLog, ThrowawayDatabase, copy_rows, readable, reset_sequence, shape, short_parameters, shown, summary  # noqa: E402
from bot.audit import trail  # noqa: E402
from bot.audit.keys import AuditKeys  # noqa: E402
from bot.common.constants import BOT_ACTOR  # noqa: E402
from bot.domain.plan import EffectiveGrant, Granted, Plan, PlanKind, Step, StepKind, document_hash  # noqa: E402
from bot.domain.spec import RequestSpec  # noqa: E402
from bot.policy.rulebook import Match, Rule, Rulebook  # noqa: E402
from bot.requests import queries, store  # noqa: E402
from bot.requests.usecases import _ID_ALPHABET  # noqa: E402  (short ids as the bot makes them)
from bot.runtime.db import make_engine, make_sessionmaker, migrate  # noqa: E402
from bot.slack.phrases import Query  # noqa: E402
from bot.workflows.status import StatusDesk  # noqa: E402
from models import AccessRequest, AuditEvent, CredentialEnvelope, Decision, RequestState  # noqa: E402
from models import Plan as PlanRow  # noqa: E402

S = RequestState
GOAL_MS = 50.0
SLOW_STATEMENT_MS = 5.0
LARGE_TABLE_ROWS = 10_000
DEFAULT_SERVER = os.environ.get("IAM_BOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# ---------------------------------------------------------------- who, and under which rules

ACCOUNT = "123456789012"
N_REQUESTERS = 200
N_APPROVERS = 20
ADMIN_GROUP = "S0ADMINS01"
SPAN = timedelta(days=3 * 365)
TTL = timedelta(days=7)  # a pending request expires after a week (request_ttl_hours)


def _slack_ids(rng: random.Random, prefix: str, n: int, taken: set[str]) -> list[str]:
    out = []
    while len(out) < n:
        sid = prefix + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(9))
        if sid not in taken:
            taken.add(sid)
            out.append(sid)
    return out


@dataclass
class People:
    requesters: list[str]
    weights: list[float]  # how busy each requester is (a few file most requests)
    approvers: list[str]
    rules: dict[str, Rule]
    rulebook: Rulebook
    group_members: dict[str, frozenset[str]]

    @classmethod
    def make(cls, rng: random.Random) -> People:
        taken: set[str] = set()
        requesters = _slack_ids(rng, "U", N_REQUESTERS, taken)
        approvers = _slack_ids(rng, "U", N_APPROVERS, taken)
        a = approvers
        # A[0..17] are named by rules; A[18], A[19] approve only as members of the admins' Slack group.
        rules = {
            "engineering": Rule("engineering", approvers=tuple(a[0:8]), quorum=1, match=Match(groups=("engineering*", "ci-*", "support"))),
            "admin-access": Rule("admin-access", approvers=(*a[8:14], ADMIN_GROUP), quorum=2, match=Match(groups=("admins",))),
            "data": Rule("data", approvers=tuple(a[14:18]), quorum=1, match=Match(groups=("data-*",))),
            "readonly-auto": Rule("readonly-auto", auto_approve=True, match=Match(groups=("engineering",))),
        }
        rulebook = Rulebook(rules=tuple(rules.values()), default_approvers=tuple(sorted(a[0:5])))
        rules["default"] = rulebook.default_rule
        weights = [1 / (rank + 1) ** 0.8 for rank in range(N_REQUESTERS)]
        rng.shuffle(weights)
        return cls(requesters, weights, approvers, rules, rulebook, {ADMIN_GROUP: frozenset([*a[8:14], a[18], a[19]])})

    @property
    def everyone(self) -> list[str]:
        return [*self.requesters, *self.approvers]

    def may_approve(self, rule: Rule) -> list[str]:
        users = list(rule.approver_users)
        for g in rule.approver_groups:
            users += [u for u in sorted(self.group_members.get(g, ())) if u not in users]
        return users


class StubDirectory:
    """Slack user-group membership, from memory (the real one asks Slack, and caches it for Home)."""

    def __init__(self, members: dict[str, frozenset[str]]):
        self.members = members

    def groups_of(self, user_id: str, groups: Iterable[str], *, fresh: bool = True) -> tuple[str, ...]:
        return tuple(g for g in dict.fromkeys(groups) if user_id in self.members.get(g, ()))


class StubNotifier:
    """Takes what StatusDesk would send to Slack, and sends nothing."""

    def __init__(self) -> None:
        self.last: Any = None

    def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        self.last = view

    def reply(self, **kw: Any) -> None:
        self.last = kw

    def ephemeral(self, **kw: Any) -> None:
        self.last = kw


# ---------------------------------------------------------------- what people ask for

FIRST = "alex sam kim lee jo pat max ana li noor omar yuki ravi sara tom eva ben chen ida luca".split()
LAST = "smith garcia chen patel nguyen kowalski muller rossi tanaka silva ivanov brown khan lopez meyer".split()
TEAMS = "platform payments data mobile web security support finance ml infra".split()
REASONS = [
    "New joiner on the {team} team, starts Monday",
    "CI pipeline for the {team} service needs deploy access",
    "Contractor working on the {team} migration until end of quarter",
    "On-call rotation for {team}: needs to read logs and restart tasks",
    "Analytics job for {team} reads the data lake",
    "Replacing a shared account used by {team} with a personal one",
]


def _arn(name: str, aws: bool = True) -> str:
    return f"arn:aws:iam::aws:policy/{name}" if aws else f"arn:aws:iam::{ACCOUNT}:policy/{name}"


GROUP_POLICIES = {
    "engineering": [_arn("ReadOnlyAccess")],
    "engineering-oncall": [_arn("CloudWatchLogsReadOnlyAccess"), _arn("oncall-restart-tasks", aws=False)],
    "ci-deployers": [_arn("ci-deploy", aws=False), _arn("AmazonEC2ContainerRegistryPowerUser")],
    "support": [_arn("AWSSupportAccess")],
    "admins": [_arn("AdministratorAccess")],
    "data-analysts": [_arn("AmazonAthenaFullAccess"), _arn("analytics-read", aws=False)],
    "data-engineers": [_arn("AWSGlueConsoleFullAccess"), _arn("datalake-write", aws=False), _arn("analytics-read", aws=False)],
    "billing": [_arn("job-function/Billing")],
}
RULE_GROUPS = {
    "engineering": ["engineering", "engineering-oncall", "ci-deployers", "support"],
    "admin-access": ["admins"],
    "data": ["data-analysts", "data-engineers"],
    "readonly-auto": ["engineering"],
    "default": ["billing"],
}
DIRECT_POLICIES = [_arn("IAMUserChangePassword"), _arn("AmazonS3ReadOnlyAccess"), _arn("team-bucket-rw", aws=False)]
BOUNDARY = _arn("boundary-standard", aws=False)
DOCS = {arn: document_hash({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": f"{arn.rsplit('/', 1)[-1]}:*", "Resource": "*"}]})
        for arn in [*{a for v in GROUP_POLICIES.values() for a in v}, *DIRECT_POLICIES, BOUNDARY]}
STATE_MIX = [
    (S.COMPLETED, 0.845), (S.DENIED, 0.06), (S.EXPIRED, 0.035), (S.CANCELLED, 0.025), (S.FAILED, 0.02),
    (S.PENDING, 0.01), (S.SUBMITTED, 0.002), (S.APPROVED, 0.0015), (S.PROVISIONING, 0.0015),
]
RULE_MIX = [("engineering", 0.45), ("admin-access", 0.12), ("data", 0.20), ("readonly-auto", 0.10), ("default", 0.13)]


def plan_for(spec: RequestSpec, short_id: str, version: int = 3) -> Plan:
    """The plan the planner would make for `spec`: every group's policies resolved, documents by hash."""
    steps = [Step(StepKind.CREATE_USER, path=spec.path, tags=(*spec.tags, ("iam-bot-request", short_id)), boundary=spec.permissions_boundary)]
    steps += [Step(StepKind.ADD_TO_GROUP, target=g) for g in spec.groups]
    steps += [Step(StepKind.ATTACH_POLICY, target=p) for p in spec.policy_arns]
    if spec.console_access:
        steps.append(Step(StepKind.CREATE_LOGIN_PROFILE))
    if spec.access_key:
        steps.append(Step(StepKind.CREATE_ACCESS_KEY))
    granted = [Granted(name=a.rsplit("/", 1)[-1], group=g, arn=a, version=f"v{version}", document=DOCS[a]) for g in spec.groups for a in GROUP_POLICIES[g]]
    granted += [Granted(name=a.rsplit("/", 1)[-1], arn=a, version=f"v{version}", document=DOCS[a]) for a in spec.policy_arns]
    boundary = Granted(name="boundary-standard", arn=BOUNDARY, version="v2", document=DOCS[BOUNDARY]) if spec.permissions_boundary else None
    return Plan(PlanKind.CREATE_USER, ACCOUNT, spec.user_name, tuple(steps), EffectiveGrant(tuple(granted), boundary))


# ---------------------------------------------------------------- the history


@dataclass
class Seeded:
    requests: list[dict[str, Any]] = field(default_factory=list)
    plans: list[tuple[int, str, dict[str, Any], datetime]] = field(default_factory=list)  # request_id, digest, body, created_at
    decisions: list[tuple[int, str, bool, str | None, datetime, str | None]] = field(default_factory=list)
    events: list[tuple[datetime, int, int | None, str, str, dict[str, Any]]] = field(default_factory=list)  # created_at, seq, request_id, actor, action, details
    envelopes: list[tuple[int, str, datetime]] = field(default_factory=list)  # request_id, owner, completed_at


class History:
    """Makes requests and everything the bot records about each, as the bot's use cases would."""

    def __init__(self, rng: random.Random, people: People, now: datetime):
        self.rng, self.people, self.now = rng, people, now
        self.out = Seeded()
        self.names: Counter[str] = Counter()
        self.short_ids: set[str] = set()
        self.seq = 0

    # -- small helpers

    def _at(self, t: datetime) -> datetime:
        return min(t, self.now - timedelta(seconds=1))

    def _event(self, t: datetime, request_id: int | None, actor: str, action: str, **details: Any) -> None:
        self.seq += 1
        self.out.events.append((self._at(t), self.seq, request_id, actor, action, details))

    def _short_id(self) -> str:
        while True:
            sid = "R" + "".join(self.rng.choice(_ID_ALPHABET) for _ in range(6))
            if sid not in self.short_ids:
                self.short_ids.add(sid)
                return sid

    def _hex(self, bits: int = 128) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def _aws_id(self) -> str:
        h = self._hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _after(self, t: datetime, mean_seconds: float, cap: float | None = None) -> datetime:
        dt = self.rng.expovariate(1 / mean_seconds)
        return t + timedelta(seconds=min(dt, cap) if cap else dt)

    # -- one request

    def skeletons(self, n: int) -> list[tuple[datetime, RequestState]]:
        states = self.rng.choices([s for s, _ in STATE_MIX], weights=[w for _, w in STATE_MIX], k=n)
        start = self.now - SPAN
        out = []
        for state in states:
            if state is S.PENDING:
                t = self.now - timedelta(seconds=self.rng.uniform(300, TTL.total_seconds() - 60))
            elif state is S.SUBMITTED:
                t = self.now - timedelta(seconds=self.rng.uniform(5, 600))
            elif state in (S.APPROVED, S.PROVISIONING):
                t = self.now - timedelta(seconds=self.rng.uniform(60, 7200))
            elif state is S.EXPIRED:
                t = start + (self.now - TTL - timedelta(hours=1) - start) * self.rng.random()
            else:
                t = start + (self.now - timedelta(hours=1) - start) * self.rng.random()
            out.append((t.replace(microsecond=self.rng.randrange(1_000_000)), state))
        out.sort(key=lambda x: x[0])
        return out

    def spec(self, rule_name: str, requester: str) -> RequestSpec:
        rng = self.rng
        team = rng.choice(TEAMS)
        if rng.random() < 0.7:
            base = f"{rng.choice(FIRST)}.{rng.choice(LAST)}"
        else:
            base = f"svc-{team}-{rng.choice(['deploy', 'etl', 'backup', 'metrics', 'sync'])}"
        self.names[base] += 1
        name = base if self.names[base] == 1 else f"{base}{self.names[base]}"
        pool = RULE_GROUPS[rule_name]
        groups = tuple(sorted(rng.sample(pool, k=min(len(pool), 1 if rule_name == "readonly-auto" else rng.choice([1, 1, 2]))))) if rng.random() < 0.9 or rule_name != "default" else ()
        policies = tuple(rng.sample(DIRECT_POLICIES, k=1)) if rule_name not in ("readonly-auto",) and rng.random() < 0.3 else ()
        console = rng.random() < 0.6
        key = rng.random() < 0.55 or not console
        owner = requester if rng.random() < 0.6 else rng.choice(self.people.requesters)
        return RequestSpec(
            user_name=name,
            console_access=console,
            access_key=key,
            owner_id=owner,
            reason=rng.choice(REASONS).format(team=team) + f" (ticket OPS-{rng.randrange(1000, 99999)})",
            groups=groups,
            policy_arns=policies,
            copy_from=None,
            path=f"/{'engineering' if rule_name != 'data' else 'data'}/{team}/",
            tags=(("team", team), ("cost-center", f"cc-{rng.randrange(100, 999)}")),
            permissions_boundary=BOUNDARY if rng.random() < 0.3 else None,
        )

    def request(self, request_id: int, created: datetime, state: RequestState) -> None:
        rng, p = self.rng, self.people
        legacy = created < self.now - SPAN * 0.9  # before rules and plans existed
        requester = rng.choices(p.requesters, weights=p.weights)[0] if rng.random() < 0.95 else rng.choice(p.approvers)
        rule_name = rng.choices([r for r, _ in RULE_MIX], weights=[w for _, w in RULE_MIX])[0]
        if rule_name == "readonly-auto" and state in (S.PENDING, S.EXPIRED, S.CANCELLED):
            rule_name = "engineering"
        if legacy:
            rule_name = "default"
        rule = p.rules[rule_name]
        spec = self.spec(rule_name, requester)
        short_id = self._short_id()
        row: dict[str, Any] = dict(
            id=request_id, short_id=short_id, kind="create_user", state=state.value, requester_id=requester,
            **store.spec_columns(spec),
            created_at=created, updated_at=created, decided_by=None, decided_at=None, decision_reason=None, failure_reason=None, user_arn=None,
            rule_name=None if legacy else rule.name, quorum=rule.quorum,
            approver_users=None if legacy else list(rule.approver_users), approver_groups=None if legacy else list(rule.approver_groups),
            risk=None, break_glass=False, expires_at=None, next_reminder_at=None, reminders_sent=0,
            auto_approve=rule.auto_approve and not legacy, plan_digest=None, approved_digest=None, plan_changes=None,
        )
        self.out.requests.append(row)
        draft = self._hex(64)
        self._event(created - timedelta(seconds=rng.uniform(20, 600)), None, requester, "reviewed", draft=draft, user_name=spec.user_name)
        expires = created + TTL if not legacy else None
        self._event(
            created, request_id, requester, "requested", draft=draft, user_name=spec.user_name, owner=spec.owner_id, access=spec.access_types,
            groups=list(spec.groups), policies=list(spec.policy_arns), copy_from=spec.copy_from, path=spec.path, boundary=spec.permissions_boundary,
            rule=row["rule_name"], quorum=rule.quorum, approvers=[*rule.approvers] if not legacy else [*p.rulebook.default_approvers],
            expires_at=str(expires) if expires else None,
        )
        if state is S.SUBMITTED:
            return  # being checked against IAM: no plan yet
        t = created + timedelta(seconds=rng.uniform(2, 30))
        digest = None
        plan = plan_for(spec, short_id)
        if not legacy:
            digest = self._plan(row, plan, t, replaces=None, changes=[])
            flags = ["Administrator access"] if "admins" in spec.groups else (["Writes to the data lake"] if "data-engineers" in spec.groups else [])
            row["risk"] = {"flags": flags, "summary": "Grants " + ", ".join(g.name for g in plan.grant.policies) if plan.grant.policies else "Grants no permissions."}
            row["expires_at"] = expires
        eligible = [u for u in (p.may_approve(rule) if not legacy else list(p.rulebook.default_approvers)) if u not in (requester, spec.owner_id)]
        if not eligible:
            eligible = [a for a in p.approvers[:5] if a not in (requester, spec.owner_id)]
        t = self._after(t, 3600 * 2, cap=TTL.total_seconds() * 0.8)

        if state in (S.PENDING, S.EXPIRED, S.CANCELLED):
            end = self.now if state is S.PENDING else (created + TTL if state is S.EXPIRED else self._after(created, 3600 * 6, cap=TTL.total_seconds() * 0.9))
            k = 0
            while created + timedelta(days=k + 1) < end and k < 3:
                k += 1
                self._event(created + timedelta(days=k), request_id, BOT_ACTOR, "reminded", number=k, next_at=str(created + timedelta(days=k + 1)))
            if rule.quorum > 1 and rng.random() < 0.4 and t < end:
                who = rng.choice(eligible)
                self.out.decisions.append((request_id, who, True, None, self._at(t), digest))
                self._event(t, request_id, who, "approval_recorded", approvals=1, quorum=rule.quorum, digest=digest)
            if state is S.PENDING:
                row.update(reminders_sent=k, next_reminder_at=created + timedelta(days=k + 1), updated_at=self._at(created + timedelta(seconds=30)))
            elif state is S.EXPIRED:
                row.update(updated_at=end, expires_at=created + TTL)
                self._event(end, request_id, BOT_ACTOR, "expired")
            else:
                row["updated_at"] = self._at(end)
                self._event(end, request_id, requester, "cancelled")
            return

        if state is S.DENIED:
            if not legacy and (row["auto_approve"] or rng.random() < 0.25):
                reason = "guardrail: the plan grants AdministratorAccess outside /admins/"
                row.update(decided_by=BOT_ACTOR, decided_at=self._at(t), decision_reason=reason, updated_at=self._at(t))
                self._event(t, request_id, BOT_ACTOR, "denied", reason=reason, guardrail=True)
                return
            if rule.quorum > 1 and rng.random() < 0.3:
                first = rng.choice(eligible)
                self.out.decisions.append((request_id, first, True, None, self._at(t), digest))
                self._event(t, request_id, first, "approval_recorded", approvals=1, quorum=rule.quorum, digest=digest)
                eligible = [u for u in eligible if u != first] or eligible
                t = self._after(t, 1800)
            who = rng.choice(eligible)
            reason = rng.choice(["Use the shared read-only role instead", "Needs a manager's OK first", "Too broad: ask for the data-analysts group only", "Duplicate of an existing user"])
            self.out.decisions.append((request_id, who, False, reason, self._at(t), digest))
            row.update(decided_by=who, decided_at=self._at(t), decision_reason=reason, updated_at=self._at(t))
            self._event(t, request_id, who, "denied", reason=reason)
            return

        # approved, then applied (APPROVED, PROVISIONING, COMPLETED, FAILED)
        if not legacy and not row["auto_approve"] and plan.grant.policies and rng.random() < 0.02 and state is not S.APPROVED:
            # IAM drifted between the approval and the apply: the plan is made again and asked again.
            who = rng.choice(eligible)
            self.out.decisions.append((request_id, who, True, None, self._at(t), digest))
            self._event(t, request_id, who, "approved", reason=None, approvals=[who], quorum=rule.quorum, digest=digest)
            t += timedelta(seconds=5)
            changes = [f"`{plan.grant.policies[0].name}` changed its default version from v3 to v4"]
            self._event(t, request_id, BOT_ACTOR, "plan_drift", changes=changes)
            plan = plan_for(spec, short_id, version=4)
            digest = self._plan(row, plan, t + timedelta(seconds=3), replaces=digest, changes=changes)
            row["plan_changes"] = changes
            t = self._after(t, 3600)
        if row["auto_approve"]:
            why = f"auto-approved by rule {rule.name}"
            row.update(decided_by=BOT_ACTOR, decided_at=self._at(t), decision_reason=why)
            self._event(t, request_id, BOT_ACTOR, "auto_approved", rule=rule.name, digest=digest)
        elif not legacy and rng.random() < 0.002:
            reason = "Production incident, approver unreachable"
            row.update(decided_by=requester, decided_at=self._at(t), decision_reason=reason, break_glass=True)
            self.out.decisions.append((request_id, requester, True, reason, self._at(t), digest))
            self._event(t, request_id, requester, "break_glass", reason=reason, review_required=True, digest=digest)
        else:
            chosen = rng.sample(eligible, k=min(rule.quorum, len(eligible)))
            for i, who in enumerate(chosen):
                self.out.decisions.append((request_id, who, True, None, self._at(t), digest))
                if i + 1 < len(chosen):
                    self._event(t, request_id, who, "approval_recorded", approvals=i + 1, quorum=rule.quorum, digest=digest)
                    t = self._after(t, 1800)
            reason = rng.choice([None, None, "ok", "approved, welcome aboard"])
            row.update(decided_by=chosen[-1], decided_at=self._at(t), decision_reason=reason)
            self._event(t, request_id, chosen[-1], "approved", reason=reason, approvals=chosen, quorum=rule.quorum, digest=digest)
        row.update(approved_digest=digest, updated_at=self._at(t))
        if state is S.APPROVED:
            return
        steps = plan.steps if state is not S.PROVISIONING else plan.steps[: max(1, len(plan.steps) // 2)]
        if state is S.FAILED:
            steps = plan.steps[: rng.randrange(0, len(plan.steps))]
        for step in steps:
            t += timedelta(milliseconds=rng.uniform(150, 900))
            self._event(t, request_id, BOT_ACTOR, f"applied:{step.kind.value}", target=step.target or None, origin=step.origin or None, aws_request_ids=[self._aws_id()])
        row["updated_at"] = self._at(t)
        if state is S.PROVISIONING:
            return
        t += timedelta(milliseconds=rng.uniform(50, 300))
        if state is S.FAILED:
            code = rng.choice(["LimitExceeded", "AccessDenied", "ServiceFailure"])
            row.update(failure_reason=f"AWS said {code} while applying the plan; what was made was removed again", updated_at=self._at(t))
            self._event(t, request_id, BOT_ACTOR, "failed", code=code, aws_request_id=self._aws_id(), rolled_back=True)
            return
        arn = f"arn:aws:iam::{ACCOUNT}:user{spec.path}{spec.user_name}"
        row.update(user_arn=arn, updated_at=self._at(t))
        self._event(t, request_id, BOT_ACTOR, "completed", arn=arn)
        t += timedelta(seconds=1)
        self._event(t, request_id, BOT_ACTOR, "credentials_delivered", to=spec.owner_id)
        if t > self.now - TTL and rng.random() < 0.35:
            self.out.envelopes.append((request_id, spec.owner_id, self._at(t)))  # not revealed yet
        elif rng.random() < 0.9:
            self._event(self._after(t, 3600), request_id, spec.owner_id, "credentials_revealed")
        else:
            self._event(t + TTL, request_id, BOT_ACTOR, "credentials_expired")

    def _plan(self, row: dict[str, Any], plan: Plan, t: datetime, *, replaces: str | None, changes: list[str]) -> str:
        body = plan.to_body()
        digest = plan.digest
        self.out.plans.append((row["id"], digest, body, self._at(t)))
        row["plan_digest"] = digest
        self._event(
            t, row["id"], BOT_ACTOR, "planned", digest=digest, account=plan.account, steps=[s.key for s in plan.steps],
            grants=len(plan.grant.policies), unknown=list(plan.grant.unknown), replaces=replaces, changes=changes,
        )
        return digest


def seed(engine: Engine, *, n: int, rng: random.Random, people: People, now: datetime) -> dict[str, float]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    history = History(rng, people, now)
    for request_id, (created, state) in enumerate(history.skeletons(n), start=1):
        history.request(request_id, created, state)
    out = history.out
    timings["generate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    keys = AuditKeys([secrets.token_urlsafe(32)])  # this run's audit key: only its id is ever stored
    kid = keys.signing_id
    out.events.sort(key=lambda e: (e[0], e[1]))

    def audit_rows() -> Iterable[tuple[Any, ...]]:
        # What trail.record writes, in bulk: each event linked to the one before, HMAC'd under the key.
        prev = ""
        for event_id, (created, _seq, request_id, actor, action, details) in enumerate(out.events, start=1):
            details = json.loads(json.dumps(details, default=str))  # as record() stores them
            digest = keys.mac(kid, trail.keyed_body(key_id=kid, prev=prev, request_id=request_id, actor=actor, action=action, details=details, created_at=created))
            yield (event_id, request_id, actor, action, details, created, prev, digest, kid)
            prev = digest

    req_cols = [c.name for c in AccessRequest.__table__.columns]
    out.plans.sort(key=lambda p: p[3])
    out.decisions.sort(key=lambda d: d[4])
    with engine.begin() as conn:
        copy_rows(conn, AccessRequest.__table__, req_cols, ([r[c] for c in req_cols] for r in out.requests))
        copy_rows(conn, PlanRow.__table__, ["id", "request_id", "digest", "body", "created_at"], ((i, *p) for i, p in enumerate(out.plans, start=1)))
        copy_rows(conn, Decision.__table__, ["id", "request_id", "approver_id", "approved", "reason", "created_at", "plan_digest"],
                  ((i, *d) for i, d in enumerate(out.decisions, start=1)))
        copy_rows(
            conn, CredentialEnvelope.__table__,
            ["id", "request_id", "owner_id", "ciphertext", "created_at", "expires_at", "delivery_attempted_at", "delivered_at", "dm_channel_id", "dm_ts"],
            ((i, rid, owner, os.urandom(240), t, t + TTL, t, t, "D" + owner[1:], f"{t.timestamp():.6f}") for i, (rid, owner, t) in enumerate(out.envelopes, start=1)),
        )
        copy_rows(conn, AuditEvent.__table__, ["id", "request_id", "actor", "action", "details", "created_at", "prev_hash", "hash", "key_id"], audit_rows())
        for table in (AccessRequest, PlanRow, Decision, CredentialEnvelope, AuditEvent):
            reset_sequence(conn, table.__table__)
    timings["write (HMAC chain + COPY)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # VACUUM as well as ANALYZE: as autovacuum would have left the tables (visibility map, hint bits),
    # and so that autovacuum does not start on the fresh rows in the middle of the measurements.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
    timings["VACUUM (ANALYZE)"] = time.perf_counter() - t0
    return timings


# ---------------------------------------------------------------- measuring


def pct(sorted_ms: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return sorted_ms[max(0, math.ceil(q / 100 * len(sorted_ms)) - 1)]


@dataclass
class Result:
    label: str
    ms: list[float]
    statements: list[list[Executed]]  # per run
    goal: bool = False
    inputs: Sequence[Any] = ()  # per run

    def line(self) -> str:
        v = sorted(self.ms)
        p99 = pct(v, 99)
        verdict = ("ok" if p99 < GOAL_MS else "MISSES GOAL") if self.goal else ""
        return f"  {self.label:<52} {len(v):>5} {pct(v, 50):>9.2f} {pct(v, 90):>9.2f} {p99:>9.2f} {v[-1]:>9.2f}   {verdict}"


def measure(log: StatementLog, label: str, fn: Callable[[Any], Any], inputs: Sequence[Any], *, warmup: int, goal: bool = False) -> Result:
    for x in inputs[:warmup]:
        fn(x)
    ms: list[float] = []
    per_run: list[list[Executed]] = []
    for x in inputs[warmup:]:
        with log.capture() as executed:
            t0 = time.perf_counter()
            fn(x)
            ms.append((time.perf_counter() - t0) * 1000)
        per_run.append(executed)
    return Result(label, ms, per_run, goal, inputs[warmup:])


@dataclass
class Shape:
    n: int
    sql: str
    calls: list[float] = field(default_factory=list)
    worst: Executed | None = None


def shapes_of(result: Result) -> list[Shape]:
    found: dict[str, Shape] = {}
    for run in result.statements:
        for e in run:
            key = shape(e.statement)
            s = found.get(key)
            if s is None:
                s = found[key] = Shape(len(found) + 1, key)
            s.calls.append(e.ms)
            if s.worst is None or e.ms > s.worst.ms:
                s.worst = e
    return list(found.values())


def plan_nodes(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


def explain(engine: Engine, e: Executed, *, analyze: bool, fmt: str = "TEXT") -> Any:
    """EXPLAIN the statement with the parameters it was sent with (the bot's reads only: ANALYZE runs it)."""
    options = "ANALYZE, BUFFERS, " if analyze else ""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN ({options}FORMAT {fmt}) " + e.statement, e.parameters).all()
    if fmt == "JSON":
        raw = rows[0][0]
        return (raw if isinstance(raw, list) else json.loads(raw))[0]
    return "\n".join("      " + r[0] for r in rows)


def scan_words(node: dict[str, Any]) -> str:
    kind = node["Node Type"]
    rel = node.get("Relation Name", "")
    idx = node.get("Index Name")
    return f"{kind}{' using ' + idx if idx else ''}{' on ' + rel if rel else ''}"


MAIN = {
    "(1) status": lambda sql: "FROM access_requests" in sql and "short_id =" in sql,
    "(2) App Home": lambda sql: "FROM access_requests" in sql and "requester_id =" in sql and "ORDER BY access_requests.created_at DESC" in sql,
    "(3) what's pending": lambda sql: "FROM access_requests" in sql and "access_requests.state =" in sql and "ORDER BY access_requests.created_at" in sql,
}


def report_statements(engine: Engine, op: str, result: Result, table_rows: dict[str, float]) -> list[str]:
    """Per-statement times and plans of one read path, then EXPLAIN (ANALYZE, BUFFERS) of the main
    statement and of any that scans a large table sequentially or takes the server over 5 ms. Returns
    the index candidates found (sequential scans of large tables)."""
    candidates: list[str] = []
    runs = len(result.statements)
    print(f"\n{op} — {result.label}: the SQL it sends")
    print("  per call as the client saw it: p50 / p99 / max ms;  server: EXPLAIN ANALYZE with the parameters of the slowest call")
    to_explain: list[tuple[Shape, str]] = []
    for s in shapes_of(result):
        v = sorted(s.calls)
        assert s.worst is not None
        analyzed = explain(engine, s.worst, analyze=True, fmt="JSON")
        plan = analyzed["Plan"]
        server_ms = analyzed["Execution Time"]
        buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
        scans = [n for n in plan_nodes(plan) if "Scan" in n["Node Type"]]
        big_seq = [n for n in scans if n["Node Type"] == "Seq Scan" and table_rows.get(n.get("Relation Name", ""), 0) >= LARGE_TABLE_ROWS]
        print(f"  S{s.n:<2} {len(v) / runs:5.2f}/run  {pct(v, 50):6.2f} / {pct(v, 99):6.2f} / {v[-1]:6.2f}   {summary(s.sql)}")
        print(f"        server {server_ms:.2f} ms, {buffers:,} buffers: {'; '.join(dict.fromkeys(scan_words(n) for n in scans)) or plan['Node Type']}")
        why = []
        if MAIN[op](s.sql):
            why.append("main statement")
        if big_seq:
            why.append("sequential scan of a large table")
        if server_ms > SLOW_STATEMENT_MS:
            why.append(f"server time over {SLOW_STATEMENT_MS:g} ms")
        if why:
            to_explain.append((s, ", ".join(why)))
        for n in big_seq:
            rel = n["Relation Name"]
            sort_keys = [node["Sort Key"] for node in plan_nodes(plan) if node.get("Sort Key")]
            candidates.append(
                f"{op} S{s.n}: Seq Scan on {rel} (~{table_rows[rel]:,.0f} rows)"
                + (f", Filter: {n['Filter']}" if "Filter" in n else "")
                + (f", then a sort by {', '.join(sort_keys[0])}" if sort_keys else "")
                + f"; {server_ms:.1f} ms on the server, client p99 {pct(v, 99):.1f} ms"
            )
    for s, why in to_explain:
        assert s.worst is not None
        print(f"\n  EXPLAIN (ANALYZE, BUFFERS) S{s.n} ({why})")
        print(f"      {readable(s.worst.statement)}")
        print(f"      parameters (of its slowest call): {short_parameters(s.worst.parameters)}")
        print(explain(engine, s.worst, analyze=True))
    return candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000, help="requests to seed (default 100000)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER, help="a database on the PostgreSQL server to create the throwaway one on")
    parser.add_argument("--runs", type=int, default=500, help="measured runs of each operation (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured runs first (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data and of who asks what")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end (its name is printed) to try indexes by hand")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    now = datetime.now(timezone.utc)
    people = People.make(rng)
    db = ThrowawayDatabase(args.database_url)
    print(f"iam-bot read-path benchmark: {args.requests:,} requests, {args.runs} runs each (+{args.warmup} warm-up), goal p99 < {GOAL_MS:g} ms")
    print(f"server: {shown(db.server)}   database: {db.name} (throwaway)   python {platform.python_version()}, {os.cpu_count()} CPUs")
    with db:
        db.keep = args.keep
        engine = make_engine(db.url_string)  # as the bot makes it: pool with pre-ping, hide_parameters
        try:
            run(engine, args, rng, people, now)
        finally:
            engine.dispose()
            print(f"\ndatabase {db.name} {'kept (drop it by hand)' if args.keep else 'dropped'}")


def run(engine: Engine, args: argparse.Namespace, rng: random.Random, people: People, now: datetime) -> None:
    with engine.connect() as c:
        settings = {k: c.exec_driver_sql(f"SHOW {k}").scalar_one() for k in ("server_version", "shared_buffers", "work_mem", "random_page_cost")}
    print("postgres: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    t0 = time.perf_counter()
    migrate(engine)
    print(f"\nseeding  migrate {time.perf_counter() - t0:.1f} s", end="")
    for what, s in seed(engine, n=args.requests, rng=rng, people=people, now=now).items():
        print(f", {what} {s:.1f} s", end="")
    print()
    with engine.connect() as c:
        sizes = c.execute(text(
            "SELECT c.relname, c.reltuples, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC"
        )).all()
        states = dict(c.execute(text("SELECT state, count(*) FROM access_requests GROUP BY state ORDER BY 2 DESC")).all())
        live = c.execute(text("SELECT count(*) FROM credential_envelopes WHERE ciphertext IS NOT NULL")).scalar_one()
    table_rows = {name: max(rows, 0) for name, rows, _ in sizes}
    print("tables   " + ", ".join(f"{name} {max(rows, 0):,.0f} rows / {size / 2**20:.0f} MB" for name, rows, size in sizes if rows > 0))
    print("states   " + ", ".join(f"{k} {v:,}" for k, v in states.items()) + f"; credential envelopes waiting to be revealed: {live}")

    sm = make_sessionmaker(engine)  # read paths need no audit key
    notifier = StubNotifier()
    desk = StatusDesk(sessionmaker=sm, notifier=notifier, directory=StubDirectory(people.group_members), rulebook=people.rulebook,  # type: ignore[arg-type]
                      clock=lambda: datetime.now(timezone.utc))
    default_approvers = people.rulebook.default_approvers
    log = StatementLog(engine)
    n = args.runs + args.warmup

    with engine.connect() as c:
        reqs = c.execute(text("SELECT id, short_id, requester_id, owner_id FROM access_requests")).all()
    who_asks = [(r.short_id, r.requester_id if rng.random() < 0.5 else rng.choice(people.approvers)) for r in rng.choices(reqs, k=n)]
    home_users = [rng.choice(people.everyone) for _ in range(n)]
    pending_askers = [rng.choice(people.approvers) for _ in range(n)]
    pk_ids = [r.id for r in rng.choices(reqs, k=n)]

    # -- the three read paths: "queries" is the transaction StatusDesk opens, with the calls it makes in it

    def status_queries(x: tuple[str, str]) -> None:
        short_id, user = x
        approvers, _groups = desk.approver_view(user)
        with sm.begin() as s:
            req = queries.visible_request(s, query=short_id, user_id=user, approvers=approvers)
            if req is not None:
                queries.timeline(s, request_id=req.id)

    def home_queries(user: str) -> None:
        approvers, groups = desk.approver_view(user)
        with sm.begin() as s:
            queries.home_data(s, user_id=user, approvers=approvers, now=datetime.now(timezone.utc), user_groups=groups, default_approvers=default_approvers)

    def pending_queries(user: str) -> None:
        approvers, groups = desk.approver_view(user)
        with sm.begin() as s:
            queries.requests_of(s, user_id=user)
            queries.awaiting_decision(s, approver_id=user, approvers=approvers, user_groups=groups, default_approvers=default_approvers)

    def select1_held() -> Callable[[Any], Any]:
        conn = engine.connect()
        held.append(conn)
        return lambda _x: conn.exec_driver_sql("SELECT 1").scalar_one()

    def select1_session(_x: Any) -> None:
        with sm.begin() as s:
            s.execute(text("SELECT 1")).scalar_one()

    def pk_lookup(request_id: int) -> None:
        with sm.begin() as s:
            store.load_request(s, request_id)

    held: list[Any] = []
    w = args.warmup
    print(f"\n  {'operation':<52} {'runs':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'max ms':>9}   goal p99 < {GOAL_MS:g} ms")
    results: dict[str, Result] = {}
    plan = [
        ("floor", "floor: SELECT 1, held connection", select1_held(), list(range(n)), False),
        ("floor", "floor: SELECT 1 in a session transaction", select1_session, list(range(n)), False),
        ("floor", "floor: primary-key lookup (store.load_request)", pk_lookup, pk_ids, False),
        ("(1) status", "(1) status <short id>: queries", status_queries, who_asks, True),
        ("(1) status", "(1) status <short id>: desk (StatusDesk.answer)", lambda x: desk.answer(user_id=x[1], query=Query("one", x[0])), who_asks, False),
        ("(2) App Home", "(2) App Home: queries (home_data)", home_queries, home_users, True),
        ("(2) App Home", "(2) App Home: desk (StatusDesk.publish_home)", desk.publish_home, home_users, False),
        ("(3) what's pending", "(3) what's pending: queries", pending_queries, pending_askers, True),
        ("(3) what's pending", "(3) what's pending: desk (StatusDesk.answer)", lambda u: desk.answer(user_id=u, query=Query("pending")), pending_askers, False),
    ]
    for key, label, fn, inputs, goal in plan:
        r = measure(log, label, fn, inputs, warmup=w, goal=goal)
        results[label] = r
        print(r.line(), flush=True)
    for conn in held:
        conn.close()

    # -- what each read path sends, and the plans behind it
    candidates: list[str] = []
    for key, label, _fn, _inputs, goal in plan:
        if goal:
            candidates += report_statements(engine, key, results[label], table_rows)

    print(f"\nsummary (goal: p99 < {GOAL_MS:g} ms; \"in SQL\" is the time in cursor.execute, the rest is pool, ORM, plans and Python)")
    for key, label, _fn, _inputs, goal in plan:
        if goal:
            r = results[label]
            v = sorted(r.ms)
            sql = sorted(sum(e.ms for e in run) for run in r.statements)
            rest = sorted(total - sum(e.ms for e in run) for total, run in zip(r.ms, r.statements))
            print(
                f"  {key:<20} p99 {pct(v, 99):7.2f} ms  {'meets the goal' if pct(v, 99) < GOAL_MS else 'MISSES the goal'}"
                f"   in SQL p50 {pct(sql, 50):6.2f} / p99 {pct(sql, 99):6.2f} ms;  outside SQL p50 {pct(rest, 50):6.2f} / p99 {pct(rest, 99):6.2f} ms"
            )
    home = results["(2) App Home: queries (home_data)"]
    for who, pick in (("approvers", True), ("everyone else", False)):
        v = sorted(ms for ms, user in zip(home.ms, home.inputs) if (user in people.approvers) is pick)
        if v:
            print(f"  {'':<20} App Home of {who} ({len(v)} runs): p50 {pct(v, 50):6.2f}, p99 {pct(v, 99):6.2f}, max {v[-1]:6.2f} ms")
    if candidates:
        print("  sequential scans of large tables (index candidates; models and migrations were not changed):")
        for c in candidates:
            print("    - " + c)
    else:
        print("  no statement scans a large table sequentially")


if __name__ == "__main__":
    main()
