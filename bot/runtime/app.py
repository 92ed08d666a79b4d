"""The composition root: every part built once from the settings (`build`), and the Bolt app wired
to the handlers (`create_app`, the only place Bolt is wired). Nothing below this layer knows Bolt
or the handlers; the handlers know only the workflows they are given (handlers.Services)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta

from cryptography.fernet import Fernet
from slack_sdk import WebClient
from sqlalchemy import Engine

import handlers
from bot.common.clock import Clock, utcnow
from bot.common.errors import ConfigError
from bot.common.logcontext import ContextExecutor
from bot.common.sql import SessionMaker
from bot.credentials.vault import Vault
from bot.iam.accounts import Accounts
from bot.iam.gateway import BotoSession, IamGateway
from bot.requests.scope import Scopes
from bot.iam.kms import KmsDataKeys
from bot.domain.hygiene import Thresholds
from bot.policy.rule_lint import never_effective
from bot.requests.planner import Required
from bot.jobs.applying import ApplyJob
from bot.jobs.delivery import Delivery
from bot.jobs.housekeeping import Housekeeping
from bot.jobs.expiry import Expiries
from bot.jobs.grant_ends import GrantEnds
from bot.jobs.key_retirement import KeyRetirements
from bot.jobs.mfa_watch import MfaWatcher
from bot.jobs.planning import PlanJob
from bot.jobs.queue import JobQueue
from bot.jobs.reevaluation import Reevaluation
from bot.jobs.reminders import ReminderService
from bot.jobs.schedule import Schedule
from bot.jobs.worker import Worker
from bot.policy.rulebook import Rulebook
from bot.runtime.audit_key import audit_keys
from bot.runtime.db import make_engine, make_sessionmaker
from bot.runtime.middleware import OnceApp, drop_repeated_deliveries, slack_context_middleware
from bot.runtime.settings import DEFAULT_DATABASE_URL, Settings, local_key_file, rulebook_for
from bot.slack.client import make_web_client
from bot.slack.directory import Directory
from bot.slack.inbound import RecentKeys
from bot.slack.notifier import Notifier
from bot.workflows.announce import Announcer
from bot.workflows.audit_anchor import AuditAnchoring
from bot.workflows.credential_requests import CredentialRequests
from bot.workflows.audit_export import AuditExport
from bot.workflows.decisions import Decisions
from bot.workflows.changes import Changes
from bot.workflows.departures import Departures
from bot.workflows.extensions import Extensions
from bot.workflows.hygiene import Hygiene
from bot.workflows.removals import Removals
from bot.workflows.owner_keys import OwnerKeys
from bot.workflows.request_form import RequestForm
from bot.workflows.requesters import Requesters
from bot.workflows.reveal import Reveal
from bot.workflows.status import StatusDesk
from models import JobKind

log = logging.getLogger(__name__)


@dataclass
class Components:
    """Everything `iam-bot serve` runs, built once. The runners, the CLI, the demo and the tests hold it;
    no part of the core receives it (each gets only its own collaborators)."""

    settings: Settings
    engine: Engine
    sessionmaker: SessionMaker
    clock: Clock
    rulebook: Rulebook
    vault: Vault
    iam: IamGateway  # the bot's own account
    accounts: Accounts  # and the member accounts (IAM_BOT_ACCOUNTS), each with its IamGateway
    client: WebClient
    notifier: Notifier
    directory: Directory
    announcer: Announcer
    status: StatusDesk
    form: RequestForm
    decisions: Decisions
    reveal: Reveal
    audit_export: AuditExport
    queue: JobQueue
    delivery: Delivery
    reminders: ReminderService
    housekeeping: Housekeeping
    worker: Worker
    audit_anchoring: AuditAnchoring
    owner_keys: OwnerKeys
    credential_requests: CredentialRequests
    key_retirements: KeyRetirements
    hygiene: Hygiene
    removals: Removals
    departures: Departures
    extensions: Extensions
    expiries: Expiries
    changes: Changes
    grant_ends: GrantEnds
    mfa_watcher: MfaWatcher
    schedules: list[Schedule]

    @property
    def services(self) -> handlers.Services:
        return handlers.Services(
            form=self.form, decisions=self.decisions, reveal=self.reveal, status=self.status, audit_export=self.audit_export, notifier=self.notifier,
            keys=self.owner_keys, credential_requests=self.credential_requests, hygiene=self.hygiene, removals=self.removals, departures=self.departures, extensions=self.extensions,
            changes=self.changes,
        )


def required_of(settings: Settings) -> Required:
    """What every new user gets: the MFA group or policy of IAM_BOT_MFA_REQUIRE, if set."""
    return Required(groups=(settings.mfa_group,) if settings.mfa_group else (), policy_arns=(settings.mfa_policy,) if settings.mfa_policy else ())


def encryption_keys(settings: Settings) -> list[str]:
    """The configured keys; for the local default SQLite file only, a generated key kept beside it.

    With IAM_BOT_KMS_KEY_ID the Fernet keys only open envelopes sealed before it: none is generated
    then (a local one that exists is still read).
    """
    if settings.encryption_keys:
        return settings.encryption_keys
    if not settings.generated_key_allowed:
        if settings.kms_key_id:
            return []
        raise ConfigError(
            f"IAM_BOT_ENCRYPTION_KEY: required unless DATABASE_URL is the local default ({DEFAULT_DATABASE_URL}): "
            "a generated key would sit beside the database and in its backups"
        )
    path = local_key_file(settings)
    if not path.exists():
        if settings.kms_key_id:
            return []
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(Fernet.generate_key().decode())
        log.warning("IAM_BOT_ENCRYPTION_KEY is not set: generated a local key in %s (fine for local use only)", path)
    return [path.read_text().strip()]


def make_vault(settings: Settings, boto_session: BotoSession | None = None) -> Vault:
    """The vault of `serve` and `iam-bot keys rotate`: AWS KMS data keys with IAM_BOT_KMS_KEY_ID, else Fernet."""
    data_keys = KmsDataKeys(settings.kms_key_id, boto_session) if settings.kms_key_id else None
    return Vault(encryption_keys(settings), data_keys=data_keys)


def accounts_for(settings: Settings, boto_session: BotoSession | None = None) -> Accounts:
    """The bot's own account, and the member accounts of IAM_BOT_ACCOUNTS / IAM_BOT_ORGANIZATION with their role."""
    return Accounts(
        boto_session, members=settings.accounts, role=settings.account_role, external_id=settings.account_external_id or None,
        organization=settings.organization, duration=timedelta(seconds=settings.account_session_seconds),
    )


def build(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    boto_session: BotoSession | None = None,
    client: WebClient | None = None,
    worker_id: str | None = None,
    housekeeping: bool = True,
) -> Components:
    """`housekeeping=False`: the worker runs jobs only; reminders, expiry and purges are left to the caller (tests)."""
    engine = make_engine(settings.database_url)
    keys = audit_keys(settings)
    assert keys is not None  # generate=True: a key, or ConfigError
    sm = make_sessionmaker(engine, audit_keys=keys)  # every audit event is signed with the newest audit key
    rulebook = rulebook_for(settings)  # ConfigError with line numbers for a bad IAM_BOT_RULES file
    for line in never_effective(rulebook, path_prefix=settings.user_path_prefix):
        log.warning("IAM_BOT_RULES: %s", line)  # `iam-bot doctor` shows the same
    vault = make_vault(settings, boto_session)
    accounts = accounts_for(settings, boto_session)
    iam = accounts.own()
    client = client or make_web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    notifier = Notifier(client, audit_channel=settings.audit_channel)
    directory = Directory(client)
    lease = timedelta(seconds=settings.job_lease_seconds)
    request_ttl = timedelta(hours=rulebook.request_ttl_hours or settings.request_ttl_hours)  # the rules file wins
    queue = JobQueue(sessionmaker=sm, clock=clock, worker_id=worker_id, lease=lease)
    wake = lambda: worker.wake()  # noqa: E731 - the worker is built last; approvals wake it
    requesters = Requesters(rulebook=rulebook, directory=directory)
    required = required_of(settings)
    scopes = Scopes(accounts, rulebook=rulebook, path_prefix=settings.user_path_prefix, boundary_setting=settings.permissions_boundary or None, required=required)
    status = StatusDesk(sessionmaker=sm, notifier=notifier, directory=directory, rulebook=rulebook, clock=clock)
    announcer = Announcer(
        sessionmaker=sm, notifier=notifier, directory=directory, rulebook=rulebook, requesters=requesters,
        approval_channel=settings.approval_channel, publish_home=status.publish_home,
    )
    decisions = Decisions(
        sessionmaker=sm, notifier=notifier, directory=directory, rulebook=rulebook, requesters=requesters, announcer=announcer, clock=clock, wake=wake
    )
    deliver_held = lambda owner_id: delivery.deliver_held(owner_id)  # noqa: E731 - built below; a key registered sends what waited for it
    owner_keys = OwnerKeys(sessionmaker=sm, publish_home=status.publish_home, key_registered=deliver_held, file_only=rulebook.file_only, clock=clock)
    form = RequestForm(
        sessionmaker=sm, scopes=scopes, notifier=notifier, rulebook=rulebook, requesters=requesters,
        request_ttl=request_ttl, clock=clock, wake=wake, key_label=owner_keys.label_of,
    )
    reveal = Reveal(sessionmaker=sm, vault=vault, notifier=notifier, publish_home=status.publish_home, clock=clock)
    audit_anchoring = AuditAnchoring(sessionmaker=sm, keys=keys, notifier=notifier, clock=clock)
    audit_export = AuditExport(sessionmaker=sm, notifier=notifier, is_approver=status.is_approver, clock=clock, anchoring=audit_anchoring)
    # A DM whose outcome is unknown is looked up in Slack before it is sent again: 30 s (3 leases) lets a Slack slow to answer (rate limits) finish first.
    delivery = Delivery(
        sessionmaker=sm, notifier=notifier, clock=clock, retry_after=3 * lease, refresh_homes=announcer.refresh_homes_of,
        vault=vault, file_only=rulebook.file_only,
    )
    reminders = ReminderService(
        sessionmaker=sm, notifier=notifier, directory=directory, announcer=announcer, clock=clock,
        reminders=rulebook.reminders, default_approvers=rulebook.default_approvers,
    )
    keeping = Housekeeping(sessionmaker=sm, clock=clock)
    reevaluation = Reevaluation(sessionmaker=sm, rulebook=rulebook, announcer=announcer, clock=clock)
    plan_job = PlanJob(
        sessionmaker=sm, queue=queue, scopes=scopes, rulebook=rulebook, announcer=announcer, clock=clock, request_ttl=request_ttl, wake=wake,
    )
    apply_job = ApplyJob(
        sessionmaker=sm, queue=queue, scopes=scopes, vault=vault, announcer=announcer, delivery=delivery, clock=clock,
        credentials_ttl=timedelta(hours=settings.credentials_ttl_hours), rulebook=rulebook,
        key_grace=timedelta(days=settings.key_rotation_grace_days), watch_mfa=bool(settings.mfa_require),
        expiry_grace=timedelta(days=settings.expiry_grace_days),
    )
    credential_requests = CredentialRequests(sessionmaker=sm, is_approver=status.is_approver, clock=clock, wake=wake, self_service=rulebook.self_service)
    removals = Removals(sessionmaker=sm, is_approver=status.is_approver, clock=clock, wake=wake, deny=decisions.deny)
    departures = Departures(sessionmaker=sm, directory=directory, clock=clock, wake=wake)
    extensions = Extensions(sessionmaker=sm, rulebook=rulebook, is_approver=status.is_approver, clock=clock, wake=wake)
    expiries = Expiries(sessionmaker=sm, notifier=notifier, directory=directory, default_approvers=rulebook.default_approvers, clock=clock, wake=wake)
    changes = Changes(
        sessionmaker=sm, scopes=scopes, notifier=notifier, rulebook=rulebook, requesters=requesters, is_approver=status.is_approver,
        request_ttl=request_ttl, clock=clock, wake=wake,
    )
    grant_ends = GrantEnds(sessionmaker=sm, notifier=notifier, clock=clock, wake=wake)
    key_retirements = KeyRetirements(sessionmaker=sm, accounts=accounts, notifier=notifier, clock=clock)
    hygiene = Hygiene(
        sessionmaker=sm, accounts=accounts, notifier=notifier, directory=directory, is_approver=status.is_approver, clock=clock,
        thresholds=Thresholds(key_age_days=settings.key_max_age_days, unused_days=settings.unused_days), nudge_days=settings.key_nudge_days,
        channel=settings.report_channel,
    )
    mfa_watcher = MfaWatcher(
        sessionmaker=sm, accounts=accounts, notifier=notifier, directory=directory, default_approvers=rulebook.default_approvers, clock=clock,
        remind_after=timedelta(days=settings.mfa_remind_days), escalate_after=timedelta(days=settings.mfa_escalate_days), wake=wake,
    )
    schedules = [
        Schedule("key_nudges", hygiene.nudge, every=timedelta(days=1), sessionmaker=sm, clock=clock),
        Schedule("owner_check", departures.check_owners, every=timedelta(days=1), sessionmaker=sm, clock=clock),
    ]
    if settings.report_channel:
        schedules.append(Schedule("hygiene_report", hygiene.post_scheduled, every=timedelta(days=settings.report_every_days), sessionmaker=sm, clock=clock))
    worker = Worker(
        queue,
        runners={JobKind.PLAN.value: plan_job.run, JobKind.APPLY.value: apply_job.run},
        housekeeping=[reevaluation.run_once, plan_job.finish_bundles, delivery.deliver_pending, delivery.purge_expired, keeping.purge_stale_drafts, keeping.purge_deliveries, reminders.run_due,
                      audit_anchoring.run_due, key_retirements.run_due, mfa_watcher.run_due, expiries.run_due, grant_ends.run_due, *(schedule.run_due for schedule in schedules)]
        if housekeeping
        else [],
        poll_seconds=settings.worker_poll_seconds,
        # Housekeeping (DM retries, expiry, reminders) at least once per lease, so recovery waits no longer than that.
        housekeeping_seconds=min(30.0, settings.job_lease_seconds),
    )
    return Components(
        settings=settings, engine=engine, sessionmaker=sm, clock=clock, rulebook=rulebook, vault=vault, iam=iam, accounts=accounts, client=client,
        notifier=notifier, directory=directory, announcer=announcer, status=status, form=form, decisions=decisions, reveal=reveal,
        audit_export=audit_export, queue=queue, delivery=delivery, reminders=reminders, housekeeping=keeping, worker=worker,
        audit_anchoring=audit_anchoring, owner_keys=owner_keys, credential_requests=credential_requests, key_retirements=key_retirements,
        hygiene=hygiene, removals=removals, departures=departures, extensions=extensions, expiries=expiries, mfa_watcher=mfa_watcher, changes=changes, grant_ends=grant_ends,
        schedules=schedules,
    )


LISTENER_THREADS = 256  # listeners waiting to send an ack, or for a work slot: mostly idle threads
WORK_SLOTS = 8  # listeners working after their ack at once (database, Slack calls); the database pool has 10 + 20


def create_app(settings: Settings, components: Components) -> OnceApp:
    app = OnceApp(
        # Bolt copies its base logger's level into every logger it makes; clamped (bot.runtime.logsetup)
        # so a DEBUG run never logs request or response bodies.
        logger=logging.getLogger("slack_bolt"),
        signing_secret=settings.slack_signing_secret or None,
        client=components.client,
        # Listeners run in this pool; each gets a copy of the delivery's log context. A listener must
        # start for its ack() to be sent, so the pool is large (threads are made only when needed)
        # and never busy with work after an ack: that waits for one of WORK_SLOTS (ClaimingAck).
        listener_executor=(pool := ContextExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener")),
        token_verification_enabled=False,  # no auth.test at start: start-up must not depend on Slack
        request_verification_enabled=not settings.socket_mode,
        raise_error_for_unhandled_request=False,
    )
    app.listener_pool = pool
    app.work_slots = threading.BoundedSemaphore(WORK_SLOTS)  # before the listeners are registered: each holds it
    app.recent_deliveries = RecentKeys()
    app.middleware(slack_context_middleware)  # first: every later line knows which delivery it is about
    app.middleware(drop_repeated_deliveries(components.sessionmaker, components.clock, app.recent_deliveries))
    handlers.register(app, components.services)
    return app
