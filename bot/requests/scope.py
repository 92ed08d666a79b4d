"""Where a request acts: one AWS account's IAM, and the rules (with their boundaries), path prefix and MFA
requirement as they hold there. The bot's own account (no IAM_BOT_ACCOUNTS) is the scope of "" and has them as set."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.domain.accounts import OWN, MemberAccount, arn_in
from bot.iam.accounts import Accounts
from bot.iam.gateway import IamGateway
from bot.policy.rulebook import Rulebook
from bot.requests.planner import NOTHING_REQUIRED, Required


@dataclass(frozen=True)
class Scope:
    account: str  # the name requests carry ("" for the bot's own account)
    member: MemberAccount | None
    iam: IamGateway
    rulebook: Rulebook  # with the account's own guardrails on top of the file's
    path_prefix: str
    required: Required

    @property
    def account_id(self) -> str:
        return self.member.id if self.member else ""


class Scopes:
    def __init__(
        self, accounts: Accounts, *, rulebook: Rulebook, path_prefix: str, boundary_setting: str | None = None, required: Required = NOTHING_REQUIRED,
    ):
        self.accounts = accounts
        self.rulebook = rulebook
        self.path_prefix = path_prefix
        self.boundary_setting = boundary_setting or None
        self.required = required

    @property
    def several(self) -> bool:
        return self.accounts.several

    def names(self) -> list[str]:
        return self.accounts.names()

    def member(self, account: str) -> MemberAccount | None:
        """The member account of that name (None: the bot's own); AccountUnknown for a name not configured."""
        return self.accounts.find(account)

    def rules_for(self, account: str) -> Rulebook:
        """The rules as they hold in `account`, without assuming its role (for screens Slack waits on): its
        guardrails on top of the file's, and every required boundary named in that account (a user's
        boundary must be a policy of its own account, so each account holds its copy under the same name)."""
        member = self.accounts.find(account)
        if member is None:
            return self.rulebook
        book = self.rulebook.for_account(member.name, member.id)
        bounded = tuple((prefix, arn_in(arn, member.id)) for prefix, arn in book.guardrails.required_boundaries)
        return replace(book, guardrails=replace(book.guardrails, required_boundaries=bounded))

    def boundary_setting_for(self, account: str) -> str | None:
        member = self.accounts.find(account)
        return arn_in(self.boundary_setting, member.id) if member and self.boundary_setting else self.boundary_setting

    def prefix_for(self, account: str) -> str:
        """Where the bot's users live in `account` (the setting, or the rules' narrower prefix there)."""
        member = self.accounts.find(account)
        return self.rulebook.path_prefix_for(member.name, member.id, default=self.path_prefix) if member else self.path_prefix

    def of(self, account: str = OWN) -> Scope:
        """The scope of `account`; AccountUnknown for a name not configured, RoleNotAssumed if its role cannot be assumed."""
        member = self.accounts.find(account)
        return Scope(
            account=account,
            member=member,
            iam=self.accounts.gateway(account),
            rulebook=self.rules_for(account),
            path_prefix=self.prefix_for(account),
            required=self.required.in_account(member.id) if member else self.required,
        )
