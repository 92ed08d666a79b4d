"""Values several parts of the bot must agree on, written once."""

from __future__ import annotations

from datetime import timedelta

# Who `decided_by` and the audit trail name when a rule, a guardrail, the clock or the worker acts.
BOT_ACTOR = "iam-bot"

# The tag the bot puts on every IAM user it creates: its value is the request's short id, so a
# resumed job recognises its own user and a rollback never touches anyone else's.
MARKER_TAG = "iam-bot:request"

# A reveal in flight holds the credentials this long; after it, another click may try again.
REVEAL_CLAIM_WINDOW = timedelta(seconds=60)

# Message metadata that marks the credentials DM, so a DM whose outcome was lost is found, not resent.
CREDENTIALS_DM_EVENT = "iam_bot_credentials"
