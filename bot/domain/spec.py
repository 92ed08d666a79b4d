"""What a requester asks for, as one immutable value (validated by bot.requests.validation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RequestSpec:
    user_name: str
    console_access: bool
    access_key: bool
    owner_id: str
    reason: str
    groups: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    copy_from: str | None = None
    path: str = "/"
    tags: tuple[tuple[str, str], ...] = ()
    permissions_boundary: str | None = None
    expires_on: str | None = None  # YYYY-MM-DD: disabled that day, deleted after a grace period unless extended
    # A change to an existing user: what it takes away ("group:<name>", "policy:<arn>", "console", "key");
    # `groups`, `policy_arns`, `console_access` and `access_key` are then what it adds.
    remove: tuple[str, ...] = ()
    grant_for: str | None = None  # the added groups and policies last only so long (bot.domain.grants); None: for good
    account: str = ""  # the AWS account, by its IAM_BOT_ACCOUNTS name; "": the bot's own (bot.domain.accounts)
    # A draft asked for several accounts: the others (each becomes a request of its own, asked together).
    also_accounts: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        data["policy_arns"] = list(self.policy_arns)
        data["tags"] = [list(t) for t in self.tags]
        data["remove"] = list(self.remove)
        if not self.account:
            del data["account"]  # as before accounts existed
        if self.also_accounts:
            data["also_accounts"] = list(self.also_accounts)
        else:
            del data["also_accounts"]
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> RequestSpec:
        return cls(
            user_name=data["user_name"],
            console_access=bool(data["console_access"]),
            access_key=bool(data["access_key"]),
            owner_id=data["owner_id"],
            reason=data["reason"],
            groups=tuple(data.get("groups") or ()),
            policy_arns=tuple(data.get("policy_arns") or ()),
            copy_from=data.get("copy_from"),
            path=data.get("path") or "/",
            tags=tuple((k, v) for k, v in data.get("tags") or ()),
            permissions_boundary=data.get("permissions_boundary"),
            expires_on=data.get("expires_on"),
            remove=tuple(data.get("remove") or ()),
            grant_for=data.get("grant_for"),
            account=data.get("account") or "",
            also_accounts=tuple(data.get("also_accounts") or ()),
        )

    def removes(self, what: str) -> tuple[str, ...]:
        """What a change takes away of one kind ("group", "policy"), by name or ARN."""
        return tuple(r.split(":", 1)[1] for r in self.remove if r.startswith(what + ":"))

    @property
    def accounts(self) -> tuple[str, ...]:
        """Every account asked for, the first one first."""
        return (self.account, *self.also_accounts)

    @property
    def access_types(self) -> list[str]:
        kinds = []
        if self.console_access:
            kinds.append("Console access")
        if self.access_key:
            kinds.append("Access key")
        return kinds
