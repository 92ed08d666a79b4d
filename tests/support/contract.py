"""What DESIGN.md's contract fixes, written once for the tests that check it."""

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
]
