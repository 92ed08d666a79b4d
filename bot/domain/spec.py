"""What a requester asks for, as one immutable value (validated by bot.requests.validation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models import AccessRequest


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

    def to_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        data["policy_arns"] = list(self.policy_arns)
        data["tags"] = [list(t) for t in self.tags]
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
        )

    @property
    def access_types(self) -> list[str]:
        kinds = []
        if self.console_access:
            kinds.append("Console access")
        if self.access_key:
            kinds.append("Access key")
        return kinds


@dataclass(frozen=True)
class CopiedPermissions:
    """What copying from an existing user brings: read from IAM at review and at provisioning."""

    source_user: str
    groups: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    inline_policies: tuple[str, ...] = ()
    permissions_boundary: str | None = None
    inline_documents: dict[str, str] = field(default_factory=dict, compare=False)


def spec_columns(spec: RequestSpec) -> dict[str, Any]:
    """The AccessRequest columns that hold a spec (the one mapping between the two)."""
    return {
        "owner_id": spec.owner_id,
        "user_name": spec.user_name,
        "user_name_lower": spec.user_name.lower(),
        "console_access": spec.console_access,
        "access_key": spec.access_key,
        "groups": list(spec.groups),
        "policy_arns": list(spec.policy_arns),
        "copy_from": spec.copy_from,
        "path": spec.path,
        "tags": dict(spec.tags),
        "permissions_boundary": spec.permissions_boundary,
        "reason": spec.reason,
    }


def spec_of(req: AccessRequest) -> RequestSpec:
    return RequestSpec(
        user_name=req.user_name,
        console_access=req.console_access,
        access_key=req.access_key,
        owner_id=req.owner_id,
        reason=req.reason,
        groups=tuple(req.groups or ()),
        policy_arns=tuple(req.policy_arns or ()),
        copy_from=req.copy_from,
        path=req.path,
        tags=tuple((k, v) for k, v in (req.tags or {}).items()),
        permissions_boundary=req.permissions_boundary,
    )
