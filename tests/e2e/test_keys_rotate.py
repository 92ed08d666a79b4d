"""`iam-bot keys rotate`, run as deployed, over a few hundred stored envelopes: every one sealed again
under the newest key with the counts reported, and one no key opens reported by id and left in place."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.credentials.vault import Vault, VaultError
from bot.iam.kms import KmsDataKeys
from bot.runtime.db import make_engine, make_sessionmaker, migrate
from models import AuditEvent, CredentialEnvelope
from tests.support.envelopes import Seeded, seed

IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
ROOT = Path(__file__).resolve().parents[2]


def _rotate(database_url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL"))}
    base.update(PYTHONPATH=str(ROOT), DATABASE_URL=database_url, **env)
    return subprocess.run(IAM_BOT + ["keys", "rotate"], env=base, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def store(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def _stored(sm) -> dict[int, bytes]:  # type: ignore[no-untyped-def]
    with sm.begin() as s:
        return {i: bytes(t) for i, t in s.execute(select(CredentialEnvelope.id, CredentialEnvelope.ciphertext))}


def test_rotation_across_three_hundred_envelopes_with_two_keys(database_url, store, tmp_path):
    old, new, lost = (Fernet.generate_key().decode() for _ in range(3))
    sealers = [Vault([old])] * 250 + [Vault([new])] * 49 + [Vault([lost])]  # `lost`: a key nobody has any more
    random.Random(12).shuffle(sealers)
    now = datetime.now(timezone.utc)
    seeded = seed(store, sealers, now=now, expires_at=now + timedelta(hours=24))
    (stranger,) = [e for e in seeded if _opens_with(e, lost)]
    before = _stored(store)

    result = _rotate(database_url, tmp_path, IAM_BOT_ENCRYPTION_KEY=f"{new},{old}")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1, result.stderr  # one envelope could not be re-encrypted
    assert lines[0] == "iam-bot: re-encrypted 250 envelope(s) under the first key of IAM_BOT_ENCRYPTION_KEY; 49 already current; 1 unreadable"
    assert lines[1].startswith(f"iam-bot: envelope {stranger.envelope_id} (request {stranger.short_id}): no configured key opens it (InvalidToken); left in place")
    assert len(lines) == 2 and "Traceback" not in result.stderr

    after = _stored(store)
    assert set(after) == set(before)  # nothing deleted, the unreadable one least of all
    assert after[stranger.envelope_id] == before[stranger.envelope_id]
    newest = Vault([new])  # the old key can go now: the new one alone opens every envelope it could
    for e in seeded:
        if e is stranger:
            continue
        assert newest.open(after[e.envelope_id], request=e.short_id) == e.creds
    changed = sum(after[i] != before[i] for i in before)
    assert changed == 250
    with store.begin() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "envelopes_rotated")).all()
        assert event.actor == "iam-bot keys rotate" and (event.details["reencrypted"], event.details["unreadable"]) == (250, [stranger.envelope_id])

    again = _rotate(database_url, tmp_path, IAM_BOT_ENCRYPTION_KEY=f"{new},{old}")
    assert again.stdout.splitlines()[0] == "iam-bot: re-encrypted 0 envelope(s) under the first key of IAM_BOT_ENCRYPTION_KEY; 299 already current; 1 unreadable"
    assert _stored(store) == after


def _opens_with(e: Seeded, key: str) -> bool:
    try:
        Vault([key]).open(e.token, request=e.short_id)
        return True
    except VaultError:
        return False


def test_rotation_moves_fernet_envelopes_to_kms(database_url, store, tmp_path, moto, iam):
    kms = boto3.client("kms", endpoint_url=moto.url, region_name="us-east-1")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    fernet = Fernet.generate_key().decode()
    now = datetime.now(timezone.utc)
    seeded = seed(store, [Vault([fernet])] * 30, now=now, expires_at=now + timedelta(hours=24))
    aws = dict(AWS_ENDPOINT_URL=moto.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")

    result = _rotate(database_url, tmp_path, IAM_BOT_ENCRYPTION_KEY=fernet, IAM_BOT_KMS_KEY_ID=key_arn, **aws)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"iam-bot: re-encrypted 30 envelope(s) under the AWS KMS key {key_arn}; 0 already current; 0 unreadable"
    stored = _stored(store)
    kms_only = Vault([], data_keys=KmsDataKeys(key_arn, boto3.session.Session(region_name="us-east-1")))
    for e in seeded:
        assert stored[e.envelope_id].startswith(b"kms1.")
        assert kms_only.open(stored[e.envelope_id], request=e.short_id) == e.creds  # the Fernet key is no longer needed

    again = _rotate(database_url, tmp_path, IAM_BOT_KMS_KEY_ID=key_arn, **aws)  # and may go: every envelope opened through KMS
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"iam-bot: re-encrypted 0 envelope(s) under the AWS KMS key {key_arn}; 30 already current; 0 unreadable"
    with store.begin() as s:
        assert s.scalar(select(func.count()).select_from(CredentialEnvelope)) == 30
