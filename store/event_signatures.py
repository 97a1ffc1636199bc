"""Checking the SSH signatures on audit events (``[audit] signing = "ssh"``).

Each event is signed over its sha256 by the actor's key as it is written; an event "by alice"
then needs alice's key to forge, which database access alone does not give."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.signing import ssh_verify
from store.tables import AuditEventRow

BATCH = 500
MAX_PROBLEMS = 50


class SignatureReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    ok: bool
    signed: int
    unsigned_before_signing: int  # events from before signing was turned on
    problems: list[str]

    def describe(self) -> str:
        if self.ok:
            older = (f"; {self.unsigned_before_signing} older events predate signing"
                     if self.unsigned_before_signing else "")
            return f"event signatures: {self.signed} events signed by their actors{older}"
        return f"event signature problem: {self.problems[0]}"


def verify_event_signatures(session: Session, allowed_signers: Path) -> SignatureReport:
    """From the first signed event on, every event must carry a good signature by its actor."""
    problems: list[str] = []
    signed = unsigned_before = 0
    started = False
    after = 0
    while True:
        rows = session.execute(
            select(AuditEventRow.seq, AuditEventRow.sha256, AuditEventRow.actor,
                   AuditEventRow.signature).where(AuditEventRow.seq > after)
            .order_by(AuditEventRow.seq).limit(BATCH)).all()
        if not rows:
            break
        after = rows[-1][0]
        for seq, digest, actor, signature in rows:
            if not started and not signature:
                unsigned_before += 1
                continue
            started = True
            verdict = ssh_verify(digest.encode(), signature, principal=actor,
                                 allowed_signers=allowed_signers)
            if verdict.ok:
                signed += 1
            else:
                problems.append(f"audit event seq {seq} (actor {actor}): {verdict.reason}")
    if not started and unsigned_before:
        problems.append(f"no audit event is signed ({unsigned_before} unsigned events)")
    return SignatureReport(ok=not problems, signed=signed,
                           unsigned_before_signing=unsigned_before if started else 0,
                           problems=problems[:MAX_PROBLEMS])
