"""The request modal: typeahead options, the form checked in the modal, the review with its plan, submit."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from slack_bolt import Ack, App

from bot.common.errors import Refused
from bot.iam.accounts import AccountUnknown
from bot.iam.errors import AwsError
from bot.requests.validation import RawForm
from bot.slack import inbound, ui
from bot.slack.ui import ids
from handlers import Services

log = logging.getLogger(__name__)


def parse_request_form(values: dict[str, Any]) -> RawForm:
    """Read the submitted state.values defensively: a hostile payload may omit or mistype anything."""

    def element(block: str, action: str) -> dict[str, Any]:
        found = (values.get(block) or {}).get(action)
        return found if isinstance(found, dict) else {}

    def text(block: str) -> str:
        v = element(block, ids.A_VALUE).get("value")
        return v if isinstance(v, str) else ""

    def selected(block: str, action: str) -> tuple[str, ...]:
        opts = element(block, action).get("selected_options") or []
        return tuple(o["value"] for o in opts if isinstance(o, dict) and isinstance(o.get("value"), str))

    def one(block: str, action: str) -> str:
        opt = element(block, action).get("selected_option") or {}
        v = opt.get("value") if isinstance(opt, dict) else None
        return v if isinstance(v, str) else ""

    owner = element(ids.B_OWNER, ids.A_VALUE).get("selected_user")
    return RawForm(
        user_name=text(ids.B_USER_NAME),
        access_types=selected(ids.B_ACCESS_TYPE, ids.A_VALUE),
        groups=selected(ids.B_GROUPS, ids.A_GROUPS),
        policy_arns=selected(ids.B_POLICIES, ids.A_POLICIES),
        copy_from=one(ids.B_COPY_FROM, ids.A_COPY_FROM),
        path=text(ids.B_PATH),
        tags=text(ids.B_TAGS),
        permissions_boundary=one(ids.B_BOUNDARY, ids.A_BOUNDARY),
        owner_id=owner if isinstance(owner, str) else "",
        reason=text(ids.B_REASON),
        expires=picked if isinstance(picked := element(ids.B_EXPIRES, ids.A_VALUE).get("selected_date"), str) else "",
        grant_for=one(ids.B_GRANT_FOR, ids.A_VALUE),
        grant_until=until if isinstance(until := element(ids.B_GRANT_UNTIL, ids.A_VALUE).get("selected_date"), str) else "",
        accounts=tuple(a[:40] for a in selected(ids.B_ACCOUNT, ids.A_VALUE)[:20]),
    )


def account_of_view(payload: dict[str, Any]) -> str | None:
    """The account a typeahead is about: the change form's (in its metadata), or the request form's "AWS account"
    as selected; None when the view does not say (the requester's default then)."""
    view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
    try:
        had = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        had = None
    if isinstance(had, dict) and isinstance(had.get("u"), str):
        return str(had.get("a") or "")[:40]
    values = (view.get("state") or {}).get("values") or {}
    picked = ((values.get(ids.B_ACCOUNT) or {}).get(ids.A_VALUE) or {}).get("selected_options") if isinstance(values, dict) else None
    first = picked[0] if isinstance(picked, list) and picked and isinstance(picked[0], dict) else {}
    value = first.get("value")
    return value[:40] if isinstance(value, str) else None  # several picked: the first one's lists



def register(app: App, services: Services) -> None:
    form = services.form

    # ---- typeahead: answered from a briefly cached IAM listing ----

    def answer_options(ack: Ack, build: Callable[..., list[dict[str, Any]]], payload: dict[str, Any]) -> None:
        user = payload.get("user")
        user_id = str((user if isinstance(user, dict) else {}).get("id") or "")[:32]  # who asks decides what they may see
        try:
            ack(options=build(str(payload.get("value") or "")[:100], user_id=user_id, account=account_of_view(payload)))
        except AwsError as exc:
            # An empty list shows "No results"; the cause goes to the operator's log.
            log.warning("options lookup failed: %s during %s", exc.code, exc.action)
            ack(options=[])
        except AccountUnknown:
            ack(options=[])

    @app.options(ids.A_GROUPS)
    def group_options(ack: Ack, payload: dict[str, Any]) -> None:
        answer_options(ack, form.group_options, payload)

    @app.options(ids.A_POLICIES)
    @app.options(ids.A_BOUNDARY)
    def policy_options(ack: Ack, payload: dict[str, Any]) -> None:
        answer_options(ack, form.policy_options, payload)

    @app.options(ids.A_COPY_FROM)
    def user_options(ack: Ack, payload: dict[str, Any]) -> None:
        answer_options(ack, form.user_options, payload)

    # ---- the form: checked in the modal, then the review screen ----

    @app.view(ids.REQUEST_VIEW)
    def request_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        raw = parse_request_form((view.get("state") or {}).get("values") or {})
        checked = form.check(user_id=user_id, raw=raw, received_at=context.get(inbound.RECEIVED_AT))
        if checked.review is None or checked.draft_id is None:
            ack(response_action="errors", errors=checked.errors)
            return
        ack(response_action="push", view=checked.review)
        if checked.fill_later:  # what "copy from" brings is read after the ack: IAM may take longer than Slack waits
            form.fill_review(draft_id=checked.draft_id, user_id=user_id)

    # ---- the review: submit the request ----

    @app.view(ids.REVIEW_VIEW)
    def review_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            form.submit(draft_id=str(view.get("private_metadata") or "")[:64], user_id=body["user"]["id"])
        except Refused as refused:
            ack(response_action="update", view=ui.notice_modal("Not submitted", str(refused)))
            return
        ack(response_action="clear")
