"""Steps of a user's journey, as Slack would deliver them to the running bot."""

from __future__ import annotations

import json
from typing import Any, Iterable

from tests.support.harness import RunningBot, wait_until
from bot.demo.standin import Call

REQUESTER = "UREQUESTER1"
APPROVER = "UAPPROVER1"
APPROVER2 = "UAPPROVER2"
OUTSIDER = "UOUTSIDER1"


def form_values(
    *,
    user_name: str = "developer01",
    access: Iterable[str] = ("console", "access_key"),
    groups: Iterable[str] = (),
    policies: Iterable[str] = (),
    copy_from: str | None = None,
    path: str = "",
    tags: str = "",
    boundary: str | None = None,
    owner: str = REQUESTER,
    reason: str = "Needs to deploy the payments service",
    expires: str | None = None,
    grant_for: str | None = None,
    until: str | None = None,
    account: str | Iterable[str] | None = None,
) -> dict[str, Any]:
    """state.values exactly as Slack sends them for the request modal (`account`: "AWS account", shown with
    several accounts configured; one or several names)."""

    def opts(values: Iterable[str]) -> list[dict[str, Any]]:
        return [{"text": {"type": "plain_text", "text": v[:75]}, "value": v} for v in values]

    def single(value: str | None) -> dict[str, Any] | None:
        return opts([value])[0] if value else None

    return {
        "user_name": {"value": {"type": "plain_text_input", "value": user_name}},
        "access_type": {"value": {"type": "checkboxes", "selected_options": opts(access)}},
        "groups": {"groups_select": {"type": "multi_external_select", "selected_options": opts(groups)}},
        "policies": {"policies_select": {"type": "multi_external_select", "selected_options": opts(policies)}},
        "copy_from": {"copy_from_select": {"type": "external_select", "selected_option": single(copy_from)}},
        "path": {"value": {"type": "plain_text_input", "value": path or None}},
        "tags": {"value": {"type": "plain_text_input", "value": tags or None}},
        "boundary": {"boundary_select": {"type": "external_select", "selected_option": single(boundary)}},
        "owner": {"value": {"type": "users_select", "selected_user": owner}},
        "reason": {"value": {"type": "plain_text_input", "value": reason}},
        "expires": {"value": {"type": "datepicker", "selected_date": expires}},
        "grant_for": {"value": {"type": "static_select", "selected_option": single(grant_for)}},
        "grant_until": {"value": {"type": "datepicker", "selected_date": until}},
        **({"account": {"value": {"type": "multi_static_select", "selected_options": opts([account] if isinstance(account, str) else account)}}}
           if account else {}),
    }


def open_request_modal(bot: RunningBot, user: str = REQUESTER) -> dict[str, Any]:
    before = len(bot.standin.calls_to("views.open"))
    resp = bot.slack.command(user, "request")
    assert resp.status_code == 200, resp.text
    call = wait_until(lambda: bot.standin.calls_to("views.open")[before:], what="views.open")[0]
    return call.response["view"]


def submit_form(bot: RunningBot, user: str = REQUESTER, **fields: Any) -> dict[str, Any]:
    view = open_request_modal(bot, user)
    resp = bot.slack.view_submission(user, view, form_values(**fields))
    assert resp.status_code == 200, resp.text
    return resp.json() if resp.text else {}


def submit_request(bot: RunningBot, user: str = REQUESTER, **fields: Any) -> None:
    """Request -> review -> Submit request, without waiting for what the worker does next (the plan)."""
    answer = submit_form(bot, user, **fields)
    assert answer.get("response_action") == "push", answer
    resp = bot.slack.view_submission(user, answer["view"], {})
    assert resp.status_code == 200 and resp.json() == {"response_action": "clear"}, resp.text


def request_user(bot: RunningBot, user: str = REQUESTER, **fields: Any) -> str:
    """Request -> review -> submit; returns the request's short id once approvers were asked."""
    before = {id(c) for c in bot.standin.calls_to("chat.postMessage")}
    submit_request(bot, user, **fields)
    call = bot.standin.wait_for("chat.postMessage", lambda c: id(c) not in before and _approve_value(c) is not None)
    short_id = _approve_value(call)
    assert short_id
    # The requester's confirmation comes after every approver was asked: the journey is settled.
    bot.standin.wait_for("chat.postMessage", lambda c: short_id in c.args["text"] and "sent for approval" in c.args["text"])
    return short_id


def button_value(call: Call, action_id: str) -> str | None:
    """The value of a button in a message the bot sent (Approve and Deny carry `<short id>:<plan digest>`)."""
    for block in call.args.get("blocks") or []:
        for el in block.get("elements") or []:
            if el.get("action_id") == action_id:
                return el.get("value")
    return None


def _approve_value(call: Call) -> str | None:
    """The short id of the request a message asks to approve."""
    value = button_value(call, "approve_request")
    return value.split(":", 1)[0] if value else None


def approval_messages(bot: RunningBot, short_id: str) -> list[Call]:
    return [c for c in bot.standin.calls_to("chat.postMessage") if _approve_value(c) == short_id]


def click(bot: RunningBot, user: str, action_id: str, short_id: str, message: Call | None = None) -> Any:
    """Click a button of a message, with the value the message gave it (Approve carries the plan's digest)."""
    if message is None:
        message = approval_messages(bot, short_id)[0]
    value = button_value(message, action_id) or short_id
    return bot.slack.block_action(
        user,
        action_id,
        value,
        channel_id=message.response["channel"],
        message_ts=message.response["ts"],
        message=message.response.get("message"),
    )


def credentials_dm(bot: RunningBot, short_id: str, timeout: float = 30) -> Call:
    def has_reveal(c: Call) -> bool:
        return any(
            el.get("action_id") == "reveal_credentials" and el.get("value") == short_id
            for b in c.args.get("blocks") or []
            for el in b.get("elements") or []
        )

    return bot.standin.wait_for("chat.postMessage", has_reveal, timeout=timeout)


def change_values(*, groups=(), policies=(), access=(), reason: str = "On call this week", grant_for: str | None = None,
                  until: str | None = None) -> dict[str, Any]:
    """state.values exactly as Slack sends them for the change modal."""

    def opts(values: Iterable[str]) -> list[dict[str, Any]]:
        return [{"text": {"type": "plain_text", "text": v[:75]}, "value": v} for v in values]

    return {
        "groups": {"groups_select": {"type": "multi_external_select", "selected_options": opts(groups)}},
        "policies": {"policies_select": {"type": "multi_external_select", "selected_options": opts(policies)}},
        "access_type": {"value": {"type": "checkboxes", "selected_options": opts(access)}},
        "grant_for": {"value": {"type": "static_select", "selected_option": opts([grant_for])[0] if grant_for else None}},
        "grant_until": {"value": {"type": "datepicker", "selected_date": until}},
        "reason": {"value": {"type": "plain_text_input", "value": reason}},
    }


def change_form(bot: Any, user_name: str, user: str = REQUESTER) -> dict[str, Any]:
    """`/iam change <user>`: the modal opens at once, then is filled in from IAM; the view as updated."""
    before = len(bot.standin.calls_to("views.update"))
    bot.slack.command(user, f"change {user_name}")
    call = wait_until(lambda: [c for c in bot.standin.calls_to("views.update")[before:] if user_name in json.dumps(c.response.get("view") or {})],
                      what="the change form filled in")[0]
    return call.response["view"]


def everything(args: dict[str, Any]) -> str:
    """A message's fallback text and its blocks, as one string to look for words in."""
    return str(args.get("text", "")) + json.dumps(args.get("blocks") or [], ensure_ascii=False)


def dms_to(bot: RunningBot, user: str, fragment: str) -> list[Call]:
    return [c for c in bot.standin.calls_to("chat.postMessage") if c.args["channel"] == "D" + user[1:] and fragment in everything(c.args)]


def command(bot: RunningBot, text: str, user: str = REQUESTER) -> str:
    """`/iam <text>`; the private answer, its text and blocks."""
    before = len(bot.standin.calls_to("response_url"))
    bot.slack.command(user, text)
    return everything(wait_until(lambda: bot.standin.calls_to("response_url")[before:], what=f"the answer to /iam {text}")[0].args)
