"""Which IAM the bot talks to for an account: its own credentials, or a role assumed in a member account.

A member account's session comes from aws-assume-role-lib: botocore's refreshable credentials, which
call sts:AssumeRole again before the old ones expire (and in the middle of a long job if they must),
cached per account for the life of the process.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Callable

import aws_assume_role_lib
import boto3

from bot.domain.accounts import OWN, MemberAccount, name_for
from bot.iam.cache import TtlCache
from bot.iam.errors import AwsError, call
from bot.iam.gateway import BotoSession, IamGateway

__all__ = ["Accounts", "AccountUnknown", "RoleNotAssumed"]

log = logging.getLogger(__name__)

SESSION_NAME = "iam-bot"  # CloudTrail shows the member account's changes as assumed-role/<role>/iam-bot
ORGANIZATION_TTL = 15 * 60.0  # how long the account list read from AWS Organizations is kept


class AccountUnknown(Exception):
    """A name that is not one of the configured accounts (nor, with IAM_BOT_ORGANIZATION, of the organization's)."""

    def __init__(self, name: str, known: list[str]):
        super().__init__(f"no AWS account is named {name!r}" + (f"; the bot knows {', '.join(known)}" if known else ""))
        self.name = name


class Accounts:
    """The bot's own account (OWN) and the member accounts; one IamGateway for each, made when first used."""

    def __init__(
        self,
        session: BotoSession | None = None,
        *,
        members: tuple[MemberAccount, ...] = (),
        role: str = "iam-bot",
        external_id: str | None = None,
        organization: bool = False,
        duration: timedelta = timedelta(hours=1),
        gateway: Callable[[BotoSession | None], IamGateway] = IamGateway,
    ):
        self._own = gateway(session)
        self._session = session
        self._configured = members
        self.role = role
        self.external_id = external_id or None
        self.organization = organization
        self._duration = duration
        self._make = gateway
        self._gateways: dict[str, IamGateway] = {}
        self._lock = threading.Lock()
        self._listing = TtlCache(ORGANIZATION_TTL)

    @property
    def several(self) -> bool:
        """Whether requests name an account: member accounts are configured (or listed by Organizations)."""
        return bool(self._configured) or self.organization

    def members(self) -> tuple[MemberAccount, ...]:
        """The configured accounts, then those AWS Organizations lists (ACTIVE ones) that are not among them."""
        if not self.organization:
            return self._configured
        return self._listing.get("accounts", self._read_organization)

    def _read_organization(self) -> tuple[MemberAccount, ...]:
        def load() -> list[dict[str, str]]:
            orgs = (self._session or boto3.session.Session()).client("organizations")
            return [a for page in orgs.get_paginator("list_accounts").paginate() for a in page["Accounts"] if a.get("Status", "ACTIVE") == "ACTIVE"]

        listed = call("ListAccounts", load)
        out = list(self._configured)
        names = {a.name for a in out}
        ids = {a.id for a in out}
        for entry in sorted(listed, key=lambda a: a.get("Name", "")):
            if entry["Id"] in ids:
                continue
            name = name_for(entry.get("Name", ""), entry["Id"])
            if name in names:
                name = entry["Id"]
            out.append(MemberAccount(name=name, id=entry["Id"]))
            names.add(name)
        return tuple(out)

    def find(self, name: str) -> MemberAccount | None:
        """The member account named `name` (or with that id); None for OWN."""
        if name == OWN:
            return None
        for account in self.members():
            if name in (account.name, account.id):
                return account
        raise AccountUnknown(name, [a.name for a in self.members()])

    def names(self) -> list[str]:
        return [a.name for a in self.members()] if self.several else [OWN]

    def gateway(self, name: str = OWN) -> IamGateway:
        """IAM in the account named `name`: OWN is the bot's own credentials; a member's is its role, assumed."""
        account = self.find(name)
        if account is None:
            return self._own
        with self._lock:
            found = self._gateways.get(account.id)
        if found is not None:
            return found
        made = self._make(self._assume(account))
        with self._lock:
            return self._gateways.setdefault(account.id, made)

    def own(self) -> IamGateway:
        return self._own

    def role_arn(self, account: MemberAccount) -> str:
        return account.role_arn(self.role)

    def _assume(self, account: MemberAccount) -> BotoSession:
        """A session acting as the account's role. The role is assumed now, so a role that cannot be is
        an AwsError naming sts:AssumeRole and the role (not the first IAM call that needed it)."""
        base = self._session or boto3.session.Session()
        arn = self.role_arn(account)
        kwargs: dict[str, object] = {"RoleSessionName": SESSION_NAME, "DurationSeconds": self._duration, "validate": False}
        if self.external_id:
            kwargs["ExternalId"] = self.external_id
        session = call("AssumeRole", aws_assume_role_lib.assume_role, session=base, RoleArn=arn, **kwargs)
        try:
            call("AssumeRole", lambda: session.get_credentials().get_frozen_credentials())
        except AwsError as exc:
            raise RoleNotAssumed(account, arn, exc) from None
        return session


class RoleNotAssumed(AwsError):
    """sts:AssumeRole refused for a member account: the words people see in the modal and the doctor."""

    def __init__(self, account: MemberAccount, role_arn: str, cause: AwsError):
        super().__init__(cause.code, cause.aws_message, action="AssumeRole", request_id=cause.request_id)
        self.account = account
        self.role_arn = role_arn

    def explain(self) -> str:
        return (
            f"The bot cannot act in {self.account.name}: {self.code} on sts:AssumeRole for {self.role_arn}. "
            "An AWS admin must create that role in the account with `iam-bot policy --member-account` "
            "(or deploy/member-account-stackset.yml), trusting the bot's identity."
        )
