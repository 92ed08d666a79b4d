"""The owner's public key, and the credentials file only the matching private key opens.

A new IAM user's access key is handed to its owner as a file encrypted in the age format to a public
key the owner gave us: an age X25519 recipient (``age1…``) or an SSH key (``ssh-ed25519``, or
``ssh-rsa`` of at least 3072 bits). Whoever else sees the file (Slack, a downloads folder, a backup)
cannot read it; the bot never holds anything that can. The key arrives as text pasted in Slack, so
:func:`parse_owner_key` is forgiving about how Slack and copy-paste mangle a key, strict about what
it accepts (only what pyrage can encrypt to and our policy allows), and answers a pasted *private*
key by refusing it without ever repeating it.

Pure: no I/O, no Slack, no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import shlex
import struct
from dataclasses import dataclass

import pyrage
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

MIN_RSA_BITS = 3072

KIND_AGE = "age"
KIND_ED25519 = "ssh-ed25519"
KIND_RSA = "ssh-rsa"

_WHAT_TO_SEND = (
    "Send me one public key: an age recipient (`age1…`) or an SSH public key "
    f"(`ssh-ed25519 …`, or `ssh-rsa …` of at least {MIN_RSA_BITS} bits), "
    "e.g. the contents of `~/.ssh/id_ed25519.pub`."
)
_HOW_TO_MAKE = "Make one with `ssh-keygen -t ed25519` (or `age-keygen -o key.txt`) and send me its public key."

# Markers of private keys in every format people are likely to paste: PEM/OpenSSH armour (also a
# stray END line when only part was copied), age identities, age plugin identities, PuTTY .ppk, and
# the base64 of "openssh-key-v1" that starts an OpenSSH private key body pasted without its armour.
_PRIVATE_MARKERS = re.compile(
    r"-----\s*(?:BEGIN|END)[A-Z0-9 ]*PRIVATE KEY"
    r"|AGE-SECRET-KEY-"
    r"|AGE-PLUGIN-"
    r"|PuTTY-User-Key-File"
    r"|b3BlbnNzaC1rZXktdjE",
    re.IGNORECASE,
)

# Types OpenSSH knows, so a type named without usable key data still gets a specific answer.
_KNOWN_SSH_TYPES = re.compile(
    r"(?:ssh-(?:ed25519|rsa|dss|ed448)"
    r"|ecdsa-sha2-nistp(?:256|384|521)"
    r"|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com"
    r"|rsa-sha2-(?:256|512)"
    r"|[a-z0-9@.-]+-cert-v0[01]@openssh\.com)"
)
# Anything shaped like an SSH key type; it counts as a key only when followed by key data.
_SSH_TYPE_SHAPE = re.compile(r"(?:ssh|ecdsa|sk|rsa|x509v3)-[a-z0-9@.-]{1,60}")
_AGE_SHAPE = re.compile(r"age1[0-9a-z]{6,}", re.IGNORECASE)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")

# Bounds so a huge paste costs little: the longest public key OpenSSH makes (RSA 16384) is ~2.8 kB.
_MAX_INPUT = 20_000
_MAX_BLOB_PIECES = 120


@dataclass(frozen=True)
class OwnerKey:
    """A public key the bot can encrypt an owner's credentials to.

    ``public_key`` is one normalised line: ``age1…`` (lower case) or ``<type> <base64>`` with the
    comment dropped. ``fingerprint`` is what the owner can compare with their own key: for SSH keys
    OpenSSH's ``SHA256:…`` (as ``ssh-keygen -lf`` prints it); for age the recipient shortened to
    ``age1`` + its next 8 characters + ``…`` + its last 6.
    """

    kind: str  # "age" | "ssh-ed25519" | "ssh-rsa"
    public_key: str
    fingerprint: str
    bits: int | None = None  # RSA modulus size; None for the others

    @property
    def label(self) -> str:
        """e.g. ``ssh-ed25519 SHA256:…`` or ``age age1abcdefgh…uvwxyz``."""
        return f"{self.kind} {self.fingerprint}"


class KeyRefused(ValueError):
    """A pasted key the bot will not use; the message is written for the person who pasted it."""

    CODES = frozenset({"empty", "private_key", "not_a_key", "rsa_too_short", "unsupported_type", "malformed"})

    def __init__(self, code: str, message: str) -> None:
        assert code in self.CODES, code
        super().__init__(message)
        self.code = code
        self.message = message


def parse_owner_key(text: str) -> OwnerKey:
    """The one public key in ``text``, normalised; :class:`KeyRefused` if there is not exactly one usable key.

    Lenient about what Slack and copying do to a key: surrounding whitespace or quotes, backticks
    or ``` fences, ``&lt;``/``&gt;``/``&amp;`` escapes, text before the key (an authorized_keys line's
    options, "here it is:"), a trailing comment, and line breaks inside a long key's base64.
    Anything accepted has been checked by both cryptography and pyrage.
    """
    if _PRIVATE_MARKERS.search(text):
        raise _private_key_refusal()
    text = _unwrap_slack(text)
    if not text:
        raise KeyRefused("empty", f"I didn't get a key. {_WHAT_TO_SEND}")
    if len(text) > _MAX_INPUT:
        raise KeyRefused("not_a_key", f"That is far too long to be a public key. {_WHAT_TO_SEND}")

    tokens = text.split()
    ssh_starts = [
        i for i, t in enumerate(tokens[:-1])
        if _SSH_TYPE_SHAPE.fullmatch(t) and tokens[i + 1].startswith("AAAA")  # every SSH key blob starts with AAAA
    ]
    age_starts = [i for i, t in enumerate(tokens) if _AGE_SHAPE.fullmatch(t)]
    if len(ssh_starts) + len(age_starts) > 1:
        raise KeyRefused(
            "not_a_key",
            "That looks like more than one key; I take one key at a time. "
            "Send just the public key the credentials should be encrypted to.",
        )
    if age_starts:
        return _parse_age(tokens[age_starts[0]])
    if ssh_starts:
        i = ssh_starts[0]
        return _parse_ssh(tokens[i], tokens[i + 1:])

    named = next((t for t in tokens if _KNOWN_SSH_TYPES.fullmatch(t)), None)
    if named is not None:  # a key type with no key data after it
        if named in (KIND_ED25519, KIND_RSA):
            raise _malformed(named)
        raise _unsupported(named)
    raise KeyRefused("not_a_key", f"That isn't a public key I can use. {_WHAT_TO_SEND}")


def encrypt_to(key: OwnerKey, plaintext: bytes) -> bytes:
    """``plaintext`` encrypted to ``key`` in the age binary format (not armored)."""
    return pyrage.encrypt(plaintext, [_recipient(key)], armored=False)


def open_command(key: OwnerKey, filename: str) -> str:
    """The command the owner runs to decrypt ``filename`` (it prints the contents).

    SSH keys: the private key at the default path ``ssh-keygen`` writes for that type
    (``~/.ssh/id_ed25519`` or ``~/.ssh/id_rsa``). age: age has no default identity file, so the
    command names ``key.txt`` (what ``age-keygen -o key.txt`` in age's own docs writes) and carries a
    shell comment saying it stands for the file holding the owner's age secret key; the comment keeps
    the line safe to paste as is. The filename is shell-quoted.
    """
    name = shlex.quote(filename)
    if key.kind == KIND_ED25519:
        return f"age -d -i ~/.ssh/id_ed25519 {name}"
    if key.kind == KIND_RSA:
        return f"age -d -i ~/.ssh/id_rsa {name}"
    if key.kind == KIND_AGE:
        return f"age -d -i key.txt {name}  # key.txt: the file holding your AGE-SECRET-KEY-1… line"
    raise ValueError(f"unknown key kind {key.kind!r}")


def _recipient(key: OwnerKey) -> pyrage.x25519.Recipient | pyrage.ssh.Recipient:
    if key.kind == KIND_AGE:
        return pyrage.x25519.Recipient.from_str(key.public_key)
    if key.kind in (KIND_ED25519, KIND_RSA):
        return pyrage.ssh.Recipient.from_str(key.public_key)
    raise ValueError(f"unknown key kind {key.kind!r}")


def _unwrap_slack(text: str) -> str:
    # Slack escapes only these three in message text; &amp; last so "&amp;lt;" stays "&lt;".
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    # No key contains a backtick, so inline code and ``` fences (wherever they sit) are just spaces.
    text = text.replace("`", " ").strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def _parse_age(token: str) -> OwnerKey:
    # Bech32: the human-readable part runs to the last "1". Plain X25519 recipients have "age";
    # plugin, tag and post-quantum recipients (age1yubikey1…, age1tag1…, age1pq1…) have more.
    hrp = token[: token.rfind("1")].lower()
    if hrp != "age":
        raise KeyRefused(
            "unsupported_type",
            f"`{hrp}1…` is an age plugin or post-quantum recipient, which I can't encrypt to. "
            "I can encrypt only to a plain age recipient (`age1…` from `age-keygen`), an `ssh-ed25519` key, "
            f"or an `ssh-rsa` key of at least {MIN_RSA_BITS} bits. {_HOW_TO_MAKE}",
        )
    try:
        recipient = pyrage.x25519.Recipient.from_str(token)
    except (pyrage.RecipientError, ValueError):
        raise _malformed(KIND_AGE) from None
    public_key = str(recipient)
    return OwnerKey(kind=KIND_AGE, public_key=public_key, fingerprint=f"{public_key[:12]}…{public_key[-6:]}")


def _parse_ssh(key_type: str, rest: list[str]) -> OwnerKey:
    if key_type not in (KIND_ED25519, KIND_RSA):
        raise _unsupported(key_type)
    blob = _join_blob(key_type, rest)
    if blob is None:
        raise _malformed(key_type, _embedded_type(rest[0]))
    normalised = f"{key_type} {base64.b64encode(blob).decode('ascii')}"
    loaded = load_ssh_public_key(normalised.encode("ascii"))  # _join_blob already proved it loads

    bits = None
    if key_type == KIND_RSA:
        assert isinstance(loaded, rsa.RSAPublicKey)
        bits = loaded.key_size
        if bits < MIN_RSA_BITS:
            raise KeyRefused(
                "rsa_too_short",
                f"That `ssh-rsa` key is {bits} bits; I accept RSA keys of at least {MIN_RSA_BITS} bits. "
                "Make a new key with `ssh-keygen -t ed25519` (or `ssh-keygen -t rsa -b 4096`) "
                "and send me its public key, e.g. the contents of `~/.ssh/id_ed25519.pub`.",
            )
    else:
        assert isinstance(loaded, ed25519.Ed25519PublicKey)
    try:
        pyrage.ssh.Recipient.from_str(normalised)
    except (pyrage.RecipientError, ValueError):
        raise _malformed(key_type) from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return OwnerKey(kind=key_type, public_key=normalised, fingerprint=f"SHA256:{digest}", bits=bits)


def _join_blob(key_type: str, pieces: list[str]) -> bytes | None:
    """The key blob: the shortest run of base64 pieces that loads as a ``key_type`` key.

    Copy-paste can break a long RSA key's base64 over several lines; the blob's own structure says
    where it ends, so a trailing comment (which may look like base64) is never swallowed.
    """
    joined = ""
    for piece in pieces[:_MAX_BLOB_PIECES]:
        if not _BASE64.fullmatch(piece):
            return None
        joined += piece
        if len(joined) % 4 == 1:  # no base64 string has this length, even unpadded
            continue
        blob = _b64decode(joined)
        if blob is None or _blob_type(blob) != key_type:
            continue
        try:
            load_ssh_public_key(f"{key_type} {base64.b64encode(blob).decode('ascii')}".encode("ascii"))
        except (ValueError, UnsupportedAlgorithm):
            continue
        return blob
    return None


def _b64decode(text: str) -> bytes | None:
    """Base64 with or without its padding; None unless every character is part of the data."""
    data = text.rstrip("=")
    if "=" in data:  # padding mid-string: the decoder would quietly drop what follows
        return None
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _blob_type(blob: bytes) -> str | None:
    """The key type written at the start of an SSH key blob (a uint32 length, then the name)."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    name = blob[4 : 4 + length]
    if length > 64 or len(name) != length:
        return None
    try:
        return name.decode("ascii")
    except UnicodeDecodeError:
        return None


def _embedded_type(first_piece: str) -> str | None:
    blob = _b64decode(first_piece[: len(first_piece) // 4 * 4])
    name = _blob_type(blob) if blob else None
    # Named back to the person only if it is a plausible type name, never arbitrary bytes.
    return name if name and _SSH_TYPE_SHAPE.fullmatch(name) else None


def _private_key_refusal() -> KeyRefused:
    # Never echo any of the input: it is a secret, and this text is posted back into Slack.
    return KeyRefused(
        "private_key",
        "That was the *private* half of a key pair, so I did not store it or use it. "
        "It has passed through Slack, though, so treat it as leaked: delete that message, "
        "make a new key pair (`ssh-keygen -t ed25519`, or `age-keygen -o key.txt`), "
        "stop using the old one and remove its public half wherever it is authorised "
        "(`~/.ssh/authorized_keys` on servers, GitHub and the like). "
        "Then send me only the new public key, which is the one line in `~/.ssh/id_ed25519.pub` "
        "or the `age1…` recipient that age-keygen prints.",
    )


def _unsupported(key_type: str) -> KeyRefused:
    if key_type.endswith(("-cert-v01@openssh.com", "-cert-v00@openssh.com")):
        detail = (
            f"`{key_type}` is an SSH certificate, not a plain public key. "
            "Send the public key itself (e.g. `~/.ssh/id_ed25519.pub`, not `id_ed25519-cert.pub`)."
        )
    elif key_type.startswith("sk-"):
        detail = f"`{key_type}` is a security-key (FIDO) key, which age can't encrypt to."
    else:
        detail = f"I can't encrypt to `{key_type}` keys."
    return KeyRefused(
        "unsupported_type",
        f"{detail} age can encrypt only to `ssh-ed25519` keys, `ssh-rsa` keys of at least {MIN_RSA_BITS} bits, "
        f"or age recipients (`age1…`). {_HOW_TO_MAKE}",
    )


def _malformed(key_type: str, embedded: str | None = None) -> KeyRefused:
    if key_type == KIND_AGE:
        return KeyRefused(
            "malformed",
            "That looks like an age recipient, but it doesn't check out: a character may have been lost or "
            "changed in copying. Copy the whole `age1…` line again (age-keygen prints it as `Public key: age1…`).",
        )
    if embedded and embedded != key_type:
        problem = f"That starts with `{key_type}`, but the key data after it is for `{embedded}`."
    else:
        problem = (
            f"That looks like an `{key_type}` key, but its key data doesn't decode: "
            "part of it may have been cut off or changed in copying."
        )
    return KeyRefused(
        "malformed",
        f"{problem} Copy the whole line of your `.pub` file again (e.g. `cat ~/.ssh/id_ed25519.pub`) "
        "and paste it in a code block.",
    )
