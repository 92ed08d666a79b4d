"""`iam-bot serve | migrate`. Configuration problems print one line per setting, never a traceback."""

from __future__ import annotations

import argparse
import sys
import threading

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.settings import ConfigError, load_settings


def _fail(message: str) -> int:
    for line in message.splitlines():
        print(f"iam-bot: {line}", file=sys.stderr)
    return 2


def cmd_migrate() -> int:
    from bot.db import make_engine, migrate

    settings = load_settings()
    migrate(make_engine(settings.database_url))
    print("iam-bot: database is at the latest schema")
    return 0


def cmd_serve() -> int:
    from bot.app import build_deps, create_app
    from bot.db import make_engine, migrate
    from bot.logsetup import setup_logging
    from bot.server import serve_http, serve_socket_mode

    settings = load_settings()
    setup_logging(settings.log_level)
    settings.check_for_serving()
    migrate(make_engine(settings.database_url))
    deps = build_deps(settings)
    app = create_app(settings, deps)
    deps.worker.start()
    threading.Thread(target=deps.iam.warm, name="iam-warm-up", daemon=True).start()
    if settings.socket_mode:
        serve_socket_mode(app, deps)
    else:
        serve_http(app, deps, port=settings.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iam-bot", description="Slack bot that creates AWS IAM users after approval.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP on $PORT)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    args = parser.parse_args(argv)
    try:
        return {"serve": cmd_serve, "migrate": cmd_migrate}[args.command]()
    except ConfigError as exc:
        return _fail(str(exc))
    except OperationalError as exc:
        return _fail(f"DATABASE_URL: cannot connect to the database ({type(exc.orig).__name__ if exc.orig else 'error'}); check the URL and that the server is running")
    except SQLAlchemyError as exc:
        return _fail(f"DATABASE_URL: database error ({type(exc).__name__}); check the URL")
    except ModuleNotFoundError as exc:
        return _fail(f"DATABASE_URL: needs a driver that is not installed ({exc.name})")


if __name__ == "__main__":
    sys.exit(main())
