"""Logging that cannot leak secrets: libraries that log request bodies are held at INFO or above."""

from __future__ import annotations

import logging
import sys

# botocore logs request parameters (CreateLoginProfile's Password) and slack_sdk logs request
# bodies (the reveal modal) at DEBUG; never let them, whatever LOG_LEVEL says.
_BODY_LOGGERS = {"botocore": logging.WARNING, "boto3": logging.WARNING, "urllib3": logging.WARNING, "slack_sdk": logging.INFO, "slack_bolt": logging.INFO,
    # moto and its werkzeug server run inside `iam-bot demo`; one line per AWS call is noise.
    "moto": logging.WARNING, "werkzeug": logging.WARNING}


def clamp_library_loggers() -> None:
    for name, level in _BODY_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    clamp_library_loggers()
