"""`iam-bot serve | migrate | audit | demo | policy | doctor`. Configuration problems print one line per setting, never a traceback."""

from __future__ import annotations

import argparse
import sys
import threading

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.iam.errors import AwsError
from bot.runtime.settings import ConfigError, load_settings


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
    from datetime import datetime, timezone

    from bot.audit import trail as audit
    from bot.runtime.db import make_engine, make_sessionmaker

    settings = load_settings()
    sm = make_sessionmaker(make_engine(settings.database_url))
    with sm.begin() as session:
        if args.audit_command == "verify":
            result = audit.verify(session)
            if result.ok:
                print(f"iam-bot: audit log intact: {result.count} events, every link holds")
                return 0
            print(f"iam-bot: audit log BROKEN at event {result.broken_at}: {result.why} ({result.count} events before it verify)")
            return 1
        since = None
        if args.since:
            try:
                since = datetime.fromisoformat(args.since)
            except ValueError:
                raise ConfigError(f"--since: not a date: {args.since!r} (use YYYY-MM-DD)") from None
            if since.tzinfo is None:
                since = since.replace(tzinfo=timezone.utc)
        data = audit.export_text(session, since=since, fmt=args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as f:
            f.write(data)
    else:
        sys.stdout.write(data)
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from bot.ops.deploy_policy import boundary_account, policy_warnings, render_json, render_policy

    settings = load_settings()
    boundary = settings.permissions_boundary or None
    account = args.account or boundary_account(boundary) or "*"
    try:
        policy = render_policy(account=account, path_prefix=settings.user_path_prefix, boundary_arn=boundary)
    except ValueError as exc:
        raise ConfigError(f"--account: {exc}") from None
    sys.stdout.write(render_json(policy))
    for warning in policy_warnings(path_prefix=settings.user_path_prefix, boundary_arn=boundary):
        print(f"iam-bot: warning: {warning}", file=sys.stderr)
    return 0


def cmd_doctor() -> int:
    from bot.ops.doctor import main as doctor_main

    return doctor_main()


def cmd_serve() -> int:
    from bot.runtime.app import build, create_app
    from bot.runtime.db import make_engine, migrate
    from bot.policy import escalation
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
    threading.Thread(target=escalation.warm, name="escalation-warm-up", daemon=True).start()
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
    audit_sub.add_parser("verify", help="check the hash chain; report the first broken link")
    export = audit_sub.add_parser("export", help="write the audit log as CSV or JSON Lines")
    export.add_argument("--since", help="only events on or after this date (YYYY-MM-DD or ISO 8601)")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    policy = sub.add_parser("policy", help="print the bot's own least-privilege IAM policy for the current settings")
    policy.add_argument("--account", help="12-digit AWS account id (default: the boundary's account, else *)")
    sub.add_parser("doctor", help="check every setting against Slack, the database and AWS; one line each with the fix")
    args = parser.parse_args(argv)
    try:
        if args.command == "audit":
            return cmd_audit(args)
        if args.command == "policy":
            return cmd_policy(args)
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
