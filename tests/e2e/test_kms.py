"""Envelopes under AWS KMS (IAM_BOT_KMS_KEY_ID), against moto's KMS over HTTP: a data key per envelope,
only its wrapped form stored, the request's short id as encryption context, Fernet envelopes still open."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.credentials.vault import CONTEXT_KEY, Vault, VaultError
from bot.iam.kms import KmsDataKeys
from models import CredentialEnvelope
from tests.support.envelopes import credentials
from tests.support.harness import RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, click, credentials_dm, request_user


@pytest.fixture
def kms(moto, iam):  # `iam` resets moto: every test starts with no key
    return boto3.client("kms", endpoint_url=moto.url, region_name="us-east-1")


@pytest.fixture
def key_arn(kms) -> str:
    return kms.create_key(Description="iam-bot credential envelopes")["KeyMetadata"]["Arn"]


def _data_keys(key_id: str) -> KmsDataKeys:
    # The bot's own client, reaching moto through AWS_ENDPOINT_URL as it would reach AWS.
    return KmsDataKeys(key_id, boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"))


def _unb64(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _kms_calls(moto) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    """(operation, parameters) of every KMS request moto received since start_recording()."""
    raw = requests.get(moto.url + "/moto-api/recorder/download-recording", timeout=10).text
    out = []
    for line in filter(str.strip, raw.splitlines()):
        entry = json.loads(line)
        target = (entry.get("headers") or {}).get("X-Amz-Target", "")
        if target.startswith("TrentService."):
            body = base64.b64decode(entry["body"]) if entry.get("body_encoded") else entry["body"]
            out.append((target.split(".", 1)[1], json.loads(body)))
    return out


def test_seal_and_open_round_trip_with_a_data_key_of_its_own(kms, key_arn, moto):
    vault = Vault([], data_keys=_data_keys(key_arn))
    creds = credentials(1)
    moto.start_recording()
    token = vault.seal(creds, request="RKMS001")
    assert token.startswith(b"kms1.") and token.count(b".") == 3
    assert vault.open(token, request="RKMS001") == creds
    (generate, decrypt) = _kms_calls(moto)
    assert generate == ("GenerateDataKey", {"KeyId": key_arn, "KeySpec": "AES_256", "EncryptionContext": {CONTEXT_KEY: "RKMS001"}})
    assert decrypt[0] == "Decrypt" and decrypt[1]["KeyId"] == key_arn and decrypt[1]["EncryptionContext"] == {CONTEXT_KEY: "RKMS001"}

    # What is stored holds the wrapped key only: the data key it unwraps to is nowhere in it.
    _, wrapped, _nonce, body = token.split(b".")
    data_key = kms.decrypt(CiphertextBlob=_unb64(wrapped), EncryptionContext={CONTEXT_KEY: "RKMS001"})["Plaintext"]
    assert len(data_key) == 32
    for form in (data_key, data_key.hex().encode(), base64.b64encode(data_key), base64.urlsafe_b64encode(data_key).rstrip(b"=")):
        assert form not in token and form not in _unb64(body)
    for secret in (creds.password, creds.secret_access_key):
        assert secret and secret.encode() not in token

    # Every envelope gets a fresh data key.
    other = vault.seal(creds, request="RKMS001")
    other_key = kms.decrypt(CiphertextBlob=_unb64(other.split(b".")[1]), EncryptionContext={CONTEXT_KEY: "RKMS001"})["Plaintext"]
    assert other_key != data_key and other != token


def test_a_wrong_encryption_context_or_an_altered_envelope_does_not_open(kms, key_arn):
    vault = Vault([], data_keys=_data_keys(key_arn))
    token = vault.seal(credentials(2), request="RKMS002")
    # Moved to another request: KMS refuses to unwrap the data key under that context.
    with pytest.raises(VaultError) as wrong:
        vault.open(token, request="RKMS003")
    assert wrong.value.code == "InvalidCiphertextException" and not wrong.value.transient
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=_unb64(token.split(b".")[1]), EncryptionContext={CONTEXT_KEY: "RKMS003"})
    # A flipped byte of the ciphertext: AES-GCM's tag does not hold.
    tag, wrapped, nonce, body = token.split(b".")
    raw = bytearray(_unb64(body))
    raw[0] ^= 1
    altered = b".".join([tag, wrapped, nonce, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=")])
    with pytest.raises(VaultError) as bad:
        vault.open(altered, request="RKMS002")
    assert bad.value.code == "InvalidTag"
    # Under another KMS key than the one configured: refused, even though the bot could use that key.
    other = _data_keys(kms.create_key()["KeyMetadata"]["Arn"])
    with pytest.raises(VaultError):
        Vault([], data_keys=other).open(token, request="RKMS002")
    # Without the short id there is no context to ask for.
    with pytest.raises(VaultError):
        vault.open(token)
    # And no error tells a secret: only codes and words.
    assert "RKMS" not in str(wrong.value) and "kms1" not in str(bad.value)


def test_fernet_and_kms_envelopes_coexist(key_arn):
    fernet_key = Fernet.generate_key().decode()
    before, after = credentials(3), credentials(4)
    old = Vault([fernet_key]).seal(before, request="RKMS004")
    assert old.startswith(b"gAAAAA")
    both = Vault([fernet_key], data_keys=_data_keys(key_arn))
    new = both.seal(after, request="RKMS005")
    assert new.startswith(b"kms1.")  # KMS seals once it is set ...
    assert both.open(old, request="RKMS004") == before
    assert both.open(new, request="RKMS005") == after
    # ... and a vault without KMS says why it cannot open a KMS envelope.
    with pytest.raises(VaultError) as no_kms:
        Vault([fernet_key]).open(new, request="RKMS005")
    assert no_kms.value.code == "KmsNotSet"
    # A Fernet envelope opened for another request than it was sealed for is refused too.
    with pytest.raises(VaultError):
        both.open(old, request="RKMS005")


class _Keeping:
    """The real KMS data keys, keeping hold of each plaintext key handed to the vault, to look at after."""

    def __init__(self, inner: KmsDataKeys):
        self.inner = inner
        self.key_id = inner.key_id
        self.handed: list[bytearray] = []

    def generate(self, context):  # type: ignore[no-untyped-def]
        key, wrapped = self.inner.generate(context)
        self.handed.append(key)
        return key, wrapped

    def unwrap(self, wrapped, context):  # type: ignore[no-untyped-def]
        key = self.inner.unwrap(wrapped, context)
        self.handed.append(key)
        return key


def test_the_plaintext_data_key_is_wiped_after_use(key_arn):
    keys = _Keeping(_data_keys(key_arn))
    vault = Vault([], data_keys=keys)
    token = vault.seal(credentials(5), request="RKMS006")
    vault.open(token, request="RKMS006")
    assert len(keys.handed) == 2 and all(len(k) == 32 for k in keys.handed)
    assert all(k == bytearray(32) for k in keys.handed), "the vault zeroes each plaintext data key once used"


def test_the_whole_journey_with_kms(database_url, standin, moto, iam, kms, key_arn):
    """Request, approve, reveal with IAM_BOT_KMS_KEY_ID: the stored envelope is a KMS one, bound to the request."""
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"kms_key_id": key_arn}).start()
    try:
        moto.start_recording()
        short_id = request_user(bot, user_name="kmsuser01", access=["console", "access_key"])
        click(bot, APPROVER, "approve_request", short_id)
        dm = credentials_dm(bot, short_id)
        with bot.deps.sessionmaker.begin() as s:
            token = bytes(s.scalars(select(CredentialEnvelope.ciphertext)).one())
        assert token.startswith(b"kms1.")
        opened = len(standin.calls_to("views.open"))
        click(bot, REQUESTER, "reveal_credentials", short_id, dm)
        modal = wait_until(lambda: standin.calls_to("views.open")[opened:], what="reveal modal")[0]
        login = [r for r in moto.recorded() if r.get("Action") == "CreateLoginProfile"]
        assert login and login[-1]["Password"] in json.dumps(modal.args["view"])
        standin.wait_for("chat.update", lambda c: c.args["ts"] == dm.response["ts"] and "revealed" in c.args["text"] + json.dumps(c.args["blocks"]))
        with bot.deps.sessionmaker.begin() as s:
            assert s.scalars(select(CredentialEnvelope)).first() is None
        calls = _kms_calls(moto)
        assert {op for op, _ in calls} == {"GenerateDataKey", "Decrypt"}
        assert all(p["EncryptionContext"] == {CONTEXT_KEY: short_id} and p["KeyId"] == key_arn for _, p in calls)
        assert login[-1]["Password"] not in bot.logs.text()
    finally:
        bot.stop()
