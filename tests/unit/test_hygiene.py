"""The hygiene report's pure core: IAM's credential report parsed (by hand and from moto), findings judged
at an injected `now`, and the report as Block Kit within Slack's limits and as a CSV file."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

from bot.domain.hygiene import (
    CredentialRow,
    Finding,
    FindingKind,
    KeyInfo,
    Thresholds,
    findings,
    parse_credential_report,
    summarise,
)
from bot.slack.ui import ids
from bot.slack.ui.report import MAX_USERS, report_file, report_message
from tests.unit.test_blocks import all_text, buttons, check_message

K = FindingKind
NOW = datetime(2024, 9, 1, 12, 0, tzinfo=UTC)
TH = Thresholds()
OWNER, GONE = "UOWNER00001", "UGONE000001"

HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,"
    "mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,"
    "access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
# As AWS writes it: the root row first (password_enabled not_supported), N/A for empty slots and dates.
REPORT = "\n".join(
    [
        HEADER,
        "<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2024-08-30T10:00:00+00:00,"
        "not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        "alice,arn:aws:iam::123456789012:user/alice,2024-01-02T03:04:05+00:00,true,2024-05-01T09:00:00+00:00,"
        "2024-01-02T03:10:00+00:00,N/A,false,true,2024-04-01T00:00:00+00:00,2024-08-31T08:00:00+00:00,us-east-1,s3,"
        "true,2024-08-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A",
        "bob,arn:aws:iam::123456789012:user/ops/bob,2023-06-01T00:00:00+00:00,false,N/A,N/A,N/A,false,"
        "false,2023-06-01T00:00:00+00:00,2023-07-01T00:00:00+00:00,eu-west-1,ec2,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        "carol,arn:aws:iam::123456789012:user/carol,2024-02-01T00:00:00+00:00,true,no_information,2024-02-01T00:00:00+00:00,"
        "2024-05-01T00:00:00+00:00,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
    ]
).encode()


def t(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


def row(user: str, *, password: bool = False, mfa: bool = False, pw_used: datetime | None = None,
        pw_changed: datetime | None = None, created: datetime | None = None, keys: tuple[KeyInfo, ...] = ()) -> CredentialRow:
    return CredentialRow(user, f"arn:aws:iam::123456789012:user/{user}", created or t(400), password, pw_used, pw_changed, mfa, keys)


def key(slot: int = 1, *, rotated: float | None = 10, used: float | None = 1, active: bool = True) -> KeyInfo:
    return KeyInfo(slot, active, t(rotated) if rotated is not None else None, t(used) if used is not None else None)


def judge(*rows: CredentialRow, owners: dict[str, str] | None = None, departed: frozenset[str] = frozenset(),
          th: Thresholds = TH) -> list[Finding]:
    return findings(rows, now=NOW, thresholds=th, owners={r.user: OWNER for r in rows} if owners is None else owners, departed=departed)


def kinds(found: list[Finding]) -> list[tuple[str, FindingKind]]:
    return [(f.user, f.kind) for f in found]


# ---------------------------------------------------------------- parsing


def test_parse_a_report_as_aws_writes_it() -> None:
    rows = parse_credential_report(REPORT)
    assert [r.user for r in rows] == ["alice", "bob", "carol"]  # no root
    alice, bob, carol = rows
    assert alice.arn == "arn:aws:iam::123456789012:user/alice"
    assert alice.created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert alice.password_enabled and not alice.mfa_active
    assert alice.password_last_used == datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert alice.password_last_changed == datetime(2024, 1, 2, 3, 10, tzinfo=UTC)
    assert alice.keys == (
        KeyInfo(1, True, datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 8, 31, 8, tzinfo=UTC)),
        KeyInfo(2, True, datetime(2024, 8, 1, tzinfo=UTC), None),
    )
    # An inactive key that was rotated is kept (slot and dates); an empty slot is not.
    assert bob.keys == (KeyInfo(1, False, datetime(2023, 6, 1, tzinfo=UTC), datetime(2023, 7, 1, tzinfo=UTC)),)
    assert not bob.password_enabled and bob.password_last_used is None and bob.password_last_changed is None
    assert carol.mfa_active and carol.password_last_used is None and carol.keys == ()


def test_parse_by_header_name_tolerating_missing_and_reordered_columns() -> None:
    content = (
        "\ufeffmfa_active,user,password_enabled,access_key_2_active,access_key_2_last_rotated,extra\n"
        "true,dave,true,true,2024-03-01T00:00:00Z,x\n"
        "false,erin,false,false,N/A,y\n"
        ",,,,,\n"
    ).encode()
    dave, erin = parse_credential_report(content)
    assert dave == CredentialRow("dave", "", None, True, None, None, True, (KeyInfo(2, True, datetime(2024, 3, 1, tzinfo=UTC), None),))
    assert erin == CredentialRow("erin", "", None, False, None, None, False, ())
    assert parse_credential_report(b"") == [] and parse_credential_report(HEADER.encode()) == []


def test_parse_treats_unreadable_dates_as_none_and_naive_ones_as_utc() -> None:
    content = f"{HEADER}\nfrank,arn,garbage,true,2024-05-01T00:00:00,no_information,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A".encode()
    (frank,) = parse_credential_report(content)
    assert frank.created is None and frank.password_last_changed is None
    assert frank.password_last_used == datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def moto_iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the suite's moto server, if another test started it
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def test_parse_a_report_generated_by_moto(moto_iam: Any) -> None:
    # What moto's report lacks, next to AWS's: no <root_account> row; password_last_used is never recorded
    # (no_information with a password, not_supported without); password_last_changed is always the user's
    # creation time, password or not; password_next_rotation and the keys' last-used region and service are
    # always not_supported; a key's last-used date is set only when a request is signed with that key; every
    # date is "now" (nothing can be backdated, hence the injected `now` below); deleting key 1 moves key 2
    # into slot 1 (AWS keeps the slots).
    iam = moto_iam
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Xx1!long-enough-password")
    iam.create_user(UserName="bob")
    k1 = iam.create_access_key(UserName="bob")["AccessKey"]
    k2 = iam.create_access_key(UserName="bob")["AccessKey"]
    iam.update_access_key(UserName="bob", AccessKeyId=k2["AccessKeyId"], Status="Inactive")
    iam.create_user(UserName="carol")
    iam.create_login_profile(UserName="carol", Password="Xx1!long-enough-password")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="carol")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="carol", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")
    boto3.client(
        "iam", region_name="us-east-1", aws_access_key_id=k1["AccessKeyId"], aws_secret_access_key=k1["SecretAccessKey"]
    ).list_users()  # so moto records key 1 as used
    for _ in range(5):
        if iam.generate_credential_report()["State"] == "COMPLETE":
            break
    else:
        pytest.fail("moto never completed the credential report")
    content = iam.get_credential_report()["Content"]
    assert isinstance(content, bytes)

    rows = {r.user: r for r in parse_credential_report(content)}
    assert set(rows) == {"alice", "bob", "carol"}
    alice, bob, carol = rows["alice"], rows["bob"], rows["carol"]
    assert alice.password_enabled and not alice.mfa_active and alice.password_last_used is None and alice.keys == ()
    assert alice.created is not None and alice.created.tzinfo is not None
    assert carol.password_enabled and carol.mfa_active
    assert not bob.password_enabled
    assert [(k.slot, k.active) for k in bob.keys] == [(1, True), (2, False)]
    assert bob.keys[0].last_rotated is not None and bob.keys[0].last_used is not None and bob.keys[1].last_used is None

    later = (alice.created or NOW) + timedelta(days=100)
    found = findings(list(rows.values()), now=later, thresholds=TH, owners={"bob": OWNER}, departed=frozenset())
    assert kinds(found) == [
        ("alice", K.NO_MFA), ("alice", K.UNUSED_PASSWORD), ("alice", K.UNMANAGED),
        ("bob", K.OLD_KEY), ("bob", K.UNUSED_KEY),
        ("carol", K.UNUSED_PASSWORD), ("carol", K.UNMANAGED),
    ]


# ---------------------------------------------------------------- findings


def test_a_clean_managed_user_has_no_findings() -> None:
    assert judge(row("ok", password=True, mfa=True, pw_used=t(1), keys=(key(1), key(2)))) == []


def test_no_mfa_only_for_console_users() -> None:
    found = judge(row("console", password=True, pw_used=t(1)), row("keys-only", keys=(key(),)), row("both", password=True, mfa=True, pw_used=t(1)))
    assert kinds(found) == [("console", K.NO_MFA)]
    assert found[0].detail == "console password enabled without MFA"


@pytest.mark.parametrize(("days", "expected"), [(89, False), (90, False), (91, True)])
def test_old_key_at_the_boundary(days: int, expected: bool) -> None:
    found = judge(row("u", keys=(key(1, rotated=days, used=1),)))
    assert kinds(found) == ([("u", K.OLD_KEY)] if expected else [])
    if expected:
        assert found[0].detail == "access key 1 is 91 days old"


@pytest.mark.parametrize(("days", "expected"), [(89, False), (91, True)])
def test_unused_key_at_the_boundary(days: int, expected: bool) -> None:
    found = judge(row("u", keys=(key(2, rotated=10, used=days),)), th=Thresholds(key_age_days=1000))
    assert kinds(found) == ([("u", K.UNUSED_KEY)] if expected else [])
    if expected:
        assert found[0].detail == "access key 2 not used for 91 days (last 2024-06-02)"


@pytest.mark.parametrize(("days", "expected"), [(89, False), (91, True)])
def test_never_used_key_judged_by_its_age(days: int, expected: bool) -> None:
    found = judge(row("u", keys=(key(1, rotated=days, used=None),)), th=Thresholds(key_age_days=1000))
    assert kinds(found) == ([("u", K.UNUSED_KEY)] if expected else [])
    if expected:
        assert found[0].detail == "access key 1 never used, created 2024-06-02"


def test_inactive_keys_are_no_finding() -> None:
    assert judge(row("u", keys=(key(1, rotated=500, used=None, active=False), key(2, rotated=400, used=300, active=False)))) == []


@pytest.mark.parametrize(("days", "expected"), [(89, False), (91, True)])
def test_unused_password_at_the_boundary(days: int, expected: bool) -> None:
    found = judge(row("u", password=True, mfa=True, pw_used=t(days)))
    assert kinds(found) == ([("u", K.UNUSED_PASSWORD)] if expected else [])
    if expected:
        assert found[0].detail == "password not used for 91 days (last 2024-06-02)"


def test_never_used_password_judged_by_when_it_was_set_or_else_when_the_user_was_created() -> None:
    set_long_ago = row("a", password=True, mfa=True, pw_changed=t(120), created=t(300))
    set_recently = row("b", password=True, mfa=True, pw_changed=t(10), created=t(300))
    no_change_date = row("c", password=True, mfa=True, created=t(100))
    no_dates = CredentialRow("d", "", None, True, None, None, True, ())
    no_password = row("e", pw_changed=t(300))
    found = judge(set_long_ago, set_recently, no_change_date, no_dates, no_password)
    assert [(f.user, f.kind, f.detail) for f in found] == [
        ("a", K.UNUSED_PASSWORD, "password never used, set 2024-05-04"),
        ("c", K.UNUSED_PASSWORD, "password never used, user created 2024-05-24"),
    ]


def test_owner_left_and_unmanaged() -> None:
    found = judge(row("mine"), row("orphan"), row("stray"), owners={"mine": OWNER, "orphan": GONE}, departed=frozenset({GONE}))
    assert [(f.user, f.kind, f.owner_id, f.managed) for f in found] == [
        ("orphan", K.OWNER_LEFT, GONE, True),
        ("stray", K.UNMANAGED, None, False),
    ]


def test_several_findings_for_one_user_in_kind_order_and_users_by_name() -> None:
    worst = row("zed", password=True, pw_used=t(200), keys=(key(1, rotated=300, used=None), key(2, rotated=100, used=95)))
    found = judge(worst, row("adam"), row("mia", password=True, pw_used=t(1)), owners={"zed": GONE, "mia": OWNER}, departed=frozenset({GONE}))
    assert kinds(found) == [
        ("adam", K.UNMANAGED),
        ("mia", K.NO_MFA),
        ("zed", K.NO_MFA),
        ("zed", K.OLD_KEY), ("zed", K.OLD_KEY),
        ("zed", K.UNUSED_KEY), ("zed", K.UNUSED_KEY),
        ("zed", K.UNUSED_PASSWORD),
        ("zed", K.OWNER_LEFT),
    ]
    assert [f.detail for f in found if f.user == "zed" and f.kind in (K.OLD_KEY, K.UNUSED_KEY)] == [
        "access key 1 is 300 days old", "access key 2 is 100 days old",
        "access key 1 never used, created 2023-11-06", "access key 2 not used for 95 days (last 2024-05-29)",
    ]
    assert summarise(found) == {K.NO_MFA: 2, K.OLD_KEY: 2, K.UNUSED_KEY: 2, K.UNUSED_PASSWORD: 1, K.OWNER_LEFT: 1, K.UNMANAGED: 1}
    assert list(summarise([])) == list(FindingKind) and set(summarise([]).values()) == {0}


# ---------------------------------------------------------------- the message and the file


GENERATED = datetime(2024, 9, 1, 6, 0, tzinfo=UTC)


def sample() -> list[Finding]:
    return judge(
        row("keyed", keys=(key(1, rotated=200, used=1),)),  # managed, owner here: remind and rotate
        row("orphan", password=True, mfa=True, pw_used=t(1)),  # owner left: no reminder
        row("stray", password=True, pw_used=t(1), keys=(key(1, rotated=200, used=1),)),  # unmanaged: no rotate, no remind
        owners={"keyed": OWNER, "orphan": GONE}, departed=frozenset({GONE}),
    )


def user_buttons(msg: dict[str, Any], user: str) -> list[str]:
    return [b["action_id"] for b in buttons(msg) if b["value"] == user]


def test_message_without_findings() -> None:
    msg = check_message(report_message([], account="123456789012", generated_at=GENERATED, total_users=12))
    assert [b["type"] for b in msg["blocks"]] == ["header", "context", "section"]
    text = all_text(msg)
    assert "123456789012" in text and "12 IAM users, 0 with findings" in text and "No findings" in text
    assert buttons(msg) == [] and "no findings" in msg["text"]


def test_message_with_a_few_findings_and_the_buttons_that_apply() -> None:
    found = sample()
    msg = check_message(report_message(found, account="prod (123456789012)", generated_at=GENERATED, total_users=3))
    # A user the bot did not make gets no actions block (an empty one is invalid Block Kit).
    assert [b["type"] for b in msg["blocks"]] == ["header", "context", "section", "section", "section", "actions", "section", "actions"]
    assert msg["blocks"][0]["text"]["text"] == "IAM hygiene report: prod (123456789012)"
    assert "<!date^" in msg["blocks"][1]["elements"][0]["text"]
    assert msg["blocks"][2]["text"]["text"] == (
        "*Summary:* 1 user without MFA · 2 keys older than 90 days · 1 user whose owner has left · 1 user not managed by the bot"
    )
    # The most serious user first: stray has no MFA.
    assert [b["text"]["text"].split("\n")[0] for b in msg["blocks"] if b["type"] == "section"][1:] == [
        "*`stray`* — _no owner on record_", f"*`keyed`* — owner <@{OWNER}>", f"*`orphan`* — owner <@{GONE}> (left)",
    ]
    assert "• access key 1 is 200 days old" in msg["blocks"][4]["text"]["text"]
    R, D, O = ids.A_REPORT_REMIND, ids.A_REPORT_DISABLE, ids.A_REPORT_OFFBOARD
    assert user_buttons(msg, "keyed") == [R, ids.A_REPORT_ROTATE, D, O]
    assert user_buttons(msg, "orphan") == [D, O]  # nobody to remind
    assert user_buttons(msg, "stray") == []  # the bot's IAM policy lets it touch only its own users
    assert all("more" not in b["elements"][0].get("text", "") for b in msg["blocks"] if b["type"] == "context")
    assert len(msg["text"]) < 200 and "3 users with findings" in msg["text"]


def test_rotate_is_offered_for_an_unused_key_of_a_managed_user() -> None:
    found = judge(row("idle", keys=(key(1, rotated=10, used=100),)))
    msg = check_message(report_message(found, account="a", generated_at=GENERATED, total_users=1))
    assert user_buttons(msg, "idle") == [ids.A_REPORT_REMIND, ids.A_REPORT_ROTATE, ids.A_REPORT_DISABLE, ids.A_REPORT_OFFBOARD]


def test_message_for_2000_users_stays_within_slack_limits() -> None:
    rows = [
        row(f"user-{i:04d}-" + "x" * 54, password=True, pw_used=t(200), keys=(key(1, rotated=300, used=None), key(2, rotated=100, used=95)))
        for i in range(2000)
    ]
    owners = {r.user: (GONE if i % 3 == 0 else OWNER) for i, r in enumerate(rows) if i % 2 == 0}
    found = findings(rows, now=NOW, thresholds=TH, owners=owners, departed=frozenset({GONE}))
    assert len({f.user for f in found}) == 2000
    msg = check_message(report_message(found, account="1" * 200, generated_at=GENERATED, total_users=5000))
    assert len(msg["blocks"]) <= 50 and len(msg["text"]) <= 300
    assert len([b for b in msg["blocks"] if b["type"] == "section"]) - 1 == min(40, MAX_USERS)  # the summary is a section too
    last = msg["blocks"][-1]
    assert last["type"] == "context" and last["elements"][0]["text"] == (
        f"…and {2000 - min(40, MAX_USERS):,} more users with findings in the attached file."
    )
    assert "5,000 IAM users, 2,000 with findings" in all_text(msg)
    for b in buttons(msg):
        assert b["value"].startswith("user-") and len(b["value"]) == 64


@pytest.mark.parametrize("max_lines", [0, 1, 5, 1000])
def test_max_lines(max_lines: int) -> None:
    found = judge(*(row(f"u{i:02d}", password=True, pw_used=t(1)) for i in range(30)))
    msg = check_message(report_message(found, account="a", generated_at=GENERATED, total_users=30, max_lines=max_lines))
    shown = min(max_lines, MAX_USERS, 30)
    assert len([b for b in msg["blocks"] if b["type"] == "actions"]) == shown
    more = [b for b in msg["blocks"] if b["type"] == "context" and "attached file" in b["elements"][0]["text"]]
    assert len(more) == (1 if shown < 30 else 0)


def test_report_file_round_trips_through_csv() -> None:
    found = sample() + [Finding("=cmd|calc", K.UNMANAGED, 'not managed, "quoted", by the bot', None, False)]
    data = report_file(found, account="123456789012", generated_at=GENERATED)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert [(r["user"], r["finding"], r["detail"], r["owner"]) for r in rows[:-1]] == [
        (f.user, f.kind.value, f.detail, f.owner_id or "") for f in found[:-1]
    ]
    # A user name a spreadsheet would run as a formula is neutralised.
    assert (rows[-1]["user"], rows[-1]["detail"]) == ("'=cmd|calc", 'not managed, "quoted", by the bot')
    assert {r["account"] for r in rows} == {"123456789012"} and {r["generated_at"] for r in rows} == {GENERATED.isoformat()}
    assert list(csv.reader(io.StringIO(report_file([], account="a", generated_at=GENERATED).decode()))) == [
        ["user", "finding", "detail", "owner", "account", "generated_at"]
    ]
