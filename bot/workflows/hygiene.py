"""The hygiene report (`/iam report`, and on a schedule to a channel), the owners' nudges before a key
gets old, and the report's "Remind owner".

Everything starts from IAM's credential report: one call for the whole account, whatever its size.
The judging is pure (bot.domain.hygiene); this module fetches, judges, and says it in Slack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from bot.audit import trail as audit
from bot.common.constants import BOT_ACTOR
from bot.common.sql import SessionMaker, notice_once, noticed
from bot.domain.hygiene import CredentialRow, Finding, FindingKind, Thresholds, findings, parse_credential_report
from bot.iam.errors import AwsError
from bot.domain.accounts import OWN, parse_target
from bot.iam.accounts import AccountUnknown, Accounts
from bot.requests import store
from bot.slack.directory import Directory
from bot.slack.notifier import Notifier
from bot.slack.ui.nudges import key_nudge, owner_reminder
from bot.slack.ui.report import MAX_USERS, report_file, report_message
from bot.slack.ui.text import esc

log = logging.getLogger(__name__)

KEY_FINDINGS = {FindingKind.OLD_KEY, FindingKind.UNUSED_KEY}
# Scheduled runs happen in the worker's thread, between jobs: they do not wait long for IAM to make the
# report, and the schedule tries again a few minutes later, when it is ready.
SCHEDULED_WAIT = 3.0


@dataclass(frozen=True)
class Report:
    rows: list[CredentialRow]
    found: list[Finding]
    generated_at: datetime
    account: str  # as IAM shows it: the alias or the id
    owners: dict[str, str]  # the users the bot has, by lower-cased name, to their owner (read once, with the report)
    account_name: str = ""  # the member account's name in IAM_BOT_ACCOUNTS ("": the bot's own)

    @property
    def users_with_findings(self) -> int:
        return len({f.user for f in self.found})


class Hygiene:
    def __init__(
        self, *, sessionmaker: SessionMaker, accounts: Accounts, notifier: Notifier, directory: Directory, is_approver: Callable[[str], bool],
        clock: Callable[[], datetime], thresholds: Thresholds, nudge_days: int, channel: str = "",
    ):
        self.sm = sessionmaker
        self.accounts = accounts  # one report per account: IAM's credential report covers one
        self.notifier = notifier
        self.directory = directory
        self.is_approver = is_approver
        self.clock = clock
        self.thresholds = thresholds
        self.nudge_days = nudge_days
        self.channel = channel
        self.report_wait = 20.0  # seconds `/iam report` waits for IAM to make the report (the answer can wait: it was acked)

    # ---------------------------------------------------------------- the report

    def take(self, *, account: str = OWN, wait_seconds: float = 20.0) -> Report:
        """IAM's credential report of `account`, judged now; raises AwsError (ReportInProgress while IAM is still making it)."""
        iam = self.accounts.gateway(account)
        content, generated = iam.credential_report(wait_seconds=wait_seconds)
        rows = parse_credential_report(content)
        with self.sm.begin() as s:
            managed = store.managed_users(s, account=account)
        owners = {r.user: managed[r.user.lower()] for r in rows if r.user.lower() in managed}
        departed = self.directory.departed(owners.values())
        found = findings(rows, now=self.clock(), thresholds=self.thresholds, owners=owners, departed=departed)
        shown = iam.console_url()[1]
        return Report(rows=rows, found=found, generated_at=generated, account=f"{account} ({shown})" if account else shown, owners=managed,
                      account_name=account)

    def _message(self, report: Report) -> dict[str, Any]:
        return report_message(
            report.found, account=report.account, generated_at=report.generated_at, total_users=len(report.rows), thresholds=self.thresholds,
            in_account=report.account_name,
        )

    def _which(self, text: str) -> str | dict[str, Any]:
        """The account `/iam report [account]` is about, or the answer asking to name one."""
        named = text.strip().split()[0] if text.strip() else ""
        if not self.accounts.several:
            return OWN
        known = self.accounts.names()
        if named in known:
            return named
        listed = ", ".join(f"`{esc(n)}`" for n in known[:20])
        return {"text": f"Name the account, as in `/iam report {esc(known[0]) if known else 'prod'}`: the bot serves {listed}."}

    def _file(self, report: Report) -> tuple[bytes, str]:
        return report_file(report.found, account=report.account, generated_at=report.generated_at), f"iam-hygiene-{report.generated_at:%Y%m%d-%H%M}.csv"

    def on_demand(self, *, user_id: str, text: str = "") -> dict[str, Any]:
        """`/iam report [account]`: the report as a private answer, with every finding as a file in a DM when they do not all fit."""
        if not self.is_approver(user_id):
            return {"text": "Only designated approvers can see the hygiene report: it lists every IAM user in the account."}
        account = self._which(text)
        if isinstance(account, dict):
            return account
        try:
            report = self.take(account=account, wait_seconds=self.report_wait)
        except AwsError as exc:
            return {"text": f"I could not read IAM's credential report. {exc.explain()}"}
        with self.sm.begin() as s:
            audit.record(s, action="hygiene_report", actor=user_id, now=self.clock(), users=len(report.rows), findings=len(report.found),
                         **({"account": account} if account else {}))
        answer = self._message(report)
        if report.users_with_findings > MAX_USERS:
            data, name = self._file(report)
            sent = self.notifier.upload_to_dm(user_id, content=data.decode("utf-8"), filename=name, title="IAM hygiene report",
                                              comment=f"Every finding of the hygiene report ({len(report.found):,}), as CSV.")
            answer["text"] += " Every finding is in the CSV file in your DM with me." if sent else " Slack refused the CSV file; ask again later."
        return answer

    def post_scheduled(self) -> None:
        """The scheduled report to IAM_BOT_REPORT_CHANNEL, one per account; raises (and the schedule tries again soon) if
        one could not be made or posted (an account whose report went out this round is not posted again)."""
        failed = []
        for account in self.accounts.names():
            try:
                self._post_one(account)
            except (AwsError, AccountUnknown) as exc:
                log.warning("hygiene report of %s not posted: %s", account or "the account", getattr(exc, "code", type(exc).__name__))
                failed.append(account or "the bot's account")
        if failed:
            raise AwsError("ReportInProgress", f"not yet posted for {', '.join(failed)}", action="GetCredentialReport")

    def _post_one(self, account: str) -> None:
        now = self.clock()
        posted = f"hygiene-report:{account}:{now:%Y-%m-%dT%H}"  # a retry within the hour skips the accounts already posted
        with self.sm.begin() as s:
            if noticed(s, key=posted):
                return
        report = self.take(account=account, wait_seconds=SCHEDULED_WAIT)
        msg = self._message(report)
        _, ts = self.notifier.post(self.channel, msg)
        if report.users_with_findings > MAX_USERS:
            data, name = self._file(report)
            file_id, url = self.notifier.start_upload(filename=name, length=len(data))
            self.notifier.upload_bytes(url, data)
            self.notifier.complete_upload(file_id=file_id, title="IAM hygiene report", channel=self.channel,
                                          comment="Every finding of this report, as CSV.")
        with self.sm.begin() as s:
            notice_once(s, key=posted, now=now)
            audit.record(s, action="hygiene_report", actor=BOT_ACTOR, now=self.clock(), users=len(report.rows), findings=len(report.found),
                         channel=self.channel, ts=ts, **({"account": account} if account else {}))

    # ---------------------------------------------------------------- owners

    def nudge(self) -> int:
        """DM each owner whose key nears the rotation age, once per key (across replicas), in every account; how many were sent."""
        return sum(self._nudge(self.take(account=account, wait_seconds=SCHEDULED_WAIT)) for account in self.accounts.names())

    def _nudge(self, report: Report) -> int:
        now, sent = self.clock(), 0
        from_age = max(0, self.thresholds.key_age_days - self.nudge_days)
        for row in report.rows:
            owner = report.owners.get(row.user.lower())
            if owner is None:
                continue
            for key in row.keys:
                if not key.active or key.last_rotated is None:
                    continue
                age = (now - key.last_rotated).days
                if age < from_age:
                    continue
                with self.sm.begin() as s:
                    # The key's creation time tells it from the next key in the same slot.
                    where = f"{report.account_name}:" if report.account_name else ""
                    if not notice_once(s, key=f"key-nudge:{where}{row.user.lower()}:{key.slot}:{key.last_rotated.isoformat()}", now=now):
                        continue
                    audit.record(s, action="key_nudged", actor=BOT_ACTOR, now=now, user_name=row.user, owner_id=owner, key_slot=key.slot, age_days=age)
                notice = key_nudge(user_name=row.user, slot=key.slot, age_days=age, max_age_days=self.thresholds.key_age_days)
                self.notifier.dm_quietly(owner, notice, what="key nudge")
                sent += 1
        return sent

    def remind_owner(self, *, actor: str, user_name: str) -> str:
        """The report's "Remind owner": DM the owner this user's findings now; what to tell the approver who clicked."""
        if not self.is_approver(actor):
            return "Only designated approvers can remind owners from the hygiene report."
        account, user_name = parse_target(user_name)  # `prod:alice` from a member account's report
        try:
            report = self.take(account=account, wait_seconds=self.report_wait)
        except AccountUnknown as exc:
            return f"{exc}, so nobody was reminded."
        except AwsError as exc:
            return f"I could not read IAM's credential report, so nobody was reminded. {exc.explain()}"
        mine = [f for f in report.found if f.user == user_name and f.kind is not FindingKind.UNMANAGED]
        owner = report.owners.get(user_name.lower())
        if owner is None:
            return f"`{esc(user_name)}` has no owner on record: the bot did not create it."
        notice = owner_reminder(user_name=user_name, details=[f.detail for f in mine], by=actor, rotate=any(f.kind in KEY_FINDINGS for f in mine))
        if not self.notifier.dm_quietly(owner, notice, what="hygiene reminder"):
            return f"Slack would not let me DM <@{owner}>; please tell them yourself."
        with self.sm.begin() as s:
            audit.record(s, action="owner_reminded", actor=actor, now=self.clock(), user_name=user_name, owner_id=owner, findings=[f.kind.value for f in mine])
        return f"Reminded <@{owner}> about `{esc(user_name)}`" + (f" ({len(mine)} findings)." if mine else " (it has no findings any more).")
