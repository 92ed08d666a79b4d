"""Thin Bolt listeners: ack() first, parse the payload, call one workflow, answer with the builders.

The handlers declare what they need (`Services`); the runtime (bot.runtime.app) builds it and calls
`register`. They import no models, no SQLAlchemy, no AWS and no Slack Web API client.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt import App

from bot.slack.notifier import Notifier
from bot.workflows.audit_export import AuditExport
from bot.workflows.changes import Changes
from bot.workflows.credential_requests import CredentialRequests
from bot.workflows.decisions import Decisions
from bot.workflows.departures import Departures
from bot.workflows.extensions import Extensions
from bot.workflows.hygiene import Hygiene
from bot.workflows.removals import Removals
from bot.workflows.owner_keys import OwnerKeys
from bot.workflows.request_form import RequestForm
from bot.workflows.reveal import Reveal
from bot.workflows.status import StatusDesk


@dataclass(frozen=True)
class Services:
    form: RequestForm
    decisions: Decisions
    reveal: Reveal
    status: StatusDesk
    audit_export: AuditExport
    notifier: Notifier  # private answers (refusals) where a click happened, and error DMs
    keys: OwnerKeys
    credential_requests: CredentialRequests  # /iam rotate-key, /iam reset-password
    hygiene: Hygiene  # /iam report, and its Remind owner
    removals: Removals  # /iam disable, /iam offboard
    departures: Departures  # an owner who left: their users offboarded, with approval
    extensions: Extensions  # /iam extend
    changes: Changes  # /iam change, and time-bound grants' I'm done and Extend


def register(app: App, services: Services) -> None:
    from handlers import approvals, break_glass, changes, commands, errors, home, hygiene, messages, request_form, reveal

    for module in (errors, commands, request_form, approvals, break_glass, reveal, messages, home, hygiene, changes):
        module.register(app, services)
