"""Rules that can never take effect, found before anyone relies on them (pure).

Shown by `iam-bot doctor` and logged at start: a rule file must not silently disable an automatic
rule or name a path no request can have.
"""

from __future__ import annotations

from itertools import product

from bot.policy.documents import glob_match, policy_matches
from bot.policy.guardrails import Guardrails
from bot.policy.rulebook import Match, Rule, Rulebook
from bot.policy.subject import Subject


def _example(glob: str) -> str:
    """A value the glob matches (a sample to try rules on)."""
    return glob.replace("*", "x").replace("?", "x")


def _policy_example(glob: str) -> str:
    return _example(glob) if glob.lower().startswith("arn:") else f"arn:aws:iam::aws:policy/{_example(glob)}"


def _samples(m: Match, path_prefix: str) -> list[Subject]:
    """Small requests an automatic rule's allowlist covers: nothing granted, and each allowlisted item alone."""
    paths = [_example(p) for p in m.paths] if m.paths else [path_prefix]
    access = {"key": [(False, True)], "console": [(True, False)]}.get(m.access or "", [(True, False), (False, True), (True, True)])
    grants: list[tuple[tuple[str, ...], tuple[str, ...]]] = [((), ())]
    grants += [((_example(g),), ()) for g in m.groups or ()]
    grants += [((), (_policy_example(p),)) for p in m.policies or ()]
    return [
        Subject(path=path, console=console, key=key, groups=groups, attached=policies, held=policies)
        for path, (console, key), (groups, policies) in product(paths, access, grants)
    ]


def _forbidden_in_allowlist(rule: Rule, g: Guardrails) -> list[str]:
    return [p for p in rule.match.policies or () if policy_matches(_policy_example(p), g.forbidden_policies)]


def never_effective(book: Rulebook, *, path_prefix: str = "/") -> list[str]:
    """One line per rule that can never take effect as written, saying why."""
    out: list[str] = []
    for rule in book.rules:
        paths = rule.match.paths
        if paths is not None and not any(glob_match(_example(p), path_prefix + "*") or _example(p).startswith(path_prefix) for p in paths):
            out.append(f"rule {rule.name}: its paths {', '.join(paths)} all lie outside IAM_BOT_USER_PATH_PREFIX {path_prefix}, where every user is created")
            continue
        if not rule.auto_approve:
            continue
        samples = _samples(rule.match, path_prefix)
        shadow = next(
            (other for other in book.rules if other.specific and all(other.match.matches(s) for s in samples)),
            None,
        )
        if shadow is not None:
            out.append(f"rule {rule.name} (automatic) never approves anything: every request it covers also matches rule {shadow.name}, which needs a person")
        if bad := _forbidden_in_allowlist(rule, book.guardrails):
            out.append(f"rule {rule.name} (automatic) allowlists {', '.join(bad)}, which guardrails.forbidden_policies refuses anyway")
    return out
