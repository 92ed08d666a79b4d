"""Durable provisioning jobs: claim with a lease, run idempotent steps, seal credentials, deliver.

A job row is created in the same transaction as the approval. Any worker (this process or
another replica) claims it with a lease; a worker that dies leaves a lease that expires, and the
next claim resumes the job. Every AWS step is idempotent against IAM's state, so a resumed job
creates nothing twice.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.audit import trail as audit
from bot.slack import inbound
from bot.iam.gateway import AwsError, IamGateway
from bot.common.clock import Clock
from bot.runtime.db import SessionMaker
from bot.requests.lifecycle import transition
from bot.common.logcontext import bind, log_context
from bot.slack.notifier import Notifier
from bot.credentials.passwords import generate_password
from bot.domain.spec import spec_of
from bot.slack.ui import blocks as ui
from bot.credentials.vault import Credentials, Vault
from models import AccessRequest, CredentialEnvelope, JobState, ProvisioningJob, RequestDraft, RequestState

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8
CREDENTIALS_DM = "iam_bot_credentials"  # message metadata that marks the credentials DM


class LeaseLost(Exception):
    """Another worker took this job over (ours stalled past its lease): stop, touch nothing more."""


def backoff(attempt: int) -> timedelta:
    """Job-level retry delay after botocore's own retries gave up: 10 s, 20 s, ... capped at 10 min."""
    return timedelta(seconds=min(600, 10 * 2 ** max(0, attempt - 1)))


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Provisioner:
    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        iam: IamGateway,
        vault: Vault,
        notifier: Notifier,
        clock: Clock,
        credentials_ttl: timedelta,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ):
        self.sm = sessionmaker
        self.iam = iam
        self.vault = vault
        self.notifier = notifier
        self.clock = clock
        self.ttl = credentials_ttl
        self.worker_id = worker_id or default_worker_id()
        self.lease = lease
        # A DM attempt older than a lease belongs to a worker presumed dead: it may be retried.
        self.delivery_retry = lease

    # ---------------------------------------------------------------- claiming

    def claim_next(self) -> int | None:
        now = self.clock()
        with self.sm.begin() as s:
            # SKIP LOCKED lets replicas claim different jobs without waiting on each other;
            # SQLite serialises writers (BEGIN IMMEDIATE), which gives the same guarantee.
            job = s.scalars(
                select(ProvisioningJob)
                .where(
                    ProvisioningJob.state.in_([JobState.QUEUED, JobState.RUNNING]),
                    ProvisioningJob.next_run_at <= now,
                    or_(ProvisioningJob.lease_expires_at.is_(None), ProvisioningJob.lease_expires_at < now),
                )
                .order_by(ProvisioningJob.next_run_at, ProvisioningJob.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return None
            job.state = JobState.RUNNING
            job.lease_owner = self.worker_id
            job.lease_expires_at = now + self.lease
            job.attempts += 1
            job.updated_at = now
            return job.id

    def run_once(self) -> bool:
        job_id = self.claim_next()
        if job_id is None:
            return False
        with log_context(job=job_id):
            self.run_job(job_id)
        return True

    def release_leases(self) -> None:
        """On shutdown: let another worker take what this one held, at once."""
        with self.sm.begin() as s:
            s.execute(
                update(ProvisioningJob)
                .where(ProvisioningJob.lease_owner == self.worker_id, ProvisioningJob.state == JobState.RUNNING)
                .values(lease_expires_at=None, lease_owner=None, state=JobState.QUEUED)
            )

    # ---------------------------------------------------------------- the job

    def _own(self, s: Session, job_id: int) -> ProvisioningJob:
        """The job, locked, if this worker still holds its lease: every write is fenced by it."""
        job = s.get(ProvisioningJob, job_id, with_for_update=True)
        if job is None or job.lease_owner != self.worker_id:
            raise LeaseLost(job_id)
        return job

    def _mark(self, job: ProvisioningJob, step: str) -> None:
        if step not in job.steps_done:
            job.steps_done = [*job.steps_done, step]
        job.lease_expires_at = self.clock() + self.lease
        job.updated_at = self.clock()

    def _step_done(self, job_id: int, step: str, **audit_details: object) -> None:
        with self.sm.begin() as s:
            job = self._own(s, job_id)
            first = step not in job.steps_done
            self._mark(job, step)
            request_ids = self.iam.take_request_ids()
            if first:
                audit.record(
                    s,
                    action=f"provisioned:{step}",
                    actor="iam-bot",
                    now=self.clock(),
                    request_id=job.request_id,
                    aws_request_ids=request_ids,
                    **audit_details,
                )

    def _save_partial(self, job_id: int, request_id: int, owner_id: str, creds: Credentials) -> None:
        """Seal what exists so far: a crash after this point never has to create it again."""
        now = self.clock()
        with self.sm.begin() as s:
            self._own(s, job_id)
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is None:
                env = CredentialEnvelope(request_id=request_id, owner_id=owner_id, created_at=now, expires_at=now + self.ttl)
                s.add(env)
            env.ciphertext = self.vault.seal(creds)

    def _load_partial(self, request_id: int) -> Credentials | None:
        with self.sm.begin() as s:
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is None or env.ciphertext is None:
                return None
            return self.vault.open(env.ciphertext)

    def run_job(self, job_id: int) -> None:
        try:
            self._run_job(job_id)
        except LeaseLost:
            log.warning("job %s was taken over by another worker; this one stops", job_id)

    def _run_job(self, job_id: int) -> None:
        self.iam.take_request_ids()  # start this job's record clean
        now = self.clock()
        with self.sm.begin() as s:
            job = s.get(ProvisioningJob, job_id)
            assert job is not None
            req = s.get(AccessRequest, job.request_id)
            assert req is not None
            if RequestState(req.state) is RequestState.APPROVED:
                transition(s, request_id=req.id, src=RequestState.APPROVED, dst=RequestState.PROVISIONING, now=now)
            elif RequestState(req.state) is not RequestState.PROVISIONING:
                job.state = JobState.DONE if RequestState(req.state) is RequestState.COMPLETED else JobState.FAILED
                return
            spec = spec_of(req)
            request_id, marker, owner_id, attempts = req.id, req.short_id, req.owner_id, job.attempts
        bind(request=marker)
        try:
            copied = self.iam.read_permissions(spec.copy_from) if spec.copy_from else None
            groups = list(dict.fromkeys([*spec.groups, *(copied.groups if copied else ())]))
            policies = list(dict.fromkeys([*spec.policy_arns, *(copied.policy_arns if copied else ())]))
            boundary = spec.permissions_boundary or (copied.permissions_boundary if copied else None)

            arn = self.iam.ensure_user(
                user_name=spec.user_name, path=spec.path, tags=list(spec.tags), boundary=boundary, marker=marker
            )
            self._step_done(job_id, "user", arn=arn, boundary=boundary)
            for group in groups:
                self.iam.add_to_group(user_name=spec.user_name, group=group)
            for policy in policies:
                self.iam.attach_policy(user_name=spec.user_name, policy_arn=policy)
            for name, document in (copied.inline_documents.items() if copied else ()):
                self.iam.put_inline_policy(user_name=spec.user_name, name=name, document=document)
            self._step_done(
                job_id, "permissions", groups=groups, policies=policies, inline=sorted(copied.inline_documents) if copied else []
            )

            creds = self._load_partial(request_id)
            if creds is None:
                url, account = self.iam.console_url()
                creds = Credentials(user_name=spec.user_name, console_url=url, account=account)
                self._save_partial(job_id, request_id, owner_id, creds)
            if spec.console_access and creds.password is None:
                password = generate_password(self.iam.password_policy())
                self.iam.set_login_profile(user_name=spec.user_name, password=password)
                creds = creds.with_(password=password)
                self._save_partial(job_id, request_id, owner_id, creds)
                self._step_done(job_id, "login_profile", password_reset_required=True)
            if spec.access_key and creds.access_key_id is None:
                key_id, secret = self.iam.create_fresh_access_key(user_name=spec.user_name)
                creds = creds.with_(access_key_id=key_id, secret_access_key=secret)
                self._save_partial(job_id, request_id, owner_id, creds)
                self._step_done(job_id, "access_key", access_key_id=key_id)
            del creds
            self._complete(job_id, request_id, arn)
        except LeaseLost:
            raise
        except AwsError as exc:
            if (exc.transient or self._not_visible_yet(exc, spec.user_name)) and attempts < MAX_ATTEMPTS:
                self._retry_later(job_id, attempts, exc)
                return
            self._fail(job_id, request_id, marker, spec.user_name, exc.explain(), code=exc.code, aws_request_id=exc.request_id)
            return
        except Exception as exc:  # a bug or an unexpected answer: fail safe, keep details in the log only
            log.exception("provisioning job %s crashed", job_id)
            self._fail(
                job_id,
                request_id,
                marker,
                spec.user_name,
                f"The bot hit an unexpected error ({type(exc).__name__}); the operator can find it in the logs.",
                code=type(exc).__name__,
            )
            return
        self.after_completion(request_id)

    def _not_visible_yet(self, exc: AwsError, user_name: str) -> bool:
        """NoSuchEntity for the user we just created is IAM's propagation delay, not a missing group."""
        if exc.code != "NoSuchEntity" or exc.action in ("CreateUser", "GetUser") or exc.action.startswith("read permissions"):
            return False
        try:
            return not self.iam.user_visible(user_name)
        except AwsError:
            return True  # could not tell: retrying later is the safe side

    def _retry_later(self, job_id: int, attempts: int, exc: AwsError) -> None:
        now = self.clock()
        with self.sm.begin() as s:
            job = self._own(s, job_id)
            job.state = JobState.QUEUED
            job.lease_owner = None
            job.lease_expires_at = None
            job.next_run_at = now + backoff(attempts)
            job.last_error = f"{exc.code} during {exc.action}"
            job.updated_at = now
            audit.record(s, action="provisioning_retry", actor="iam-bot", now=now, request_id=job.request_id, code=exc.code, step=exc.action, attempt=attempts)
        log.warning("job %s: transient %s during %s; retrying in %s", job_id, exc.code, exc.action, backoff(attempts))

    def _complete(self, job_id: int, request_id: int, arn: str) -> None:
        now = self.clock()
        with self.sm.begin() as s:
            self._own(s, job_id)
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is not None:
                env.expires_at = now + self.ttl
            transition(s, request_id=request_id, src=RequestState.PROVISIONING, dst=RequestState.COMPLETED, now=now, user_arn=arn)
            job = s.get(ProvisioningJob, job_id)
            assert job is not None  # locked by _own above
            job.state = JobState.DONE
            job.lease_owner = None
            job.lease_expires_at = None
            job.updated_at = now
            audit.record(s, action="completed", actor="iam-bot", now=now, request_id=request_id, arn=arn)

    def _fail(
        self, job_id: int, request_id: int, marker: str, user_name: str, reason: str, *, code: str, aws_request_id: str | None = None
    ) -> None:
        with self.sm.begin() as s:
            self._own(s, job_id)  # a worker that lost the job must not roll back what the new holder made
        rolled_back = None
        try:
            rolled_back = self.iam.delete_user_we_created(user_name=user_name, marker=marker)
        except AwsError as exc:
            reason += f" Cleaning up also failed ({exc.code}): an AWS admin should delete user {user_name} if it exists."
        now = self.clock()
        with self.sm.begin() as s:
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is not None:
                env.ciphertext = None
                env.purged_at = now
            job = self._own(s, job_id)
            transition(s, request_id=request_id, src=RequestState.PROVISIONING, dst=RequestState.FAILED, now=now, failure_reason=reason)
            job.state = JobState.FAILED
            job.lease_owner = None
            job.lease_expires_at = None
            job.last_error = code
            job.updated_at = now
            audit.record(
                s, action="failed", actor="iam-bot", now=now, request_id=request_id, code=code, aws_request_id=aws_request_id, rolled_back=bool(rolled_back)
            )
            req = s.get(AccessRequest, request_id)
            assert req is not None
            requester = req.requester_id
            approvers = self.notifier.approver_recipients(req)
            to_requester = ui.failure_message(req, for_approver=False)
            to_approver = ui.failure_message(req, for_approver=True)
        log.error("request %s failed: %s", marker, code)
        self.notifier.announce_change(request_id, now=self.clock())
        self.notifier.dm_quietly(requester, to_requester, what="failure notice")
        for approver in approvers:
            self.notifier.dm_quietly(approver, to_approver, what="failure notice")

    # ---------------------------------------------------------------- delivery and expiry

    def after_completion(self, request_id: int) -> None:
        self.notifier.announce_change(request_id, now=self.clock())
        self.deliver(request_id)

    def deliver(self, request_id: int) -> bool:
        """DM the owner the Reveal button, once; a failed DM is retried later, never dropped."""
        now = self.clock()
        with self.sm.begin() as s:
            env = s.scalars(select(CredentialEnvelope).where(CredentialEnvelope.request_id == request_id)).first()
            if env is None:
                return False
            outcome_unknown = env.delivery_attempted_at is not None
            claimed = s.execute(
                update(CredentialEnvelope)
                .where(
                    CredentialEnvelope.id == env.id,
                    CredentialEnvelope.delivered_at.is_(None),
                    CredentialEnvelope.ciphertext.is_not(None),
                    or_(
                        CredentialEnvelope.delivery_attempted_at.is_(None),
                        CredentialEnvelope.delivery_attempted_at < now - self.delivery_retry,
                    ),
                )
                .values(delivery_attempted_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != 1:
                return False
            req = s.get(AccessRequest, request_id)
            assert req is not None
            message = {
                **ui.credentials_ready_message(req, expires_at=env.expires_at),
                "metadata": {"event_type": CREDENTIALS_DM, "event_payload": {"request": req.short_id}},
            }
            owner, requester, user_name, short_id = req.owner_id, req.requester_id, req.user_name, req.short_id
            env_id = env.id
        sent = self._already_sent(owner, short_id) if outcome_unknown else None
        if sent is None:
            try:
                sent = self.notifier.dm(owner, message)
            except SlackApiError as exc:
                log.warning("credentials DM for request %s not sent (%s); will retry", request_id, exc.response.get("error"))
                return False
        channel, ts = sent
        with self.sm.begin() as s:
            env = s.get(CredentialEnvelope, env_id)
            assert env is not None
            env.delivered_at = self.clock()
            env.dm_channel_id = channel
            env.dm_ts = ts
            audit.record(s, action="credentials_delivered", actor="iam-bot", now=self.clock(), request_id=request_id, to=owner)
        if requester != owner:
            self.notifier.dm_quietly(
                requester,
                {"text": f"IAM user {user_name} was created; its credentials were sent to <@{owner}>."},
                what="completion notice",
            )
        return True

    def _already_sent(self, owner: str, short_id: str) -> tuple[str, str] | None:
        """After an attempt with no known outcome: the DM Slack may have delivered, found by its metadata."""
        try:
            found = self.notifier.find_dm(owner, event_type=CREDENTIALS_DM, request=short_id)
        except SlackApiError as exc:
            # Cannot tell: a second DM (whose reveal still works once) beats credentials never announced.
            log.warning("could not read the owner's DM history (%s); sending the credentials DM again", exc.response.get("error"))
            return None
        if found:
            log.info("credentials DM for %s had been delivered before the process stopped; not sending it again", short_id)
        return found

    def deliver_pending(self) -> int:
        now = self.clock()
        with self.sm.begin() as s:
            ids = list(
                s.scalars(
                    select(CredentialEnvelope.request_id)
                    .join(AccessRequest, AccessRequest.id == CredentialEnvelope.request_id)
                    .where(
                        AccessRequest.state == RequestState.COMPLETED,
                        CredentialEnvelope.delivered_at.is_(None),
                        CredentialEnvelope.ciphertext.is_not(None),
                        or_(
                            CredentialEnvelope.delivery_attempted_at.is_(None),
                            CredentialEnvelope.delivery_attempted_at < now - self.delivery_retry,
                        ),
                    )
                )
            )
        return sum(self.deliver(i) for i in ids)

    def purge_stale_drafts(self, *, older_than: timedelta = timedelta(days=1)) -> int:
        """Drafts of requests never submitted (the requester closed the review) are not kept,
        nor the keys of Slack deliveries old enough that Slack no longer retries them."""
        with self.sm.begin() as s:
            inbound.purge(s, now=self.clock())
            return s.execute(delete(RequestDraft).where(RequestDraft.created_at < self.clock() - older_than)).rowcount

    def purge_expired(self) -> int:
        """Destroy unrevealed credentials past their expiry and say so in the owner's DM."""
        now = self.clock()
        purged: list[tuple[int, str | None, str | None]] = []
        with self.sm.begin() as s:
            envs = s.scalars(
                select(CredentialEnvelope)
                .where(CredentialEnvelope.ciphertext.is_not(None), CredentialEnvelope.expires_at <= now)
                .with_for_update(skip_locked=True)
            ).all()
            for env in envs:
                if env.reveal_claimed_at is not None and now - env.reveal_claimed_at < timedelta(minutes=1):
                    continue  # a reveal is opening right now
                env.ciphertext = None
                env.purged_at = now
                audit.record(s, action="credentials_expired", actor="iam-bot", now=now, request_id=env.request_id)
                purged.append((env.request_id, env.dm_channel_id, env.dm_ts))
        for request_id, channel, ts in purged:
            if channel and ts:
                with self.sm.begin() as s:
                    req = s.get(AccessRequest, request_id)
                    assert req is not None
                    message = ui.credentials_gone_message(req, revealed_at=None)
                try:
                    self.notifier.client.chat_update(channel=channel, ts=ts, **message)
                except SlackApiError as exc:
                    log.warning("could not update expired credentials DM: %s", exc.response.get("error"))
            self.notifier.refresh_homes(request_id, now=now)
        return len(purged)
