"""IAM's errors as the bot reasons about them: a code, the action, whether retrying can help, what to do."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceFailure",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        # AWS KMS (bot.iam.kms)
        "KMSInternalException",
        "DependencyTimeoutException",
    }
)

_HINTS = {
    "AccessDenied": "The bot's own IAM permissions do not allow this; an AWS admin must grant it (`iam-bot policy` prints the policy it needs).",
    "LimitExceeded": "An IAM quota was reached (users, groups per user, or policies per user); remove unused ones or raise the quota.",
    "NoSuchEntity": "Something the request names no longer exists in IAM; submit a new request with current groups and policies.",
    "EntityAlreadyExists": "A user with this name already exists and was not created by this request; request a different name.",
    "MalformedPolicyDocument": "A policy document was rejected by IAM.",
    "InvalidInput": "IAM rejected a value of the request.",
    "PasswordPolicyViolation": "The generated password did not satisfy the account's password policy.",
    "KeyDrift": "Nothing was changed: ask again with `/iam rotate-key` once the user has one key (IAM allows two).",
    "ReportInProgress": "IAM is still generating the account's credential report; try again in a minute.",
    "DeleteConflict": "IAM still holds something attached to the user (a credential or policy added meanwhile); the request can be tried again, which removes what it finds first.",
}


class AwsError(Exception):
    def __init__(self, code: str, message: str, *, action: str, request_id: str | None = None):
        super().__init__(f"{action}: {code}: {message}")
        self.code = code
        self.aws_message = message
        self.action = action
        self.request_id = request_id

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES or self.code.startswith("HTTP5") or self.code == "ConnectionError"

    def explain(self) -> str:
        hint = _HINTS.get(self.code, "")
        return f"AWS refused {self.action} ({self.code}: {self.aws_message}). {hint}".strip()


class UserConflict(AwsError):
    """A user with the name exists and does not carry this request's marker tag."""


def call(action: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """Call IAM and turn botocore's errors into AwsError with a code we can reason about."""
    try:
        return fn(**kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = err.get("Code") or "Unknown"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "Unknown" and status >= 500:
            code = f"HTTP{status}"
        req_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
        raise AwsError(code, err.get("Message", ""), action=action, request_id=req_id) from None
    except (BotoConnectionError, BotoCoreError) as exc:
        raise AwsError("ConnectionError", type(exc).__name__, action=action) from None
