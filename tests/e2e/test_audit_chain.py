"""The keyed, anchored audit chain: every link an HMAC under IAM_BOT_AUDIT_KEY, the head anchored outside
the database (audit channel, exports), and `iam-bot audit verify` telling intact, broken and truncated
apart. Attacks are what someone who can write the tables but lacks the key can do; every verdict is a
real run of the CLI. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, delete, select, text, update
from sqlalchemy import inspect as sa_inspect

from bot.audit import trail
from bot.audit.keys import AuditKeys, key_id
from bot.runtime.db import make_engine, make_sessionmaker, migrate
from models import AuditAnchor, AuditEvent
from tests.support.harness import AUDIT_KEY, FakeClock, RunningBot, wait_until
from tests.support.journeys import APPROVER, REQUESTER, click, credentials_dm, request_user

ROOT = Path(__file__).resolve().parents[2]
IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
OTHER_KEY = "another-audit-key-0123456789-abcdefghij"  # an attacker's guess, or last year's key
ANCHOR_LINE = re.compile(r"Audit anchor `(\d+):([0-9a-f]{64})`")


def cli(database_url: str | None, *args: str, key: str | None = AUDIT_KEY, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """`iam-bot ...` as an operator runs it; no output may ever hold an audit key."""
    environ = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env}
    if database_url:
        environ["DATABASE_URL"] = database_url
    if key:
        environ["IAM_BOT_AUDIT_KEY"] = key
    result = subprocess.run(IAM_BOT + list(args), env=environ, capture_output=True, text=True, timeout=120, cwd=cwd)
    for secret in (AUDIT_KEY, OTHER_KEY, *filter(None, (key or "").split(","))):
        assert secret not in result.stdout + result.stderr
    return result


class Chain:
    """An audit log on a real database, written by the bot's own code; `keys=None`: as before the audit key."""

    def __init__(self, url: str, keys: AuditKeys | None = AuditKeys([AUDIT_KEY])):
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self.sm = make_sessionmaker(self.engine, audit_keys=keys)
        self.t0 = datetime.now(timezone.utc)

    def write(self, n: int, *, sm: Any = None, actor: str = "UAPPROVER1") -> None:
        with (sm or self.sm).begin() as s:
            for i in range(n):
                self.t0 += timedelta(seconds=1)
                trail.record(s, action="approved", actor=actor, now=self.t0, request_id=None, n=i, reason="needs it")

    def ids(self) -> list[int]:
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(select(AuditEvent.id).order_by(AuditEvent.id))]

    def export(self, *args: str, **env: str) -> tuple[list[dict[str, Any]], str]:
        """`iam-bot audit export --format jsonl`: the records, and the anchor token of its last one."""
        result = cli(self.url, "audit", "export", "--format", "jsonl", *args, **env)
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert records[-1]["action"] == "audit_anchor" and records[-1]["id"] is None
        return records, records[-1]["details"]["anchor"]

    def verify(self, *args: str, key: str | None = AUDIT_KEY) -> subprocess.CompletedProcess[str]:
        return cli(self.url, "audit", "verify", *args, key=key)

    def rewrite(self, sign: Callable[[dict[str, Any], str | None], tuple[str | None, str]], *, edit: Callable[[AuditEvent], None] | None = None) -> None:
        """Change events and recompute every link, in order, as one can without the key."""
        with make_sessionmaker(self.engine).begin() as s:
            prev = ""
            for event in s.scalars(select(AuditEvent).order_by(AuditEvent.id)):
                if edit is not None:
                    edit(event)
                fields = dict(prev=prev, request_id=event.request_id, actor=event.actor, action=event.action, details=event.details, created_at=event.created_at)
                event.key_id, event.hash = sign(fields, event.key_id)
                event.prev_hash = prev
                prev = event.hash

    def sql(self, statement: Any) -> None:
        with self.engine.begin() as c:
            c.execute(statement)

    def scalar(self, statement: Any) -> Any:
        with self.engine.connect() as c:
            return c.execute(statement).scalar()

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def chain(database_url: str) -> Any:
    c = Chain(database_url)
    yield c
    c.close()


WRONG = AuditKeys([OTHER_KEY])
REWRITES = {
    # every link recomputed with plain SHA-256, key ids left as they were
    "sha256": lambda fields, kid: (kid, trail.event_hash(**fields)),
    # ... with a key of one's own under the real key's id
    "wrong-key": lambda fields, kid: (kid, WRONG.mac(WRONG.signing_id, trail.keyed_body(key_id=kid, **fields))),
    # ... with a key of one's own, named as such
    "own-key-id": lambda fields, kid: (WRONG.signing_id, WRONG.mac(WRONG.signing_id, trail.keyed_body(key_id=WRONG.signing_id, **fields))),
}


def _mallory(event: AuditEvent) -> None:
    if event.details.get("n") == 3:
        event.actor = "UMALLORY"


def test_intact_chain_verifies_with_the_key_and_against_its_anchor(chain: Chain) -> None:
    chain.write(12)
    records, token = chain.export()
    assert [r["id"] for r in records[:-1]] == chain.ids() and token.startswith("12:")
    ok = chain.verify("--anchor", token)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == f"iam-bot: audit log intact: 12 events, every link holds under the audit key; matches anchor {token[:15]}… (given)\n"
    recorded = chain.verify()  # the anchor the export recorded in the database is checked too
    assert recorded.returncode == 0 and "matches anchor" in recorded.stdout and "(recorded #1)" in recorded.stdout
    # Without the key there is nothing to check the HMACs with: refused, not "intact".
    unkeyed = chain.verify(key=None)
    assert unkeyed.returncode == 2 and unkeyed.stderr.startswith("iam-bot: IAM_BOT_AUDIT_KEY: needed to check the audit log's HMACs")
    # With another key, the events are not its own.
    other = chain.verify(key=OTHER_KEY)
    first = chain.ids()[0]
    assert other.returncode == 1 and f"BROKEN at event {first}: it is signed with audit key id {key_id(AUDIT_KEY)}" in other.stdout


@pytest.mark.parametrize("how", sorted(REWRITES))
def test_a_chain_rewritten_without_the_key_fails_verify(chain: Chain, how: str) -> None:
    chain.write(12)
    first = chain.ids()[0]
    chain.rewrite(REWRITES[how], edit=_mallory)
    result = chain.verify()
    assert result.returncode == 1, result.stdout
    if how == "own-key-id":
        assert result.stdout.startswith(f"iam-bot: audit log BROKEN at event {first}: it is signed with audit key id {WRONG.signing_id}, which is not among the keys given")
    else:
        assert result.stdout == (
            f"iam-bot: audit log BROKEN at event {first}: its content does not match its HMAC (the event was edited, or the chain "
            "recomputed without the audit key) (0 events before it verify)\n"
        )


def test_a_chain_passed_off_as_older_than_the_key_fails_against_its_anchor(chain: Chain) -> None:
    """Every event made to look as if written before the audit key (no key id, plain SHA-256): only an
    anchor can tell, since such a chain is self-consistent. The recorded one does, and, once the attacker
    deletes those, the one copied from the audit channel."""
    chain.write(12)
    _, token = chain.export()
    ids = chain.ids()
    chain.rewrite(lambda fields, kid: (None, trail.event_hash(**fields)), edit=_mallory)
    recorded = chain.verify()
    assert recorded.returncode == 1
    assert recorded.stdout.startswith(f"iam-bot: audit log BROKEN at event {ids[-1]}: anchor {token[:15]}… (recorded #1) says event number 12 has digest {token[3:15]}…")
    chain.sql(delete(AuditAnchor))
    alone = chain.verify()
    assert alone.returncode == 0 and "by SHA-256 only (no event is keyed yet" in alone.stdout and "no anchor to check against" in alone.stdout
    given = chain.verify("--anchor", token)
    assert given.returncode == 1 and f"BROKEN at event {ids[-1]}: anchor {token[:15]}… (given) says event number 12" in given.stdout


def test_a_truncated_chain_fails_verify_against_its_anchor(chain: Chain) -> None:
    chain.write(12)
    _, token = chain.export()
    ids = chain.ids()
    chain.sql(delete(AuditEvent).where(AuditEvent.id > ids[8]))  # the newest three go
    given = chain.verify("--anchor", token)
    assert given.returncode == 3, given.stdout
    assert given.stdout == f"iam-bot: audit log TRUNCATED: anchor {token[:15]}… (given) says 12 events, the log has 9; events were removed from its end\n"
    recorded = chain.verify()
    assert recorded.returncode == 3 and "(recorded #1) says 12 events, the log has 9" in recorded.stdout
    # Whoever cut the events can cut the recorded anchors too: then only the copy outside tells.
    chain.sql(delete(AuditAnchor))
    assert chain.verify().returncode == 0
    assert chain.verify("--anchor", token).returncode == 3
    # The bot goes on writing after the cut: the log grows past the anchor's count, and the anchored head is not where it was.
    chain.write(5)
    regrown = chain.verify("--anchor", token)
    twelfth = chain.ids()[11]
    assert regrown.returncode == 1 and f"BROKEN at event {twelfth}: anchor {token[:15]}… (given) says event number 12 has digest" in regrown.stdout


def test_an_edited_recorded_anchor_is_reported(chain: Chain) -> None:
    chain.write(6)
    chain.export()
    chain.sql(update(AuditAnchor).values(event_count=4))  # "the log only ever had 4 events"
    result = chain.verify()
    assert result.returncode == 1
    assert result.stdout == "iam-bot: audit log BROKEN: recorded anchor(s) #1 fail their HMAC (audit_anchors was edited without the audit key)\n"
    assert chain.verify("--anchor", "nonsense").returncode == 2


def test_events_from_before_the_key_stay_verifiable_and_are_pinned_by_the_first_keyed_one(chain: Chain) -> None:
    keyless = make_sessionmaker(chain.engine)
    chain.write(5, sm=keyless)  # as written before migration 0006: plain SHA-256, no key id
    with chain.engine.connect() as c:
        assert c.execute(select(AuditEvent.key_id)).scalars().all() == [None] * 5
    assert "by SHA-256 only" in chain.verify().stdout
    records, token = chain.export()  # the first anchor keys the head: an `audit_keyed` event on top of the old ones
    assert [r["action"] for r in records[-2:]] == ["audit_keyed", "audit_anchor"] and token.startswith("6:")
    chain.write(3)
    ok = chain.verify("--anchor", token)
    assert ok.returncode == 0, ok.stdout
    assert "9 events, every link holds: 4 under the audit key, the 5 before the key by SHA-256 (pinned by the keyed ones)" in ok.stdout
    # A keyless writer cannot extend a keyed chain (no silent downgrade).
    with pytest.raises(RuntimeError, match="the audit chain is keyed"):
        chain.write(1, sm=keyless)
    # Rewriting the old events, consistently by their own SHA-256, breaks the first keyed event's link.
    ids = chain.ids()
    with keyless.begin() as s:
        prev = ""
        for event in s.scalars(select(AuditEvent).where(AuditEvent.key_id.is_(None)).order_by(AuditEvent.id)):
            _mallory(event)
            event.prev_hash = prev
            event.hash = prev = trail.event_hash(
                prev=prev, request_id=event.request_id, actor=event.actor, action=event.action, details=event.details, created_at=event.created_at
            )
    broken = chain.verify()
    assert broken.returncode == 1 and f"BROKEN at event {ids[5]}: its link to the previous event is broken" in broken.stdout
    # ... and moving that link along breaks its HMAC.
    chain.sql(update(AuditEvent).where(AuditEvent.id == ids[5]).values(prev_hash=prev))
    assert f"BROKEN at event {ids[5]}: its content does not match its HMAC" in chain.verify().stdout


def test_rotation_newest_key_signs_every_key_listed_verifies(chain: Chain) -> None:
    chain.write(3)
    rotated = make_sessionmaker(chain.engine, audit_keys=AuditKeys([OTHER_KEY, AUDIT_KEY]))
    chain.write(3, sm=rotated)
    with chain.engine.connect() as c:
        kids = c.execute(select(AuditEvent.key_id).order_by(AuditEvent.id)).scalars().all()
    assert kids == [key_id(AUDIT_KEY)] * 3 + [key_id(OTHER_KEY)] * 3
    both = chain.verify(key=f"{OTHER_KEY},{AUDIT_KEY}")
    assert both.returncode == 0 and "6 events, every link holds under the audit key" in both.stdout
    dropped = chain.verify(key=OTHER_KEY)  # the old key removed while events it signed remain
    assert dropped.returncode == 1 and "after a rotation keep the old key after the new one" in dropped.stdout


def _posted_anchors(standin: Any, channel: str) -> list[tuple[int, str]]:
    return [
        (int(m.group(1)), m.group(2))
        for c in standin.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and (m := ANCHOR_LINE.search(c.args.get("text", "")))
    ]


def test_the_worker_anchors_the_head_in_the_audit_channel(database_url: str, standin: Any, moto: Any, iam: Any) -> None:
    chain = Chain(database_url)
    chain.write(7)  # events waiting when the bot starts: its first housekeeping round checks and anchors them
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"audit_channel": "CAUDIT01"}).start()
    try:
        post = standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "CAUDIT01" and "Audit anchor" in c.args["text"])
        with chain.engine.connect() as c:
            head_id, head_hash = c.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).one()
            recorded = c.execute(select(AuditAnchor)).one()
        assert post.args["text"].startswith(f"Audit anchor `7:{head_hash}`: 7 events, head event #{head_id}, ")
        assert post.args["text"].endswith(f"(scheduled). Check the log against it with `iam-bot audit verify --anchor 7:{head_hash}`")
        # What the bot last anchored, on record: it knows what it posted.
        assert (recorded.event_count, recorded.head_id, recorded.head_hash, recorded.reason) == (7, head_id, head_hash, "schedule")
        wait_until(lambda: chain.scalar(select(AuditAnchor.posted_at)), what="anchor marked posted")
        assert chain.scalar(select(AuditAnchor.channel)) == "CAUDIT01"
        assert chain.verify("--anchor", f"7:{head_hash}").returncode == 0
        assert AUDIT_KEY not in bot.logs.text() and AUDIT_KEY not in standin.all_text()
    finally:
        bot.stop()
        chain.close()


def test_anchoring_schedule_hourly_and_after_many_events(database_url: str, standin: Any, moto: Any, iam: Any) -> None:
    clock = FakeClock()
    bot = RunningBot(
        database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False, extra={"audit_channel": "CAUDIT01"}
    ).start()
    chain = Chain(database_url)
    try:
        anchoring = bot.deps.audit_anchoring
        assert anchoring.run_due().problem == "the audit log is empty"
        chain.write(3)
        clock.advance(minutes=61)
        first = anchoring.run_due()
        assert first.anchor.count == 3 and first.posted
        assert anchoring.run_due() is None  # not an hour yet, and few new events
        chain.write(1)
        assert anchoring.run_due() is None
        clock.advance(minutes=61)
        assert anchoring.run_due().anchor.count == 4
        clock.advance(minutes=61)
        assert anchoring.run_due().problem == "nothing new since the last anchor"  # checked, nothing to post
        chain.write(200)
        assert anchoring.run_due().anchor.count == 204  # as soon as 200 events were added
        posted = _posted_anchors(standin, "CAUDIT01")
        assert [n for n, _ in posted] == [3, 4, 204] and posted[0][1] == first.anchor.head_hash
        # A chain that does not verify is not anchored: the channel hears why.
        chain.sql(update(AuditEvent).where(AuditEvent.id == chain.ids()[1]).values(actor="UMALLORY"))
        chain.write(1)
        clock.advance(minutes=61)
        refused = anchoring.run_due()
        assert refused.anchor is None and refused.problem.startswith(f"audit log BROKEN at event {chain.ids()[1]}")
        standin.wait_for("chat.postMessage", lambda c: c.args["channel"] == "CAUDIT01" and c.args["text"].startswith(":rotating_light: audit log BROKEN"))
        assert [n for n, _ in _posted_anchors(standin, "CAUDIT01")] == [3, 4, 204]
    finally:
        bot.stop()
        chain.close()


def test_every_export_carries_the_anchor_and_posts_it(database_url: str, standin: Any, moto: Any, iam: Any, tmp_path: Path) -> None:
    bot = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, extra={"audit_channel": "CAUDIT01"}).start()
    chain = Chain(database_url)
    slack = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": standin.url, "IAM_BOT_AUDIT_CHANNEL": "CAUDIT01"}
    try:
        short_id = request_user(bot, user_name="anchored01", access=["console"])
        click(bot, APPROVER, "approve_request", short_id)
        credentials_dm(bot, short_id)
        wait_until(lambda: "completed" in [r["action"] for r in chain.export()[0]], what="request completed")
        # CSV, to a file: parseable, events in order, the anchor last; the same line went to the channel.
        out = tmp_path / "audit.csv"
        result = cli(database_url, "audit", "export", "--format", "csv", "--output", str(out), **slack)
        assert result.returncode == 0, result.stderr
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        anchor = rows.pop()
        token = json.loads(anchor["details"])["anchor"]
        assert anchor["id"] == "" and anchor["action"] == "audit_anchor" and anchor["hash"] == token.split(":")[1]
        assert [int(r["id"]) for r in rows][-1] == json.loads(anchor["details"])["head_id"] and len(rows) == int(token.split(":")[0])
        assert result.stderr.strip().endswith(f"iam-bot: anchored {token} (posted to CAUDIT01); it is the export's last record")
        assert (int(token.split(":")[0]), token.split(":")[1]) in _posted_anchors(standin, "CAUDIT01")
        assert chain.verify("--anchor", token).returncode == 0
        # JSON Lines: one record a line, the anchor last with a null id.
        records, jtoken = chain.export(**slack)
        assert records[-1]["id"] is None and records[-1]["details"]["verify"] == f"iam-bot audit verify --anchor {jtoken}"
        # An approver's `/iam audit`: the file in their DM ends with the anchor the audit channel got.
        bot.slack.command(APPROVER, "audit")
        upload = standin.wait_for("upload_url")
        dm_content = standin.uploaded(upload.args["file_id"]).decode()
        dm_rows = list(csv.DictReader(io.StringIO(dm_content)))
        dm_token = json.loads(dm_rows[-1]["details"])["anchor"]
        assert dm_rows[-1]["action"] == "audit_anchor" and dm_token in [f"{n}:{h}" for n, h in _posted_anchors(standin, "CAUDIT01")]
        done = standin.wait_for("files.completeUploadExternal")
        assert f"Its last line is the anchor `{dm_token}` (also posted in the audit channel)" in done.args["initial_comment"]
        assert chain.verify("--anchor", dm_token).returncode == 0
        bot.settle()
        # The key is nowhere: not in logs, Slack, the files, or the database.
        for where in (bot.logs.text(), standin.all_text(), out.read_text(), dm_content):
            assert AUDIT_KEY not in where
        with chain.engine.connect() as c:
            for table in ("audit_events", "audit_anchors"):
                assert AUDIT_KEY not in " ".join(str(v) for row in c.execute(text(f"SELECT * FROM {table}")) for v in row)
    finally:
        bot.stop()
        chain.close()


def test_serve_refuses_postgresql_without_the_audit_key(postgres_url: str) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret", "IAM_BOT_APPROVERS": "U012ABCDEF",
        "IAM_BOT_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    missing = cli(postgres_url, "serve", key=None, **env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    line = next(line for line in missing.stderr.splitlines() if line.startswith("iam-bot: IAM_BOT_AUDIT_KEY:"))
    assert line.startswith("iam-bot: IAM_BOT_AUDIT_KEY: required unless DATABASE_URL is the local default")
    assert "python -c 'import secrets; print(secrets.token_urlsafe(32))'" in line
    short = "short-audit-secret"
    weak = cli(postgres_url, "serve", key=short, **env)
    assert weak.returncode == 2 and "IAM_BOT_AUDIT_KEY: key #1 is too short (at least 32 characters)" in weak.stderr and short not in weak.stderr


def test_the_local_default_database_gets_a_generated_audit_key(tmp_path: Path) -> None:
    """DATABASE_URL unset (sqlite:///iam-bot.db in the working directory): the key is made like the encryption key."""
    chain = Chain(f"sqlite:///{tmp_path / 'iam-bot.db'}", keys=None)
    chain.write(2)  # events from before the key
    chain.close()
    exported = cli(None, "audit", "export", key=None, cwd=tmp_path)
    path = tmp_path / "iam-bot.audit-key"
    assert exported.returncode == 0 and stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert len(secret) >= 32 and f"generated a local audit key in {path}" in exported.stderr and secret not in exported.stdout + exported.stderr
    token = list(csv.DictReader(io.StringIO(exported.stdout)))[-1]
    verified = cli(None, "audit", "verify", "--anchor", json.loads(token["details"])["anchor"], key=None, cwd=tmp_path)
    assert verified.returncode == 0 and "3 events" in verified.stdout and secret not in verified.stdout


def _readme_sql() -> tuple[list[str], list[str], list[str]]:
    """The README's append-only roles: (as administrator, once), (in the database, as administrator), (after each migrate)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Append-only database roles (PostgreSQL)", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    parts: list[list[str]] = [[]]
    for line in block.splitlines():
        if line.startswith("-- then") or line.startswith("-- after every"):
            parts.append([])
        code = line.split("--", 1)[0].strip()
        if code:
            parts[-1].append(code.rstrip(";"))
    assert len(parts) == 3
    return parts[0], parts[1], parts[2]


@pytest.mark.postgres
def test_readme_roles_make_the_audit_log_append_only(pg_database: Any, standin: Any, moto: Any, iam: Any) -> None:
    """The README's SQL, run as written (names made unique): the bot works as the runtime role, which
    cannot change or delete an audit event; the migration role owns the schema."""
    if pg_database is None:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    suffix = os.urandom(4).hex()
    names = {"iambot_migrate": f"iambot_migrate_{suffix}", "iambot_app": f"iambot_app_{suffix}", "iambot": f"iambot_{suffix}"}

    def named(sql: str) -> str:
        return re.sub(r"\b(iambot_migrate|iambot_app|iambot)\b", lambda m: names[m.group(1)], sql)

    once, in_db, after_migrate = _readme_sql()
    base = pg_database.url.rsplit("/", 1)[0]  # postgresql+psycopg://postgres@127.0.0.1:5432
    host = base.split("@", 1)[1]
    admin = create_engine(f"{base}/{pg_database.url.rsplit('/', 1)[1]}", isolation_level="AUTOCOMMIT")
    migrate_url = f"postgresql://{names['iambot_migrate']}@{host}/{names['iambot']}"
    app_url = f"postgresql://{names['iambot_app']}@{host}/{names['iambot']}"
    try:
        with admin.connect() as c:
            for sql in once:
                c.execute(text(named(sql)))
        in_database = create_engine(f"{base}/{names['iambot']}", isolation_level="AUTOCOMMIT")
        with in_database.connect() as c:
            for sql in in_db:
                c.execute(text(named(sql)))
        in_database.dispose()
        assert cli(migrate_url, "migrate", key=None).returncode == 0
        owner = make_engine(migrate_url)
        with owner.begin() as c:
            for sql in after_migrate:
                c.execute(text(named(sql)))
        bot = RunningBot(database_url=app_url, standin=standin, moto_url=moto.url, extra={"audit_channel": "CAUDIT01"}).start()
        try:
            short_id = request_user(bot, user_name="appendonly01", access=["console"])
            click(bot, APPROVER, "approve_request", short_id)
            credentials_dm(bot, short_id)
            anchored = bot.deps.audit_anchoring.anchor(reason="export", actor=REQUESTER)
            assert anchored.posted and anchored.anchor is not None
        finally:
            bot.stop()
        app = make_engine(app_url)
        for statement in ("UPDATE audit_events SET actor = 'UMALLORY'", "DELETE FROM audit_events", "TRUNCATE audit_events", "DELETE FROM audit_anchors"):
            with pytest.raises(Exception, match="permission denied"), app.begin() as c:
                c.execute(text(statement))
        app.dispose()
        verified = cli(app_url, "audit", "verify", "--anchor", anchored.anchor.token)
        assert verified.returncode == 0, verified.stdout
        # The schema's owner still can: that is what the key and the anchor outside are for.
        with owner.begin() as c:
            c.execute(text("DELETE FROM audit_events WHERE id >= :head"), {"head": anchored.anchor.head_id})
        assert cli(app_url, "audit", "verify", "--anchor", anchored.anchor.token).returncode == 3
        owner.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{names["iambot"]}" WITH (FORCE)'))
            for role in ("iambot_app", "iambot_migrate"):
                c.execute(text(f'DROP ROLE IF EXISTS "{names[role]}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_database: Any) -> Any:
    """A database with no schema yet, to migrate step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'steps.db'}"
        return
    if pg_database is None:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    from tests.support.services import PostgresDatabase

    db = PostgresDatabase().create()
    yield db.url
    db.drop()


def test_migration_0006_keeps_old_chains_verifiable_and_downgrades(empty_database_url: str) -> None:
    from alembic import command

    from bot.audit import anchor as anchors
    from bot.runtime.db import alembic_config

    engine = make_engine(empty_database_url)
    cfg = alembic_config()

    def to(revision: str, how: Callable[..., None] = command.upgrade) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            how(cfg, revision)

    to("0001")
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(
                text("INSERT INTO audit_events (actor, action, details, created_at) VALUES (:a, 'requested', :d, :t)"),
                {"a": f"U{n}", "d": json.dumps({"n": n}), "t": datetime(2026, 1, n + 1, tzinfo=timezone.utc)},
            )
    to("0005")
    migrate(engine)  # 0006: the old events keep their SHA-256 links, with no key id
    keys = AuditKeys([AUDIT_KEY])
    with make_sessionmaker(engine).begin() as s:
        assert trail.verify(s, keys).unkeyed == 3
    sm = make_sessionmaker(engine, audit_keys=keys)
    with sm.begin() as s:
        trail.record(s, action="after", actor="U9", now=datetime.now(timezone.utc))
    with sm.begin() as s:
        result = trail.verify(s, keys)
        assert result.ok and (result.count, result.unkeyed) == (4, 3)
        anchors.record(s, keys, count=4, head_id=result.head_id, head_hash=result.head_hash, now=datetime.now(timezone.utc), reason="export", actor="U9")
    with sm.begin() as s:
        assert trail.verify(s, keys).anchor.count == 4
    to("0005", command.downgrade)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa_inspect(conn).get_columns("audit_events")}
        assert "key_id" not in columns and not sa_inspect(conn).has_table("audit_anchors")
    to("head")
    with make_sessionmaker(engine).begin() as s:
        # The keyed event lost its key id with the downgrade: now taken for an unkeyed one, it does not hold (0006's docstring).
        again = trail.verify(s, keys)
        assert not again.ok and again.count == 3 and "does not match its hash" in again.why
    engine.dispose()
