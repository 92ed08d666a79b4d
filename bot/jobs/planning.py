"""The plan job: a submitted request is resolved against IAM into its plan, judged, then asked,
denied by a guardrail or approved by its rule, and announced. Durable: a crash before it finishes
leaves the job to the next worker, so no submitted request is lost on its way to the approvers."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable

from bot.common.constants import BOT_ACTOR
from bot.common.logcontext import bind
from bot.common.sql import SessionMaker
from bot.domain.plan import Plan, PlanKind
from bot.domain.plan import changes as plan_changes
from bot.domain.spec import RequestSpec
from bot.iam.errors import AwsError
from bot.policy import gate
from bot.policy.gate import Verdict
from bot.policy.rulebook import Rulebook
from bot.requests import expiries, grants, planner, store, usecases
from bot.requests.scope import Scope, Scopes
from bot.iam.accounts import AccountUnknown, RoleNotAssumed
from bot.jobs.queue import JobQueue, LeaseLost
from bot.workflows.announce import Announcer, Event
from models import JobState, RequestState

log = logging.getLogger(__name__)


class PlanJob:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        queue: JobQueue,
        scopes: Scopes,
        rulebook: Rulebook,
        announcer: Announcer,
        clock: Callable[[], datetime],
        request_ttl: timedelta,
        wake: Callable[[], None],
    ):
        self.sm = sessionmaker
        self.queue = queue
        self.scopes = scopes  # each request is planned in its account's IAM, under the rules as they hold there
        self.rulebook = rulebook
        self.announcer = announcer
        self.clock = clock
        self.request_ttl = request_ttl
        self.wake = wake

    def run(self, job_id: int) -> None:
        try:
            self._run(job_id)
        except LeaseLost:
            log.warning("plan job %s was taken over by another worker; this one stops", job_id)

    def _run(self, job_id: int) -> None:
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            req = store.load_request(s, job.request_id)
            if req.state is not RequestState.SUBMITTED:
                self.queue.finish(job)  # cancelled meanwhile, or done by another worker
                return
            spec, marker, request_id = store.spec_of(req), req.short_id, req.id
            kind, by_owner = PlanKind(req.kind), req.requester_id == req.owner_id
            creating = store.creating_request(s, user_name=req.user_name, account=req.account) if kind.day_two else None
            creator = creating.short_id if creating else ""
            context = self._context(s, kind, req.user_name, req.account) if kind.grants else {}
            if kind is PlanKind.REVOKE:
                context["given_back"] = req.requester_id != BOT_ACTOR  # a person is done with it; else its time ended
            previous = store.plan_of(s, request_id=req.id, digest=req.plan_digest) if req.plan_digest else None
            drift = list(req.plan_changes or ())  # what the apply job saw change, if that is why we are here
            # Asked with others for several accounts: held once planned, until all are (planned again later: on its own).
            bundle = req.bundle if previous is None and not drift else None
        bind(request=marker)
        try:
            scope = self.scopes.of(spec.account)
            plan, documents, verdict = self._plan(kind, spec, scope, marker=marker, creator=creator, by_owner=by_owner, **context)
        except AccountUnknown as exc:
            self._fail(job_id, request_id, f"{exc}: the bot no longer serves that account, so nothing was planned. Ask your AWS admins.")
            return
        except RoleNotAssumed as exc:  # not for retrying: the role is missing or does not trust the bot
            self._fail(job_id, request_id, exc.explain())
            return
        except planner.Unplannable as exc:
            self._fail(job_id, request_id, str(exc))
            return
        except LeaseLost:
            raise
        except AwsError as exc:  # transient: IAM was busy; nothing is judged on a partial read
            if kind.day_two and exc.code == "NoSuchEntity":
                self._fail(job_id, request_id, f"`{spec.user_name}` no longer exists in IAM; nothing was changed.")
                return
            if (exc.transient or not kind.day_two) and (delay := self.queue.retry_later(job_id, code=exc.code, action=exc.action)) is not None:
                log.warning("plan job %s: transient %s during %s; retrying in %s", job_id, exc.code, exc.action, delay)
                return
            self._fail(job_id, request_id, f"AWS kept refusing to answer while the request was checked ({exc.code} during {exc.action}). Submit it again later.")
            return
        except Exception as exc:  # a bug or an answer nobody expected: fail safe, details in the log only
            log.exception("plan job %s crashed", job_id)
            self._fail(job_id, request_id, f"The bot hit an unexpected error ({type(exc).__name__}) while checking the request against IAM; the operator can find it in the logs.")
            return
        changed = (plan_changes(previous, plan) or drift) if previous is not None else drift
        now = self.clock()
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            usecases.record_plan(
                s, request_id=request_id, plan=plan, documents=documents, risk=verdict.risk, changes=changed, now=now,
                verdict=verdict, rulebook=self.rulebook,
            )
            if verdict.denial:
                won, event = usecases.deny_by_guardrail(s, request_id=request_id, reason=f"Refused by a guardrail: {verdict.denial}.", now=now), Event.DENIED
            elif bundle:
                won, event = True, None  # held: the others' plans are waited for (finish_bundle)
            elif verdict.auto:
                won, event = usecases.auto_approve(s, request_id=request_id, now=now), Event.AUTO_APPROVED
            else:
                won, event = usecases.ask(s, request_id=request_id, now=now, **self._asked_times(now)), Event.ASKED
            self.queue.finish(job)
        if not won:
            return  # cancelled while being checked
        if event is Event.AUTO_APPROVED:
            self.wake()
        if event is not None:
            self.announcer.announce(request_id, event)
        if bundle:
            self.finish_bundle(bundle)

    # ---------------------------------------------------------------- an ask for several accounts

    def finish_bundle(self, bundle: str) -> None:
        """Once every account's plan of one ask is made: asked together (the strictest rule), or approved together."""
        now = self.clock()
        with self.sm.begin() as s:
            done = usecases.finalize_bundle(s, bundle=bundle, now=now, **self._asked_times(now))
        if done is None:
            return
        what, ids = done
        if what == "auto_approved":
            self.wake()
            for request_id in ids:
                self.announcer.announce(request_id, Event.AUTO_APPROVED)
            return
        self.announcer.announce(ids[0], Event.ASKED)  # the first presents them all to the approvers
        for request_id in ids[1:]:
            self.announcer.refresh_homes_of(request_id)

    def _asked_times(self, now: datetime) -> dict[str, datetime | None]:
        """A request asked now: when it expires unanswered, and when its approvers are first reminded."""
        reminders = self.rulebook.reminders
        return {"expires_at": now + self.request_ttl, "next_reminder_at": now + timedelta(hours=reminders.delay_hours(0)) if reminders else None}

    def finish_bundles(self) -> int:
        """Housekeeping: asks for several accounts whose plans are all made, but which a worker that died
        right after the last plan did not ask (a worker finishing a plan asks them itself)."""
        with self.sm.begin() as s:
            bundles = store.held_bundles(s)
        for bundle in bundles:
            self.finish_bundle(bundle)
        return len(bundles)

    @staticmethod
    def _context(s: Any, kind: PlanKind, user_name: str, account: str) -> dict[str, Any]:
        """What a change is planned with besides IAM: the user's time-bound grants and end date on record."""
        end = expiries.current(s, user_name=user_name, account=account)
        return {
            "temporary": {(g.kind, g.target): f"{g.ends_at:%Y-%m-%d %H:%M} UTC" for g in grants.active(s, user_name=user_name, account=account)},
            "expires_on": f"{end.expires_at:%Y-%m-%d}" if end is not None else None,
        }

    def _plan(
        self, kind: PlanKind, spec: RequestSpec, scope: Scope, *, marker: str, creator: str, by_owner: bool,
        temporary: dict[tuple[str, str], str] | None = None, expires_on: str | None = None, given_back: bool = False,
    ) -> tuple[Plan, dict[str, Any], Verdict]:
        """The request's plan, the documents it names and the verdict on it; Unplannable says why not, for people.
        The plan names its account (a member account by its name too) before it is judged: rules may match it."""
        iam, book = scope.iam, scope.rulebook

        def named(plan: Plan) -> Plan:
            return replace(plan, account_name=scope.account) if scope.account else plan

        if kind is PlanKind.REVOKE:
            try:
                facts = iam.read_credentials(spec.user_name)
            except AwsError as exc:
                if exc.code != "NoSuchEntity":
                    raise
                facts = None  # deleted meanwhile: nothing is left to take away, and that is not an error
            plan = named(planner.plan_revoke(spec, facts, account=iam.account_id(), marker=creator, why=spec.reason))
            return plan, {}, gate.judge_revoke(book, plan, given_back=given_back)
        if kind.grants:
            facts = planner.gather_change_facts(iam, iam.read_credentials, spec)
            if facts.iam.missing:
                raise planner.Unplannable("The change names what IAM does not have: " + ", ".join(facts.iam.missing) + ". Ask again with current names.")
            if kind is PlanKind.EXTEND_GRANT:
                plan, documents = planner.plan_grant_extension(spec, facts, marker=creator, path=spec.path, ends=spec.grant_for or "", expires_on=expires_on)
            else:
                plan, documents = planner.plan_change(spec, facts, marker=creator, path=spec.path, temporary=temporary, expires_on=expires_on)
            plan = named(plan)
            return plan, documents, gate.judge(book, plan, documents, spec)  # the user's whole grant after it
        if kind.removal:
            plan = named(planner.plan_removal(kind, iam.read_removal(spec.user_name), account=iam.account_id(), marker=creator))
            return plan, {}, gate.judge_removal(book, plan)
        if kind is PlanKind.EXTEND:
            facts = iam.read_credentials(spec.user_name)
            plan = named(planner.plan_extension(facts, account=iam.account_id(), marker=creator, expires_on=spec.expires_on or ""))
            return plan, {}, gate.judge_extension(book, plan)
        if kind.credentials_only:
            plan = named(planner.plan_new_credentials(kind, iam.read_credentials(spec.user_name), account=iam.account_id(), marker=creator))
            return plan, {}, gate.judge_credentials(book, plan, by_owner=by_owner)
        facts = planner.gather_facts(iam, spec, scope.required)
        if facts.missing:
            raise planner.Unplannable("The request names what IAM does not have: " + ", ".join(facts.missing) + ". Submit a new request with current names.")
        plan, documents = planner.plan_create_user(spec, facts, marker=marker, required=scope.required, hold_key=book.hold_keys_until_mfa)
        plan = named(plan)
        return plan, documents, gate.judge(book, plan, documents, spec)  # on the whole effective grant

    def _fail(self, job_id: int, request_id: int, reason: str) -> None:
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            won = usecases.fail_planning(s, request_id=request_id, reason=reason, now=self.clock())
            self.queue.finish(job, state=JobState.FAILED, error=reason[:200])
            bundle = store.load_request(s, request_id).bundle
        if won:
            self.announcer.announce(request_id, Event.FAILED)
        if bundle:  # the other accounts go on without this one
            self.finish_bundle(bundle)
