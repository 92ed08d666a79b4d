"""Console passwords that satisfy the account's IAM password policy."""

from __future__ import annotations

import secrets
import string

from bot.common.spreadsheet import FORMULA_START
from bot.domain.facts import PasswordPolicy

# IAM's allowed symbols, minus those Slack mrkdwn or CSV would mangle (& < > ` ' " ,).
SYMBOLS = "!@#$%^*()_+-=[]{}|"
_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, SYMBOLS)


def generate_password(policy: PasswordPolicy, *, length: int = 24) -> str:
    """A random password with every character class, at least as long as the policy asks.

    Including all four classes satisfies any policy (and AWS's default "three of four"). It never
    starts with = + - or @, which a spreadsheet would read as a formula: the credentials CSV then
    holds it exactly as it is.
    """
    size = max(length, policy.minimum_length, len(_CLASSES))
    size = min(size, 128)  # IAM's maximum password length
    alphabet = "".join(_CLASSES)
    chars = [secrets.choice(c) for c in _CLASSES]
    chars += [secrets.choice(alphabet) for _ in range(size - len(chars))]
    # Shuffle so the class-guaranteeing characters are not at fixed positions.
    for i in range(len(chars) - 1, 0, -1):
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    if chars[0] in FORMULA_START:  # swap with a random letter, digit or harmless symbol elsewhere
        harmless = [i for i, c in enumerate(chars) if c not in FORMULA_START]  # never empty: letters, a digit
        j = harmless[secrets.randbelow(len(harmless))]
        chars[0], chars[j] = chars[j], chars[0]
    return "".join(chars)


def satisfies(password: str, policy: PasswordPolicy) -> bool:
    if len(password) < policy.minimum_length:
        return False
    checks = [
        (policy.require_uppercase, any(c in string.ascii_uppercase for c in password)),
        (policy.require_lowercase, any(c in string.ascii_lowercase for c in password)),
        (policy.require_numbers, any(c in string.digits for c in password)),
        (policy.require_symbols, any(c in SYMBOLS for c in password)),
    ]
    return all(has for required, has in checks if required)
