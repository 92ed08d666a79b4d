"""The credential vault: Fernet encryption with key rotation (newest key first), or AWS KMS data keys.

What is stored (credential_envelopes.ciphertext) says how it was sealed, so both kinds coexist:

- Fernet: a Fernet token, `gAAAAA...` (Fernet's own version byte 0x80, base64url), under a key of
  IAM_BOT_ENCRYPTION_KEY. The default.
- AWS KMS, version 1: `kms1.<wrapped data key>.<nonce>.<ciphertext>`, each part base64url without
  padding. With IAM_BOT_KMS_KEY_ID set, every envelope gets its own AES-256 data key from KMS
  (GenerateDataKey, the request's short id as encryption context); the credentials are encrypted
  with AES-256-GCM under it (associated data: the version and the short id) and only the wrapped
  key is kept. Opening asks KMS to unwrap it (Decrypt, same context).

Either way the plaintext also names the request it was sealed for, checked when opened, so a row
copied to another request does not open there.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Callable, Mapping, Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.common.spreadsheet import csv_row, safe_cell
from bot.common.wipe import wipe


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
        """The same fields as the credentials CSV the AWS console offers.

        A cell a spreadsheet would evaluate (a user name may start with = + - @) is neutralised with
        a leading '. The two secrets are written exactly, or they would not work: the password never
        starts with such a character (generate_password), and AWS's random secret key cannot spell
        a formula that does anything (no parentheses, quotes, | or !), so `aws configure import`
        gets it as AWS made it.
        """
        header = csv_row(["User name", "Password", "Access key ID", "Secret access key", "Console login link"])
        row = csv_row(  # quotes a user name with a comma, as IAM allows
            [
                safe_cell(self.user_name),
                self.password or "",
                safe_cell(self.access_key_id or ""),
                self.secret_access_key or "",
                safe_cell(self.console_url),
            ]
        )
        return (header + row).rstrip("\n")


class VaultError(Exception):
    """Credentials that cannot be sealed or opened; the message names the cause, never key material.

    `transient`: the key service could not answer now (throttled, unreachable): trying again may work.
    """

    def __init__(self, message: str, *, transient: bool = False, code: str = "VaultError"):
        super().__init__(message)
        self.transient = transient
        self.code = code


KMS_V1 = b"kms1"  # the version tag of AWS KMS envelopes (module docstring)
CONTEXT_KEY = "iam-bot:request"  # the encryption context's key; its value is the request's short id
_REQUEST_FIELD = "_request"  # in the sealed JSON: the short id the credentials were sealed for
_NONCE_BYTES = 12

T = TypeVar("T")


class DataKeys(Protocol):
    """A key service that makes one data key per envelope and unwraps it again (bot.iam.kms for AWS KMS).

    Its errors may be of any type; their `code` and `transient` (retrying may help) are read if present.
    """

    key_id: str

    def generate(self, context: Mapping[str, str]) -> tuple[bytearray, bytes]: ...  # (plaintext key, wrapped key)

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytearray: ...


def sealed_with(token: bytes) -> str:
    """"kms" or "fernet": how an envelope was sealed, read from its first bytes."""
    return "kms" if bytes(token[: len(KMS_V1) + 1]) == KMS_V1 + b"." else "fernet"


class Vault:
    """Seals with AWS KMS data keys when `data_keys` is given, else with the newest Fernet key; opens
    both kinds (Fernet with any of `keys`, newest first)."""

    def __init__(self, keys: list[str], *, data_keys: DataKeys | None = None):
        if not keys and data_keys is None:
            raise VaultError("no encryption key configured")
        fernets = [Fernet(k.encode()) for k in keys]
        self._newest = fernets[0] if fernets else None
        self._fernet = MultiFernet(fernets) if fernets else None
        self._data_keys = data_keys

    @property
    def newest(self) -> str:
        """What new envelopes are sealed with, in words (no key material)."""
        if self._data_keys is not None:
            return f"the AWS KMS key {self._data_keys.key_id}"
        return "the first key of IAM_BOT_ENCRYPTION_KEY"

    def seal(self, creds: Credentials, *, request: str | None = None) -> bytes:
        """`request`: the request's short id, bound to the envelope (required with AWS KMS: its encryption context)."""
        data = asdict(creds)
        if request:
            data[_REQUEST_FIELD] = request
        plaintext = json.dumps(data).encode()
        try:
            if self._data_keys is not None:
                return self._seal_kms(plaintext, request)
            assert self._fernet is not None
            return self._fernet.encrypt(plaintext)
        finally:
            wipe(plaintext)

    def open(self, token: bytes, *, request: str | None = None) -> Credentials:
        """The credentials, if a configured key opens `token` (and it was sealed for `request`, when given)."""
        token = bytes(token)
        plaintext = self._open_kms(token, request) if sealed_with(token) == "kms" else self._open_fernet(token)
        try:
            data = json.loads(plaintext)
        finally:
            wipe(plaintext)
        sealed_for = data.pop(_REQUEST_FIELD, None)
        if request is not None and sealed_for is not None and sealed_for != request:
            raise VaultError("these credentials were sealed for another request", code="WrongRequest")
        return Credentials(**data)

    def rotate(self, token: bytes, *, request: str | None = None) -> bytes | None:
        """`token` sealed again under the newest key (MultiFernet.rotate between Fernet keys), or None
        when it already is; VaultError when no configured key opens it."""
        token = bytes(token)
        kind = sealed_with(token)
        if self._data_keys is not None:
            creds = self.open(token, request=request)  # a KMS envelope is current once it is proved to open
            return None if kind == "kms" else self.seal(creds, request=request)
        if kind == "kms":
            raise VaultError("sealed with AWS KMS, and IAM_BOT_KMS_KEY_ID is not set", code="KmsNotSet")
        assert self._newest is not None and self._fernet is not None
        try:
            wipe(self._newest.decrypt(token))
            return None
        except InvalidToken:
            pass
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise VaultError("no configured key opens these credentials", code="InvalidToken") from None

    # ---------------------------------------------------------------- the two kinds

    def _open_fernet(self, token: bytes) -> bytes:
        if self._fernet is None:
            raise VaultError("sealed with a Fernet key, and IAM_BOT_ENCRYPTION_KEY is not set", code="FernetNotSet")
        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            raise VaultError("the credentials cannot be decrypted with the configured keys", code="InvalidToken") from None

    def _seal_kms(self, plaintext: bytes, request: str | None) -> bytes:
        assert self._data_keys is not None
        if not request:
            raise VaultError("sealing with AWS KMS needs the request's short id (the encryption context)")
        key, wrapped = self._ask(self._data_keys.generate, {CONTEXT_KEY: request})
        try:
            nonce = os.urandom(_NONCE_BYTES)
            body = AESGCM(key).encrypt(nonce, plaintext, _associated_data(request))
        finally:
            wipe(key)
        return b".".join([KMS_V1, _b64(wrapped), _b64(nonce), _b64(body)])

    def _open_kms(self, token: bytes, request: str | None) -> bytes:
        parts = token.split(b".")
        if len(parts) != 4 or parts[0] != KMS_V1:
            raise VaultError("not a well-formed AWS KMS envelope", code="Malformed")
        try:
            wrapped, nonce, body = (_unb64(p) for p in parts[1:])
        except (binascii.Error, ValueError):
            raise VaultError("not a well-formed AWS KMS envelope", code="Malformed") from None
        if self._data_keys is None:
            raise VaultError("sealed with AWS KMS, and IAM_BOT_KMS_KEY_ID is not set", code="KmsNotSet")
        if not request:
            raise VaultError("opening an AWS KMS envelope needs the request's short id (the encryption context)")
        key = self._ask(self._data_keys.unwrap, wrapped, {CONTEXT_KEY: request})
        try:
            return AESGCM(key).decrypt(nonce, body, _associated_data(request))
        except (InvalidTag, ValueError):
            raise VaultError("the credentials do not open with their data key (altered, or sealed for another request)", code="InvalidTag") from None
        finally:
            wipe(key)

    @staticmethod
    def _ask(fn: Callable[..., T], *args: object) -> T:
        """Call the key service; its errors become VaultError (a code and whether retrying may help, no more)."""
        try:
            return fn(*args)
        except VaultError:
            raise
        except Exception as exc:  # the key service's own error type (bot.iam's AwsError for AWS KMS)
            code = str(getattr(exc, "code", "") or type(exc).__name__)
            raise VaultError(f"AWS KMS answered {code}", transient=bool(getattr(exc, "transient", False)), code=code) from None


def _associated_data(request: str) -> bytes:
    return KMS_V1 + b" " + request.encode()


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    if not text:
        raise ValueError("empty part")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
