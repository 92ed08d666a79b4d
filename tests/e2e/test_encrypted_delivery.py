"""Credentials only the owner can read: registered keys, the encrypted file in the DM, exactly once.

Round trips decrypt the bytes the Slack stand-in received with the owner's own identity, and compare
what the file holds with what IAM issued (the proxy in front of moto keeps IAM's answers in memory).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import select

from models import AuditEvent, CredentialEnvelope, OwnerKey
from tests.support.fault_proxy import FaultProxy
from tests.support.harness import FakeClock, RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, _approve_value, click, submit_form

DM = "D" + REQUESTER[1:]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def x25519_pair():
    identity = pyrage.x25519.Identity.generate()
    return str(identity.to_public()), identity


def ed25519_pair():
    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    return public + " alice@laptop", pyrage.ssh.Identity.from_buffer(pem), pem.decode()


def rsa_public(bits: int) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def key_command(bot, text: str, user: str = REQUESTER) -> str:
    """Send `/iam key <text>` and return the private answer's text."""
    before = len(bot.standin.calls_to("response_url"))
    bot.slack.command(user, f"key {text}")
    answer = wait_until(lambda: bot.standin.calls_to("response_url")[before:], what="the key command's answer")[0]
    return json.dumps(answer.args)


def reviewed_request(bot, **fields) -> tuple[str, str]:
    """Request -> review -> submit; (the review's text, the request's short id once approvers were asked)."""
    answer = submit_form(bot, **fields)
    assert answer.get("response_action") == "push", answer
    before = {id(c) for c in bot.standin.calls_to("chat.postMessage")}
    assert bot.slack.view_submission(REQUESTER, answer["view"], {}).json() == {"response_action": "clear"}
    call = bot.standin.wait_for("chat.postMessage", lambda c: id(c) not in before and _approve_value(c) is not None)
    return json.dumps(answer["view"]), str(_approve_value(call))


@pytest.fixture
def proxied(database_url, standin, moto, iam, monkeypatch):
    proxy = FaultProxy(moto.url)
    proxy.keep_answers = {"CreateAccessKey"}
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url).start()
    yield bot, proxy
    bot.stop()
    proxy.stop()


def test_keys_are_registered_shown_and_removed_and_bad_ones_explained(bot):
    public, _identity, private_pem = ed25519_pair()
    answer = key_command(bot, f"set {public}")
    assert "Registered" in answer and "ssh-ed25519 SHA256:" in answer and "age -d -i ~/.ssh/id_ed25519" in answer
    home = bot.standin.wait_for("views.publish", lambda c: c.args["user_id"] == REQUESTER and "ssh-ed25519 SHA256:" in json.dumps(c.args["view"]))
    assert "remove_owner_key" in json.dumps(home.args["view"])
    assert "ssh-ed25519 SHA256:" in key_command(bot, "show")

    # A private key pasted by mistake: refused, called leaked, and kept nowhere.
    refused = key_command(bot, f"set {private_pem}")
    assert "leaked" in refused.lower() and "did not store" in refused.lower()
    body = "".join(private_pem.splitlines()[1:-1])
    for piece in (body[i : i + 16] for i in range(0, len(body) - 16, 16)):
        assert piece not in bot.standin.all_text().replace("\\n", "")
        assert piece not in bot.logs.text()
    with bot.deps.sessionmaker.begin() as s:
        assert s.get(OwnerKey, REQUESTER).public_key == public.rsplit(" ", 1)[0]  # the registered key stays
        events = [json.dumps(e.details) for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "owner_key_refused"))]
    assert events == ['{"why": "private_key"}']  # what was pasted is not in the audit log either

    assert "2048" in key_command(bot, f"set {rsa_public(2048)}")
    assert "ecdsa" in key_command(bot, "set ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEX2 me@host").lower()
    assert "age1" in key_command(bot, "set hello world")

    assert "removed" in key_command(bot, "remove").lower()
    with bot.deps.sessionmaker.begin() as s:
        assert s.get(OwnerKey, REQUESTER) is None
    assert "no key registered" in key_command(bot, "show").lower()

    # Home's Remove button does the same, and says so by DM.
    key_command(bot, f"set {public}")
    bot.slack.block_action(REQUESTER, "remove_owner_key", "remove", view={"id": "VHOME", "type": "home"})
    bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == DM and "Key removed" in c.args["text"])
    with bot.deps.sessionmaker.begin() as s:
        assert s.get(OwnerKey, REQUESTER) is None
        assert [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.action.like("owner_key_%")).order_by(AuditEvent.id))] == [
            "owner_key_set", *["owner_key_refused"] * 4, "owner_key_removed", "owner_key_set", "owner_key_removed",
        ]


@pytest.mark.parametrize("kind", ["x25519", "ssh-ed25519"])
def test_credentials_arrive_as_a_file_only_the_owners_key_opens(kind, proxied, iam, tmp_path):
    bot, proxy = proxied
    if kind == "x25519":
        public, identity = x25519_pair()
        command = "age -d -i key.txt"
    else:
        public, identity, _ = ed25519_pair()
        command = "age -d -i ~/.ssh/id_ed25519"
    key_command(bot, f"set {public}")
    moto_seen = len(proxy.history)

    # The review says how the credentials will travel, for the chosen owner.
    review, short_id = reviewed_request(bot, user_name="filed01", access=["console", "access_key"])
    assert "as a file encrypted to their key" in review

    click(bot, APPROVER, "approve_request", short_id)
    shared = wait_until(lambda: bot.standin.files_in(DM), timeout=30, what="the credentials file in the owner's DM")
    assert len(shared) == 1
    f = shared[0]
    assert f["name"] == "filed01-credentials.csv.age"
    assert f"{command} filed01-credentials.csv.age" in f["text"] and "MFA" in f["text"]

    plaintext = pyrage.decrypt(f["bytes"], [identity]).decode()
    rows = list(csv.reader(io.StringIO(plaintext)))
    assert rows[0] == ["User name", "Password", "Access key ID", "Secret access key", "Console login link"]
    user, password, key_id, secret, url = rows[1]
    assert user == "filed01" and url.endswith(".signin.aws.amazon.com/console")
    keys = iam.list_access_keys(UserName="filed01")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [key_id]  # the user's only key
    issued = [re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", text).group(1) for _, text in proxy.answers]
    assert [_digest(s) for s in issued] == [_digest(secret)]
    sent_passwords = [p["Password"] for a, p in proxy.history[moto_seen:] if a in ("CreateLoginProfile", "UpdateLoginProfile")]
    assert _digest(sent_passwords[-1]) == _digest(password)

    # Nothing readable anywhere else: Slack saw ciphertext only, no log line or table holds a secret.
    def destroyed() -> bool:  # once Slack confirmed the file (just after it was shared)
        with bot.deps.sessionmaker.begin() as s:
            return s.scalars(select(CredentialEnvelope)).first() is None

    wait_until(destroyed, what="the sealed credentials destroyed")
    with bot.deps.sessionmaker.begin() as s:
        delivered = s.scalars(select(AuditEvent).where(AuditEvent.action == "credentials_delivered")).one()
    assert delivered.details["method"] == "encrypted_file"
    for secret_value in (password, secret):
        assert secret_value not in bot.standin.all_text()
        assert secret_value not in bot.logs.text()
    if bot.database_url.startswith("sqlite"):
        db = Path(bot.database_url.removeprefix("sqlite:///"))
        for path in (db, Path(f"{db}-wal")):
            if path.exists():
                data = path.read_bytes()
                assert password.encode() not in data and secret.encode() not in data

    # Never both: there is nothing to reveal, and Home offers no Reveal.
    click(bot, REQUESTER, "reveal_credentials", short_id)
    refusal = bot.standin.wait_for("chat.postEphemeral", lambda c: c.args["user"] == REQUESTER)
    assert "no longer stored" in refusal.args["text"] or "encrypted" in refusal.args["text"]
    assert len(bot.standin.files_in(DM)) == 1


def test_an_upload_never_shared_is_shared_on_retry_not_uploaded_again(database_url, standin, moto, iam):
    clock = FakeClock()
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock).start()
    try:
        public, identity = x25519_pair()
        key_command(bot, f"set {public}")
        _, short_id = reviewed_request(bot, user_name="filed02", access=["access_key"])
        standin.fail_next("files.completeUploadExternal", error="internal_error", status=500)  # the bytes are up, the share fails
        click(bot, APPROVER, "approve_request", short_id)
        standin.wait_for("files.completeUploadExternal", lambda c: c.status == 500, timeout=30)
        bot.settle()
        with bot.deps.sessionmaker.begin() as s:
            env = s.scalars(select(CredentialEnvelope)).one()
            assert env.file_id and env.delivery_method == "file"  # recorded before the bytes left
        assert standin.files_in(DM) == []
        clock.advance(minutes=1)
        assert bot.deps.delivery.deliver_pending() == 1
        shared = standin.files_in(DM)
        assert len(shared) == 1 and len(standin.calls_to("files.getUploadURLExternal")) == 1  # shared, not uploaded again
        assert pyrage.decrypt(shared[0]["bytes"], [identity]).startswith(b"User name,")
        assert bot.deps.delivery.deliver_pending() == 0
    finally:
        bot.stop()


def test_an_owner_without_a_key_gets_the_reveal_and_the_review_says_so(bot):
    review, short_id = reviewed_request(bot, user_name="revealed01", access=["console"])
    assert "one-time Reveal" in review
    click(bot, APPROVER, "approve_request", short_id)
    dm = bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == DM and "reveal_credentials" in json.dumps(c.args.get("blocks")))
    assert dm is not None and bot.standin.files_in(DM) == []


def test_a_workspace_requiring_keys_refuses_owners_without_one_and_holds_what_waits(database_url, standin, moto, iam, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text("delivery: encrypted_file_only\n")
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"rules_path": str(rules)}).start()
    try:
        # The form refuses an owner without a key, on the owner field, saying how to register one.
        answer = submit_form(bot, user_name="held01", access=["console"])
        assert answer["response_action"] == "errors" and "/iam key set" in answer["errors"]["owner"]
        modal = bot.standin.calls_to("views.open")[-1].args["view"]
        assert "no key registered" in json.dumps(modal)  # the form said so before anything was typed

        public, identity = x25519_pair()
        key_command(bot, f"set {public}")
        review, short_id = reviewed_request(bot, user_name="held01", access=["console"])
        assert "as a file encrypted to their key" in review
        key_command(bot, "remove")  # gone before the credentials are made: they wait for a key
        click(bot, APPROVER, "approve_request", short_id)
        notice = bot.standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == DM and "wait for your public key" in c.args["text"], timeout=30)
        assert "/iam key set" in json.dumps(notice.args["blocks"])
        bot.settle()
        assert bot.standin.files_in(DM) == []
        assert not [c for c in bot.standin.calls_to("chat.postMessage") if "reveal_credentials" in json.dumps(c.args.get("blocks"))]

        key_command(bot, f"set {public}")  # registering the key sends what waited, at once
        shared = wait_until(lambda: bot.standin.files_in(DM), timeout=30, what="the held credentials, once a key is registered")
        assert len(shared) == 1 and pyrage.decrypt(shared[0]["bytes"], [identity]).startswith(b"User name,")
    finally:
        bot.stop()


@pytest.mark.heavy
@pytest.mark.parametrize("point", ["upload_url", "files.completeUploadExternal"])
def test_a_process_killed_during_the_upload_delivers_one_file_after_restart(point, standin, moto, iam, tmp_path):
    """Killed after Slack took the bytes (the file exists, never shared), or after Slack shared it
    (the process never heard): the restarted process finds the file by its id and uploads nothing again."""
    from cryptography.fernet import Fernet

    from tests.support.chaos import Chaos

    chaos = Chaos(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}", standin=standin, moto_url=moto.url, iam=iam, key=Fernet.generate_key().decode(), logdir=tmp_path
    )
    try:
        first = chaos.replica("first")
        public, identity = x25519_pair()
        first.slack.command(REQUESTER, f"key set {public}")
        standin.wait_for("response_url", lambda c: "Registered" in json.dumps(c.args))
        _, short_id = reviewed_request(first, user_name="crashfile01", access=["console", "access_key"])
        killed = []
        standin.after_call.append(lambda call: call.method == point and not killed and (killed.append(call), first.kill()))
        click(first, APPROVER, "approve_request", short_id)
        wait_until(lambda: killed and first.proc.poll() is not None, timeout=60, what=f"the process killed at {point}")
        standin.after_call.clear()
        chaos.replica("restarted")
        wait_until(lambda: standin.files_in(DM), timeout=90, what="the credentials file after the restart")
        with chaos.engine.connect() as c:
            wait_until(lambda: c.execute(select(CredentialEnvelope.id)).first() is None, what="the sealed credentials destroyed")
        shared = standin.files_in(DM)
        assert len(shared) == 1, "the file was shared twice"
        assert len(standin.calls_to("files.getUploadURLExternal")) == 1, "the file was uploaded again"
        _, _, key_id, _, _ = next(csv.reader(io.StringIO(pyrage.decrypt(shared[0]["bytes"], [identity]).decode().split("\n", 1)[1])))
        assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="crashfile01")["AccessKeyMetadata"]] == [key_id]
    finally:
        chaos.close()
