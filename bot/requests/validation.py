"""Pure validators for the request form. Each error message says how to fix the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Mapping

from bot.domain import grants as lasting
from bot.domain.spec import RequestSpec

# Patterns are used with fullmatch: `$` would also accept a trailing newline.
USER_NAME_RE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
GROUP_NAME_RE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,128}")
PATH_RE = re.compile(r"/|/[\x21-\x7E]+/")
POLICY_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/[\x21-\x7E]{1,1500}")
SLACK_USER_RE = re.compile(r"[UW][A-Z0-9]{2,20}")
TAG_CHARS = frozenset(" _.:/=+-@")
MAX_TAGS = 49  # IAM allows 50 tags; the bot adds its own iam-bot:request tag
MAX_GROUPS = 10  # IAM: a user can be a member of at most 10 groups
MAX_POLICIES = 20  # IAM: managed policies per user, at the highest quota AWS grants
MAX_REASON = 3000


@dataclass(frozen=True)
class RawForm:
    """The form as submitted: strings and lists, nothing trusted yet."""

    user_name: str = ""
    access_types: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    copy_from: str = ""
    path: str = ""
    tags: str = ""
    permissions_boundary: str = ""
    owner_id: str = ""
    reason: str = ""
    expires: str = ""  # YYYY-MM-DD from the date picker; "" for none
    grant_for: str = ""  # "For": forever, 1h, 4h, 1d, 1w or until; "" for none
    grant_until: str = ""  # "Until": YYYY-MM-DD, with grant_for "until"
    accounts: tuple[str, ...] = ()  # "AWS account": names from IAM_BOT_ACCOUNTS (checked against them by the form's workflow)


def user_name_error(name: str) -> str | None:
    if not name:
        return "Enter a user name."
    if len(name) > 64:
        return f"User names can be at most 64 characters; this one has {len(name)}."
    if not USER_NAME_RE.fullmatch(name):
        return "Use only letters, digits and + = , . @ _ - (no spaces)."
    return None


def path_error(path: str) -> str | None:
    if len(path) > 512:
        return "A path can be at most 512 characters."
    if not PATH_RE.fullmatch(path):
        return "A path is `/` or starts and ends with `/`, like `/engineering/`, in printable ASCII without spaces."
    if "//" in path:
        return "A path cannot contain an empty segment (`//`)."
    return None


def parse_tags(text: str) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """Parse one `key=value` per line; returns (tags, error)."""
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if "=" not in line:
            return (), f"Line {n}: write each tag as key=value."
        key, value = (p.strip() for p in line.split("=", 1))
        if not key:
            return (), f"Line {n}: the tag key is empty."
        if len(key) > 128:
            return (), f"Line {n}: a tag key can be at most 128 characters."
        if len(value) > 256:
            return (), f"Line {n}: a tag value can be at most 256 characters."
        if key.lower().startswith("aws:"):
            return (), f"Line {n}: keys starting with `aws:` are reserved by AWS."
        bad = sorted({c for c in key + value if not (c.isalnum() or c in TAG_CHARS)})
        if bad:
            shown = " ".join(repr(c) for c in bad[:5])
            return (), f"Line {n}: tags allow letters, digits, spaces and _ . : / = + - @ only (found {shown})."
        if key.lower() in seen:
            return (), f"Line {n}: the key `{key}` appears twice (keys are case-insensitive)."
        seen.add(key.lower())
        tags.append((key, value))
    if len(tags) > MAX_TAGS:
        return (), f"At most {MAX_TAGS} tags; you gave {len(tags)}."
    return tuple(tags), None


MAX_EXPIRY = timedelta(days=5 * 366)


def expiry_error(value: str, *, today: date | None) -> str | None:
    """An end date must be a real date after today (and within five years: a typo, not a plan)."""
    try:
        when = date.fromisoformat(value)
    except ValueError:
        return "Pick the date from the calendar."
    if today is not None and when <= today:
        return "Pick a date after today: on it the user is disabled."
    if today is not None and when > today + MAX_EXPIRY:
        return "Pick a date within five years; it can be extended later."
    return None


def _groups_and_policies(form: RawForm, errors: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The groups and managed policies picked, each once; what IAM would refuse goes in `errors`."""
    groups = tuple(dict.fromkeys(g.strip() for g in form.groups if g.strip()))
    if any(not GROUP_NAME_RE.fullmatch(g) for g in groups):
        errors["groups"] = "Pick groups from the list."
    elif len(groups) > MAX_GROUPS:
        errors["groups"] = f"IAM allows a user in at most {MAX_GROUPS} groups; pick fewer."
    policies = tuple(dict.fromkeys(p.strip() for p in form.policy_arns if p.strip()))
    if any(not POLICY_ARN_RE.fullmatch(p) for p in policies):
        errors["policies"] = "Pick managed policies from the list."
    elif len(policies) > MAX_POLICIES:
        errors["policies"] = f"IAM allows at most {MAX_POLICIES} managed policies on a user; use a group instead."
    return groups, policies


def grant_for_value(choice: str, until: str, *, today: date | None, adds: bool) -> tuple[str | None, dict[str, str]]:
    """The "For" and "Until" fields as a grant's length (bot.domain.grants), or field errors."""
    choice, until = choice.strip(), until.strip()
    if choice in ("", "forever"):
        return None, ({"grant_until": "Choose \"Until the date below\" under For to use this date, or clear it."} if until else {})
    if not adds:
        return None, {"grant_for": "For applies to the groups and policies this adds, and it adds none: choose For good, or add one."}
    if choice in lasting.DURATIONS:
        return choice, {}
    if choice != "until":
        return None, {"grant_for": "Pick one of the choices."}
    if not until:
        return None, {"grant_until": "Pick the date the groups and policies are taken away."}
    try:
        day = date.fromisoformat(until)
    except ValueError:
        return None, {"grant_until": "Pick the date from the calendar."}
    if today is not None and day <= today:
        return None, {"grant_until": "Pick a date after today: that day begins the end of the grant (a date passed would end it at once)."}
    return until, {}


def validate_change(form: RawForm, *, had: Mapping[str, Any], today: date | None = None) -> tuple[RequestSpec | None, dict[str, str]]:
    """The change modal as a change spec: what it adds and takes away compared with what the user had
    when the modal was filled in (`had`: groups g, policies p, console c, key k), or field errors."""
    errors: dict[str, str] = {}
    groups, policies = _groups_and_policies(form, errors)
    reason = form.reason.strip()
    if not reason:
        errors["reason"] = "Say why the change is needed; approvers decide on it."
    elif len(reason) > MAX_REASON:
        errors["reason"] = f"Keep the reason under {MAX_REASON} characters."
    had_groups, had_policies = list(had.get("g") or ()), list(had.get("p") or ())
    console, key = "console" in form.access_types, "access_key" in form.access_types
    added_groups = tuple(g for g in groups if g not in had_groups)
    added_policies = tuple(p for p in policies if p not in had_policies)
    remove = [*(f"group:{g}" for g in had_groups if g not in groups), *(f"policy:{p}" for p in had_policies if p not in policies)]
    if had.get("c") and not console:
        remove.append("console")
    if had.get("k") and not key:
        remove.append("key")
    grant_for, problems = grant_for_value(form.grant_for, form.grant_until, today=today, adds=bool(added_groups or added_policies))
    errors.update(problems)
    if not errors and not (added_groups or added_policies or remove or (console and not had.get("c")) or (key and not had.get("k"))):
        errors["groups"] = "Nothing changes: add or remove a group or a policy, or tick or untick an access type."
    if errors:
        return None, errors
    return RequestSpec(
        user_name=str(had.get("u") or ""), console_access=console and not had.get("c"), access_key=key and not had.get("k"), owner_id="",
        reason=reason, groups=added_groups, policy_arns=added_policies, remove=tuple(remove), grant_for=grant_for,
        account=str(had.get("a") or ""),
    ), {}


MAX_ACCOUNTS = 10  # one ask, one approval message: its plans must fit in it


def validate_form(form: RawForm, *, today: date | None = None) -> tuple[RequestSpec | None, dict[str, str]]:
    """Return (spec, {}) for a valid form, else (None, {field: message}). `today` judges the end date."""
    errors: dict[str, str] = {}
    accounts = tuple(dict.fromkeys(a.strip() for a in form.accounts if a.strip()))
    if len(accounts) > MAX_ACCOUNTS:
        errors["account"] = f"At most {MAX_ACCOUNTS} accounts in one request; make another for the rest."
    user_name = form.user_name.strip()
    if e := user_name_error(user_name):
        errors["user_name"] = e

    console = "console" in form.access_types
    key = "access_key" in form.access_types
    if not (console or key):
        errors["access_type"] = "Choose Console access, Access key, or both."

    groups, policies = _groups_and_policies(form, errors)

    copy_from = form.copy_from.strip() or None
    if copy_from is not None:
        if not USER_NAME_RE.fullmatch(copy_from):
            errors["copy_from"] = "Pick an existing user from the list."
        elif copy_from.lower() == user_name.lower():
            errors["copy_from"] = "A new user cannot copy permissions from itself."

    path = form.path.strip() or "/"
    if e := path_error(path):
        errors["path"] = e

    tags, tag_error = parse_tags(form.tags)
    if tag_error:
        errors["tags"] = tag_error
    elif any(k.lower() == "iam-bot:request" for k, _ in tags):
        errors["tags"] = "The tag key `iam-bot:request` is reserved by the bot."

    boundary = form.permissions_boundary.strip() or None
    if boundary is not None and not POLICY_ARN_RE.fullmatch(boundary):
        errors["boundary"] = "Pick a managed policy from the list."

    owner = form.owner_id.strip()
    if not SLACK_USER_RE.fullmatch(owner):
        errors["owner"] = "Choose the Slack user who will receive the credentials."

    reason = form.reason.strip()
    if not reason:
        errors["reason"] = "Say why this account is needed; approvers decide on it."
    elif len(reason) > MAX_REASON:
        errors["reason"] = f"Keep the reason under {MAX_REASON} characters."

    expires = form.expires.strip() or None
    if expires is not None and (e := expiry_error(expires, today=today)):
        errors["expires"] = e
    grant_for, problems = grant_for_value(form.grant_for, form.grant_until, today=today, adds=bool(groups or policies))
    errors.update(problems)

    if errors:
        return None, errors
    return (
        RequestSpec(
            user_name=user_name,
            console_access=console,
            access_key=key,
            owner_id=owner,
            reason=reason,
            groups=groups,
            policy_arns=policies,
            copy_from=copy_from,
            path=path,
            tags=tags,
            permissions_boundary=boundary,
            expires_on=expires,
            grant_for=grant_for,
            account=accounts[0] if accounts else "",
            also_accounts=accounts[1:],
        ),
        {},
    )
