"""Hygiene of an account's IAM users, judged from IAM's credential report (pure).

`parse_credential_report` reads the CSV that GetCredentialReport returns; `findings` judges each user
against thresholds at an injected `now`, and against who owns which user (the bot's own records) and
who has left the workspace. Nothing here talks to AWS, Slack or the database.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import AbstractSet, Iterable, Mapping, Sequence

ROOT_ROW = "<root_account>"  # the account's root user: in the report, but not an IAM user
NO_DATE = frozenset({"", "N/A", "no_information", "not_supported"})


@dataclass(frozen=True)
class KeyInfo:
    slot: int  # 1 or 2: the report's access_key_1_* / access_key_2_* columns
    active: bool
    last_rotated: datetime | None
    last_used: datetime | None


@dataclass(frozen=True)
class CredentialRow:
    user: str
    arn: str
    created: datetime | None
    password_enabled: bool
    password_last_used: datetime | None
    password_last_changed: datetime | None
    mfa_active: bool
    keys: tuple[KeyInfo, ...] = ()


@dataclass(frozen=True)
class Thresholds:
    key_age_days: int = 90
    unused_days: int = 90


class FindingKind(str, Enum):
    # Declared in report order (roughly most serious first): findings sort by it.
    NO_MFA = "no_mfa"
    OLD_KEY = "old_key"
    UNUSED_KEY = "unused_key"
    UNUSED_PASSWORD = "unused_password"
    OWNER_LEFT = "owner_left"
    UNMANAGED = "unmanaged"


KIND_ORDER = {kind: i for i, kind in enumerate(FindingKind)}


@dataclass(frozen=True)
class Finding:
    user: str
    kind: FindingKind
    detail: str
    owner_id: str | None  # the owner's Slack id, for users the bot manages
    managed: bool


# ---------------------------------------------------------------- parsing


def _date(value: str | None) -> datetime | None:
    """A report date as an aware UTC datetime; N/A, no_information, not_supported or garbage as None."""
    value = (value or "").strip()
    if value in NO_DATE:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def parse_credential_report(content: bytes) -> list[CredentialRow]:
    """Every IAM user in the report, by column name (AWS may add or reorder columns), root skipped."""
    rows: list[CredentialRow] = []
    for r in csv.DictReader(io.StringIO(content.decode("utf-8-sig"))):
        user = (r.get("user") or "").strip()
        if not user or user == ROOT_ROW:
            continue
        keys = []
        for slot in (1, 2):
            active = _bool(r.get(f"access_key_{slot}_active"))
            rotated = _date(r.get(f"access_key_{slot}_last_rotated"))
            if active or rotated:  # an empty slot reads "false, N/A"
                keys.append(KeyInfo(slot, active, rotated, _date(r.get(f"access_key_{slot}_last_used_date"))))
        rows.append(
            CredentialRow(
                user=user,
                arn=(r.get("arn") or "").strip(),
                created=_date(r.get("user_creation_time")),
                password_enabled=_bool(r.get("password_enabled")),
                password_last_used=_date(r.get("password_last_used")),
                password_last_changed=_date(r.get("password_last_changed")),
                mfa_active=_bool(r.get("mfa_active")),
                keys=tuple(keys),
            )
        )
    return rows


# ---------------------------------------------------------------- judging


def _day(t: datetime) -> str:
    return t.strftime("%Y-%m-%d")


def _user_findings(row: CredentialRow, now: datetime, th: Thresholds) -> Iterable[tuple[FindingKind, str]]:
    key_age, unused = timedelta(days=th.key_age_days), timedelta(days=th.unused_days)
    # Console users only, as AWS Security Hub's IAM.5: a user's MFA does not guard its access keys' API calls.
    if row.password_enabled and not row.mfa_active:
        yield FindingKind.NO_MFA, "console password enabled without MFA"
    active = [k for k in row.keys if k.active]  # an inactive key cannot be used, so it is no risk
    for k in active:
        if k.last_rotated and now - k.last_rotated > key_age:
            yield FindingKind.OLD_KEY, f"access key {k.slot} is {(now - k.last_rotated).days} days old"
    for k in active:
        if k.last_used:
            if now - k.last_used > unused:
                yield FindingKind.UNUSED_KEY, f"access key {k.slot} not used for {(now - k.last_used).days} days (last {_day(k.last_used)})"
        elif k.last_rotated and now - k.last_rotated > unused:
            yield FindingKind.UNUSED_KEY, f"access key {k.slot} never used, created {_day(k.last_rotated)}"
    if row.password_enabled:
        if row.password_last_used:
            if now - row.password_last_used > unused:
                days = (now - row.password_last_used).days
                yield FindingKind.UNUSED_PASSWORD, f"password not used for {days} days (last {_day(row.password_last_used)})"
        else:
            since, what = (row.password_last_changed, "set") if row.password_last_changed else (row.created, "user created")
            if since and now - since > unused:
                yield FindingKind.UNUSED_PASSWORD, f"password never used, {what} {_day(since)}"


def findings(
    rows: Sequence[CredentialRow],
    *,
    now: datetime,
    thresholds: Thresholds,
    owners: Mapping[str, str],
    departed: AbstractSet[str],
) -> list[Finding]:
    """What is wrong with each user, by user name and then kind (a user may have several findings).

    `owners` maps the users the bot manages to their owner's Slack id; `departed` holds the Slack ids
    of people who have left the workspace.
    """
    out: list[Finding] = []
    for row in rows:
        owner = owners.get(row.user)
        managed = row.user in owners
        found = list(_user_findings(row, now, thresholds))
        if owner is not None and owner in departed:
            found.append((FindingKind.OWNER_LEFT, "its owner has left the workspace"))
        if not managed:
            found.append((FindingKind.UNMANAGED, "not managed by the bot"))
        out += [Finding(row.user, kind, detail, owner, managed) for kind, detail in found]
    # A stable sort keeps a user's key findings in slot order.
    return sorted(out, key=lambda f: (f.user, KIND_ORDER[f.kind]))


def summarise(found: Iterable[Finding]) -> dict[FindingKind, int]:
    """How many findings of each kind, every kind present (0 if none), in report order."""
    counts = dict.fromkeys(FindingKind, 0)
    for f in found:
        counts[f.kind] += 1
    return counts
