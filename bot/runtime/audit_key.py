"""The audit key in force: IAM_BOT_AUDIT_KEY, or for the local default SQLite file (as for the encryption
key) a generated one kept in its own file beside the database, next to the generated encryption key's
(mode 0600)."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile

from bot.audit.keys import AuditKeys
from bot.common.errors import ConfigError
from bot.runtime.settings import DEFAULT_DATABASE_URL, Settings, local_audit_key_file

log = logging.getLogger(__name__)


def audit_keys(settings: Settings, *, generate: bool = True) -> AuditKeys | None:
    """The keys, newest first. `generate=False` (verifying): None where there is none, instead of
    making a local key or refusing a shared database."""
    if settings.audit_keys:
        return AuditKeys(settings.audit_keys)
    if not settings.generated_key_allowed:
        if generate:
            raise ConfigError(f"IAM_BOT_AUDIT_KEY: required unless DATABASE_URL is the local default ({DEFAULT_DATABASE_URL})")
        return None
    path = local_audit_key_file(settings)
    if not path.exists():
        if not generate:
            return None
        # Written whole under a temporary name, then linked into place: a concurrent start reads a complete key.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".iam-bot.audit-key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
            os.link(tmp, path)
            log.warning("IAM_BOT_AUDIT_KEY is not set: generated a local audit key in %s (fine for local use only)", path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(tmp)
    return AuditKeys([path.read_text().strip()])
