"""The AWS accounts the bot acts in: its own (no IAM_BOT_ACCOUNTS), or the member accounts named there.

A request names its account by the name given in IAM_BOT_ACCOUNTS (`prod`), or "" for the bot's own
account when none are configured. Names are what people type and rules match; ids are what IAM shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OWN = ""  # the bot's own account: the one its credentials belong to

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_ID = re.compile(r"\d{12}")
# A role's name, with an optional path: `iam-bot`, `ops/iam-bot` (IAM: [\w+=,.@-], 64 characters at most).
_ROLE = re.compile(r"([\w+=,.@-]+/)*[\w+=,.@-]{1,64}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")


@dataclass(frozen=True)
class MemberAccount:
    name: str
    id: str

    def role_arn(self, role: str, *, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{self.id}:role/{role}"

    @property
    def label(self) -> str:
        """How messages name it: `prod (111111111111)`."""
        return f"{self.name} ({self.id})"


def parse_accounts(raw: str) -> tuple[MemberAccount, ...]:
    """IAM_BOT_ACCOUNTS: `name=account_id` entries, comma-separated. ValueError says which entry is wrong."""
    out: list[MemberAccount] = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        name, sep, account_id = (p.strip() for p in entry.partition("="))
        if not sep:
            raise ValueError(f"{entry!r} is not name=account_id (for example prod=111111111111)")
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an account name: lower-case letters, digits, - and _, 40 characters at most")
        if not _ID.fullmatch(account_id):
            raise ValueError(f"{name}: {account_id!r} is not a 12-digit AWS account id")
        if any(a.name == name for a in out):
            raise ValueError(f"{name} is named twice")
        if any(a.id == account_id for a in out):
            raise ValueError(f"account {account_id} is listed twice")
        out.append(MemberAccount(name=name, id=account_id))
    return tuple(out)


def valid_role(role: str) -> bool:
    return bool(_ROLE.fullmatch(role)) and len(role) <= 512


def valid_external_id(external_id: str) -> bool:
    return bool(_EXTERNAL_ID.fullmatch(external_id))


def name_for(organization_name: str, account_id: str) -> str:
    """An account listed by AWS Organizations, named as people would type it: `Prod Web` -> `prod-web`."""
    slug = re.sub(r"[^a-z0-9]+", "-", organization_name.lower()).strip("-")[:40].strip("-")
    return slug if slug and _NAME.fullmatch(slug) else account_id


def parse_target(text: str) -> tuple[str, str]:
    """`prod:alice` -> ("prod", "alice"); `alice` -> ("", "alice"). A colon is never in an IAM user name."""
    account, sep, user = text.strip().partition(":")
    return (account.strip(), user.strip()) if sep else (OWN, text.strip())


def qualified(account: str, user_name: str) -> str:
    """How people name a user: `alice` in the bot's own account, `prod:alice` in member account prod."""
    return f"{account}:{user_name}" if account else user_name


_IAM_ARN_ACCOUNT = re.compile(r"^(arn:[^:]+:iam::)(\d{12})(:.*)$")


def arn_in(arn: str, account_id: str) -> str:
    """An ARN of the bot's own account as the same-named thing in `account_id` (a boundary or the MFA
    policy: a user's boundary must be a policy of its own account, so each account holds its copy).
    AWS-managed ARNs (`iam::aws:`) and anything else are returned as they are."""
    m = _IAM_ARN_ACCOUNT.match(arn)
    return f"{m[1]}{account_id}{m[3]}" if m and account_id else arn
