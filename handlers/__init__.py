"""Thin Bolt listeners: ack() first, parse, call the core, render with the builders, respond."""

from __future__ import annotations

from slack_bolt import App

from bot.runtime.app import Deps
from handlers import approvals, break_glass, commands, errors, home, messages, request_form, reveal


def register(app: App, deps: Deps) -> None:
    errors.register(app, deps)
    commands.register(app, deps)
    request_form.register(app, deps)
    approvals.register(app, deps)
    break_glass.register(app, deps)
    reveal.register(app, deps)
    messages.register(app, deps)
    home.register(app, deps)
