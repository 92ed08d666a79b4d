"""bot.demo.render: Block Kit as the plain text a person would read, secrets masked by value."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.demo.contract import MODAL_LABELS
from bot.demo.render import MASK, masked, mrkdwn, render_blocks, render_message, render_view
from bot.slack import ui
from bot.credentials.vault import Credentials

NAMES = {"UALICE": "alice", "UBOB": "bob"}


def test_mrkdwn_reads_mentions_dates_links_code_and_entities() -> None:
    when = ui.when(datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
    text = mrkdwn(f"<@UALICE> asked <@UZED|zed> in <#C1|ops> {when}: <https://x.example/a|docs> &lt;b&gt; &amp; <!here>", NAMES)
    assert text == "@alice asked @UZED in #ops 2024-05-01 12:00 UTC: docs (https://x.example/a) <b> & @here"
    assert mrkdwn("*Password*\n```p4ss\nline2```") == "*Password*\n    p4ss\n    line2"
    assert mrkdwn("&amp;lt;") == "&lt;"  # unescaped once, as Slack does
    assert mrkdwn(":key: ready :unknown_one:") == "🔑 ready :unknown_one:"


def test_request_modal_shows_every_contract_label_and_its_buttons() -> None:
    lines = render_view(ui.request_modal(requester_id="UALICE"), names=NAMES)
    assert lines[0] == "┌─ Request an IAM user ─"
    assert lines[-1] == "└─ [ Cancel ] [ Review ]"
    body = "\n".join(lines)
    for label in MODAL_LABELS:
        assert f"│ {label}" in body
    assert "Access type: [ ] Console access  [ ] Access key" in body
    assert "Account owner: [ @alice ▾ ]" in body
    assert "Groups (optional): [ Search groups (any number) ▾ ]" in body
    assert "User name: [ jane.doe ]" in body


def test_buttons_header_context_fields_divider_and_unknown_blocks() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "New request"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "From <@UBOB>"},
            "fields": [{"type": "mrkdwn", "text": "*User*\n`dev01`"}, {"type": "plain_text", "text": "two"}],
        },
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "a"}, {"type": "plain_text", "text": "b"}]},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "action_id": "approve"},
                {"type": "button", "text": {"type": "plain_text", "text": "Deny"}, "action_id": "deny"},
            ],
        },
        {"type": "video"},
    ]
    assert render_blocks(blocks, names=NAMES) == [
        "New request",
        "===========",
        "From @bob",
        "  *User* `dev01`",
        "  two",
        "-" * 40,
        "  a · b",
        "[ Approve ] [ Deny ]",
        "[video block]",
    ]


def test_message_without_blocks_is_its_text() -> None:
    assert render_message({"text": "Created for <@UALICE>"}, names=NAMES) == ["Created for @alice"]
    assert render_message(ui.help_message())[-1] == "[ Request an IAM user ]"


def test_reveal_modal_masked_keeps_the_shape_and_hides_both_secrets() -> None:
    password, secret = "Zq7!pW2#mN9$kL4^Zq7!pW2#", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    creds = Credentials(
        user_name="dev01",
        console_url="https://123456789012.signin.aws.amazon.com/console",
        account="123456789012",
        password=password,
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key=secret,
    )
    plain = render_view(ui.reveal_modal(creds))
    assert any(password in line for line in plain) and any(secret in line for line in plain)  # the modal really has them
    shown = masked(plain, [password, secret])
    text = "\n".join(shown)
    assert password not in text and secret not in text
    assert f"│ *Password*\n│     {MASK}" in text and f"│ *Secret access key*\n│     {MASK}" in text
    assert "AKIAIOSFODNN7EXAMPLE" in text and "dev01" in text  # not secret: shown
    assert f"dev01,{MASK},AKIAIOSFODNN7EXAMPLE,{MASK}," in text  # the CSV line too


def test_masked_ignores_empty_secrets_and_prefers_the_longest() -> None:
    assert masked(["abcabc", "x"], ["", "abc", "abcabc"]) == [MASK, "x"]
