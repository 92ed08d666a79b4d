"""Envelope formats, the request binding, wiping secrets from memory, and the settings of both (no AWS here:
AWS KMS envelopes are tested against moto's KMS in tests/e2e/test_kms.py)."""

from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet

from bot.common.errors import ConfigError
from bot.common.wipe import wipe
from bot.credentials.vault import Credentials, Vault, VaultError, sealed_with
from bot.iam.kms import region_of
from bot.runtime.settings import load_settings

CREDS = Credentials(user_name="jane", console_url="https://example.invalid/", account="123456789012", password="Zq7!pW2#mN9$kL4^")


def test_how_an_envelope_was_sealed_is_read_from_its_first_bytes() -> None:
    token = Vault([Fernet.generate_key().decode()]).seal(CREDS, request="R1")
    assert token.startswith(b"gAAAAA") and sealed_with(token) == "fernet"
    assert sealed_with(b"kms1.AAAA.BBBB.CCCC") == "kms"
    assert sealed_with(b"kms1") == "fernet"  # no separator: not a KMS envelope


@pytest.mark.parametrize("bad", [b"kms1.", b"kms1.a.b", b"kms1.a.b.c.d", b"kms1.!!.AAAA.AAAA", b"kms1..AAAA.AAAA"])
def test_a_malformed_kms_envelope_is_refused_by_name(bad: bytes) -> None:
    with pytest.raises(VaultError) as err:
        Vault([Fernet.generate_key().decode()]).open(bad, request="R1")
    assert err.value.code in ("Malformed", "KmsNotSet") and not err.value.transient


def test_a_fernet_envelope_is_bound_to_its_request() -> None:
    vault = Vault([Fernet.generate_key().decode()])
    token = vault.seal(CREDS, request="RAAAAAA")
    assert vault.open(token, request="RAAAAAA") == CREDS
    assert vault.open(token) == CREDS  # the doctor, with no request at hand
    with pytest.raises(VaultError) as moved:
        vault.open(token, request="RBBBBBB")  # copied onto another request's row
    assert moved.value.code == "WrongRequest"
    # Envelopes sealed before the binding existed still open.
    assert vault.open(vault.seal(CREDS), request="RBBBBBB") == CREDS


def test_rotate_says_which_envelopes_are_current() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Vault([old]).seal(CREDS, request="R1")
    vault = Vault([new, old])
    fresh = vault.rotate(token, request="R1")
    assert fresh is not None and Vault([new]).open(fresh, request="R1") == CREDS
    assert vault.rotate(fresh, request="R1") is None
    with pytest.raises(VaultError) as lost:
        Vault([new]).rotate(token, request="R1")
    assert lost.value.code == "InvalidToken"
    with pytest.raises(VaultError) as kms:
        vault.rotate(b"kms1.AAAA.AAAA.AAAA", request="R1")
    assert kms.value.code == "KmsNotSet"


def test_a_vault_needs_a_key_of_some_kind() -> None:
    with pytest.raises(VaultError):
        Vault([])


def test_wipe_zeroes_buffers_in_place() -> None:
    ba = bytearray(os.urandom(32))
    wipe(ba)
    assert ba == bytearray(32)
    b = bytes(os.urandom(32))  # a fresh object nothing else shares, as a KMS answer's plaintext
    view = memoryview(b)  # to look at the very buffer afterwards
    wipe(b)
    assert view.tobytes() == bytes(32)
    mv = memoryview(bytearray(b"secret"))
    wipe(mv)
    assert mv.tobytes() == bytes(6)
    one = b"x"
    wipe(one)  # shared by CPython: left alone
    assert one == b"x"
    wipe(None)


@pytest.mark.parametrize(
    "key_id",
    [
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:eu-west-1:123456789012:alias/iam-bot",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/iam-bot",
    ],
)
def test_kms_key_ids_accepted(key_id: str) -> None:
    assert load_settings(kms_key_id=key_id).kms_key_id == key_id


@pytest.mark.parametrize("key_id", ["iam-bot", "arn:aws:iam::123456789012:policy/x", "alias/", "key/1234", "arn:aws:kms:eu-west-1:123:key/x"])
def test_kms_key_ids_refused_with_one_line(key_id: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(kms_key_id=key_id)
    (line,) = str(err.value).splitlines()
    assert line.startswith("IAM_BOT_KMS_KEY_ID: must be an AWS KMS key ARN")


def test_the_key_region_comes_from_its_arn() -> None:
    assert region_of("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab") == "eu-west-1"
    assert region_of("alias/iam-bot") is None


def _serving_problems(**overrides: object) -> list[str]:
    base: dict[str, object] = dict(
        slack_bot_token="xoxb-1", slack_signing_secret="s", approvers_raw="U012ABCDEF", audit_key_raw="a" * 40, allow_unbounded=True
    )
    try:
        load_settings(**{**base, **overrides}).check_for_serving()
    except ConfigError as exc:
        return str(exc).splitlines()
    return []


def test_serving_needs_a_key_except_on_the_local_default_database_or_with_kms() -> None:
    kms = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert _serving_problems(database_url="sqlite:///iam-bot.db", audit_key_raw="") == []
    for url in ("postgresql://u@db/iam", "postgres://u@db/iam", "sqlite:////var/lib/iam-bot/iam-bot.db", "sqlite:///data/iam-bot.db"):
        (line,) = _serving_problems(database_url=url)
        assert line.startswith("IAM_BOT_ENCRYPTION_KEY: required unless DATABASE_URL is the local default (sqlite:///iam-bot.db)")
        assert "u@db" not in line and "/var/lib" not in line
        assert _serving_problems(database_url=url, kms_key_id=kms) == []
        assert _serving_problems(database_url=url, encryption_key_raw=Fernet.generate_key().decode()) == []
