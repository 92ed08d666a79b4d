"""The audit key and anchors as plain values: keys never shown, anchors parsed and written one way, verdicts in one line."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.audit import anchor as anchors
from bot.audit import trail
from bot.audit.anchor import Anchor
from bot.audit.keys import AuditKeys, key_id
from bot.runtime.settings import ConfigError, Settings, load_settings

KEY = "k" * 20 + "-the-audit-key-0123456789"
OLD = "o" * 20 + "-last-years-key-012345678"
DIGEST = "9f2c" + "0" * 60


def test_keys_are_never_shown_only_their_ids() -> None:
    keys = AuditKeys([KEY, OLD, KEY])
    assert keys.ids == (key_id(KEY), key_id(OLD)) and keys.signing_id == key_id(KEY)
    for shown in (repr(keys), str(keys), f"{keys}", repr(Settings(audit_key_raw=f"{KEY},{OLD}"))):
        assert KEY not in shown and OLD not in shown
    assert len(key_id(KEY)) == 12 and key_id(KEY) == key_id(KEY) != key_id(OLD)


def test_each_key_signs_its_own_and_checks_only_its_own() -> None:
    keys = AuditKeys([KEY, OLD])
    body = {"prev": "", "action": "approved"}
    new_mac, old_mac = keys.mac(key_id(KEY), body), keys.mac(key_id(OLD), body)
    assert new_mac != old_mac
    assert keys.check(key_id(KEY), body, new_mac) and keys.check(key_id(OLD), body, old_mac)
    assert not keys.check(key_id(KEY), body, old_mac) and not keys.check(key_id(KEY), {**body, "action": "denied"}, new_mac)
    assert not keys.check("000000000000", body, new_mac) and not keys.check(None, body, new_mac)


def test_a_short_or_missing_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as short:
        AuditKeys(["short-secret"])
    assert "short-secret" not in str(short.value)
    with pytest.raises(ValueError):
        AuditKeys([])
    with pytest.raises(ConfigError) as bad:
        load_settings(audit_key_raw=f"{KEY},short-secret")
    assert str(bad.value).startswith("IAM_BOT_AUDIT_KEY: key #2 is too short (at least 32 characters); generate one with")
    assert "short-secret" not in str(bad.value) and KEY not in str(bad.value)
    assert load_settings(audit_key_raw=f" {KEY} , {OLD} ").audit_keys == [KEY, OLD]


@pytest.mark.parametrize("text", [f"12:{DIGEST}", f" 12:{DIGEST.upper()} "])
def test_an_anchor_is_count_colon_digest(text: str) -> None:
    assert anchors.parse(text) == Anchor(count=12, head_hash=DIGEST)


@pytest.mark.parametrize("text", ["", DIGEST, f"0:{DIGEST}", f"-1:{DIGEST}", f"12:{DIGEST[:-1]}", f"12:{DIGEST}0", "12:" + "g" * 64, f"x:{DIGEST}"])
def test_a_malformed_anchor_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected <count>:<head digest>"):
        anchors.parse(text)


def test_the_anchor_line_holds_count_digest_head_and_time() -> None:
    a = Anchor(count=12, head_hash=DIGEST, head_id=15, at=datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc), reason="schedule")
    assert a.line() == (
        f"Audit anchor `12:{DIGEST}`: 12 events, head event #15, 2026-11-30T10:00:00Z (scheduled). "
        f"Check the log against it with `iam-bot audit verify --anchor 12:{DIGEST}`"
    )
    assert a.short == "12:9f2c00000000…" and anchors.parse(a.token).head_hash == DIGEST
    row = trail.anchor_row(a)
    assert (row["id"], row["action"], row["hash"], row["details"]["count"], row["details"]["head_id"]) == (None, "audit_anchor", DIGEST, 12, 15)


GIVEN = Anchor(count=12, head_hash=DIGEST)


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (trail.VerifyResult(True, 12, anchor=GIVEN), "audit log intact: 12 events, every link holds under the audit key; matches anchor 12:9f2c00000000… (given)"),
        (
            trail.VerifyResult(True, 12, unkeyed=5),
            "audit log intact: 12 events, every link holds: 7 under the audit key, the 5 before the key by SHA-256 (pinned by the keyed ones); "
            "no anchor to check against (pass --anchor from the audit channel or an export)",
        ),
        (trail.VerifyResult(False, 3, 4, "its content does not match its HMAC"), "audit log BROKEN at event 4: its content does not match its HMAC (3 events before it verify)"),
        (
            trail.VerifyResult(False, 9, None, "anchor 12:9f2c00000000… (given) says 12 events, the log has 9", truncated=True),
            "audit log TRUNCATED: anchor 12:9f2c00000000… (given) says 12 events, the log has 9; events were removed from its end",
        ),
        (trail.VerifyResult(False, 9, None, "recorded anchor(s) #2 fail their HMAC"), "audit log BROKEN: recorded anchor(s) #2 fail their HMAC"),
    ],
)
def test_each_verdict_is_one_line(result: trail.VerifyResult, line: str) -> None:
    assert trail.describe(result) == line
