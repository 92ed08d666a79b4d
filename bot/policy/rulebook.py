"""Approval rules from a YAML or TOML file: who may approve what, quorum, guardrails, reminders.

PURE: no Slack, AWS or database here. Callers resolve Slack user-group membership and pass it in.
Every problem in the file is reported as one line with its line number, and unknown keys are errors:
a typo must never silently weaken a rule.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Iterable

from bot.runtime.settings import ConfigError
from bot.domain.spec import RequestSpec

SETTING = "IAM_BOT_RULES"
SLACK_ID_RE = re.compile(r"[UWS][A-Z0-9]{2,}")
POLICY_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/\S+")
ACCESS_KINDS = ("console", "key", "both")
DEFAULT_RULE = "default"


def is_group(slack_id: str) -> bool:
    return slack_id.startswith("S")


def glob_match(value: str, pattern: str) -> bool:
    # Case-insensitive: a guardrail written `*admin*` must not miss `AdminAccess`.
    return fnmatchcase(value.lower(), pattern.lower())


def policy_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def policy_matches(arn: str, patterns: Iterable[str]) -> bool:
    """A glob matches a policy by its name or its full ARN."""
    return any(glob_match(policy_name(arn), p) or glob_match(arn, p) for p in patterns)


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class Match:
    policies: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    copy_from: bool | tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    access: str | None = None

    def matches(self, spec: RequestSpec) -> bool:
        """Every key given must match (AND); within a list any item matching any glob will do (OR)."""
        if self.policies is not None and not any(policy_matches(p, self.policies) for p in spec.policy_arns):
            return False
        if self.groups is not None and not any(glob_match(g, pat) for g in spec.groups for pat in self.groups):
            return False
        if self.copy_from is not None:
            if self.copy_from is True and not spec.copy_from:
                return False
            if self.copy_from is False and spec.copy_from:
                return False
            if isinstance(self.copy_from, tuple) and not (
                spec.copy_from and any(glob_match(spec.copy_from, p) for p in self.copy_from)
            ):
                return False
        if self.paths is not None and not any(glob_match(spec.path, p) for p in self.paths):
            return False
        if self.access is not None:
            wanted = {
                "console": spec.console_access,
                "key": spec.access_key,
                "both": spec.console_access and spec.access_key,
            }[self.access]
            if not wanted:
                return False
        return True


@dataclass(frozen=True)
class Rule:
    name: str
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    auto_approve: bool = False
    match: Match = field(default_factory=Match)

    @property
    def approver_users(self) -> tuple[str, ...]:
        return tuple(a for a in self.approvers if not is_group(a))

    @property
    def approver_groups(self) -> tuple[str, ...]:
        return tuple(a for a in self.approvers if is_group(a))

    def demand(self, order: int) -> tuple[bool, int, int]:
        """Sort key of "most demanding": manual before automatic, then quorum, then file order first."""
        return (not self.auto_approve, self.quorum, -order)


@dataclass(frozen=True)
class Guardrails:
    forbidden_policies: tuple[str, ...] = ()
    forbidden_actions: tuple[str, ...] = ()
    required_boundaries: tuple[tuple[str, str], ...] = ()  # (path prefix, ARN)
    requesters: tuple[str, ...] | None = None  # None: everyone may request
    max_groups: int | None = None
    max_policies: int | None = None


@dataclass(frozen=True)
class Reminders:
    first_after_hours: float
    backoff: float = 2.0
    max: int = 3
    escalate_to: tuple[str, ...] = ()

    def delay_hours(self, sent: int) -> float:
        """Hours until reminder number `sent + 1`: first_after, then multiplied by backoff each time."""
        return self.first_after_hours * self.backoff**sent


@dataclass(frozen=True)
class BreakGlass:
    requesters: tuple[str, ...]


@dataclass(frozen=True)
class Evaluation:
    rule_name: str
    approver_users: tuple[str, ...]
    approver_groups: tuple[str, ...]
    quorum: int
    auto_approve: bool
    refusals: tuple[tuple[str, str], ...] = ()  # (form field, message)
    required_boundary: str | None = None

    @property
    def allowed(self) -> bool:
        return not self.refusals


@dataclass(frozen=True)
class Rulebook:
    rules: tuple[Rule, ...] = ()
    default_approvers: tuple[str, ...] = ()
    guardrails: Guardrails = field(default_factory=Guardrails)
    reminders: Reminders | None = None
    break_glass: BreakGlass | None = None
    request_ttl_hours: float | None = None
    source: str | None = None

    @classmethod
    def default(cls, approvers: Iterable[str]) -> Rulebook:
        """The simplest rule: IAM_BOT_APPROVERS, one approval each."""
        return cls(default_approvers=tuple(sorted(approvers)))

    @property
    def default_rule(self) -> Rule:
        return Rule(name=DEFAULT_RULE, approvers=self.default_approvers, quorum=1)

    @property
    def has_catch_all(self) -> bool:
        """A rule without `match` applies to every request, so IAM_BOT_APPROVERS is never needed."""
        return any(r.match == Match() for r in self.rules)

    def winning_rule(self, spec: RequestSpec) -> Rule:
        matching = [(r.demand(i), r) for i, r in enumerate(self.rules) if r.match.matches(spec)]
        if not matching:
            return self.default_rule
        return max(matching, key=lambda pair: pair[0])[1]

    def required_boundary(self, path: str, *, setting: str | None = None) -> str | None:
        """The boundary a user at `path` must have: the longest matching prefix in the file, else the setting."""
        best: tuple[int, str] | None = None
        for prefix, arn in self.guardrails.required_boundaries:
            if path.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), arn)
        return best[1] if best else (setting or None)

    def may_request(self, requester_id: str, requester_groups: Iterable[str] = ()) -> bool:
        allowed = self.guardrails.requesters
        if allowed is None:
            return True
        return requester_id in allowed or bool(set(requester_groups) & set(allowed))

    def may_break_glass(self, requester_id: str, requester_groups: Iterable[str] = ()) -> bool:
        if self.break_glass is None:
            return False
        listed = self.break_glass.requesters
        return requester_id in listed or bool(set(requester_groups) & set(listed))

    @property
    def requester_groups_to_resolve(self) -> tuple[str, ...]:
        """Slack user groups whose membership decides whether someone may request or break glass."""
        ids = list(self.guardrails.requesters or ()) + list(self.break_glass.requesters if self.break_glass else ())
        return tuple(sorted({i for i in ids if is_group(i)}))

    @property
    def known_approver_users(self) -> frozenset[str]:
        """Every user named as an approver anywhere (for Home and status; groups are resolved apart)."""
        ids = set(self.default_approvers)
        for r in self.rules:
            ids |= set(r.approver_users)
        if self.reminders:
            ids |= {i for i in self.reminders.escalate_to if not is_group(i)}
        return frozenset(ids)

    @property
    def known_approver_groups(self) -> frozenset[str]:
        ids = {g for r in self.rules for g in r.approver_groups}
        if self.reminders:
            ids |= {i for i in self.reminders.escalate_to if is_group(i)}
        return frozenset(ids)

    def evaluate(
        self,
        spec: RequestSpec,
        requester_id: str,
        requester_groups: Iterable[str] = (),
        *,
        boundary_setting: str | None = None,
        path_prefix: str = "/",
        policy_documents: dict[str, dict[str, Any]] | None = None,
    ) -> Evaluation:
        """Which rule applies, who is asked, how many approvals, and what the guardrails refuse.

        `policy_documents` maps customer-managed policy ARNs to their documents, where known;
        `forbidden_actions` can only be checked for those.
        """
        rule = self.winning_rule(spec)
        refusals = guardrail_refusals(
            self,
            spec,
            requester_id=requester_id,
            requester_groups=requester_groups,
            boundary_setting=boundary_setting,
            path_prefix=path_prefix,
            policy_documents=policy_documents or {},
        )
        return Evaluation(
            rule_name=rule.name,
            approver_users=rule.approver_users,
            approver_groups=rule.approver_groups,
            quorum=rule.quorum,
            auto_approve=rule.auto_approve,
            refusals=tuple(refusals),
            required_boundary=self.required_boundary(spec.path, setting=boundary_setting),
        )


# ---------------------------------------------------------------- guardrails


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    st = document.get("Statement") or []
    return [s for s in ([st] if isinstance(st, dict) else st) if isinstance(s, dict)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def allowed_actions(document: dict[str, Any]) -> list[str]:
    """The action patterns a policy document allows; an Allow with NotAction counts as `*`."""
    out: list[str] = []
    for s in _statements(document):
        if s.get("Effect") != "Allow":
            continue
        if "NotAction" in s:
            out.append("*")
        out.extend(_as_list(s.get("Action")))
    return out


def forbidden_grants(document: dict[str, Any], forbidden: Iterable[str]) -> list[str]:
    """Which forbidden actions a document grants: the action itself or a wildcard covering it."""
    actions = allowed_actions(document)
    return [f for f in forbidden if any(glob_match(f, a) for a in actions)]


def guardrail_refusals(
    book: Rulebook,
    spec: RequestSpec,
    *,
    requester_id: str,
    requester_groups: Iterable[str] = (),
    boundary_setting: str | None = None,
    path_prefix: str = "/",
    policy_documents: dict[str, dict[str, Any]] | None = None,
) -> list[tuple[str, str]]:
    g = book.guardrails
    out: list[tuple[str, str]] = []
    if not book.may_request(requester_id, requester_groups):
        out.append(("requester", "You are not on the list of people who may request IAM users through the bot. Ask your AWS admins."))
    if not spec.path.startswith(path_prefix):
        out.append(("path", f"Users created by the bot live under `{path_prefix}`; use that path or one below it."))
    required = book.required_boundary(spec.path, setting=boundary_setting)
    if required and spec.permissions_boundary != required:
        out.append(("boundary", f"Users under `{spec.path}` must have the permissions boundary `{policy_name(required)}`; keep it selected."))
    if g.max_groups is not None and len(spec.groups) > g.max_groups:
        out.append(("groups", f"At most {g.max_groups} group(s) per request here; you picked {len(spec.groups)}."))
    bad = [p for p in spec.policy_arns if policy_matches(p, g.forbidden_policies)]
    if bad:
        names = ", ".join(policy_name(p) for p in bad)
        out.append(("policies", f"{names} can never be granted through the bot; ask your AWS admins."))
    elif g.max_policies is not None and len(spec.policy_arns) > g.max_policies:
        out.append(("policies", f"At most {g.max_policies} managed policies per request here; you picked {len(spec.policy_arns)}."))
    elif g.forbidden_actions:
        for arn, doc in (policy_documents or {}).items():
            if arn in spec.policy_arns and (hits := forbidden_grants(doc, g.forbidden_actions)):
                out.append(("policies", f"{policy_name(arn)} allows {', '.join(hits)}, which the bot may never grant."))
                break
    return out


# ---------------------------------------------------------------- loading


class _Problems:
    def __init__(self, file_label: str, line_of: Any):
        self.file_label = file_label
        self.line_of = line_of
        self.lines: list[str] = []

    def add(self, path: tuple[Any, ...], message: str) -> None:
        line = self.line_of(path)
        where = f"{self.file_label}:{line}" if line else self.file_label
        self.lines.append(f"{SETTING}: {where}: {_dotted(path)}: {message}")


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _yaml_data_and_lines(text: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}

    def walk(n: Any, path: tuple[Any, ...]) -> None:
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = path + (k.value,)
                walk(v, key)
                lines[key] = k.start_mark.line + 1  # the key's line reads best in an error
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, path + (i,))

    if node is not None:
        walk(node, ())
    return data, lines


def _toml_line_finder(text: str) -> Any:
    """Best-effort line numbers for TOML (tomllib keeps none): follow tables, array tables and keys."""
    src = text.splitlines()

    def find(path: tuple[Any, ...]) -> int | None:
        start, best = 0, None
        header = ""
        for i, part in enumerate(path):
            if isinstance(part, int):
                # The (part+1)-th [[header]] from where its key was found.
                seen = -1
                for n in range(start, len(src)):
                    if re.fullmatch(rf"\s*\[\[\s*{re.escape(header)}\s*\]\]\s*(#.*)?", src[n]):
                        seen += 1
                        if seen == part:
                            start, best = n + 1, n + 1
                            break
                else:
                    return best
                continue
            header = ".".join(str(p) for p in path[: i + 1] if not isinstance(p, int))
            key = re.escape(str(part))
            inside_array_table = i > 0 and isinstance(path[i - 1], int)
            for n in range(start, len(src)):
                line = src[n]
                if re.match(rf"\s*\[\[?\s*{re.escape(header)}\s*\]\]?", line):
                    start, best = n, n + 1  # a header: an index may follow, counted from here
                    break
                if re.match(rf"\s*\"?{key}\"?\s*[=.]", line):
                    start, best = n + 1, n + 1
                    break
                if re.search(rf"[{{,]\s*\"?{key}\"?\s*=", line):  # inside an inline table
                    return n + 1
                if inside_array_table and line.lstrip().startswith("["):
                    return best  # the next table begins: the key is not in this one
        return best

    return find


def load_rulebook(path: str | Path, *, default_approvers: Iterable[str] = ()) -> Rulebook:
    """Read and check a rules file; raise ConfigError with one line per problem, naming its line."""
    p = Path(path)
    label = p.name
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{SETTING}: cannot read {p}: {exc.strerror or type(exc).__name__}") from None
    suffix = p.suffix.lower()
    if suffix in (".yml", ".yaml"):
        import yaml

        try:
            data, lines = _yaml_data_and_lines(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{SETTING}: {label}{line}: not valid YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{SETTING}: {label}: not valid YAML: {type(exc).__name__}") from None

        def line_of(path: tuple[Any, ...]) -> int | None:
            while path not in lines and path:
                path = path[:-1]
            return lines.get(path)

    elif suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"\(at line (\d+)", str(exc))
            line = f":{m.group(1)}" if m else ""
            raise ConfigError(f"{SETTING}: {label}{line}: not valid TOML: {str(exc).split(' (at line')[0]}") from None
        finder = _toml_line_finder(text)

        def line_of(path: tuple[Any, ...]) -> int | None:
            while path:
                found = finder(path)
                if found:
                    return found
                path = path[:-1]
            return None

    else:
        raise ConfigError(f"{SETTING}: {label}: use a .yml, .yaml or .toml file")
    problems = _Problems(label, line_of)
    book = _build(data, problems, default_approvers=tuple(default_approvers), source=str(p))
    if problems.lines:
        raise ConfigError("\n".join(problems.lines))
    return book


# ---------------------------------------------------------------- checking the file's shape


def _keys(value: dict[str, Any], path: tuple[Any, ...], allowed: Iterable[str], problems: _Problems) -> None:
    allowed = list(allowed)
    for k in value:
        if k not in allowed:
            problems.add(path + (k,), f"unknown key (expected one of: {', '.join(allowed)})")


def _number(value: Any, path: tuple[Any, ...], problems: _Problems, *, low: float, high: float, what: str) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
        problems.add(path, f"must be {what}")
        return None
    return float(value)


def _whole(value: Any, path: tuple[Any, ...], problems: _Problems, *, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.add(path, f"must be a whole number from {low} to {high}")
        return None
    return value


def _strings(value: Any, path: tuple[Any, ...], problems: _Problems, *, what: str = "a list of strings") -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.add(path, f"must be {what}")
        return None
    return tuple(v.strip() for v in value)


def _slack_ids(value: Any, path: tuple[Any, ...], problems: _Problems) -> tuple[str, ...] | None:
    ids = _strings(value, path, problems, what="a list of Slack IDs (U…/W… users, S… user groups)")
    if ids is None:
        return None
    for i, v in enumerate(ids):
        if not SLACK_ID_RE.fullmatch(v):
            problems.add(path + (i,), f"{v!r} is not a Slack user ID (U…/W…) or user group ID (S…)")
            return None
    return ids


def _mapping(value: Any, path: tuple[Any, ...], problems: _Problems) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        problems.add(path, "must be a mapping of keys to values")
        return None
    return value


def _build(data: Any, problems: _Problems, *, default_approvers: tuple[str, ...], source: str) -> Rulebook:
    if data is None:
        data = {}
    top = _mapping(data, (), problems)
    if top is None:
        return Rulebook()
    _keys(top, (), ("request_ttl_hours", "reminders", "guardrails", "break_glass", "rules"), problems)

    ttl = None
    if "request_ttl_hours" in top:
        ttl = _number(top["request_ttl_hours"], ("request_ttl_hours",), problems, low=0, high=24 * 30, what="a number of hours above 0, at most 720")

    reminders = None
    if (raw := top.get("reminders")) is not None and (r := _mapping(raw, ("reminders",), problems)) is not None:
        _keys(r, ("reminders",), ("first_after_hours", "backoff", "max", "escalate_to"), problems)
        first = _number(r.get("first_after_hours"), ("reminders", "first_after_hours"), problems, low=0, high=24 * 30, what="a number of hours above 0")
        backoff = _number(r.get("backoff", 2), ("reminders", "backoff"), problems, low=0.999, high=100, what="a number from 1 to 100")
        most = _whole(r.get("max", 3), ("reminders", "max"), problems, low=1, high=20)
        escalate = _slack_ids(r.get("escalate_to", []), ("reminders", "escalate_to"), problems)
        if first is not None and backoff is not None and most is not None and escalate is not None:
            reminders = Reminders(first_after_hours=first, backoff=backoff, max=most, escalate_to=escalate)

    guardrails = Guardrails()
    if (raw := top.get("guardrails")) is not None and (g := _mapping(raw, ("guardrails",), problems)) is not None:
        _keys(g, ("guardrails",), ("forbidden_policies", "forbidden_actions", "required_boundaries", "requesters", "max_groups", "max_policies"), problems)
        boundaries: list[tuple[str, str]] = []
        if "required_boundaries" in g and (b := _mapping(g["required_boundaries"], ("guardrails", "required_boundaries"), problems)) is not None:
            for prefix, arn in b.items():
                where = ("guardrails", "required_boundaries", prefix)
                if not (isinstance(prefix, str) and prefix.startswith("/") and prefix.endswith("/")):
                    problems.add(where, "a path prefix starts and ends with /, such as /prod/")
                elif not (isinstance(arn, str) and POLICY_ARN_RE.fullmatch(arn)):
                    problems.add(where, "must be a managed policy ARN such as arn:aws:iam::123456789012:policy/boundary")
                else:
                    boundaries.append((prefix, arn))
        guardrails = Guardrails(
            forbidden_policies=_strings(g.get("forbidden_policies", []), ("guardrails", "forbidden_policies"), problems) or (),
            forbidden_actions=_strings(g.get("forbidden_actions", []), ("guardrails", "forbidden_actions"), problems) or (),
            required_boundaries=tuple(boundaries),
            requesters=_slack_ids(g["requesters"], ("guardrails", "requesters"), problems) if "requesters" in g else None,
            max_groups=_whole(g["max_groups"], ("guardrails", "max_groups"), problems, low=0, high=10) if "max_groups" in g else None,
            max_policies=_whole(g["max_policies"], ("guardrails", "max_policies"), problems, low=0, high=20) if "max_policies" in g else None,
        )

    break_glass = None
    if (raw := top.get("break_glass")) is not None and (bg := _mapping(raw, ("break_glass",), problems)) is not None:
        _keys(bg, ("break_glass",), ("requesters",), problems)
        who = _slack_ids(bg.get("requesters", []), ("break_glass", "requesters"), problems)
        if who is not None and not who:
            problems.add(("break_glass", "requesters"), "list at least one Slack ID, or remove break_glass to turn it off")
        elif who:
            break_glass = BreakGlass(requesters=who)

    rules: list[Rule] = []
    raw_rules = top.get("rules", [])
    if not isinstance(raw_rules, list):
        problems.add(("rules",), "must be a list of rules")
        raw_rules = []
    names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        if (rule := _rule(raw, ("rules", i), problems, names)) is not None:
            rules.append(rule)
    return Rulebook(
        rules=tuple(rules),
        default_approvers=default_approvers,
        guardrails=guardrails,
        reminders=reminders,
        break_glass=break_glass,
        request_ttl_hours=ttl,
        source=source,
    )


def _rule(raw: Any, path: tuple[Any, ...], problems: _Problems, names: set[str]) -> Rule | None:
    r = _mapping(raw, path, problems)
    if r is None:
        return None
    before = len(problems.lines)
    _keys(r, path, ("name", "match", "approvers", "quorum", "auto_approve"), problems)
    name = r.get("name")
    if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name)):
        problems.add(path + ("name",), "every rule needs a name: letters, digits, . _ - (at most 64)")
        name = None
    elif name in names or name == DEFAULT_RULE:
        problems.add(path + ("name",), f"the name {name!r} is already used")
    else:
        names.add(name)
    auto = r.get("auto_approve", False)
    if not isinstance(auto, bool):
        problems.add(path + ("auto_approve",), "must be true or false")
        auto = False
    quorum = _whole(r.get("quorum", 1), path + ("quorum",), problems, low=1, high=10) or 1
    checked = _slack_ids(r.get("approvers", []), path + ("approvers",), problems)
    approvers = checked or ()
    if checked == () and not auto:
        problems.add(path + ("approvers",), "list who may approve (Slack user or user group IDs), or set auto_approve: true")
    users = [a for a in approvers if not is_group(a)]
    if approvers and not any(is_group(a) for a in approvers) and quorum > len(users):
        problems.add(path + ("quorum",), f"needs {quorum} approvals but lists only {len(users)} approver(s)")
    match = _match(r.get("match"), path + ("match",), problems) if "match" in r else Match()
    if len(problems.lines) != before or name is None:
        return None
    return Rule(name=name, approvers=approvers, quorum=quorum, auto_approve=auto, match=match or Match())


def _match(raw: Any, path: tuple[Any, ...], problems: _Problems) -> Match | None:
    m = _mapping(raw, path, problems)
    if m is None:
        return None
    _keys(m, path, ("policies", "groups", "copy_from", "paths", "access"), problems)
    copy_from: bool | tuple[str, ...] | None = None
    if "copy_from" in m:
        if isinstance(m["copy_from"], bool):
            copy_from = m["copy_from"]
        else:
            copy_from = _strings(m["copy_from"], path + ("copy_from",), problems, what="true, false, or a list of user-name globs")
    access = m.get("access")
    if access is not None and access not in ACCESS_KINDS:
        problems.add(path + ("access",), "must be console, key or both")
        access = None
    paths = _strings(m["paths"], path + ("paths",), problems) if "paths" in m else None
    for i, p in enumerate(paths or ()):
        if not p.startswith("/"):
            problems.add(path + ("paths", i), f"{p!r}: an IAM path glob starts with /, such as /prod/*")
    return Match(
        policies=_strings(m["policies"], path + ("policies",), problems) if "policies" in m else None,
        groups=_strings(m["groups"], path + ("groups",), problems) if "groups" in m else None,
        copy_from=copy_from,
        paths=paths,
        access=access,
    )


def rulebook_for(settings: Any) -> Rulebook:
    """The rules in force: the file named by IAM_BOT_RULES, else the one rule made of IAM_BOT_APPROVERS."""
    if settings.rules_path:
        return load_rulebook(settings.rules_path, default_approvers=settings.approvers)
    return Rulebook.default(settings.approvers)
