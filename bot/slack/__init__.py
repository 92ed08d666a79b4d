"""Slack: the notifier (the one Web API user), user groups, inbound checks, phrases, scopes, and the Block Kit builders (ui)."""
