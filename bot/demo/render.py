"""Block Kit as plain text: what a person would see in Slack, for the demo's transcript.

Pure functions from the JSON the bot sends (views, messages) to lines of text. Secrets are
masked by value (`mask`), after rendering, so no path through the renderer can print them.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

MASK = "●" * 12

# The shortcodes the bot uses, as Slack draws them; any other stays as written.
EMOJI = {
    ":white_check_mark:": "✅",
    ":key:": "🔑",
    ":warning:": "⚠️",
    ":inbox_tray:": "📥",
    ":hourglass_flowing_sand:": "⏳",
    ":gear:": "⚙️",
    ":no_entry:": "⛔",
    ":x:": "❌",
    ":lock:": "🔒",
    ":closed_lock_with_key:": "🔐",
    ":heavy_minus_sign:": "➖",
}
_EMOJI = re.compile("|".join(map(re.escape, EMOJI)))

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def mrkdwn(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack's mrkdwn control sequences as a person reads them; entities unescaped last."""
    names = names or {}
    text = _USER.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or names.get(m.group(1), m.group(1))), text)
    text = _DATE.sub(lambda m: m.group(1), text)  # Slack shows the date in the reader's zone; the fallback is UTC
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = re.sub(r"```\n?(.*?)\n?```", lambda m: "\n".join("    " + line for line in m.group(1).split("\n")), text, flags=re.S)
    text = _EMOJI.sub(lambda m: EMOJI[m.group(0)], text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any, names: Mapping[str, str] | None) -> str:
    """A text object (plain_text or mrkdwn), or a bare string."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    raw = str(obj.get("text", ""))
    return mrkdwn(raw, names) if obj.get("type") == "mrkdwn" else raw


def _button(el: Mapping[str, Any]) -> str:
    return f"[ {_text(el.get('text'), None)} ]"


def _element(el: Mapping[str, Any], names: Mapping[str, str] | None) -> str:
    """An interactive element as a one-line picture of it."""
    return _one_line(el, names).replace("\n", " ⏎ ")


def _one_line(el: Mapping[str, Any], names: Mapping[str, str] | None) -> str:
    kind = el.get("type")
    if kind == "button":
        return _button(el)
    if kind in ("checkboxes", "radio_buttons"):
        chosen = {o.get("value") for o in el.get("initial_options") or []}
        if el.get("initial_option"):
            chosen.add(el["initial_option"].get("value"))
        box = "[x]" if kind == "checkboxes" else "(•)"
        empty = "[ ]" if kind == "checkboxes" else "( )"
        return "  ".join(f"{box if o.get('value') in chosen else empty} {_text(o.get('text'), names)}" for o in el.get("options") or [])
    if kind == "plain_text_input":
        value = el.get("initial_value") or _text(el.get("placeholder"), names)
        return f"[ {value} ]" if value else "[ ______ ]"
    if kind == "users_select":
        user = el.get("initial_user")
        return f"[ @{(names or {}).get(user, user)} ▾ ]" if user else "[ choose a person ▾ ]"
    if kind and kind.endswith("select"):
        placeholder = _text(el.get("placeholder"), names) or "choose"
        many = kind.startswith("multi_")
        return f"[ {placeholder} {'(any number) ' if many else ''}▾ ]"
    if kind == "image":
        return f"[image: {el.get('alt_text', '')}]"
    if kind in ("mrkdwn", "plain_text"):
        return _text(el, names)
    return f"[{kind}]"


def render_blocks(blocks: Iterable[Mapping[str, Any]], *, names: Mapping[str, str] | None = None) -> list[str]:
    """One or more lines per block: header/section/context/fields/buttons/inputs/divider."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"), names)
            lines += [title, "=" * min(len(title), 60)]
        elif kind == "section":
            if block.get("text"):
                lines += _text(block["text"], names).split("\n")
            fields = [_text(f, names).replace("\n", " ") for f in block.get("fields") or []]
            lines += [f"  {f}" for f in fields]
            accessory = block.get("accessory")
            if accessory:
                lines.append("  " + _element(accessory, names))
        elif kind == "context":
            lines.append("  " + " · ".join(_element(e, names) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "actions":
            lines.append(" ".join(_element(e, names) for e in block.get("elements") or []))
        elif kind == "input":
            optional = " (optional)" if block.get("optional") else ""
            lines.append(f"{_text(block.get('label'), names)}{optional}: {_element(block.get('element') or {}, names)}")
            if block.get("hint"):
                lines.append(f"  ↳ {_text(block['hint'], names)}")
        else:
            lines.append(f"[{kind} block]")
    return lines


def render_view(view: Mapping[str, Any], *, names: Mapping[str, str] | None = None) -> list[str]:
    """A modal or Home tab: its title, its blocks, then its buttons."""
    lines = [f"┌─ {_text(view.get('title'), names) or view.get('type', 'view')} ─"]
    lines += [f"│ {line}".rstrip() for line in render_blocks(view.get("blocks") or [], names=names)]
    buttons = [f"[ {_text(view[key], names)} ]" for key in ("close", "submit") if view.get(key)]
    lines.append("└─ " + " ".join(buttons) if buttons else "└─")
    return lines


def render_message(message: Mapping[str, Any], *, names: Mapping[str, str] | None = None) -> list[str]:
    """A chat message: its blocks if it has them (what Slack shows), else its text."""
    if message.get("blocks"):
        return render_blocks(message["blocks"], names=names)
    return mrkdwn(str(message.get("text", "")), names).split("\n")


def render_file_message(text: str, files: Iterable[Mapping[str, Any]], *, names: Mapping[str, str] | None = None) -> list[str]:
    """A message sharing files (files.completeUploadExternal): its text, then a card per file, name and size.

    Each file is ``{"name": ..., "bytes": ...}`` (or ``"size"``); its content is never shown.
    """
    lines = mrkdwn(text, names).split("\n") if text else []
    for f in files:
        size = f["size"] if "size" in f else len(f.get("bytes") or b"")
        lines.append(f"📎 {f.get('name', 'file')}  ({size} bytes)")
    return lines


def masked(lines: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """`lines` with every occurrence of every secret replaced by MASK (longest first)."""
    # Also as the renderer would print them, should a secret ever hold mrkdwn entities.
    values = sorted({v for s in secrets if s for v in (s, mrkdwn(s))}, key=len, reverse=True)
    out = []
    for line in lines:
        for value in values:
            line = line.replace(value, MASK)
        out.append(line)
    return out
