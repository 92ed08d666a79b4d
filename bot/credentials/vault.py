"""The credential vault: Fernet encryption with key rotation (newest key first)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, replace

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


@dataclass(frozen=True)
class Credentials:
    user_name: str
    console_url: str
    account: str
    password: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __repr__(self) -> str:  # secrets must never reach a log or traceback through repr
        return f"Credentials(user_name={self.user_name!r}, <redacted>)"

    __str__ = __repr__

    def with_(self, **changes: str) -> Credentials:
        return replace(self, **changes)

    def csv(self) -> str:
        """The same fields as the credentials CSV the AWS console offers."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")  # quotes a user name with a comma, as IAM allows
        writer.writerow(["User name", "Password", "Access key ID", "Secret access key", "Console login link"])
        writer.writerow(
            [self.user_name, self.password or "", self.access_key_id or "", self.secret_access_key or "", self.console_url]
        )
        return out.getvalue().rstrip("\n")


class VaultError(Exception):
    pass


class Vault:
    def __init__(self, keys: list[str]):
        if not keys:
            raise VaultError("no encryption key configured")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def seal(self, creds: Credentials) -> bytes:
        return self._fernet.encrypt(json.dumps(asdict(creds)).encode())

    def open(self, token: bytes) -> Credentials:
        try:
            data = json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise VaultError("the credentials cannot be decrypted with the configured keys") from None
        return Credentials(**data)

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(token)
