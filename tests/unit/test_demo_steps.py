"""bot.demo.journey's step runner (a step whose check fails stops the demo and says which), and the journey's steps."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pyrage

from bot.demo.journey import CAROL_USER, CSV_HEADER, Journey, Step, Transcript, run_steps
from bot.demo.render import MASK, render_file_message


def test_steps_run_in_order_and_stop_at_the_first_unverified_one() -> None:
    ran = []

    def ok(step: Step) -> None:
        ran.append("ok")
        step.say("something shown")
        step.check(True, "it happened")

    def unverified(step: Step) -> None:
        ran.append("unverified")
        step.check(True, "the first half happened")
        step.check(False, "the user exists in IAM")

    def never(step: Step) -> None:
        ran.append("never")

    out = io.StringIO()
    results = run_steps([("first", ok), ("second", unverified), ("third", never)], Transcript(out))
    assert ran == ["ok", "unverified"]
    assert [r.ok for r in results] == [True, False]
    text = out.getvalue()
    assert "── 1. first" in text and "  something shown\n  ✓ it happened" in text
    assert "── 2. second" in text and "FAILED" in text and "✓ the first half happened" in text
    assert "✗ not verified: the user exists in IAM" in text and "third" not in text


def test_an_error_in_a_step_is_a_failed_step_not_a_traceback() -> None:
    def broken(step: Step) -> None:
        raise KeyError("view")

    out = io.StringIO()
    results = run_steps([("broken", broken)], Transcript(out))
    assert not results[0].ok and "✗ KeyError: 'view'" in out.getvalue()


def test_the_transcript_masks_a_forbidden_value_whatever_prints_it() -> None:
    out = io.StringIO()
    transcript = Transcript(out)
    transcript.forbid("hunter2-secret", "")
    transcript.write(["password is hunter2-secret", "nothing here"])
    assert "hunter2-secret" not in out.getvalue() and "password is ●" in out.getvalue()


# ---- the journey's steps: both ways credentials travel, and @carol's file opened with her key

ALICE_STEPS = [
    "@alice runs /iam request in #general",
    "@alice searches the Groups and Managed policies lists",
    "@alice fills in the form and presses Review",
    "@alice presses Submit request",
    "@bob presses Approve",
    "iam-bot creates the user in IAM and DMs @alice",
    "@alice presses Reveal credentials",
    "@alice presses Reveal credentials again",
    "@alice DMs the bot: status",
]
CAROL_STEPS = [
    "@carol registers her age public key: /iam key set",
    "@alice asks for an IAM user owned by @carol",
    "@bob presses Approve on @carol's user",
    "iam-bot creates the user and sends @carol an encrypted file",
    "@carol decrypts the file with her own key",
]


def test_the_journey_shows_the_reveal_first_then_the_encrypted_file() -> None:
    journey = Journey(world=None, transcript=Transcript(io.StringIO()))  # type: ignore[arg-type]
    assert [title for title, _ in journey.steps()] == ALICE_STEPS + CAROL_STEPS


PASSWORD = "Pw-9f3!kQz@xLm2#"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


class _FakeIam:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list_access_keys(self, UserName: str) -> dict:  # noqa: N803 - boto3's spelling
        assert UserName == CAROL_USER
        return {"AccessKeyMetadata": [{"AccessKeyId": k, "Status": "Active"} for k in self.keys]}


def _decrypt_step(tmp_path: Path, *, sent_to_slack: str = "", keys: tuple[str, ...] = (KEY_ID,)) -> tuple[list, str]:
    """Run the decryption step alone on a file encrypted to a fresh identity, with IAM and Slack faked."""
    identity = pyrage.x25519.Identity.generate()
    plaintext = "\n".join([",".join(CSV_HEADER), f"{CAROL_USER},{PASSWORD},{KEY_ID},{SECRET},https://123456789012.signin.aws.amazon.com/console", ""])
    data = pyrage.encrypt(plaintext.encode(), [identity.to_public()])
    db = tmp_path / "iam-bot.db"
    db.write_bytes(b"SQLite format 3\0")
    standin = SimpleNamespace(all_text=lambda: f'{{"text": "file shared {sent_to_slack}"}}', problems=[])
    world = SimpleNamespace(iam=_FakeIam(list(keys)), standin=standin, db_path=db)
    out = io.StringIO()
    transcript = Transcript(out)
    journey = Journey(world, transcript)  # type: ignore[arg-type]
    journey.carol_identity = identity
    journey.carol_file = {"id": "F1", "name": f"{CAROL_USER}-credentials.csv.age", "bytes": data, "text": ""}
    results = run_steps([("@carol decrypts the file with her own key", journey.carol_decrypts)], transcript)
    return results, out.getvalue()


def test_the_decrypted_file_is_checked_against_iam_and_shown_masked(tmp_path: Path) -> None:
    results, text = _decrypt_step(tmp_path)
    assert results[0].ok, text
    assert f"$ age -d -i key.txt {CAROL_USER}-credentials.csv.age\n    User name,Password,Access key ID,Secret access key,Console login link\n" in text
    assert f"    {CAROL_USER},{MASK},{KEY_ID},{MASK},https://123456789012.signin.aws.amazon.com/console\n" in text
    assert f"✓ its access key ID {KEY_ID} is the user's only key in IAM" in text
    assert "✓ any other key fails to open it" in text
    assert PASSWORD not in text and SECRET not in text


def test_the_decryption_step_fails_if_the_key_in_the_file_is_not_the_users_only_key(tmp_path: Path) -> None:
    results, text = _decrypt_step(tmp_path, keys=(KEY_ID, "AKIAOTHERKEY00000000"))
    assert not results[0].ok and "✗ not verified: its access key ID" in text
    assert PASSWORD not in text and SECRET not in text


def test_the_decryption_step_fails_if_a_secret_reached_slack_and_never_prints_it(tmp_path: Path) -> None:
    results, text = _decrypt_step(tmp_path, sent_to_slack=SECRET)
    assert not results[0].ok and "✗ not verified: Slack saw ciphertext only" in text
    assert PASSWORD not in text and SECRET not in text and MASK in text


def test_a_file_message_shows_its_text_and_the_file_not_its_content() -> None:
    lines = render_file_message(
        ":closed_lock_with_key: Open it with:\n```age -d -i key.txt a-credentials.csv.age```", [{"name": "a-credentials.csv.age", "bytes": b"age-encryption.org/v1\nsecret"}]
    )
    assert lines == ["🔐 Open it with:", "    age -d -i key.txt a-credentials.csv.age", "📎 a-credentials.csv.age  (28 bytes)"]
