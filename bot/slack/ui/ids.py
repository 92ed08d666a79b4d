"""Every callback, block and action ID the bot uses, in one place."""

# Views
REQUEST_VIEW = "iam_request"
REVIEW_VIEW = "iam_review"
DENY_VIEW = "iam_deny"
REVEAL_VIEW = "iam_reveal"

# Request form blocks (block_id == field name used in validation errors)
B_USER_NAME = "user_name"
B_ACCESS_TYPE = "access_type"
B_GROUPS = "groups"
B_POLICIES = "policies"
B_COPY_FROM = "copy_from"
B_PATH = "path"
B_TAGS = "tags"
B_BOUNDARY = "boundary"
B_OWNER = "owner"
B_EXPIRES = "expires"
B_ACCOUNT = "account"  # the AWS account (with several configured)
B_REASON = "reason"
B_DENY_REASON = "deny_reason"

# Actions. External selects are routed to options handlers by these action IDs.
A_VALUE = "value"
A_GROUPS = "groups_select"
A_POLICIES = "policies_select"
A_BOUNDARY = "boundary_select"
A_COPY_FROM = "copy_from_select"
A_APPROVE = "approve_request"
A_WITHDRAW = "withdraw_approval"
A_DENY = "deny_request"
A_REVEAL = "reveal_credentials"
A_OPEN_REQUEST = "open_request_modal"
A_CANCEL = "cancel_request"
A_REMOVE_KEY = "remove_owner_key"
A_REPORT_REMIND = "report_remind_owner"
A_REPORT_ROTATE = "report_rotate_key"
A_REPORT_DISABLE = "report_disable_user"
A_REPORT_OFFBOARD = "report_offboard_user"
A_ROTATE_NOW = "rotate_now"
A_DISABLE_NOW = "disable_now"  # on a departed owner's offboarding: disable at once, decide later
A_DISABLE_INSTEAD = "disable_instead"  # on an offboarding: disable the user and deny the offboarding
A_USER_MENU = "owned_user_menu"  # Home: rotate the key or reset the password of a user I own

ACCESS_CONSOLE = "console"
ACCESS_KEY = "access_key"


def review_external_id(draft_id: str) -> str:
    return f"iam-review-{draft_id}"

# Break-glass: a listed requester approves their own request, with a reason and a confirmation.
A_BREAK_GLASS = "break_glass"
BREAK_GLASS_VIEW = "iam_break_glass"
B_BG_REASON = "bg_reason"
B_BG_CONFIRM = "bg_confirm"
BG_CONFIRMED = "confirmed"


def approval_value(short_id: str, digest: str | None) -> str:
    """An Approve/Deny button's value: the request and the digest of the plan the message shows."""
    return f"{short_id}:{digest}" if digest else short_id


def parse_approval_value(value: str) -> tuple[str, str | None]:
    """(short id, plan digest) from a button's value; bounded, since payloads may be hostile."""
    short_id, _, digest = value[:200].partition(":")
    return short_id[:20], (digest[:64] or None)

# Changing a user (/iam change) and time-bound grants.
CHANGE_VIEW = "iam_change"
B_GRANT_FOR = "grant_for"  # "For": how long added groups and policies last (new users and changes)
B_GRANT_UNTIL = "grant_until"
A_CHANGE_USER = "change_user"  # a button (status) opening the change modal; value: the user name
A_GRANT_DONE = "grant_done"  # "I'm done": value the grant's id
A_GRANT_EXTEND = "grant_extend"  # "Extend by…": each option's value `<grant id>:<1h|4h|1d|1w>`
FOREVER = "forever"


def change_external_id(nonce: str) -> str:
    return f"iam-change-{nonce}"
