"""Destroyed credentials are gone: no ciphertext byte left in SQLite's file, WAL or free pages after a
reveal or an expiry; on every database the envelope row is deleted, and the one reveal still holds."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.requests import queries
from models import AuditEvent, CredentialEnvelope
from tests.support.envelopes import ENVELOPE, scan, seed, sqlite_files
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, click, credentials_dm, request_user


def _tokens(bot: RunningBot) -> list[bytes]:
    with bot.deps.sessionmaker.begin() as s:
        return [bytes(t) for t in s.scalars(select(CredentialEnvelope.ciphertext).where(CredentialEnvelope.ciphertext.is_not(None)))]


def _on_disk(url: str) -> list[bytes]:
    """Every envelope-shaped run of bytes in the SQLite files now (the current ciphertexts and any older copy)."""
    return sorted({m for p in sqlite_files(url) for m in ENVELOPE.findall(p.read_bytes())})


def _count(bot: RunningBot, model: type, *where) -> int:  # type: ignore[no-untyped-def]
    with bot.deps.sessionmaker.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'iam-bot.db'}"


def test_every_sqlite_connection_overwrites_what_it_deletes(sqlite_url, standin, moto, iam):
    bot = RunningBot(database_url=sqlite_url, standin=standin, moto_url=moto.url, start_worker=False).start()
    try:
        with bot.deps.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        bot.stop()


def test_a_reveal_leaves_no_ciphertext_in_the_sqlite_file_wal_or_free_pages(sqlite_url, standin, moto, iam, capsys):
    bot = RunningBot(database_url=sqlite_url, standin=standin, moto_url=moto.url, housekeeping=False).start()
    try:
        short_id = request_user(bot, user_name="shredded01", access=["console", "access_key"])
        click(bot, APPROVER, "approve_request", short_id)
        dm = credentials_dm(bot, short_id)
        wait_until(lambda: _count(bot, CredentialEnvelope, CredentialEnvelope.dm_ts == dm.response["ts"]) == 1, what="delivery recorded")
        tokens = _tokens(bot)
        assert len(tokens) == 1
        # Before: the scan sees the ciphertext (and any older sealing of the partial credentials).
        searched = sorted(set(tokens) | set(_on_disk(sqlite_url)))  # with any older sealing still on disk
        before = scan(sqlite_url, searched)
        assert before.whole_hits >= 1, before
        opened = len(standin.calls_to("views.open"))
        click(bot, REQUESTER, "reveal_credentials", short_id, dm)
        wait_until(lambda: standin.calls_to("views.open")[opened:], what="reveal modal")
        # The DM is updated after the destroy committed and the log was emptied.
        standin.wait_for("chat.update", lambda c: c.args["ts"] == dm.response["ts"] and "revealed" in c.args["text"] + json.dumps(c.args["blocks"]))
        running = scan(sqlite_url, searched)
        assert _count(bot, CredentialEnvelope) == 0
    finally:
        bot.stop()
    stopped = scan(sqlite_url, searched)  # and as the files are left once every connection closed
    with capsys.disabled():
        print(f"\n[byte scan, reveal] before: {before}\n[byte scan, reveal] after, running: {running}\n[byte scan, reveal] after, stopped: {stopped}")
    # No size check on the WAL here: the click's delivery is marked answered after its listener
    # returns, which may land after the checkpoint. What matters is that no ciphertext is in it.
    assert running.clean(), running
    assert stopped.clean(), stopped


def test_expiry_leaves_no_ciphertext_in_the_sqlite_file_wal_or_free_pages(sqlite_url, standin, moto, iam, capsys):
    """One real journey and 40 more envelopes (several pages of them), all expired by the purge."""
    clock = FakeClock()
    bot = RunningBot(database_url=sqlite_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False).start()
    try:
        short_id = request_user(bot, user_name="expired01", access=["console", "access_key"])
        click(bot, APPROVER, "approve_request", short_id)
        dm = credentials_dm(bot, short_id)
        wait_until(lambda: _count(bot, CredentialEnvelope, CredentialEnvelope.dm_ts == dm.response["ts"]) == 1, what="delivery recorded")
        seed(bot.deps.sessionmaker, [bot.deps.vault] * 40, now=clock(), expires_at=clock() + timedelta(hours=1))
        tokens = _tokens(bot)
        assert len(tokens) == 41
        searched = sorted(set(tokens) | set(_on_disk(sqlite_url)))  # with any older sealing still on disk
        before = scan(sqlite_url, searched)
        assert before.whole_hits >= 41, before
        clock.advance(hours=24, seconds=1)
        assert bot.deps.delivery.purge_expired() == 41
        running = scan(sqlite_url, searched)
        assert _count(bot, CredentialEnvelope) == 0
        assert _count(bot, AuditEvent, AuditEvent.action == "credentials_expired") == 41
        standin.wait_for("chat.update", lambda c: c.args["ts"] == dm.response["ts"] and "expired" in json.dumps(c.args["blocks"]))
    finally:
        bot.stop()
    stopped = scan(sqlite_url, searched)
    with capsys.disabled():
        print(f"\n[byte scan, expiry] before: {before}\n[byte scan, expiry] after, running: {running}\n[byte scan, expiry] after, stopped: {stopped}")
    assert running.free_pages > 0, "the purge freed the pages that held the envelopes"
    assert running.clean(), running
    assert running.sizes.get("iam-bot.db-wal", 0) == 0
    assert stopped.clean(), stopped


def test_the_envelope_row_is_deleted_and_the_reveal_stays_one_time(bot, iam):
    """On SQLite and PostgreSQL: eight owner clicks at once open one modal; then no row, and every
    later question (reveal again, Home, status) is answered from the audit trail."""
    short_id = request_user(bot, user_name="onceonly01", access=["console", "access_key"])
    click(bot, APPROVER, "approve_request", short_id)
    dm = credentials_dm(bot, short_id)
    # The DM's place is recorded just after it is posted; the reveal updates the DM found there.
    wait_until(lambda: _count(bot, CredentialEnvelope, CredentialEnvelope.dm_ts == dm.response["ts"]) == 1, what="delivery recorded")
    opened = len(bot.standin.calls_to("views.open"))
    refusals = len(bot.standin.calls_to("chat.postEphemeral"))
    start = threading.Barrier(8)

    def owner_clicks() -> None:
        start.wait()
        click(bot, REQUESTER, "reveal_credentials", short_id, dm)

    threads = [threading.Thread(target=owner_clicks) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: len(bot.standin.calls_to("chat.postEphemeral")) - refusals == 7, what="seven refusals")
    bot.settle()
    modals = [c for c in bot.standin.calls_to("views.open")[opened:] if c.args["view"].get("callback_id") == "iam_reveal"]
    assert len(modals) == 1
    for refusal in bot.standin.calls_to("chat.postEphemeral")[refusals:]:
        assert "another window" in refusal.args["text"] or "already revealed" in refusal.args["text"], refusal.args["text"]
    bot.standin.wait_for("chat.update", lambda c: c.args["ts"] == dm.response["ts"] and "revealed" in c.args["text"] + json.dumps(c.args["blocks"]))
    assert _count(bot, CredentialEnvelope) == 0  # deleted, not nulled
    assert _count(bot, AuditEvent, AuditEvent.action == "credentials_revealed") == 1
    with bot.deps.sessionmaker.begin() as s:
        assert queries.home_data(s, user_id=REQUESTER, approvers=frozenset(), now=bot.deps.clock()).revealable == frozenset()
    before = len(bot.standin.calls_to("chat.postEphemeral"))
    click(bot, REQUESTER, "reveal_credentials", short_id, dm)
    later = wait_until(lambda: bot.standin.calls_to("chat.postEphemeral")[before:], what="refusal")[0]
    assert "already revealed" in later.args["text"]
    bot.slack.dm(REQUESTER, f"status {short_id}")
    bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "DREQUESTER1" and "Credentials revealed by" in json.dumps(c.args.get("blocks")))


def test_a_reveal_clicked_before_the_dm_is_recorded_still_marks_the_dm(bot, iam):
    """The owner clicks Reveal in the instant between Slack posting the DM and the bot recording
    where it is: the one modal opens, and the DM still ends up saying the credentials were revealed."""
    short_id = request_user(bot, user_name="quickclick1", access=["console"])
    revealed = threading.Event()

    def reveal_before_the_bot_hears_back(call) -> None:  # type: ignore[no-untyped-def]
        if call.method == "chat.postMessage" and "reveal_credentials" in json.dumps(call.args.get("blocks")) and not revealed.is_set():
            revealed.set()
            click(bot, REQUESTER, "reveal_credentials", short_id, call)
            bot.standin.wait_for("views.open", lambda c: c.args["view"].get("callback_id") == "iam_reveal")
            wait_until(lambda: _count(bot, AuditEvent, AuditEvent.action == "credentials_revealed") == 1, what="reveal recorded")

    bot.standin.after_call.append(reveal_before_the_bot_hears_back)
    click(bot, APPROVER, "approve_request", short_id)
    dm = credentials_dm(bot, short_id)
    bot.standin.wait_for("chat.update", lambda c: c.args["ts"] == dm.response["ts"] and "were revealed" in c.args["text"] + json.dumps(c.args["blocks"]))
    assert revealed.is_set() and _count(bot, CredentialEnvelope) == 0


# ---------------------------------------------------------------- the generated key, local only

def _serve_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL"))}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[2]), SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s3cret",
        IAM_BOT_APPROVERS="U012ABCDEF", IAM_BOT_AUDIT_KEY="a" * 40, IAM_BOT_ALLOW_UNBOUNDED="true", PORT="1",
    )
    env.update(extra)
    return env


def _serve(env: dict[str, str], cwd: Path):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    iam_bot = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
    return subprocess.run(iam_bot + ["serve"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


REFUSED = "iam-bot: IAM_BOT_ENCRYPTION_KEY: required unless DATABASE_URL is the local default (sqlite:///iam-bot.db)"


def test_serve_refuses_the_generated_key_with_postgresql(postgres_url, tmp_path):
    from cryptography.fernet import Fernet

    key_file = tmp_path / "iam-bot.key"  # left by a local run in the same directory
    key_file.write_text(Fernet.generate_key().decode())
    result = _serve(_serve_env(DATABASE_URL=postgres_url), tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(REFUSED), line
    assert key_file.read_text() not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert "127.0.0.1" not in line  # the database URL (and its password) is not echoed


def test_serve_refuses_the_generated_key_beside_another_sqlite_file(tmp_path):
    data = tmp_path / "data"  # a container's data volume, say
    data.mkdir()
    result = _serve(_serve_env(DATABASE_URL=f"sqlite:///{data / 'iam-bot.db'}"), tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(REFUSED), line
    assert not (data / "iam-bot.key").exists() and not (data / "iam-bot.db").exists()


def test_the_generated_key_is_made_for_the_local_default_database_only(tmp_path, monkeypatch):
    from bot.common.errors import ConfigError
    from bot.runtime.app import encryption_keys
    from bot.runtime.settings import load_settings

    for name in ("DATABASE_URL", "IAM_BOT_ENCRYPTION_KEY", "IAM_BOT_KMS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (key,) = encryption_keys(load_settings())  # DATABASE_URL unset: sqlite:///iam-bot.db here
    assert (tmp_path / "iam-bot.key").read_text().strip() == key
    assert (tmp_path / "iam-bot.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError) as refused:
        encryption_keys(load_settings(database_url=f"sqlite:///{tmp_path / 'iam-bot.db'}"))  # the same file, named otherwise
    assert str(refused.value).startswith("IAM_BOT_ENCRYPTION_KEY: required unless")
    # With AWS KMS, no Fernet key is needed, and none is generated.
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert encryption_keys(load_settings(database_url="postgresql://u@db/iam", kms_key_id=kms)) == []
