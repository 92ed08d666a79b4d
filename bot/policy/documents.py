"""Reading IAM policy documents and names (pure): what actions a document allows, glob matching."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping

from bot.domain.facts import policy_name


def glob_match(value: str, pattern: str) -> bool:
    # Case-insensitive: a guardrail written `*admin*` must not miss `AdminAccess`.
    return fnmatchcase(value.lower(), pattern.lower())


def policy_matches(arn: str, patterns: Iterable[str]) -> bool:
    """A glob matches a policy by its name or its full ARN."""
    return any(glob_match(policy_name(arn), p) or glob_match(arn, p) for p in patterns)


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    st = document.get("Statement") or []
    return [s for s in ([st] if isinstance(st, dict) else st) if isinstance(s, dict)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def allowed_actions(document: Mapping[str, Any]) -> list[str]:
    """The action patterns a policy document allows; an Allow with NotAction counts as `*`."""
    out: list[str] = []
    for s in _statements(document):
        if s.get("Effect") != "Allow":
            continue
        if "NotAction" in s:
            out.append("*")
        out.extend(_as_list(s.get("Action")))
    return out


def forbidden_grants(document: Mapping[str, Any], forbidden: Iterable[str]) -> list[str]:
    """Which forbidden actions a document grants: the action itself or a wildcard covering it."""
    actions = allowed_actions(document)
    return [f for f in forbidden if any(glob_match(f, a) for a in actions)]
