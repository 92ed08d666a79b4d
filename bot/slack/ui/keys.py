"""Answers about a person's public key for encrypted credentials, and how credentials will reach an owner (pure)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ButtonElement, MarkdownTextObject, SectionBlock

from bot.slack.ui import ids
from bot.slack.ui.text import Message, clip, esc, message

HOW_TO = (
    "Register one with `/iam key set <public key>`: the contents of your `~/.ssh/id_ed25519.pub` "
    "(or an `ssh-rsa` key of at least 3072 bits), or an `age1…` recipient from `age-keygen`. Never paste a private key."
)


def key_registered_message(*, label: str, command: str, replaced: bool) -> Message:
    verb = "Replaced your key with" if replaced else "Registered"
    return message(
        f"{verb} {label}.",
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(
                        f":closed_lock_with_key: {verb} *{esc(label)}*.\nCredentials of IAM users you own now arrive in your DM as a "
                        f"file only this key's private half opens, for example with\n```{esc(command)}```\n"
                        "`/iam key show` shows it, `/iam key remove` forgets it.",
                        3000,
                    )
                )
            )
        ],
    )


def key_refused_message(reason: str) -> Message:
    return message(f"Key not registered: {reason}", [SectionBlock(text=MarkdownTextObject(text=clip(f":no_entry: Key not registered. {esc(reason)}", 3000)))])


def key_shown_message(label: str | None, *, file_only: bool) -> Message:
    if label is None:
        how = "Credentials for you can only be sent once you register one." if file_only else "Credentials for you come by a one-time Reveal button."
        return message(f"You have no key registered. {how}", [SectionBlock(text=MarkdownTextObject(text=f"You have no key registered. {how}\n{HOW_TO}"))])
    return message(
        f"Your key: {label}.",
        [SectionBlock(text=MarkdownTextObject(text=clip(f"Your key: *{esc(label)}*. Credentials for you arrive as a file encrypted to it.", 3000)))],
    )


def key_removed_message(removed: bool, *, file_only: bool) -> Message:
    if not removed:
        return message("You had no key registered.", [SectionBlock(text=MarkdownTextObject(text="You had no key registered."))])
    after = "credentials for you will be held until you register a new one" if file_only else "credentials for you will come by a one-time Reveal button"
    return message(f"Key removed: {after}.", [SectionBlock(text=MarkdownTextObject(text=f"Key removed: {after}."))])


def key_help_message() -> Message:
    return message(
        "/iam key set <public key> | show | remove",
        [SectionBlock(text=MarkdownTextObject(text=f"`/iam key set <public key>`, `/iam key show`, `/iam key remove`.\n{HOW_TO}"))],
    )


def home_key_block(label: str | None, *, file_only: bool) -> Any:
    """Home: the key credentials are encrypted to, with Remove; or how to register one."""
    if label is None:
        lead = "Credentials for you are held until you register a key." if file_only else "Credentials for you come by a one-time *Reveal* button."
        return SectionBlock(text=MarkdownTextObject(text=f"*Key for encrypted credentials:* none. {lead}\n{HOW_TO}"))
    return SectionBlock(
        text=MarkdownTextObject(text=clip(f"*Key for encrypted credentials:* {esc(label)}\nCredentials for you arrive as a file only it opens.", 3000)),
        accessory=ButtonElement(text="Remove", action_id=ids.A_REMOVE_KEY, value="remove", style="danger"),
    )


def delivery_line(owner_id: str, label: str | None, *, file_only: bool) -> str:
    """What the form and the review say about how the chosen owner will get the credentials."""
    if label is not None:
        return f":closed_lock_with_key: Credentials go to <@{owner_id}> as a file encrypted to their key {esc(label)}."
    if file_only:
        return f":no_entry: <@{owner_id}> has no key registered, and this workspace sends credentials only as an encrypted file."
    return f":key: Credentials go to <@{owner_id}> by a one-time Reveal button in their DM (with a key registered, `/iam key set`, they would come as an encrypted file)."
