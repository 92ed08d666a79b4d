"""Slack side effects of the lifecycle: approval messages and their updates, DMs to people."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.policy import approval as rules
from bot.requests import usecases
from bot.runtime.db import SessionMaker
from bot.slack.directory import Directory
from bot.policy.rulebook import Rulebook
from bot.runtime.settings import Settings
from bot.domain.spec import CopiedPermissions
from bot.slack.ui import blocks as ui
from models import AccessRequest, ApprovalMessage

log = logging.getLogger(__name__)


class Notifier:
    def __init__(
        self,
        *,
        client: WebClient,
        sessionmaker: SessionMaker,
        settings: Settings,
        rulebook: Rulebook | None = None,
        directory: Directory | None = None,
    ):
        self.client = client
        self.sm = sessionmaker
        self.settings = settings
        self.rulebook = rulebook or Rulebook.default(settings.approvers)
        self.directory = directory or Directory(client)

    # ---- who approves (rules name users and Slack user groups) ----

    def approver_view(self, user_id: str) -> tuple[frozenset[str], tuple[str, ...]]:
        """The approvers as Home and status see them (everyone the rules name, plus this person if
        they are in a group the rules name), and which of those groups this person is in.
        Membership is cached briefly: this only decides what is shown, never who may decide."""
        groups = self.directory.groups_of(user_id, sorted(self.rulebook.known_approver_groups), fresh=False)
        return self.rulebook.known_approver_users | ({user_id} if groups else frozenset()), groups

    def approver_set(self, user_id: str) -> frozenset[str]:
        return self.approver_view(user_id)[0]

    def eligible_approvers(self, req: AccessRequest, *, fresh: bool = True) -> list[str]:
        """The people who may decide on `req` now: its users, and its groups' members, never its requester or owner.

        Calls Slack for groups: call it with `req` loaded, outside a transaction."""
        users, groups = usecases.approvers_of(req, default_approvers=self.rulebook.default_approvers)
        everyone = self.directory.expand([*users, *groups], fresh=fresh)
        return rules.eligible_approvers(approvers=frozenset(everyone), requester_id=req.requester_id, owner_id=req.owner_id)

    def dm(self, user_id: str, message: dict[str, Any]) -> tuple[str, str]:
        channel = self.client.conversations_open(users=user_id)["channel"]["id"]
        resp = self.client.chat_postMessage(channel=channel, **message)
        return resp["channel"], resp["ts"]

    def find_dm(self, user_id: str, *, event_type: str, request: str) -> tuple[str, str] | None:
        """A DM of ours to `user_id` that carries this metadata, among the latest ones, if any.

        Used before re-sending a DM whose first attempt had no known outcome (the process died
        while Slack was answering), so the person gets it once.
        """
        channel = self.client.conversations_open(users=user_id)["channel"]["id"]
        history = self.client.conversations_history(channel=channel, limit=50, include_all_metadata=True)
        for message in history.get("messages") or []:
            meta = message.get("metadata") or {}
            if meta.get("event_type") == event_type and (meta.get("event_payload") or {}).get("request") == request:
                return channel, message["ts"]
        return None

    def dm_quietly(self, user_id: str, message: dict[str, Any], *, what: str) -> bool:
        """A DM whose loss must not undo the change it reports (the change is already committed)."""
        try:
            self.dm(user_id, message)
            return True
        except SlackApiError as exc:
            log.warning("could not DM %s: %s (%s)", user_id, what, exc.response.get("error"))
            return False

    def ephemeral(self, *, channel: str, user: str, text: str) -> None:
        """Tell one person privately where they clicked; by DM when there is no such place."""
        if not channel:
            self.dm_quietly(user, {"text": text}, what="refusal")
            return
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            # Not in that channel (or a DM we cannot post to): tell them by DM instead of going silent.
            log.info("ephemeral failed (%s); sending a DM", exc.response.get("error"))
            self.dm_quietly(user, {"text": text}, what="refusal")

    def announce_change(self, request_id: int, *, now: datetime) -> None:
        """After a request changes state, everyone who can see it sees the new state: the messages
        that carried its buttons, the audit channel, and the App Home of whoever it concerns."""
        self.refresh_approval_messages(request_id)
        with self.sm.begin() as s:
            req = s.get(AccessRequest, request_id)
            assert req is not None
            line = ui.audit_line(req)
        self.audit_notice(line)
        self.refresh_homes(request_id, now=now)

    def publish_home(self, user_id: str, *, now: datetime) -> None:
        approvers, groups = self.approver_view(user_id)
        with self.sm.begin() as s:
            data = usecases.home_data(
                s, user_id=user_id, approvers=approvers, now=now, user_groups=groups, default_approvers=self.rulebook.default_approvers
            )
            view = ui.home_view(user_id=user_id, data=data)
        try:
            self.client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.warning("home tab of %s not published: %s", user_id, exc.response.get("error"))

    def refresh_homes(self, request_id: int, *, now: datetime) -> None:
        """Everyone whose App Home shows this request sees its new state."""
        with self.sm.begin() as s:
            req = s.get(AccessRequest, request_id)
            named = usecases.approvers_of(req, default_approvers=self.rulebook.default_approvers) if req else ([], [])
        approvers = frozenset(self.directory.expand([*named[0], *named[1]], fresh=False))  # Slack, outside the transaction
        with self.sm.begin() as s:
            people = usecases.people_to_refresh(s, request_id=request_id, approvers=approvers)
        for user_id in sorted(people):
            self.publish_home(user_id, now=now)

    def audit_notice(self, text: str) -> None:
        """One line in IAM_BOT_AUDIT_CHANNEL per decision and per created user, when configured."""
        if not self.settings.audit_channel:
            return
        try:
            self.client.chat_postMessage(channel=self.settings.audit_channel, text=text)
        except SlackApiError as exc:
            log.warning("audit channel notice not sent: %s", exc.response.get("error"))

    def post_approval_requests(self, request_id: int, *, copied: CopiedPermissions | None = None, only_to: list[str] | None = None) -> int:
        """Send the request with Approve/Deny to the approval channel or to each approver's DM.

        `only_to`: user ids to add (escalation); the approval channel, which everyone reads, is then not posted to again.
        """
        with self.sm.begin() as s:
            req = s.get(AccessRequest, request_id)
            assert req is not None
            message = ui.approval_message(req, copied=copied)
            requester, owner = req.requester_id, req.owner_id
            users, groups = usecases.approvers_of(req, default_approvers=self.rulebook.default_approvers)
        if only_to is not None:
            targets = [u for u in only_to if u not in (requester, owner)]
        elif self.settings.approval_channel:
            targets = [self.settings.approval_channel]
        else:
            everyone = self.directory.expand([*users, *groups])  # group members read now
            targets = rules.eligible_approvers(approvers=frozenset(everyone), requester_id=requester, owner_id=owner)
        posted = []
        for target in targets:
            try:
                if target.startswith(("U", "W")):
                    posted.append(self.dm(target, message))
                else:
                    resp = self.client.chat_postMessage(channel=target, **message)
                    posted.append((resp["channel"], resp["ts"]))
            except SlackApiError as exc:
                log.error("could not send request %s to %s: %s", request_id, target, exc.response.get("error"))
        with self.sm.begin() as s:
            for channel, ts in posted:
                s.add(ApprovalMessage(request_id=request_id, channel_id=channel, ts=ts))
        return len(posted)

    def thread_reply(self, request_id: int, message: dict[str, Any]) -> int:
        """A reply in the thread of every approval message of the request (reminders: no new flood)."""
        with self.sm.begin() as s:
            places = [(m.channel_id, m.ts) for m in s.scalars(select(ApprovalMessage).where(ApprovalMessage.request_id == request_id))]
        sent = 0
        for channel, ts in places:
            try:
                self.client.chat_postMessage(channel=channel, thread_ts=ts, **message)
                sent += 1
            except SlackApiError as exc:
                log.warning("could not reply in %s/%s: %s", channel, ts, exc.response.get("error"))
        return sent

    def refresh_approval_messages(self, request_id: int) -> None:
        """After any change, every message that carried buttons shows the outcome and who decided."""
        with self.sm.begin() as s:
            req = s.get(AccessRequest, request_id)
            assert req is not None
            message = ui.approval_message(req)
            places = [(m.channel_id, m.ts) for m in s.scalars(select(ApprovalMessage).where(ApprovalMessage.request_id == request_id))]
        for channel, ts in places:
            try:
                self.client.chat_update(channel=channel, ts=ts, **message)
            except SlackApiError as exc:
                log.warning("could not update approval message %s/%s: %s", channel, ts, exc.response.get("error"))

    def approver_recipients(self, req: AccessRequest) -> list[str]:
        """Who to tell about a failure: the approver who decided, else all eligible approvers."""
        if req.decided_by and req.decided_by.startswith(("U", "W")) and not req.break_glass:
            return [req.decided_by]
        return self.eligible_approvers(req, fresh=False)
