"""Block Kit for every view and message the bot sends: pure functions from plain values
(bot.domain: specs, plans, views) to JSON, built with slack_sdk.models, which enforces Slack's limits.
No Web API call and no database here. Action, block and callback ids live in `ids`.
"""

from bot.slack.ui.approval import (
    approval_message,
    audit_line,
    decider,
    failure_message,
    notice_to_approvers,
    outcome_text,
    progress_line,
    reminder_message,
    escalation_notice,
    risk_blocks,
    rule_text,
)
from bot.slack.ui.form import (
    break_glass_modal,
    deny_modal,
    notice_modal,
    options,
    request_modal,
    review_modal,
    spec_fields,
)
from bot.slack.ui.home import home_view
from bot.slack.ui.plan import grant_words, plan_blocks, step_words
from bot.slack.ui.nudges import extension_notice
from bot.slack.ui.removal import removal_report
from bot.slack.ui.requester import (
    cancel_button,
    credentials_file_comment,
    credentials_gone_message,
    credentials_held_message,
    credentials_ready_message,
    decision_message,
    expired_message,
    reveal_modal,
    submitted_message,
)
from bot.slack.ui.status import help_message, status_line, status_message, timeline_message, unknown_phrase_message
from bot.slack.ui.text import STATE_WORDS, Message, clip, esc, mention, when

__all__ = [
    "removal_report", "extension_notice",
    "STATE_WORDS", "Message", "approval_message", "audit_line", "break_glass_modal", "cancel_button", "clip",
    "credentials_file_comment", "credentials_gone_message", "credentials_held_message", "credentials_ready_message", "decider", "decision_message", "deny_modal", "esc",
    "expired_message", "failure_message", "grant_words", "help_message", "home_view", "mention", "notice_modal",
    "notice_to_approvers", "options", "outcome_text", "plan_blocks", "progress_line", "reminder_message", "escalation_notice",
    "request_modal", "reveal_modal", "review_modal", "risk_blocks", "rule_text", "spec_fields", "status_line",
    "status_message", "step_words", "submitted_message", "timeline_message", "unknown_phrase_message", "when",
]
