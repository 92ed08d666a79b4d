"""Stored credential envelopes in bulk, and what the raw SQLite files hold of them.

`seed` writes completed requests with sealed credentials straight into the database (the setup a
rotation or an expiry sweep needs by the hundred); `scan` reads the SQLite file, its `-wal` and
`-shm` and the file's free pages byte for byte, looking for ciphertext.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.common.sql import SessionMaker
from bot.credentials.vault import Credentials, Vault
from models import AccessRequest, CredentialEnvelope, RequestState

# Either kind of envelope, as it sits in the file (both are ASCII).
ENVELOPE = re.compile(rb"gAAAAA[A-Za-z0-9_-]{40,}={0,2}|kms1\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}")


def credentials(n: int) -> Credentials:
    return Credentials(
        user_name=f"seeded{n:04d}",
        console_url="https://123456789012.signin.aws.amazon.com/console",
        account="123456789012",
        password=secrets.token_urlsafe(18),
        access_key_id="AKIA" + secrets.token_hex(8).upper(),
        secret_access_key=secrets.token_urlsafe(30),
    )


@dataclass
class Seeded:
    envelope_id: int
    short_id: str
    token: bytes
    creds: Credentials = field(repr=False)


def seed(sm: SessionMaker, vaults: list[Vault], *, now: datetime, expires_at: datetime, start: int = 0) -> list[Seeded]:
    """One completed request and its envelope per vault given (so several keys can seal a batch)."""
    out: list[Seeded] = []
    with sm.begin() as s:
        for i, vault in enumerate(vaults, start=start):
            short_id = f"S{i:06d}"
            req = AccessRequest(
                short_id=short_id, state=RequestState.COMPLETED, requester_id="UREQUESTER1", owner_id="UREQUESTER1",
                user_name=f"seeded{i:04d}", user_name_lower=f"seeded{i:04d}", console_access=True, access_key=True,
                groups=[], policy_arns=[], path="/", tags={}, reason="seeded", created_at=now, updated_at=now,
            )
            s.add(req)
            s.flush()
            creds = credentials(i)
            token = vault.seal(creds, request=short_id)
            env = CredentialEnvelope(request_id=req.id, owner_id="UREQUESTER1", ciphertext=token, created_at=now, expires_at=expires_at)
            s.add(env)
            s.flush()
            out.append(Seeded(env.id, short_id, token, creds))
    return out


@dataclass
class Scan:
    sizes: dict[str, int]  # file name -> bytes read
    tokens: int  # ciphertexts looked for
    whole_hits: int  # whole ciphertexts found
    fragment_hits: int  # 16-byte pieces of them found
    envelopes_found: int  # anything shaped like an envelope (any request's), found
    free_pages: int
    free_pages_with_data: int  # free pages holding anything but zeros (beyond a trunk page's own pointers)

    def clean(self) -> bool:
        return self.whole_hits == 0 and self.fragment_hits == 0 and self.envelopes_found == 0 and self.free_pages_with_data == 0

    def __str__(self) -> str:
        files = ", ".join(f"{name} {size} B" for name, size in self.sizes.items())
        return (
            f"{files}; {self.tokens} ciphertext(s) searched: {self.whole_hits} whole, {self.fragment_hits} 16-byte fragments, "
            f"{self.envelopes_found} envelope-shaped runs; {self.free_pages} free page(s), {self.free_pages_with_data} not all zeros"
        )


def sqlite_files(url: str) -> list[Path]:
    db = Path(url.removeprefix("sqlite:///"))
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def scan(url: str, tokens: list[bytes]) -> Scan:
    files = {p.name: p.read_bytes() for p in sqlite_files(url)}
    db = next(iter(files.values()))
    fragments = {t[i : i + 16] for t in tokens for i in range(0, len(t) - 15, 16)}
    free, dirty = free_pages(db)
    return Scan(
        sizes={name: len(blob) for name, blob in files.items()},
        tokens=len(tokens),
        whole_hits=sum(blob.count(t) for t in tokens for blob in files.values()),
        fragment_hits=sum(blob.count(f) for f in fragments for blob in files.values()),
        envelopes_found=sum(len(ENVELOPE.findall(blob)) for blob in files.values()),
        free_pages=free,
        free_pages_with_data=dirty,
    )


def free_pages(db: bytes) -> tuple[int, int]:
    """(free pages, how many of them hold data) by walking the file's freelist (SQLite file format, 1.3.8)."""
    if len(db) < 100:
        return 0, 0
    page_size = int.from_bytes(db[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    trunk, total = int.from_bytes(db[32:36], "big"), int.from_bytes(db[36:40], "big")
    pages = len(db) // page_size
    count = dirty = 0
    seen: set[int] = set()
    while trunk and trunk not in seen:
        seen.add(trunk)
        page = db[(trunk - 1) * page_size : trunk * page_size]
        leaves = int.from_bytes(page[4:8], "big")
        count += 1
        # A trunk page holds page numbers only: the next trunk, a count, its leaves (and stale numbers
        # past the count, left when it shrank). Any 4-byte word larger than the file's page count is data.
        words = (int.from_bytes(page[i : i + 4], "big") for i in range(8, page_size, 4))
        dirty += any(w > pages for w in words)
        for i in range(leaves):
            leaf = int.from_bytes(page[8 + 4 * i : 12 + 4 * i], "big")
            count += 1
            dirty += any(db[(leaf - 1) * page_size : leaf * page_size])
        trunk = int.from_bytes(page[0:4], "big")
    assert count == total, f"freelist walk found {count} pages, the header says {total}"
    return count, dirty
