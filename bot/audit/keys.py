"""The audit key: HMAC-SHA256 keys kept outside the database (IAM_BOT_AUDIT_KEY), newest first.

The newest key signs; every key in the list is accepted, each known by a short key id (derived from
the key by HMAC, so the id says nothing about the key) that is stored with each event and anchor.
Rotating is adding a new key in front and keeping the old ones: events are never re-signed, so a key
stays needed as long as events signed with it exist. Nothing here ever prints a key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Iterable

MIN_KEY_LENGTH = 32
KEY_HELP = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"


def key_id(secret: str) -> str:
    """12 hex digits naming a key; computable only by whoever holds it."""
    return hmac.new(secret.encode(), b"iam-bot audit key id", hashlib.sha256).hexdigest()[:12]


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class AuditKeys:
    """Several keys, newest first; `repr` and `str` name key ids only."""

    def __init__(self, secrets: Iterable[str]):
        self._keys: dict[str, bytes] = {}
        order: list[str] = []
        for secret in secrets:
            if len(secret) < MIN_KEY_LENGTH:
                raise ValueError(f"an audit key needs at least {MIN_KEY_LENGTH} characters")
            kid = key_id(secret)
            if kid not in self._keys:
                self._keys[kid] = secret.encode()
                order.append(kid)
        if not order:
            raise ValueError("no audit key given")
        self.ids: tuple[str, ...] = tuple(order)

    @property
    def signing_id(self) -> str:
        return self.ids[0]

    def knows(self, kid: str | None) -> bool:
        return kid in self._keys

    def mac(self, kid: str, body: dict[str, Any]) -> str:
        """HMAC-SHA256 of the canonical JSON of `body` under key `kid` (KeyError if unknown)."""
        return hmac.new(self._keys[kid], canonical(body), hashlib.sha256).hexdigest()

    def check(self, kid: str | None, body: dict[str, Any], digest: str) -> bool:
        if kid not in self._keys:
            return False
        return hmac.compare_digest(self.mac(kid, body), digest)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"AuditKeys(ids={list(self.ids)})"

    __str__ = __repr__
