"""AWS KMS data keys for the credential vault (`IAM_BOT_KMS_KEY_ID`).

Each envelope gets its own AES-256 data key from GenerateDataKey; the vault encrypts with the
plaintext key and stores only the wrapped one, which Decrypt unwraps again. Both calls carry the
request's short id as encryption context, so a wrapped key moved to another request's row does
not open. The plaintext key is handed over as a `bytearray` the vault zeroes after use, and the
`bytes` botocore returned are zeroed here (bot.common.wipe says how far that goes). Errors are
AwsError, as for IAM; the vault turns them into its own.
"""

from __future__ import annotations

import re
from typing import Mapping

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from bot.common.wipe import wipe
from bot.iam.errors import AwsError, call

__all__ = ["KmsDataKeys", "region_of"]

# A reveal waits on Decrypt after Slack's click was acknowledged; a sealed step of the apply job on
# GenerateDataKey. Throttling and 5xx are retried by botocore, then by the job.
_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=15)

_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):\d{12}:(key|alias)/.+$")


def region_of(key_id: str) -> str | None:
    """The region named by a key or alias ARN; None for a bare key id or alias (boto3's chain decides)."""
    m = _ARN.match(key_id)
    return m["region"] if m else None


class KmsDataKeys:
    SETUP = "create the AWS KMS client"

    def __init__(self, key_id: str, session: boto3.session.Session | None = None):
        self.key_id = key_id
        try:
            self._session = session or boto3.session.Session()
            self._kms = self._session.client("kms", region_name=region_of(key_id), config=_CONFIG)
        except BotoCoreError as exc:
            raise AwsError(type(exc).__name__, "the AWS KMS client could not be made", action=self.SETUP) from None

    def __repr__(self) -> str:
        return f"KmsDataKeys({self.key_id!r})"

    def generate(self, context: Mapping[str, str]) -> tuple[bytearray, bytes]:
        """(plaintext data key, wrapped data key): a fresh AES-256 key for one envelope."""
        answer = call("GenerateDataKey", self._kms.generate_data_key, KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context))
        plaintext = answer.pop("Plaintext")
        try:
            return bytearray(plaintext), bytes(answer["CiphertextBlob"])
        finally:
            wipe(plaintext)
            del plaintext

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytearray:
        """The plaintext data key of `wrapped`, if this key and this context sealed it (else AwsError)."""
        # KeyId: a wrapped key made under any other KMS key is refused, even one the bot may use.
        answer = call("Decrypt", self._kms.decrypt, CiphertextBlob=bytes(wrapped), KeyId=self.key_id, EncryptionContext=dict(context))
        plaintext = answer.pop("Plaintext")
        try:
            return bytearray(plaintext)
        finally:
            wipe(plaintext)
            del plaintext
