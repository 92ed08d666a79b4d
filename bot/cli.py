"""`iam-bot serve | migrate | audit | demo | policy | doctor | keys`. Configuration problems print one line per setting, never a traceback."""

from __future__ import annotations

import argparse
import sys
import threading

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.iam.errors import AwsError
from bot.runtime.settings import ConfigError, Settings, load_settings


def _fail(message: str) -> int:
    for line in message.splitlines():
        print(f"iam-bot: {line}", file=sys.stderr)
    return 2


def cmd_migrate() -> int:
    from bot.runtime.db import make_engine, migrate

    settings = load_settings()
    migrate(make_engine(settings.database_url))
    print("iam-bot: database is at the latest schema")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """verify: exit 0 intact, 1 broken, 3 truncated (2: a setting or argument is wrong). export: anchored first."""
    from datetime import datetime, timezone

    from bot.audit import anchor as anchors
    from bot.audit import trail as audit
    from bot.common.clock import utcnow
    from bot.runtime.audit_key import audit_keys
    from bot.runtime.db import make_engine, make_sessionmaker

    settings = load_settings()
    if args.audit_command == "verify":
        given = []
        for text in args.anchor:
            try:
                given.append(anchors.parse(text))
            except ValueError as exc:
                raise ConfigError(f"--anchor: {exc}") from None
        keys = audit_keys(settings, generate=False)
        if keys is None and not settings.generated_key_allowed:
            raise ConfigError("IAM_BOT_AUDIT_KEY: needed to check the audit log's HMACs; set it as the bot has it")
        with make_sessionmaker(make_engine(settings.database_url)).begin() as session:
            result = audit.verify(session, keys, anchors_given=given, use_recorded=not args.no_recorded)
        print(f"iam-bot: {audit.describe(result)}")
        return 0 if result.ok else 3 if result.truncated else 1
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise ConfigError(f"--since: not a date: {args.since!r} (use YYYY-MM-DD)") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
    keys = audit_keys(settings, generate=settings.generated_key_allowed)
    sm = make_sessionmaker(make_engine(settings.database_url), audit_keys=keys)
    anchor = None
    if keys is None:
        print("iam-bot: not anchored: IAM_BOT_AUDIT_KEY is not set", file=sys.stderr)
    else:
        from bot.slack.client import make_web_client
        from bot.slack.notifier import Notifier
        from bot.workflows.audit_anchor import AuditAnchoring

        notifier = Notifier(make_web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url), audit_channel=settings.audit_channel)
        anchored = AuditAnchoring(sessionmaker=sm, keys=keys, notifier=notifier, clock=utcnow).anchor(reason="export", actor="iam-bot audit export")
        anchor = anchored.anchor
        if anchor is None:
            print(f"iam-bot: not anchored: {anchored.problem}", file=sys.stderr)
        else:
            where = f"posted to {settings.audit_channel}" if anchored.posted else (
                "not posted: IAM_BOT_AUDIT_CHANNEL is not set" if not settings.audit_channel else "not posted: Slack refused it"
            )
            print(f"iam-bot: anchored {anchor.token} ({where}); it is the export's last record", file=sys.stderr)
    with sm.begin() as session:
        data = audit.export_text(session, since=since, fmt=args.format, anchor=anchor)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(data)
    else:
        sys.stdout.write(data)
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from bot.ops.deploy_policy import assume_statements, boundaries_for, boundary_account, policy_warnings, render_json, render_policy, rendering_for
    from bot.runtime.settings import rulebook_for

    if args.mfa:  # the policy for the bot's users is the same everywhere: no settings needed
        from bot.ops.mfa_policy import render_mfa_policy

        sys.stdout.write(render_json(render_mfa_policy()))
        return 0
    settings = load_settings()
    # The rules file's guardrails shape the policy too: required boundaries, allowed tag keys and groups.
    kwargs = rendering_for(settings, rulebook_for(settings).guardrails)
    boundaries = boundaries_for(**{k: kwargs[k] for k in ("path_prefix", "boundary_arn", "required_boundaries")})
    if args.member_account:
        return _member_account_policy(args, settings, {**kwargs, "kms_key_id": None})  # the credentials' KMS key is the bot's own
    account = args.account or next((a for b in boundaries if (a := boundary_account(b))), None) or "*"
    if account != "*" and not (account.isdigit() and len(account) == 12):
        raise ConfigError("--account: account must be a 12-digit AWS account id or *")
    try:
        policy = render_policy(account=account, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"IAM_BOT_RULES: {exc}") from None
    if settings.accounts or settings.organization:
        policy["Statement"] += assume_statements(role=settings.account_role, account_ids=[a.id for a in settings.accounts], organization=settings.organization)
    sys.stdout.write(render_json(policy))
    warnings = policy_warnings(
        path_prefix=kwargs["path_prefix"],
        boundary_arn=kwargs["boundary_arn"],
        required_boundaries=kwargs["required_boundaries"],
        allowed_groups=kwargs["allowed_groups"],
    )
    for warning in warnings:
        print(f"iam-bot: warning: {warning}", file=sys.stderr)
    return 0


def _member_account_policy(args: argparse.Namespace, settings: Settings, kwargs: dict[str, object]) -> int:
    """The role the bot assumes in each member account: for `aws iam create-role`, or as a StackSet template."""
    from bot.ops.deploy_policy import boundary_account, in_member_account, render_json, render_member_role, render_member_stackset, render_policy

    try:
        policy = render_policy(account="*", **kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"IAM_BOT_RULES: {exc}") from None
    own = boundary_account(settings.permissions_boundary) if settings.permissions_boundary else None
    if args.stackset:
        sys.stdout.write(render_member_stackset(role=settings.account_role, policy=policy, own_account=own))
        return 0
    if args.account:
        if not (args.account.isdigit() and len(args.account) == 12):
            raise ConfigError("--account: with --member-account, the member account's 12-digit id")
        policy = in_member_account(policy, own_account=own, member=args.account)
    elif own:
        print(f"iam-bot: warning: the boundary is named in account {own}; give --account <member account id> to name that account's", file=sys.stderr)
    principal = args.principal or _own_principal()
    sys.stdout.write(render_json(render_member_role(role=settings.account_role, principal=principal, external_id=settings.account_external_id or None, policy=policy)))
    return 0


def _own_principal() -> str:
    """The ARN the member-account role trusts: the identity the bot runs as, read from AWS."""
    from bot.iam.gateway import IamGateway
    from bot.ops.doctor import principal_for

    try:
        _, arn = IamGateway().caller_identity()
    except AwsError as exc:
        raise ConfigError(f"--principal: give the ARN of the role or user the bot runs as (it could not be read from AWS: {exc.code})") from None
    principal = principal_for(arn)
    if principal is None:
        raise ConfigError(f"--principal: {arn} is not a role or user a trust policy can name; give the bot's role ARN")
    return principal


def cmd_keys(args: argparse.Namespace) -> int:
    """rotate: exit 0 when every envelope is sealed under the newest key, 1 when some could not be (listed)."""
    from bot.credentials.vault import VaultError
    from bot.ops.keys import report_lines, rotate_envelopes
    from bot.runtime.app import make_vault
    from bot.runtime.db import make_engine, make_sessionmaker

    from bot.runtime.audit_key import audit_keys

    settings = load_settings()
    vault = make_vault(settings)
    keys = audit_keys(settings, generate=settings.generated_key_allowed)  # the run is audited, signed as the bot signs
    try:
        report = rotate_envelopes(make_sessionmaker(make_engine(settings.database_url), audit_keys=keys), vault)
    except VaultError as exc:  # AWS KMS throttled or unreachable: what was done stays done
        print(f"iam-bot: stopped: {exc}; what was re-encrypted stays so: run `iam-bot keys rotate` again", file=sys.stderr)
        return 1
    for line in report_lines(report):
        print(f"iam-bot: {line}")
    return 1 if report.unreadable else 0


def cmd_doctor() -> int:
    from bot.ops.doctor import main as doctor_main

    return doctor_main()


def cmd_serve() -> int:
    from bot.runtime.app import build, create_app
    from bot.runtime.db import make_engine, migrate
    from bot.runtime.logsetup import setup_logging
    from bot.runtime.server import serve_http, serve_socket_mode

    settings = load_settings()
    setup_logging(settings.log_level)
    settings.check_for_serving()
    migrate(make_engine(settings.database_url))
    deps = build(settings)
    app = create_app(settings, deps)
    deps.worker.start()
    threading.Thread(target=deps.iam.warm, name="iam-warm-up", daemon=True).start()
    if settings.socket_mode:
        serve_socket_mode(app, deps)
    else:
        serve_http(app, deps, port=settings.port)
    return 0


def cmd_demo() -> int:
    import importlib.util

    # The demo and what it needs (moto, its Flask server, requests) are not in the production install.
    missing = [m for m in ("bot.demo", "moto", "flask", "requests") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"the demo needs its extra, `pip install '.[demo]'` in a checkout (missing: {', '.join(missing)}); `make run` installs it")
    from bot.demo.journey import run_demo

    return run_demo()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iam-bot", description="Slack bot that creates AWS IAM users after approval.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP on $PORT)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    sub.add_parser("demo", help="the whole journey on this machine (moto IAM, a Slack stand-in, SQLite); no settings needed")
    audit_parser = sub.add_parser("audit", help="verify or export the audit log")
    audit_sub = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check the chain with the audit key and against anchors; exit 0 intact, 1 broken, 3 truncated"
    )
    verify.add_argument(
        "--anchor", action="append", default=[], metavar="COUNT:DIGEST",
        help="an anchor copied from the audit channel or an export's last record (repeatable); the anchors recorded in the database are checked too",
    )
    verify.add_argument("--no-recorded", action="store_true", help="check only the anchors given, not those recorded in the database")
    export = audit_sub.add_parser(
        "export", help="write the audit log as CSV or JSON Lines, ending with its anchor (also posted to IAM_BOT_AUDIT_CHANNEL)"
    )
    export.add_argument("--since", help="only events on or after this date (YYYY-MM-DD or ISO 8601)")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    policy = sub.add_parser(
        "policy", help="print the bot's own least-privilege IAM policy for the current settings (--mfa: the policy requiring MFA of its users)"
    )
    policy.add_argument("--account", help="12-digit AWS account id (default: the boundary's account, else *)")
    policy.add_argument(
        "--mfa", action="store_true",
        help="print instead the managed policy iam-bot-require-mfa for the users the bot creates: nothing but enrolling MFA "
        "(and changing the first password) until they sign in with it; needs no settings",
    )
    policy.add_argument(
        "--member-account", action="store_true",
        help="print instead the role the bot assumes in each IAM_BOT_ACCOUNTS account: its trust policy (the bot's principal, "
        "with IAM_BOT_ACCOUNT_EXTERNAL_ID) and the contained permissions",
    )
    policy.add_argument("--principal", help="with --member-account: the ARN of the role or user the bot runs as (default: read from AWS)")
    policy.add_argument("--stackset", action="store_true", help="with --member-account: a CloudFormation template for a StackSet over an OU")
    sub.add_parser("doctor", help="check every setting against Slack, the database and AWS; one line each with the fix")
    keys_parser = sub.add_parser("keys", help="encryption keys of the stored credentials")
    keys_sub = keys_parser.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser(
        "rotate", help="re-encrypt every stored envelope under the newest key (AWS KMS if IAM_BOT_KMS_KEY_ID is set, else the first "
        "of IAM_BOT_ENCRYPTION_KEY); report the counts and any envelope no key opens (exit 1 then)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "audit":
            return cmd_audit(args)
        if args.command == "policy":
            return cmd_policy(args)
        if args.command == "keys":
            return cmd_keys(args)
        return {"serve": cmd_serve, "migrate": cmd_migrate, "demo": cmd_demo, "doctor": cmd_doctor}[args.command]()
    except ConfigError as exc:
        return _fail(str(exc))
    except OperationalError as exc:
        return _fail(f"DATABASE_URL: cannot connect to the database ({type(exc.orig).__name__ if exc.orig else 'error'}); check the URL and that the server is running")
    except SQLAlchemyError as exc:
        return _fail(f"DATABASE_URL: database error ({type(exc).__name__}); check the URL")
    except ModuleNotFoundError as exc:
        return _fail(f"DATABASE_URL: needs a driver that is not installed ({exc.name})")
    except AwsError as exc:  # the AWS clients could not even be made (no region, a broken profile)
        return _fail(f"AWS: {exc.code} while trying to {exc.action}; set AWS_DEFAULT_REGION (any region: IAM is global) and credentials the boto3 way")


if __name__ == "__main__":
    sys.exit(main())
