"""`iam-bot keys rotate`: every stored envelope sealed again under the newest key.

The newest key is AWS KMS when IAM_BOT_KMS_KEY_ID is set (each envelope then gets its own data key),
else the first key of IAM_BOT_ENCRYPTION_KEY (MultiFernet.rotate). Once every envelope is current,
older Fernet keys can be removed from IAM_BOT_ENCRYPTION_KEY, and with them the power to open what
backups and PostgreSQL's dead tuples still hold.

Safe while the bot serves: each envelope is read, re-sealed outside any transaction (KMS calls can
take a while), and written back only if it is still exactly what was read (a compare-and-set): one
revealed, expired or re-sealed meanwhile is left alone and counted as such. An envelope no
configured key opens is reported by its id and left in place, never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from bot.audit import trail as audit
from bot.common.clock import utcnow
from bot.common.sql import SessionMaker, compare_and_set
from bot.credentials import envelopes
from bot.credentials.vault import Vault, VaultError
from models import AccessRequest, CredentialEnvelope

BATCH = 100


@dataclass(frozen=True)
class Unreadable:
    envelope_id: int
    request: str | None  # the request's short id (None: the request row is missing)
    why: str  # VaultError's code: InvalidToken (no Fernet key opens it), KmsNotSet, InvalidCiphertextException, ...


@dataclass
class RotationReport:
    newest: str  # what the envelopes are now sealed with, in words
    reencrypted: int = 0
    current: int = 0
    gone: int = 0  # revealed, expired or re-sealed while this ran: left alone
    unreadable: list[Unreadable] = field(default_factory=list)
    audited: bool = False  # False: the audit chain is keyed and this run was given no audit key

    @property
    def total(self) -> int:
        return self.reencrypted + self.current + self.gone + len(self.unreadable)


def rotate_envelopes(sm: SessionMaker, vault: Vault, *, batch: int = BATCH, actor: str = "iam-bot keys rotate") -> RotationReport:
    """Re-seal every stored envelope under the vault's newest key; see the module docstring. The run
    is audited (`envelopes_rotated`, with its counts), whatever it found."""
    report = RotationReport(newest=vault.newest)
    after = 0
    while True:
        with sm.begin() as s:
            rows = s.execute(
                select(CredentialEnvelope.id, CredentialEnvelope.ciphertext, AccessRequest.short_id)
                .outerjoin(AccessRequest, AccessRequest.id == CredentialEnvelope.request_id)
                .where(CredentialEnvelope.id > after, CredentialEnvelope.ciphertext.is_not(None))
                .order_by(CredentialEnvelope.id)
                .limit(batch)
            ).all()
        if not rows:
            break
        after = rows[-1].id
        for env_id, token, short_id in rows:
            token = bytes(token)
            try:
                fresh = vault.rotate(token, request=short_id)
            except VaultError as exc:
                if exc.transient:
                    raise  # KMS throttled or unreachable: stop, and let the operator run it again
                report.unreadable.append(Unreadable(env_id, short_id, exc.code))
                continue
            if fresh is None:
                report.current += 1
                continue
            with sm.begin() as s:
                written = compare_and_set(
                    s, CredentialEnvelope, where=[CredentialEnvelope.id == env_id, CredentialEnvelope.ciphertext == token], values={"ciphertext": fresh}
                )
            if written:
                report.reencrypted += 1
            else:
                report.gone += 1
    if report.reencrypted:
        envelopes.checkpoint(sm)  # SQLite: the old ciphertext leaves the write-ahead log too
    try:
        with sm.begin() as s:
            audit.record(s, action="envelopes_rotated", actor=actor, now=utcnow(), newest=report.newest, reencrypted=report.reencrypted,
                         current=report.current, gone=report.gone, unreadable=[u.envelope_id for u in report.unreadable])
        report.audited = True
    except RuntimeError:  # a keyed chain and no IAM_BOT_AUDIT_KEY here: said in the report, the rotation stands
        pass
    return report


def report_lines(report: RotationReport) -> list[str]:
    """What `iam-bot keys rotate` prints: the counts, then one line per envelope no key opens."""
    lines = [
        f"re-encrypted {report.reencrypted} envelope(s) under {report.newest}; {report.current} already current; "
        f"{len(report.unreadable)} unreadable" + (f"; {report.gone} revealed, expired or changed meanwhile (left alone)" if report.gone else "")
    ]
    for u in report.unreadable:
        lines.append(
            f"envelope {u.envelope_id} (request {u.request or 'unknown'}): no configured key opens it ({u.why}); left in place. "
            "Put the key that sealed it back in IAM_BOT_ENCRYPTION_KEY (after the newest) or IAM_BOT_KMS_KEY_ID and run again, "
            "or let it expire"
        )
    if not report.audited:
        lines.append("not audited: the audit trail is signed and IAM_BOT_AUDIT_KEY is not set for this run; set it as the bot has it")
    return lines
