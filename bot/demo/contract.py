"""What DESIGN.md's contract fixes, written once: `iam-bot demo` checks it, and so do the tests."""

ACCOUNT_LABEL = "AWS account"  # first in the form, with several accounts configured (IAM_BOT_ACCOUNTS)
MODAL_LABELS = [
    "User name",
    "Access type",
    "Groups",
    "Managed policies",
    "Copy permissions from existing user",
    "Path",
    "Tags",
    "Permissions boundary",
    "Account owner",
    "Reason",
    "Expires",  # issue 14: optional, after the contract's own labels
    "For",  # issue 14: how long the groups and policies asked for last (optional)
    "Until",  # with For "Until the date below"
]
