"""Kinds of Slack ids, told apart by their first letter (users U/W, user groups S, channels C/G/D)."""

from __future__ import annotations

import re

USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,}")
USERGROUP_ID_RE = re.compile(r"S[A-Z0-9]{2,}")
CHANNEL_ID_RE = re.compile(r"[CGD][A-Z0-9]{2,}")
APPROVER_ID_RE = re.compile(r"[UWS][A-Z0-9]{2,}")  # who rules may name: a user or a user group


def is_user(slack_id: str) -> bool:
    return bool(USER_ID_RE.fullmatch(slack_id))


def is_usergroup(slack_id: str) -> bool:
    return bool(USERGROUP_ID_RE.fullmatch(slack_id))


def is_channel(slack_id: str) -> bool:
    return bool(CHANNEL_ID_RE.fullmatch(slack_id))
