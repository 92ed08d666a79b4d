"""The apply job: the approved plan's steps, in order, exactly, idempotently against IAM's real state.

Before each step that grants something, IAM is read again and compared with the plan (a group that
gained a policy, a policy whose default version moved): if it would grant more than was approved,
the job stops before that step, undoes what this request made (only a user carrying its marker),
and the request goes back to being checked and asked again with what changed. A permanent AWS error
fails the request the same careful way; a transient one is retried later.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR, MARKER_TAG
from bot.common.logcontext import bind
from bot.common.sql import SessionMaker
from bot.credentials.passwords import generate_password
from bot.credentials import envelopes
from bot.credentials.vault import Credentials, Vault, VaultError
from bot.domain.plan import CREDENTIAL_STEPS, Plan, PlanKind, Step, StepKind, document_hash, group_drift, policy_drift
from bot.domain.plan import changes as plan_changes
from bot.domain.spec import RequestSpec
from bot.iam.errors import AwsError
from bot.iam.accounts import AccountUnknown, RoleNotAssumed
from bot.iam.gateway import IamGateway
from bot.credentials import mfa, retirement
from bot.jobs.delivery import Delivery
from bot.jobs.queue import JobQueue, LeaseLost
from bot.policy import gate
from bot.policy.rulebook import Rulebook
from bot.requests import expiries, grants, planner, store, usecases
from bot.requests.scope import Scope, Scopes
from bot.workflows.announce import Announcer, Event
from models import CredentialEnvelope, JobState, RequestState

log = logging.getLogger(__name__)

FOUND_AT_APPLY = "found when it was applied (added after the approval)"
TRIED = "tried:"  # a job's record that a create without a marker of its own was sent at least once


class PlanFailed(Exception):
    """The plan cannot be applied as it stands (a name IAM no longer has); explained to people."""


class Undecided(Exception):
    """A guardrail still cannot be checked against what IAM would not show: nothing is applied yet."""


class ApplyJob:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        queue: JobQueue,
        scopes: Scopes,
        vault: Vault,
        announcer: Announcer,
        delivery: Delivery,
        clock: Callable[[], datetime],
        credentials_ttl: timedelta,
        rulebook: Rulebook,
        key_grace: timedelta = timedelta(days=7),
        watch_mfa: bool = False,
        expiry_grace: timedelta = timedelta(days=30),
    ):
        self.expiry_grace = expiry_grace  # an expired user is deleted this long after it was disabled
        self.watch_mfa = watch_mfa  # every new user is watched for MFA, not only console users
        self.scopes = scopes
        self._job = threading.local()  # the scope (account) of the job this thread applies
        self.key_grace = key_grace
        self.sm = sessionmaker
        self.queue = queue
        self.vault = vault
        self.announcer = announcer
        self.delivery = delivery
        self.clock = clock
        self.ttl = credentials_ttl

    def run(self, job_id: int) -> None:
        try:
            self._run(job_id)
        except LeaseLost:
            log.warning("job %s was taken over by another worker; this one stops", job_id)
        finally:
            self._job.scope = None

    # The request's account: its IAM, and the rules and requirements as they hold there. Set for the
    # job this thread is applying (a worker applies several jobs at once, each in its own thread).

    @property
    def scope(self) -> Scope:
        scope = getattr(self._job, "scope", None)
        if scope is None:
            raise RuntimeError("no job is being applied in this thread")
        return scope

    @property
    def iam(self) -> IamGateway:
        return self.scope.iam

    @property
    def rulebook(self) -> Rulebook:
        return self.scope.rulebook

    @property
    def required(self) -> planner.Required:
        return self.scope.required

    # ---------------------------------------------------------------- fenced records

    def _step_done(self, job_id: int, step: Step, **details: object) -> None:
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            request_ids = self.iam.take_request_ids()
            if self.queue.mark(job, step.key):
                audit.record(
                    s, action=f"applied:{step.kind.value}", actor=BOT_ACTOR, now=self.clock(), request_id=job.request_id,
                    target=step.target or None, origin=step.origin or None, aws_request_ids=request_ids, **details,
                )

    def _save_partial(self, job_id: int, request_id: int, owner_id: str, creds: Credentials) -> None:
        """Seal what exists so far: a crash after this point never has to create it again."""
        now = self.clock()
        with self.sm.begin() as s:
            short_id = store.load_request(s, request_id).short_id
        # Sealed for this request (with AWS KMS, its short id is the encryption context), before the
        # transaction: a KMS call must not hold the database (SQLite's one write lock) while it waits.
        sealed = self.vault.seal(creds, request=short_id)
        with self.sm.begin() as s:
            self.queue.own(s, job_id)
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is None:
                env = CredentialEnvelope(request_id=request_id, owner_id=owner_id, created_at=now, expires_at=now + self.ttl)
                s.add(env)
            env.ciphertext = sealed

    def _load_partial(self, request_id: int) -> Credentials | None:
        with self.sm.begin() as s:
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is None or env.ciphertext is None:
                return None
            ciphertext, short_id = env.ciphertext, store.load_request(s, request_id).short_id
        return self.vault.open(ciphertext, request=short_id)  # KMS, after the transaction

    # ---------------------------------------------------------------- the job

    def _run(self, job_id: int) -> None:
        now = self.clock()
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            req = store.load_request(s, job.request_id)
            if req.state is RequestState.APPROVED:
                usecases.start_applying(s, request_id=req.id, now=now)
            elif req.state is not RequestState.PROVISIONING:
                self.queue.finish(job, state=JobState.DONE if req.state is RequestState.COMPLETED else JobState.FAILED)
                return
            plan = store.plan_of(s, request_id=req.id, digest=req.approved_digest) if req.approved_digest else None
            spec, marker, owner_id, request_id = store.spec_of(req), req.short_id, req.owner_id, req.id
            done = set(job.steps_done)
        bind(request=marker)
        if not self._enter(job_id, request_id, marker, spec.account):
            return
        self.iam.take_request_ids()  # start this job's record clean
        try:
            if plan is None:
                plan = self._adopt_plan(job_id, request_id, spec, marker)
            if not done and (changed := self._recheck(plan, spec, marker)):
                self._back_to_approvers(job_id, request_id, marker, plan.user_name, changed)
                return
            if plan.kind.removal:
                self._remove(job_id, plan, done)
                self._complete(job_id, request_id, "", plan)
                self.announcer.announce(request_id, Event.REMOVED)
                return
            if plan.kind is PlanKind.EXTEND:  # nothing in IAM: the new end date is recorded as it completes
                self._complete(job_id, request_id, "", plan)
                self.announcer.announce(request_id, Event.EXTENDED)
                return
            if plan.kind.grants or plan.kind is PlanKind.REVOKE:
                if not self._change(job_id, request_id, marker, plan, done):
                    return  # IAM drifted: asked again
                credentials = plan.makes_credentials
                if credentials:
                    self._credentials(job_id, plan, request_id=request_id, owner_id=owner_id, done=done)
                told = self._complete(job_id, request_id, "", plan)
                if credentials:  # as for a new user: sealed, to the owner, revealed once; the delivery tells what changed
                    self.delivery.deliver(request_id)
                    self.announcer.announce(request_id, Event.COMPLETED)
                else:
                    self.announcer.announce(request_id, Event.REVOKED if plan.kind is PlanKind.REVOKE else Event.CHANGED, also=told)
                return
            with self.sm.begin() as s:
                documents = store.documents(s, [st.document for st in plan.steps if st.document])
            arn = ""
            for step in plan.steps:
                if step.kind in CREDENTIAL_STEPS or step.kind is StepKind.HOLD_ACCESS_KEY:
                    continue  # credentials come last, sealed as they are made (below); a held key is made once MFA is on
                if step.kind is not StepKind.CREATE_USER and step.key in done:
                    continue
                if step.key not in done and (drift := self._drift(plan, step)):
                    self._back_to_approvers(job_id, request_id, marker, plan.user_name, drift)
                    return
                result = self._apply(step, plan=plan, marker=marker, documents=documents)
                if step.kind is StepKind.CREATE_USER:
                    arn = result or ""
                    self._step_done(job_id, step, arn=arn, boundary=step.boundary)
                else:
                    self._step_done(job_id, step, **({"lasts": step.lasts} if step.lasts else {}))
            self._credentials(job_id, plan, request_id=request_id, owner_id=owner_id, done=done)
            self._complete(job_id, request_id, arn, plan)
        except LeaseLost:
            raise
        except PlanFailed as exc:
            self._fail(job_id, request_id, marker, plan.user_name if plan else spec.user_name, str(exc), code="PlanFailed")
            return
        except Undecided as exc:
            if (delay := self.queue.retry_later(job_id, code="Undecided", action="guardrail check")) is not None:
                log.warning("job %s: guardrails still cannot be checked; retrying in %s", job_id, delay)
                return
            self._fail(
                job_id, request_id, marker, spec.user_name,
                f"Nothing was created: the guardrails could not be checked against {exc}. Ask your AWS admins to let the bot "
                "read it (iam:GetPolicy, iam:GetPolicyVersion, iam:ListAttachedGroupPolicies), then request again.",
                code="Undecided",
            )
            return
        except AwsError as exc:
            if (exc.transient or self._not_visible_yet(exc, spec.user_name)) and (
                delay := self.queue.retry_later(job_id, code=exc.code, action=exc.action)
            ) is not None:
                log.warning("job %s: transient %s during %s; retrying in %s", job_id, exc.code, exc.action, delay)
                return
            self._fail(job_id, request_id, marker, spec.user_name, exc.explain(), code=exc.code, aws_request_id=exc.request_id)
            return
        except VaultError as exc:  # AWS KMS would not seal or open the credentials (or the key changed mid-job)
            if exc.transient and (delay := self.queue.retry_later(job_id, code=exc.code, action="seal the credentials")) is not None:
                log.warning("job %s: transient %s while sealing the credentials; retrying in %s", job_id, exc.code, delay)
                return
            self._fail(
                job_id, request_id, marker, spec.user_name,
                f"The credentials could not be sealed ({exc}). Check the encryption settings (IAM_BOT_KMS_KEY_ID and that the bot "
                "may use that key, see `iam-bot policy`; IAM_BOT_ENCRYPTION_KEY), then request again.",
                code=exc.code,
            )
            return
        except Exception as exc:  # a bug or an unexpected answer: fail safe, keep details in the log only
            log.exception("apply job %s crashed", job_id)
            self._fail(
                job_id, request_id, marker, spec.user_name,
                f"The bot hit an unexpected error ({type(exc).__name__}); the operator can find it in the logs.",
                code=type(exc).__name__,
            )
            return
        # The owner waits on the credentials DM; the messages and Homes that show the outcome follow it.
        self.delivery.deliver(request_id)
        self.announcer.announce(request_id, Event.COMPLETED)

    def _enter(self, job_id: int, request_id: int, marker: str, account: str) -> bool:
        """Act in the request's account from here on; False if the bot cannot (the job is retried or failed)."""
        try:
            self._job.scope = self.scopes.of(account)
            return True
        except RoleNotAssumed as exc:
            if exc.transient and (delay := self.queue.retry_later(job_id, code=exc.code, action=exc.action)) is not None:
                log.warning("job %s: transient %s assuming the role of %s; retrying in %s", job_id, exc.code, account, delay)
                return False
            reason, code = exc.explain() + " Nothing was done in that account.", exc.code
        except AccountUnknown as exc:
            reason, code = f"{exc}: the bot no longer serves that account, so nothing was done. Ask your AWS admins.", "AccountUnknown"
        self._record_failure(job_id, request_id, marker, reason, code=code, rolled_back=False)  # nothing to put back: nothing was done there
        return False

    def _recheck(self, plan: Plan, spec: RequestSpec, marker: str) -> list[str]:
        """Fail closed: a plan approved while a guardrail could not be checked is read again in full
        before anything is applied. Returns what changed (it goes back to its approvers, and the plan
        job judges it again); raises Undecided while IAM still will not show what is needed."""
        if plan.kind.day_two and not plan.kind.grants:
            return []  # grants nothing new: nothing to judge again
        with self.sm.begin() as s:
            docs = store.documents(s, plan.grant.documents)
        if not gate.judge(self.rulebook, plan, docs, spec).undecided:
            return []
        if plan.kind.grants:  # a change approved while something could not be read: planned and judged again, whole
            with self.sm.begin() as s:
                creating = store.creating_request(s, user_name=plan.user_name, account=spec.account)
                creator = creating.short_id if creating is not None else ""
            facts = planner.gather_change_facts(self.iam, self.iam.read_credentials, spec)
            try:
                if plan.kind is PlanKind.EXTEND_GRANT:
                    fresh, fresh_docs = planner.plan_grant_extension(spec, facts, marker=creator, path=plan.path or "/", ends=spec.grant_for or "", expires_on=plan.expires_on)
                else:
                    fresh, fresh_docs = planner.plan_change(spec, facts, marker=creator, path=plan.path or "/", expires_on=plan.expires_on)
            except planner.Unplannable as exc:
                raise PlanFailed(str(exc)) from None
        else:
            facts = planner.gather_facts(self.iam, spec, self.required)
            fresh, fresh_docs = planner.plan_create_user(spec, facts, marker=marker, required=self.required, hold_key=self.rulebook.hold_keys_until_mfa)
        fresh = replace(fresh, account_name=self.scope.account)  # as the plan job names it
        verdict = gate.judge(self.rulebook, fresh, fresh_docs, spec)
        if verdict.undecided:
            raise Undecided(", ".join(verdict.undecided[:4]))
        return plan_changes(plan, fresh) or ["what could not be read before can be read now"]

    def _adopt_plan(self, job_id: int, request_id: int, spec: RequestSpec, marker: str) -> Plan:
        """A request approved before plans existed: resolve its plan now, as provisioning always did then."""
        facts = planner.gather_facts(self.iam, spec, self.required)
        if facts.missing:
            raise PlanFailed("The request names what IAM does not have: " + ", ".join(facts.missing) + ". Submit a new request with current names.")
        plan, documents = planner.plan_create_user(spec, facts, marker=marker, required=self.required, hold_key=self.rulebook.hold_keys_until_mfa)
        verdict = gate.judge(self.rulebook, plan, documents, spec)
        if verdict.denial:
            raise PlanFailed(f"Refused by a guardrail: {verdict.denial}. Nothing was created.")
        with self.sm.begin() as s:
            self.queue.own(s, job_id)
            digest = usecases.record_plan(
                s, request_id=request_id, plan=plan, documents=documents, risk=verdict.risk, changes=[], now=self.clock(),
            )
            usecases.adopt_plan(s, request_id=request_id, digest=digest, now=self.clock())
        return plan

    def _drift(self, plan: Plan, step: Step) -> list[str]:
        """What this step would grant now beyond the plan (read from IAM just before it)."""
        if step.kind is StepKind.CREATE_USER and step.boundary:
            return policy_drift(plan, step.boundary, version=self.iam.policy_version(step.boundary), boundary=True)
        if step.kind is StepKind.ATTACH_POLICY:
            return policy_drift(plan, step.target, version=self.iam.policy_version(step.target))
        if step.kind is StepKind.ADD_TO_GROUP:
            group = self.iam.read_group(step.target)
            return group_drift(
                plan,
                step.target,
                attached={arn: self.iam.policy_version(arn) for arn in group.attached},
                inline={p.name: document_hash(p.document) for p in group.inline},
            )
        return []

    def _apply(self, step: Step, *, plan: Plan, marker: str, documents: dict[str, dict]) -> str | None:  # type: ignore[type-arg]
        user = plan.user_name
        if step.kind is StepKind.CREATE_USER:
            tags = [(k, v) for k, v in step.tags if k != MARKER_TAG]  # the gateway adds the marker itself
            return self.iam.ensure_user(user_name=user, path=step.path or "/", tags=tags, boundary=step.boundary, marker=marker)
        if step.kind is StepKind.ADD_TO_GROUP:
            self.iam.add_to_group(user_name=user, group=step.target)
        elif step.kind is StepKind.ATTACH_POLICY:
            self.iam.attach_policy(user_name=user, policy_arn=step.target)
        elif step.kind is StepKind.PUT_USER_POLICY:
            document = documents.get(step.document or "")
            if document is None:
                raise PlanFailed(f"The approved plan's document for the inline policy {step.target} is missing from the database; submit a new request.")
            self.iam.put_inline_policy(user_name=user, name=step.target, document=document)
        return None

    def _change(self, job_id: int, request_id: int, marker: str, plan: Plan, done: set[str]) -> bool:
        """A change, a grant extended or a grant's end: its steps in order, each recorded once done.
        Everything it grants is checked against IAM before the first step (a group gone or grown since
        the approval stops it before anything changes), and again just before each; a failure after the
        first step undoes what can be undone (`_revert`). False if it went back to its approvers."""
        granting = [st for st in plan.steps if st.kind in (StepKind.ADD_TO_GROUP, StepKind.ATTACH_POLICY)]
        for step in granting if not done else ():
            if drift := self._drift(plan, step):
                self._back_to_approvers(job_id, request_id, marker, plan.user_name, drift)
                return False
        for step in plan.steps:
            if step.kind in CREDENTIAL_STEPS or step.key in done:
                continue
            # An AWS error propagates: retried later if transient; a failure puts back what can be put back (`_fail`).
            if step.kind in (StepKind.ADD_TO_GROUP, StepKind.ATTACH_POLICY):
                if drift := self._drift(plan, step):
                    self._revert(job_id, plan)
                    self._back_to_approvers(job_id, request_id, marker, plan.user_name, drift)
                    return False
                self._apply(step, plan=plan, marker=marker, documents={})
                self._step_done(job_id, step, **({"lasts": step.lasts} if step.lasts else {}))
            else:
                self._step_done(job_id, step, already_gone=not self._removal(step, plan.user_name))
        return True

    def _revert(self, job_id: int, plan: Plan) -> None:
        """Put back the groups and policies this job added or took before it failed (best effort: a
        failure here is logged and named in the failure); a deleted password or key cannot be put back."""
        with self.sm.begin() as s:
            done = set(self.queue.own(s, job_id).steps_done)
        user = plan.user_name
        undo = {
            StepKind.ADD_TO_GROUP: lambda t: self.iam.remove_from_group(user_name=user, group=t),
            StepKind.ATTACH_POLICY: lambda t: self.iam.detach_policy(user_name=user, policy_arn=t),
            StepKind.REMOVE_FROM_GROUP: lambda t: self.iam.add_to_group(user_name=user, group=t),
            StepKind.DETACH_POLICY: lambda t: self.iam.attach_policy(user_name=user, policy_arn=t),
        }
        for step in reversed(plan.steps):
            if step.key in done and step.kind in undo and plan.kind is not PlanKind.REVOKE:
                try:
                    undo[step.kind](step.target)
                    with self.sm.begin() as s:
                        audit.record(s, action="reverted", actor=BOT_ACTOR, now=self.clock(), request_id=self.queue.own(s, job_id).request_id,
                                     step=step.kind.value, target=step.target)
                except AwsError as exc:
                    log.warning("could not undo %s of %s: %s", step.kind.value, user, exc.code)

    def _remove(self, job_id: int, plan: Plan, done: set[str]) -> None:
        """Disable or offboard, step by step, each recorded once done, so a resumed job goes on where it
        stopped. What was added to the user after approval (a new key) is taken too, before DeleteUser
        and recorded as found at apply: removing it only takes more away."""
        user = plan.user_name
        for step in plan.steps:
            if step.kind is not StepKind.DELETE_USER and step.key not in done:
                self._step_done(job_id, step, already_gone=not self._removal(step, user))
        planned = {st.key for st in plan.steps}
        try:
            left = planner.removal_steps(plan.kind, self.iam.read_removal(user), origin=FOUND_AT_APPLY)
        except AwsError as exc:
            if exc.code != "NoSuchEntity":
                raise
            left = []  # deleted by hand meanwhile: nothing is left to take, and DeleteUser finds it gone
        for step in left:
            if step.key not in planned:
                self._step_done(job_id, step, already_gone=not self._removal(step, user))
        final = plan.step(StepKind.DELETE_USER)
        if final is not None and final.key not in done:
            self._step_done(job_id, final, already_gone=not self._removal(final, user))

    def _removal(self, step: Step, user: str) -> bool:
        """One removal in IAM; False if it was gone already (removed by hand, or by an earlier try)."""
        iam, k, t = self.iam, step.kind, step.target
        calls = {
            StepKind.DELETE_LOGIN_PROFILE: lambda: iam.delete_login_profile(user_name=user),
            StepKind.DEACTIVATE_ACCESS_KEY: lambda: iam.deactivate_key(user_name=user, key_id=t),
            StepKind.DELETE_ACCESS_KEY: lambda: iam.delete_key(user_name=user, key_id=t),
            StepKind.DELETE_SIGNING_CERTIFICATE: lambda: iam.delete_signing_certificate(user_name=user, certificate_id=t),
            StepKind.DELETE_SSH_KEY: lambda: iam.delete_ssh_public_key(user_name=user, key_id=t),
            StepKind.DELETE_SERVICE_CREDENTIAL: lambda: iam.delete_service_credential(user_name=user, credential_id=t),
            StepKind.DEACTIVATE_MFA_DEVICE: lambda: iam.deactivate_mfa_device(user_name=user, serial=t),
            StepKind.DELETE_VIRTUAL_MFA_DEVICE: lambda: iam.delete_virtual_mfa_device(serial=t),
            StepKind.DELETE_INLINE_POLICY: lambda: iam.delete_inline_policy(user_name=user, name=t),
            StepKind.DETACH_POLICY: lambda: iam.detach_policy(user_name=user, policy_arn=t),
            StepKind.REMOVE_FROM_GROUP: lambda: iam.remove_from_group(user_name=user, group=t),
            StepKind.DELETE_USER: lambda: iam.delete_user(user_name=user),
        }
        if k not in calls:
            raise PlanFailed(f"The approved plan has a step the bot cannot take away ({k.value}); submit a new request.")
        return bool(calls[k]())

    def _mark_tried(self, job_id: int, step: Step) -> None:
        with self.sm.begin() as s:
            self.queue.mark(self.queue.own(s, job_id), TRIED + step.key)

    def _credentials(self, job_id: int, plan: Plan, *, request_id: int, owner_id: str, done: set[str]) -> None:
        """The console password and the access key, each sealed at once, each made once."""
        creds = self._load_partial(request_id)
        if creds is None:
            url, account = self.iam.console_url()
            creds = Credentials(user_name=plan.user_name, console_url=url, account=account)
            self._save_partial(job_id, request_id, owner_id, creds)
        for step in plan.steps:
            if step.kind is StepKind.CREATE_LOGIN_PROFILE and creds.password is None:
                password = self._new_password(lambda p: self.iam.set_login_profile(user_name=plan.user_name, password=p))
                creds = creds.with_(password=password)
                self._save_partial(job_id, request_id, owner_id, creds)
                self._step_done(job_id, step, password_reset_required=True)
            elif step.kind is StepKind.RESET_PASSWORD and creds.password is None:
                password = self._new_password(lambda p: self.iam.reset_password(user_name=plan.user_name, password=p))
                creds = creds.with_(password=password)
                self._save_partial(job_id, request_id, owner_id, creds)
                self._step_done(job_id, step, password_reset_required=True)
            elif step.kind in (StepKind.CREATE_ACCESS_KEY, StepKind.ADD_ACCESS_KEY) and creds.access_key_id is None:
                if step.kind is StepKind.ADD_ACCESS_KEY:
                    # Recorded before the first try: a key beside the kept one is then this request's own
                    # (an answer lost in a crash), never one added by hand meanwhile.
                    tried = TRIED + step.key in done
                    if not tried:
                        self._mark_tried(job_id, step)
                    key_id, secret = self.iam.add_access_key(user_name=plan.user_name, keep=step.target, tried=tried)
                else:
                    key_id, secret = self.iam.create_fresh_access_key(user_name=plan.user_name)
                creds = creds.with_(access_key_id=key_id, secret_access_key=secret)
                self._save_partial(job_id, request_id, owner_id, creds)
                self._step_done(job_id, step, access_key_id=key_id)
        del creds

    def _new_password(self, set_it: Callable[[str], None]) -> str:
        """A password the account's policy accepts, set in IAM; returned for sealing."""
        password = generate_password(self.iam.password_policy())
        try:
            set_it(password)
        except AwsError as exc:
            if exc.code != "PasswordPolicyViolation":
                raise
            # The account's policy changed since it was last read (it is kept for a minute).
            password = generate_password(self.iam.password_policy(fresh=True))
            set_it(password)
        return password

    def _not_visible_yet(self, exc: AwsError, user_name: str) -> bool:
        """NoSuchEntity for the user we just created is IAM's propagation delay, not a missing group."""
        if exc.code != "NoSuchEntity" or exc.action in ("CreateUser", "GetUser") or exc.action.startswith("read "):
            return False
        try:
            return not self.iam.user_visible(user_name)
        except AwsError:
            return True  # could not tell: retrying later is the safe side

    # ---------------------------------------------------------------- endings

    def _complete(self, job_id: int, request_id: int, arn: str, plan: Plan) -> list[str]:
        """Complete the request and put on record what follows from it; returns who else is told of it
        (a grant's owner and requester, when its end was applied)."""
        now, told = self.clock(), []
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is not None:
                env.expires_at = now + self.ttl
            rotated = next((st for st in plan.steps if st.kind is StepKind.ADD_ACCESS_KEY), None)
            completed = usecases.complete(s, request_id=request_id, arn=arn, now=now)
            if completed and rotated is not None and rotated.target:
                retirement.schedule(s, request_id=request_id, user_name=plan.user_name, key_id=rotated.target, now=now, grace=self.key_grace)
            owner_id = store.load_request(s, request_id).owner_id
            # Console users need MFA (as AWS Security Hub's IAM.5); with IAM_BOT_MFA_REQUIRE every new user does.
            held = plan.has(StepKind.HOLD_ACCESS_KEY)
            if completed and plan.kind is PlanKind.CREATE_USER and (plan.has(StepKind.CREATE_LOGIN_PROFILE) or held or self.watch_mfa):
                mfa.watch(s, request_id=request_id, user_name=plan.user_name, owner_id=owner_id, now=now, key_held=held)
            if completed and plan.kind.removal:
                mfa.forget(s, user_name=plan.user_name, account=plan.account_name, now=now)  # no way in left: MFA reminders would be noise
            if completed and plan.kind.deletes:
                retirement.forget(s, user_name=plan.user_name, account=plan.account_name, now=now)
                expiries.ended(s, user_name=plan.user_name, account=plan.account_name, now=now)
            if completed and plan.kind is PlanKind.CREATE_USER and plan.expires_on:
                expiries.record(s, request_id=request_id, user_name=plan.user_name, owner_id=owner_id, expires_on=plan.expires_on, grace=self.expiry_grace)
            if completed and plan.kind is PlanKind.EXTEND and plan.expires_on:
                expiries.extend(s, user_name=plan.user_name, account=plan.account_name, expires_on=plan.expires_on, grace=self.expiry_grace)
            if completed and plan.kind is PlanKind.CHANGE:
                short_id = store.load_request(s, request_id).short_id
                grants.taken_away(s, user_name=plan.user_name, account=plan.account_name, steps=plan.steps, now=now, how=f"taken away by change {short_id}")
                if plan.has(StepKind.CREATE_LOGIN_PROFILE):  # a console user now: watched for MFA as a new one is
                    mfa.watch(s, request_id=request_id, user_name=plan.user_name, owner_id=owner_id, now=now)
            if completed and plan.time_bound:
                requester = store.load_request(s, request_id).requester_id
                grants.record(s, plan=plan, request_id=request_id, owner_id=owner_id, requester_id=requester, now=now)
            if completed and plan.kind is PlanKind.REVOKE:
                given_back = store.load_request(s, request_id).requester_id != BOT_ACTOR
                ended = grants.ended_by_revoke(s, revoke_request_id=request_id, now=now, how="given back early" if given_back else "its time ended")
                told = list(dict.fromkeys(p for g in ended for p in (g.owner_id, g.requester_id)))
            if completed and plan.kind.deletes:
                grants.user_gone(s, user_name=plan.user_name, account=plan.account_name, now=now)
            self.queue.finish(job)
        return told

    def _undo(self, user_name: str, marker: str) -> tuple[bool, str]:
        """Remove what this request created (only a user carrying its marker); (removed, what went wrong)."""
        try:
            return self.iam.delete_user_we_created(user_name=user_name, marker=marker), ""
        except AwsError as exc:
            return False, f" Cleaning up also failed ({exc.code}): an AWS admin should delete user {user_name} if it exists."

    def _purge_partial(self, s, request_id: int) -> None:  # type: ignore[no-untyped-def]
        env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
        if env is not None:
            envelopes.destroy(s, env.id)  # the caller empties SQLite's log once this commits

    def _back_to_approvers(self, job_id: int, request_id: int, marker: str, user_name: str, drift: list[str]) -> None:
        """IAM would grant more than was approved: apply nothing more, undo what was made, ask again."""
        with self.sm.begin() as s:
            self.queue.own(s, job_id)  # a worker that lost the job must not undo what the new holder made
        removed, problem = self._undo(user_name, marker)
        log.warning("request %s: IAM drifted from the approved plan (%d change(s)); asking the approvers again", marker, len(drift))
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            self._purge_partial(s, request_id)
            usecases.replan(s, request_id=request_id, changes=[*drift, *([problem.strip()] if problem else [])], now=self.clock())
            audit.record(s, action="rolled_back", actor=BOT_ACTOR, now=self.clock(), request_id=request_id, removed_user=removed)
            self.queue.finish(job, error="plan drift")
        envelopes.checkpoint(self.sm)
        self.announcer.announce(request_id, Event.REPLANNING)

    def _fail(self, job_id: int, request_id: int, marker: str, user_name: str, reason: str, *, code: str, aws_request_id: str | None = None) -> None:
        with self.sm.begin() as s:
            self.queue.own(s, job_id)  # a worker that lost the job must not roll back what the new holder made
            req = store.load_request(s, request_id)
            plan = store.plan_of(s, request_id=request_id, digest=req.approved_digest) if req.approved_digest else None
        if plan is not None and plan.kind.grants:  # a change half done is put back as far as it can be
            self._revert(job_id, plan)
        removed, problem = self._undo(user_name, marker)
        self._record_failure(job_id, request_id, marker, reason + problem, code=code, rolled_back=removed, aws_request_id=aws_request_id)

    def _record_failure(
        self, job_id: int, request_id: int, marker: str, reason: str, *, code: str, rolled_back: bool, aws_request_id: str | None = None,
    ) -> None:
        """The request failed (what could be put back was): on record, its partial credentials destroyed, everyone told."""
        with self.sm.begin() as s:
            job = self.queue.own(s, job_id)
            self._purge_partial(s, request_id)
            usecases.fail(s, request_id=request_id, reason=reason, code=code, aws_request_id=aws_request_id, rolled_back=rolled_back, now=self.clock())
            self.queue.finish(job, state=JobState.FAILED, error=code)
        envelopes.checkpoint(self.sm)
        log.error("request %s failed: %s", marker, code)
        self.announcer.announce(request_id, Event.FAILED)
