"""bot.credentials.vault: sealing, key rotation, errors without key material, and credentials that never print secrets."""

from __future__ import annotations

import base64
import csv
import io

import pytest
from cryptography.fernet import Fernet

from bot.requests.validation import user_name_error
from bot.credentials.vault import Credentials, Vault, VaultError

PASSWORD = "Zq7!pW2#mN9$kL4^"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
URL = "https://123456789012.signin.aws.amazon.com/console"
HEADER = "User name,Password,Access key ID,Secret access key,Console login link"


def creds(**overrides: str | None) -> Credentials:
    fields: dict[str, str | None] = dict(
        user_name="jane.doe",
        console_url=URL,
        account="123456789012",
        password=PASSWORD,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
    )
    fields.update(overrides)
    return Credentials(**fields)  # type: ignore[arg-type]


def key() -> str:
    return Fernet.generate_key().decode()


def _key_fragments(k: str) -> list[str]:
    raw = base64.urlsafe_b64decode(k)
    return [k, k[:16], k[16:32], raw.hex(), repr(raw)]


@pytest.mark.parametrize(
    "c",
    [
        creds(),
        creds(access_key_id=None, secret_access_key=None),
        creds(password=None),
        creds(user_name="a+b=c,d.e@f_g-h", password="ünïcødé ✓"),
    ],
)
def test_seal_open_round_trip(c: Credentials) -> None:
    vault = Vault([key()])
    token = vault.seal(c)
    assert isinstance(token, bytes)
    assert vault.open(token) == c
    for secret in (c.password, c.secret_access_key):
        if secret:
            assert secret.encode() not in token


def test_each_seal_is_fresh() -> None:
    vault = Vault([key()])
    assert vault.seal(creds()) != vault.seal(creds())


def test_token_from_old_key_opens_after_rotation() -> None:
    old, new = key(), key()
    token = Vault([old]).seal(creds())
    rotated_vault = Vault([new, old])  # newest first
    assert rotated_vault.open(token) == creds()
    # New tokens use the newest key: a vault with only the new key can read them.
    assert Vault([new]).open(rotated_vault.seal(creds())) == creds()
    with pytest.raises(VaultError):
        Vault([old]).open(rotated_vault.seal(creds()))
    # rotate() re-encrypts old tokens under the newest key.
    assert Vault([new]).open(rotated_vault.rotate(token)) == creds()


def test_token_from_unknown_key_raises_without_key_material() -> None:
    sealing_key, configured = key(), [key(), key()]
    token = Vault([sealing_key]).seal(creds())
    with pytest.raises(VaultError) as info:
        Vault(configured).open(token)
    message = str(info.value) + repr(info.value)
    for k in [sealing_key, *configured]:
        for fragment in _key_fragments(k):
            assert fragment not in message
    assert PASSWORD not in message and SECRET not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("token", [b"", b"garbage", b"gAAAAA" + b"A" * 100])
def test_garbage_token_raises_vault_error(token: bytes) -> None:
    with pytest.raises(VaultError):
        Vault([key()]).open(token)


def test_tampered_token_raises_vault_error() -> None:
    vault = Vault([key()])
    token = bytearray(vault.seal(creds()))
    token[-5] = ord("A") if token[-5] != ord("A") else ord("B")
    with pytest.raises(VaultError):
        vault.open(bytes(token))


def test_vault_needs_a_key() -> None:
    with pytest.raises(VaultError):
        Vault([])


@pytest.mark.parametrize("render", [repr, str, lambda c: f"{c}", lambda c: repr([c]), lambda c: str({"c": c}), lambda c: "%s %r" % (c, c)])
def test_credentials_never_print_secrets(render) -> None:
    shown = render(creds())
    assert "jane.doe" in shown
    for secret in (PASSWORD, SECRET, KEY_ID):
        assert secret not in shown
    assert "redacted" in shown


def test_with_keeps_redaction_and_changes_fields() -> None:
    changed = creds().with_(password="N3w!Passw0rd")
    assert changed.password == "N3w!Passw0rd"
    assert "N3w!Passw0rd" not in repr(changed)


def test_csv_matches_the_aws_console_layout() -> None:
    text = creds().csv()
    header, row = text.split("\n")
    assert header == HEADER
    assert row == f"jane.doe,{PASSWORD},{KEY_ID},{SECRET},{URL}"


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"access_key_id": None, "secret_access_key": None}, ["jane.doe", PASSWORD, "", "", URL]),
        ({"password": None}, ["jane.doe", "", KEY_ID, SECRET, URL]),
    ],
)
def test_csv_leaves_missing_fields_empty(overrides: dict, expected: list[str]) -> None:
    rows = list(csv.reader(io.StringIO(creds(**overrides).csv())))
    assert rows == [HEADER.split(","), expected]


def test_csv_round_trips_a_user_name_with_a_comma() -> None:
    name = "svc,payments"
    assert user_name_error(name) is None  # a legal IAM user name
    rows = list(csv.reader(io.StringIO(creds(user_name=name).csv())))
    assert rows[1] == [name, PASSWORD, KEY_ID, SECRET, URL]
