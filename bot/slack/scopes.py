"""The bot token scopes the bot uses: those of deploy/slack-app-manifest.yml (the installed package has
no deploy/ folder; tests/unit/test_doctor_checks.py keeps the two equal). `iam-bot doctor` checks them."""

BOT_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "files:write",
    "im:history",
    "app_mentions:read",
    "usergroups:read",
    "users:read",
    "channels:read",
    "groups:read",
)
