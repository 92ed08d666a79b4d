"""`/iam audit [--since YYYY-MM-DD]`: approvers get the audit export as a file in their DM, anchored
(the chain's head posted to the audit channel and written as the file's last record)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from bot.audit import trail
from bot.common.sql import SessionMaker
from bot.slack import ui
from bot.slack.notifier import Notifier
from bot.workflows.audit_anchor import AuditAnchoring


class AuditExport:
    def __init__(
        self, *, sessionmaker: SessionMaker, notifier: Notifier, is_approver: Callable[[str], bool], clock: Callable[[], datetime],
        anchoring: AuditAnchoring,
    ):
        self.sm = sessionmaker
        self.anchoring = anchoring
        self.notifier = notifier
        self.is_approver = is_approver
        self.clock = clock

    def export(self, *, user_id: str, args: str) -> str:
        """What to answer, privately: where the file went, or why not."""
        if not self.is_approver(user_id):
            return "Only designated approvers can export the audit log."
        since = None
        words = args.split()
        if words:
            if len(words) != 2 or words[0] != "--since":
                return "Usage: `/iam audit [--since YYYY-MM-DD]`"
            try:
                since = datetime.fromisoformat(words[1])
            except ValueError:
                return f"`{ui.esc(ui.clip(words[1], 40))}` is not a date; use YYYY-MM-DD, e.g. `/iam audit --since 2026-01-01`."
            since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        anchored = self.anchoring.anchor(reason="export", actor=user_id)
        with self.sm.begin() as s:
            data = trail.export_text(s, since=since, fmt="csv", anchor=anchored.anchor)
            trail.record(s, action="audit_exported", actor=user_id, now=self.clock(), since=words[1] if words else None)
        rows = max(0, data.count("\n") - 1 - (1 if anchored.anchor else 0))
        if anchored.anchor:
            token = anchored.anchor.token
            where = " (also posted in the audit channel)" if anchored.posted else ""
            check = f"Its last line is the anchor `{token}`{where}: `iam-bot audit verify --anchor {token}` checks the log against it."
        else:
            check = f"Not anchored: {anchored.problem}."
        sent = self.notifier.upload_to_dm(
            user_id,
            content=data,
            filename=f"iam-bot-audit-{self.clock():%Y%m%d-%H%M%S}.csv",
            title="iam-bot audit log",
            comment=f"The audit log{' since ' + words[1] if words else ''}: {rows} events. {check}",
        )
        if not sent:
            return "Slack refused the file upload; an operator can run `iam-bot audit export` instead."
        return f"Sent the audit log ({rows} events) to your DM with me."
