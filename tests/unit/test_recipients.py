"""bot.credentials.recipients: the owner's public key as pasted in Slack, and the age file only they can open."""

from __future__ import annotations

import base64
import string
import struct
import subprocess
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.credentials.recipients import KeyRefused, OwnerKey, encrypt_to, open_command, parse_owner_key

SSH_KEYGEN = "/usr/bin/ssh-keygen"
SECRET = b"AKIAEXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"


def _openssh_public(private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return private_key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()


class SshPair:
    def __init__(self, private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        self.public_line = _openssh_public(private_key)
        self.private_pem = private_key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())

    @property
    def type_(self) -> str:
        return self.public_line.split()[0]

    @property
    def b64(self) -> str:
        return self.public_line.split()[1]

    def identity(self) -> pyrage.ssh.Identity:
        return pyrage.ssh.Identity.from_buffer(self.private_pem)


@pytest.fixture(scope="module")
def ed() -> SshPair:
    return SshPair(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def rsa3072() -> SshPair:
    return SshPair(rsa.generate_private_key(public_exponent=65537, key_size=3072))


@pytest.fixture(scope="module")
def rsa2048() -> SshPair:
    return SshPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def age_identity() -> pyrage.x25519.Identity:
    return pyrage.x25519.Identity.generate()


def _blob(key_type: str, *fields: bytes) -> str:
    """A base64 SSH key blob of the given type (for types we cannot generate, e.g. FIDO keys)."""
    data = b"".join(struct.pack(">I", len(f)) + f for f in (key_type.encode(), *fields))
    return base64.b64encode(data).decode()


def _refused(text: str) -> KeyRefused:
    with pytest.raises(KeyRefused) as info:
        parse_owner_key(text)
    assert str(info.value) == info.value.message
    return info.value


def _wrap(text: str, width: int, sep: str = "\n") -> str:
    return sep.join(text[i : i + width] for i in range(0, len(text), width))


# --- round trips ---------------------------------------------------------------------------------


def test_age_round_trip(age_identity: pyrage.x25519.Identity) -> None:
    recipient = str(age_identity.to_public())
    key = parse_owner_key(recipient)
    short = f"{recipient[:12]}…{recipient[-6:]}"
    assert key == OwnerKey(kind="age", public_key=recipient, fingerprint=short, bits=None)
    assert key.label == f"age {short}"
    sealed = encrypt_to(key, SECRET)
    assert sealed.startswith(b"age-encryption.org/v1\n-> X25519 ")  # binary, not armored
    assert SECRET not in sealed
    assert pyrage.decrypt(sealed, [age_identity]) == SECRET


def test_ed25519_round_trip(ed: SshPair) -> None:
    key = parse_owner_key(ed.public_line)
    assert (key.kind, key.public_key, key.bits) == ("ssh-ed25519", ed.public_line, None)
    assert key.label == f"ssh-ed25519 {key.fingerprint}"
    sealed = encrypt_to(key, SECRET)
    assert sealed.startswith(b"age-encryption.org/v1\n-> ssh-ed25519 ")
    assert pyrage.decrypt(sealed, [ed.identity()]) == SECRET


def test_rsa3072_round_trip(rsa3072: SshPair) -> None:
    key = parse_owner_key(rsa3072.public_line)
    assert (key.kind, key.public_key, key.bits) == ("ssh-rsa", rsa3072.public_line, 3072)
    sealed = encrypt_to(key, SECRET)
    assert sealed.startswith(b"age-encryption.org/v1\n-> ssh-rsa ")
    assert pyrage.decrypt(sealed, [rsa3072.identity()]) == SECRET


def test_another_key_cannot_open_it(ed: SshPair, age_identity: pyrage.x25519.Identity) -> None:
    sealed = encrypt_to(parse_owner_key(ed.public_line), SECRET)
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(sealed, [age_identity])
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(sealed, [SshPair(ed25519.Ed25519PrivateKey.generate()).identity()])


@settings(max_examples=25)
@given(st.binary(max_size=5000))
def test_any_bytes_round_trip(ed: SshPair, plaintext: bytes) -> None:
    assert pyrage.decrypt(encrypt_to(parse_owner_key(ed.public_line), plaintext), [ed.identity()]) == plaintext


def test_normalised_key_parses_to_itself(ed: SshPair, rsa3072: SshPair, age_identity: pyrage.x25519.Identity) -> None:
    for text in (ed.public_line + " me@laptop", rsa3072.public_line, str(age_identity.to_public())):
        key = parse_owner_key(text)
        assert parse_owner_key(key.public_key) == key


# --- fingerprints --------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["ed", "rsa3072"])
def test_ssh_fingerprint_matches_ssh_keygen(pair: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    keys: SshPair = request.getfixturevalue(pair)
    pub = tmp_path / "id.pub"
    pub.write_text(keys.public_line + " someone@example\n")
    printed = subprocess.run([SSH_KEYGEN, "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()
    key = parse_owner_key(pub.read_text())
    assert key.fingerprint == printed[1]
    assert key.fingerprint.startswith("SHA256:") and not key.fingerprint.endswith("=")
    assert printed[0] == str(key.bits or 256)
    assert key.label == f"{key.kind} {printed[1]}"


# --- leniency ------------------------------------------------------------------------------------


def test_slack_formatting_and_comments_are_tolerated(ed: SshPair, age_identity: pyrage.x25519.Identity) -> None:
    recipient = str(age_identity.to_public())
    for text in (
        f"  {ed.public_line}  \n",
        f"{ed.public_line} alice@laptop",
        f"{ed.public_line} Alice's laptop (work) 2024",
        f"`{ed.public_line} alice@laptop`",
        f"```{ed.public_line}```",
        f"```\n{ed.public_line} alice@laptop\n```",
        f"here it is: `{ed.public_line}`",
        f"{ed.public_line} &lt;alice@example.com&gt; R&amp;D",
        f"{ed.public_line} <mailto:alice@example.com|alice@example.com>",
        f'"{ed.public_line}"',
        f'no-pty,from="10.0.0.1" {ed.public_line} alice@laptop',  # an authorized_keys line
        f"{ed.type_}\n{ed.b64}\nalice@laptop",
    ):
        assert parse_owner_key(text).public_key == ed.public_line, text
    for text in (recipient, f"`{recipient}`", f"```\n{recipient}\n```", recipient.upper(), f"Public key: {recipient}"):
        assert parse_owner_key(text).public_key == recipient, text


@pytest.mark.parametrize("width", [40, 64, 70, 76, 100])
@pytest.mark.parametrize("sep", ["\n", "\r\n", " \n", "\n\n"])
def test_line_breaks_inside_a_long_rsa_key_are_joined(rsa3072: SshPair, width: int, sep: str) -> None:
    broken = f"{rsa3072.type_} {_wrap(rsa3072.b64, width, sep)} bob@desktop"
    key = parse_owner_key(broken)
    assert key.public_key == rsa3072.public_line
    assert key.bits == 3072


def test_a_comment_that_looks_like_base64_is_not_swallowed(rsa3072: SshPair) -> None:
    assert parse_owner_key(f"{rsa3072.public_line} AAAAlaptop").public_key == rsa3072.public_line
    wrapped = f"{rsa3072.type_}\n{_wrap(rsa3072.b64, 64)}\nAAAB3Nza"
    assert parse_owner_key(wrapped).public_key == rsa3072.public_line


def test_unpadded_base64_is_normalised(rsa3072: SshPair, ed: SshPair) -> None:
    for pair in (ed, rsa3072):
        if pair.b64.endswith("="):
            assert parse_owner_key(f"{pair.type_} {pair.b64.rstrip('=')}").public_key == pair.public_line


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "``", "``` ```", "```\n\n```", '""'])
def test_empty(text: str) -> None:
    refusal = _refused(text)
    assert refusal.code == "empty"
    assert "age1" in refusal.message and "ssh-ed25519" in refusal.message


def _private_pastes() -> list[tuple[str, str]]:
    ed = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    openssh = ed.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()).decode()
    age = pyrage.x25519.Identity.generate()
    pastes = {
        "openssh": openssh,
        "rsa": rsa_key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption())
        .decode(),
        "pkcs8": ed.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()).decode(),
        "ec": ec_key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()).decode(),
        "encrypted": ed.private_bytes(
            ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(b"hunter2hunter2")
        ).decode(),
        "age": str(age),
        "age keys.txt": f"# created: 2024-05-01T10:00:00Z\n# public key: {age.to_public()}\n{age}\n",
        "age plugin": "AGE-PLUGIN-YUBIKEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQ5ZHC4L",
        "putty": (
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: eddsa-key-20240501\n"
            "Public-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIHKjsWbqAQ3QjgJjOnS1Cx7OD4EwdeEFHmGxJPmRNCDe\n"
            "Private-Lines: 1\nAAAAIBzkY5jvC9vQuXSfwKrpdN0HE6oWyCJzOPQ0qTt6ZJdy\n"
            "Private-MAC: 7d6a5c0b0c9a7f1e2b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192\n"
        ),
        "openssh body only": "".join(openssh.splitlines()[1:-1]),
        "end line only": openssh.splitlines()[-2] + "\n" + openssh.splitlines()[-1],
        "in a fence": f"```\n{openssh}```",
        "slack escaped": f"&lt;{str(age)}&gt;",
        "with the public key too": ed.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
        + "\n"
        + openssh,
        "lower case age": str(age).lower(),
    }
    return list(pastes.items())


PRIVATE_PASTES = _private_pastes()


def _twelves(text: str) -> set[str]:
    return {text[i : i + 12] for i in range(len(text) - 11)}


@pytest.mark.parametrize(("name", "text"), PRIVATE_PASTES, ids=[n for n, _ in PRIVATE_PASTES])
def test_private_key_is_refused_without_echoing_it(name: str, text: str) -> None:
    refusal = _refused(text)
    assert refusal.code == "private_key", name
    message = refusal.message.lower()
    pasted = text.lower()
    echoed = _twelves(pasted) & _twelves(message)
    assert not echoed, echoed
    for advice in ("not store", "leaked", "new key pair", "stop using", "authorised", ".pub", "age1"):
        assert advice in message, advice


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "my key is on my laptop, I'll send it later",
        "ssh-keygen -t ed25519",
        "https://github.com/alice.keys",
        "AAAAC3NzaC1lZDI1NTE5AAAAIHKjsWbqAQ3QjgJjOnS1Cx7OD4EwdeEFHmGxJPmRNCDe",  # the data without its type
        "age1",
        "sha256:BZFpkGs1GiHgzjQg5tqhGpDAKhPzUg8qQrjF2cmGsPM",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAcqOxZuoBDdCOAmM6dLULHs4PgTB14QUeYbEk+ZE0IN4=\n"
        "-----END PUBLIC KEY-----",  # a PEM public key: not a format age takes
    ],
)
def test_not_a_key(text: str) -> None:
    refusal = _refused(text)
    assert refusal.code == "not_a_key"
    for expected in ("age1", "ssh-ed25519", "ssh-rsa", "3072", "~/.ssh/id_ed25519.pub"):
        assert expected in refusal.message


def test_far_too_long_is_not_a_key(ed: SshPair) -> None:
    assert _refused(ed.public_line + " " + "x" * 30_000).code == "not_a_key"


def test_two_keys_are_refused(ed: SshPair, rsa3072: SshPair, age_identity: pyrage.x25519.Identity) -> None:
    other_age = str(pyrage.x25519.Identity.generate().to_public())
    recipient = str(age_identity.to_public())
    for text in (
        f"{ed.public_line} a@x\n{rsa3072.public_line} b@y",
        f"{ed.public_line}\n{ed.public_line}",
        f"{ed.public_line} {recipient}",
        f"{recipient}\n{other_age}",
        f"`{recipient}` and `{ed.public_line}`",
    ):
        refusal = _refused(text)
        assert refusal.code == "not_a_key", text
        assert "one key at a time" in refusal.message


def test_rsa_under_3072_bits(rsa2048: SshPair) -> None:
    refusal = _refused(rsa2048.public_line + " old@box")
    assert refusal.code == "rsa_too_short"
    assert "2048" in refusal.message and "3072" in refusal.message
    assert "ssh-keygen -t ed25519" in refusal.message
    # also when the short key was broken over lines
    assert _refused(f"{rsa2048.type_}\n{_wrap(rsa2048.b64, 60)}").code == "rsa_too_short"


def _unsupported_keys() -> list[tuple[str, str]]:
    ecdsa_line = _openssh_public(ec.generate_private_key(ec.SECP256R1()))
    ecdsa384 = _openssh_public(ec.generate_private_key(ec.SECP384R1()))
    point = bytes(range(32))
    return [
        ("ssh-dss", "ssh-dss " + _blob("ssh-dss", bytes(129), bytes(20), bytes(128), bytes(128)) + " old@box"),
        ("ecdsa-sha2-nistp256", ecdsa_line + " me@host"),
        ("ecdsa-sha2-nistp384", ecdsa384),
        (
            "sk-ssh-ed25519@openssh.com",
            "sk-ssh-ed25519@openssh.com " + _blob("sk-ssh-ed25519@openssh.com", point, b"ssh:"),
        ),
        (
            "sk-ecdsa-sha2-nistp256@openssh.com",
            "sk-ecdsa-sha2-nistp256@openssh.com "
            + _blob("sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", b"\x04" + bytes(64), b"ssh:"),
        ),
        (
            "ssh-ed25519-cert-v01@openssh.com",
            "ssh-ed25519-cert-v01@openssh.com " + _blob("ssh-ed25519-cert-v01@openssh.com", bytes(32), point) + " id",
        ),
        (
            "ssh-rsa-cert-v01@openssh.com",
            "ssh-rsa-cert-v01@openssh.com " + _blob("ssh-rsa-cert-v01@openssh.com", bytes(32)),
        ),
        ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),  # the type alone still gets the specific answer
    ]


UNSUPPORTED_KEYS = _unsupported_keys()


@pytest.mark.parametrize(
    ("key_type", "text"), UNSUPPORTED_KEYS, ids=[f"{i}-{t}" for i, (t, _) in enumerate(UNSUPPORTED_KEYS)]
)
def test_unsupported_ssh_types(key_type: str, text: str) -> None:
    refusal = _refused(text)
    assert refusal.code == "unsupported_type"
    assert key_type in refusal.message
    for expected in ("ssh-ed25519", "ssh-rsa", "3072", "age1"):
        assert expected in refusal.message


def test_certificate_refusal_says_to_send_the_plain_key() -> None:
    text = "ssh-ed25519-cert-v01@openssh.com " + _blob("ssh-ed25519-cert-v01@openssh.com", bytes(32))
    assert "certificate" in _refused(text).message


def test_age_plugin_recipient_is_unsupported() -> None:
    refusal = _refused("age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t")
    assert refusal.code == "unsupported_type"
    assert "age1yubikey1" in refusal.message


def test_malformed(ed: SshPair, rsa3072: SshPair, age_identity: pyrage.x25519.Identity) -> None:
    recipient = str(age_identity.to_public())
    lines = _wrap(rsa3072.b64, 64).splitlines()
    flipped = recipient[:-3] + ("q" if recipient[-3] != "q" else "p") + recipient[-2:]
    cases = {
        "truncated ed25519": f"{ed.type_} {ed.b64[:40]}",
        "truncated rsa": f"{rsa3072.type_} {rsa3072.b64[:300]} bob@desktop",
        "rsa missing a middle line": f"{rsa3072.type_}\n" + "\n".join(lines[:3] + lines[4:]),
        "not base64": f"{ed.type_} AAAA!!notbase64",
        "no data": "ssh-ed25519",
        "no data, a comment": "ssh-rsa alice@laptop",
        "extra bytes": f"{ed.type_} {base64.b64encode(base64.b64decode(ed.b64) + b'xyz').decode()}",
        "ed25519 point too short": f"{ed.type_} {_blob('ssh-ed25519', bytes(31))}",
        "age checksum": flipped,
        "age truncated": recipient[:-5],
    }
    for name, text in cases.items():
        refusal = _refused(text)
        assert refusal.code == "malformed", name


def test_type_mismatch_is_malformed_and_named(ed: SshPair) -> None:
    refusal = _refused(f"ssh-rsa {ed.b64} alice@laptop")
    assert refusal.code == "malformed"
    assert "ssh-ed25519" in refusal.message and "ssh-rsa" in refusal.message


# --- robustness ----------------------------------------------------------------------------------


@given(st.text(max_size=3000))
def test_arbitrary_text_never_raises_anything_but_key_refused(text: str) -> None:
    try:
        parse_owner_key(text)
    except KeyRefused as refusal:
        assert refusal.code in KeyRefused.CODES
        assert refusal.message


_FRAGMENTS = st.sampled_from(
    [
        "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "sk-ssh-ed25519@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com", "AAAA", "AAAAC3NzaC1lZDI1NTE5", "AAAAB3NzaC1yc2E",
        "AAAAB3NzaC1yc2EAAAADAQABAAABgQ",
        "age1", "age1qqqqqqqqqq", "AGE-", "```", "`", "&lt;", "&amp;", "=", "==", "\n", " ", "\r\n", "'", '"',
    ]
)


_B64_RUNS = st.text(alphabet=string.ascii_letters + string.digits + "+/=", max_size=80)


@given(st.lists(st.one_of(_FRAGMENTS, _B64_RUNS), max_size=30))
def test_key_like_text_never_raises_anything_but_key_refused(parts: list[str]) -> None:
    try:
        key = parse_owner_key(" ".join(parts))
    except KeyRefused as refusal:
        assert refusal.code in KeyRefused.CODES
    else:
        assert key.kind in ("age", "ssh-ed25519", "ssh-rsa")


@settings(max_examples=200)
@given(st.data())
def test_a_damaged_key_is_refused_or_still_a_key_pyrage_takes(ed: SshPair, data: st.DataObject) -> None:
    line = ed.public_line
    i = data.draw(st.integers(0, len(line) - 1))
    c = data.draw(st.characters(codec="ascii"))
    damaged = line[:i] + c + line[i + 1 :]
    try:
        key = parse_owner_key(damaged)
    except KeyRefused:
        return
    encrypt_to(key, b"x")  # whatever is accepted, pyrage can encrypt to


# --- the command that opens it -------------------------------------------------------------------


def test_open_command(ed: SshPair, rsa3072: SshPair, age_identity: pyrage.x25519.Identity) -> None:
    assert open_command(parse_owner_key(ed.public_line), "alice.age") == "age -d -i ~/.ssh/id_ed25519 alice.age"
    assert open_command(parse_owner_key(rsa3072.public_line), "alice.age") == "age -d -i ~/.ssh/id_rsa alice.age"
    age_cmd = open_command(parse_owner_key(str(age_identity.to_public())), "alice.age")
    assert age_cmd.startswith("age -d -i key.txt alice.age  # ")
    assert "AGE-SECRET-KEY" in age_cmd
    assert open_command(parse_owner_key(ed.public_line), "my creds.age") == "age -d -i ~/.ssh/id_ed25519 'my creds.age'"
