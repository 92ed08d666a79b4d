"""The rules file (IAM_BOT_RULES, YAML or TOML) read into a Rulebook.

Every problem in the file is reported as one line with its line number, and unknown keys are errors:
a typo must never silently weaken a rule.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Iterable

from bot.common.errors import ConfigError
from bot.common.slack_ids import APPROVER_ID_RE, is_usergroup
from bot.policy.guardrails import Guardrails
from bot.policy.rulebook import ACCESS_KINDS, DEFAULT_RULE, DELIVERIES, DELIVERY_ANY, SELF_SERVICE_KINDS, AccountGuardrails, BreakGlass, Match, Reminders, Rule, Rulebook

SETTING = "IAM_BOT_RULES"
POLICY_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/\S+")
# A group name as IAM allows it, with `*` and `?` (IAM's ARN wildcards; no [] sets: an ARN has none).
ACCOUNT_GLOB_RE = re.compile(r"[a-z0-9_*?-]{1,40}|[\d*?]{1,12}")
GROUP_GLOB_RE = re.compile(r"[\w+=,.@*?-]{1,128}", re.ASCII)


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
        if not APPROVER_ID_RE.fullmatch(v):
            problems.add(path + (i,), f"{v!r} is not a Slack user ID (U…/W…) or user group ID (S…)")
            return None
    return ids


def _tag_keys(value: Any, path: tuple[Any, ...], problems: _Problems) -> tuple[str, ...]:
    """An allowlist of tag-key globs; an empty list allows no tags at all."""
    if value == []:
        return ()
    return _strings(value, path, problems, what="a list of tag-key globs, such as team or cost-*") or ()


def _path_prefixes(value: Any, path: tuple[Any, ...], problems: _Problems) -> tuple[str, ...]:
    prefixes = _strings(value, path, problems) or () if value else ()
    if bad := [p for p in prefixes if not (p.startswith("/") and p.endswith("/"))]:
        problems.add(path, f"a path prefix starts and ends with /, such as /legacy/ (not {bad[0]})")
    return tuple(prefixes)


def _group_names(value: Any, path: tuple[Any, ...], problems: _Problems) -> tuple[str, ...]:
    """An allowlist of group names or globs (`*`, `?`: the bot's IAM policy lists them as ARNs); empty allows none."""
    if value == []:
        return ()
    names = _strings(value, path, problems, what="a list of IAM group names or globs, such as developers or team-*") or ()
    for i, name in enumerate(names):
        if not GROUP_GLOB_RE.fullmatch(name):
            problems.add(path + (i,), f"{name!r} is not a group name or glob (letters, digits, + = , . @ _ - and the globs * ?)")
            return ()
    return names


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
    _keys(top, (), ("request_ttl_hours", "delivery", "self_service", "hold_keys_until_mfa", "reminders", "guardrails", "accounts", "break_glass", "rules"), problems)

    hold = top.get("hold_keys_until_mfa", False)
    if not isinstance(hold, bool):
        problems.add(("hold_keys_until_mfa",), "must be true or false")
        hold = False

    self_service = frozenset(SELF_SERVICE_KINDS)
    if "self_service" in top:
        kinds = top["self_service"]
        if not isinstance(kinds, list) or any(k not in SELF_SERVICE_KINDS for k in kinds):
            problems.add(("self_service",), f"must be a list of: {', '.join(SELF_SERVICE_KINDS)} (an empty list: every ask needs approval)")
        else:
            self_service = frozenset(kinds)

    delivery = top.get("delivery", DELIVERY_ANY)
    if delivery not in DELIVERIES:
        problems.add(("delivery",), f"must be one of: {', '.join(DELIVERIES)}")
        delivery = DELIVERY_ANY

    ttl = None
    if "request_ttl_hours" in top:
        ttl = _number(top["request_ttl_hours"], ("request_ttl_hours",), problems, low=0, high=24 * 30, what="a number of hours above 0, at most 720")

    reminders = None
    if (raw := top.get("reminders")) is not None and (r := _mapping(raw, ("reminders",), problems)) is not None:
        _keys(r, ("reminders",), ("first_after_hours", "backoff", "max", "escalate_to", "escalation_approves"), problems)
        first = _number(r.get("first_after_hours"), ("reminders", "first_after_hours"), problems, low=0, high=24 * 30, what="a number of hours above 0")
        backoff = _number(r.get("backoff", 2), ("reminders", "backoff"), problems, low=0.999, high=100, what="a number from 1 to 100")
        most = _whole(r.get("max", 3), ("reminders", "max"), problems, low=1, high=20)
        escalate = _slack_ids(r.get("escalate_to", []), ("reminders", "escalate_to"), problems)
        approves = r.get("escalation_approves", False)
        if not isinstance(approves, bool):
            problems.add(("reminders", "escalation_approves"), "must be true or false")
        elif first is not None and backoff is not None and most is not None and escalate is not None:
            reminders = Reminders(first_after_hours=first, backoff=backoff, max=most, escalate_to=escalate, escalation_approves=approves)

    guardrails = _guardrails(top["guardrails"], ("guardrails",), problems) if top.get("guardrails") is not None else Guardrails()
    per_account = _account_guardrails(top["accounts"], problems) if top.get("accounts") is not None else ()

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
        account_guardrails=per_account,
        reminders=reminders,
        break_glass=break_glass,
        request_ttl_hours=ttl,
        delivery=delivery,
        self_service=self_service,
        hold_keys_until_mfa=hold,
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
    users = [a for a in approvers if not is_usergroup(a)]
    if approvers and not any(is_usergroup(a) for a in approvers) and quorum > len(users):
        problems.add(path + ("quorum",), f"needs {quorum} approvals but lists only {len(users)} approver(s)")
    match = _match(r.get("match"), path + ("match",), problems) if "match" in r else Match()
    if len(problems.lines) != before or name is None:
        return None
    return Rule(name=name, approvers=approvers, quorum=quorum, auto_approve=auto, match=match or Match())


def _guardrails(raw: Any, where: tuple[Any, ...], problems: _Problems) -> Guardrails:
    """A `guardrails` table: the file's own, or one account's (`accounts.<name>.guardrails`)."""
    g = _mapping(raw, where, problems)
    if g is None:
        return Guardrails()
    _keys(g, (*where,), ("forbidden_policies", "forbidden_actions", "required_boundaries", "requesters", "max_groups", "max_policies", "allowed_tag_keys", "allowed_groups", "require_expiry", "max_expiry_days", "require_grant_end", "max_grant_hours", "changeable_paths"), problems)
    expiry_paths: tuple[str, ...] = ()
    expiry_groups: tuple[str, ...] = ()
    if "require_expiry" in g and (e := _mapping(g["require_expiry"], (*where, "require_expiry"), problems)) is not None:
        _keys(e, (*where, "require_expiry"), ("paths", "groups"), problems)
        paths = _strings(e.get("paths", []), (*where, "require_expiry", "paths"), problems) or ()
        if bad := [p for p in paths if not (p.startswith("/") and p.endswith("/"))]:
            problems.add((*where, "require_expiry", "paths"), f"a path prefix starts and ends with /, such as /contractors/ (not {bad[0]})")
        expiry_paths = tuple(paths)
        expiry_groups = _group_names(e.get("groups", []), (*where, "require_expiry", "groups"), problems) if e.get("groups") else ()
    end_groups: tuple[str, ...] = ()
    end_policies: tuple[str, ...] = ()
    if "require_grant_end" in g and (e := _mapping(g["require_grant_end"], (*where, "require_grant_end"), problems)) is not None:
        _keys(e, (*where, "require_grant_end"), ("groups", "policies"), problems)
        end_groups = _group_names(e.get("groups", []), (*where, "require_grant_end", "groups"), problems) if e.get("groups") else ()
        end_policies = _strings(e.get("policies", []), (*where, "require_grant_end", "policies"), problems) or ()
    boundaries: list[tuple[str, str]] = []
    if "required_boundaries" in g and (b := _mapping(g["required_boundaries"], (*where, "required_boundaries"), problems)) is not None:
        for prefix, arn in b.items():
            at = (*where, "required_boundaries", prefix)
            if not (isinstance(prefix, str) and prefix.startswith("/") and prefix.endswith("/")):
                problems.add(at, "a path prefix starts and ends with /, such as /prod/")
            elif not (isinstance(arn, str) and POLICY_ARN_RE.fullmatch(arn)):
                problems.add(at, "must be a managed policy ARN such as arn:aws:iam::123456789012:policy/boundary")
            else:
                boundaries.append((prefix, arn))
    return Guardrails(
        forbidden_policies=_strings(g.get("forbidden_policies", []), (*where, "forbidden_policies"), problems) or (),
        forbidden_actions=_strings(g.get("forbidden_actions", []), (*where, "forbidden_actions"), problems) or (),
        required_boundaries=tuple(boundaries),
        requesters=_slack_ids(g["requesters"], (*where, "requesters"), problems) if "requesters" in g else None,
        max_groups=_whole(g["max_groups"], (*where, "max_groups"), problems, low=0, high=10) if "max_groups" in g else None,
        max_policies=_whole(g["max_policies"], (*where, "max_policies"), problems, low=0, high=20) if "max_policies" in g else None,
        allowed_tag_keys=_tag_keys(g["allowed_tag_keys"], (*where, "allowed_tag_keys"), problems) if "allowed_tag_keys" in g else None,
        allowed_groups=_group_names(g["allowed_groups"], (*where, "allowed_groups"), problems) if "allowed_groups" in g else None,
        expiry_paths=expiry_paths,
        expiry_groups=expiry_groups,
        max_expiry_days=_whole(g["max_expiry_days"], (*where, "max_expiry_days"), problems, low=1, high=3650) if "max_expiry_days" in g else None,
        grant_end_groups=end_groups,
        grant_end_policies=end_policies,
        changeable_paths=_path_prefixes(g.get("changeable_paths", []), (*where, "changeable_paths"), problems),
        max_grant_hours=_whole(g["max_grant_hours"], (*where, "max_grant_hours"), problems, low=1, high=24 * 366) if "max_grant_hours" in g else None,
    )


def _account_guardrails(raw: Any, problems: _Problems) -> tuple[AccountGuardrails, ...]:
    """`accounts:`: per account (a name or id, globs allowed), guardrails on top of the file's and a narrower path prefix."""
    table = _mapping(raw, ("accounts",), problems)
    out: list[AccountGuardrails] = []
    for pattern, entry in (table or {}).items():
        where = ("accounts", pattern)
        if not (isinstance(pattern, str) and ACCOUNT_GLOB_RE.fullmatch(pattern)):
            problems.add(where, "an account's name or 12-digit id (globs * and ? allowed), as in IAM_BOT_ACCOUNTS")
            continue
        e = _mapping(entry, where, problems)
        if e is None:
            continue
        _keys(e, where, ("guardrails", "path_prefix"), problems)
        prefix = e.get("path_prefix")
        if prefix is not None and not (isinstance(prefix, str) and prefix.startswith("/") and prefix.endswith("/")):
            problems.add(where + ("path_prefix",), "a path prefix starts and ends with /, such as /iam-bot/prod/")
            prefix = None
        g = _guardrails(e["guardrails"], where + ("guardrails",), problems) if e.get("guardrails") is not None else Guardrails()
        out.append(AccountGuardrails(pattern=pattern, guardrails=g, path_prefix=prefix))
    return tuple(out)


def _match(raw: Any, path: tuple[Any, ...], problems: _Problems) -> Match | None:
    m = _mapping(raw, path, problems)
    if m is None:
        return None
    _keys(m, path, ("policies", "groups", "copy_from", "paths", "access", "tags", "accounts"), problems)
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
        tags=_strings(m["tags"], path + ("tags",), problems, what="a list of tag-key globs") if "tags" in m else None,
        accounts=_accounts(m["accounts"], path + ("accounts",), problems) if "accounts" in m else None,
    )


def _accounts(value: Any, path: tuple[Any, ...], problems: _Problems) -> tuple[str, ...] | None:
    names = _strings(value, path, problems, what="a list of account names or ids (globs allowed), such as [prod, \"1111*\"]")
    for i, n in enumerate(names or ()):
        if not ACCOUNT_GLOB_RE.fullmatch(n):
            problems.add(path + (i,), f"{n!r}: an account's name or 12-digit id, as in IAM_BOT_ACCOUNTS (globs * and ? allowed)")
    return names
