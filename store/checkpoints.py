"""Signed checkpoints of the audit chain head, and checking the chain against witnesses.

A checkpoint (anchor: Certificate Transparency's signed tree head) says "at ``at``, event
``seq`` of this chain had hash ``head_sha256``", signed by ``signer``. Copies kept by witnesses
outside the database catch what the chain alone cannot: a chain edited and recomputed, a tail
deleted with the head reset, a database rolled back to an older copy."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.config import AuditConfig, CavraConfig
from store.digest import canonical_json
from store.errors import UserError
from store.signing import (
    hmac_key_from_env,
    hmac_signature,
    hmac_valid,
    load_allowed_signers,
    ssh_sign,
    ssh_verify,
)
from store.tables import AuditCheckpointRow, AuditEventRow

Method = Literal["hmac", "ssh"]


class Checkpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    checkpoint_id: str
    seq: int
    head_sha256: str
    at: datetime
    signer: str
    method: Method
    signature: str

    def signed_bytes(self) -> bytes:
        """What the signature covers: the checkpoint as sent (its JSON form), every field but
        the signature, as canonical JSON (sorted keys, no spaces)."""
        return canonical_json(self.model_dump(mode="json", exclude={"signature"})).encode()

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def ssh_key_option(config: CavraConfig) -> str | None:
    """``[audit] ssh_key``: a key line as it is, or a path resolved against the config file."""
    key = config.audit.ssh_key
    if key is not None and not key.lstrip().startswith(("ssh-", "ecdsa-", "sk-")):
        return str(config.resolve_path(key))
    return key


def sign_checkpoint(config: CavraConfig, *, checkpoint_id: str, seq: int, head_sha256: str,
                    at: datetime, signer: str) -> Checkpoint:
    audit: AuditConfig = config.audit
    method: Method = "hmac" if audit.checkpoint_method == "hmac" else "ssh"
    unsigned = Checkpoint(checkpoint_id=checkpoint_id, seq=seq, head_sha256=head_sha256,
                          at=as_utc(at), signer=signer, method=method, signature="")
    if method == "hmac":
        assert audit.key_env is not None  # the config refuses hmac without key_env
        signature = hmac_signature(hmac_key_from_env(audit.key_env), unsigned.signed_bytes())
    else:
        signature = ssh_sign(unsigned.signed_bytes(), public_key=ssh_key_option(config))
    return unsigned.model_copy(update={"signature": signature})


def record_checkpoint(session: Session, checkpoint: Checkpoint, witnesses: list[dict[str, Any]],
                      now: datetime, actor: str) -> None:
    session.add(AuditCheckpointRow(
        checkpoint_id=checkpoint.checkpoint_id, seq=checkpoint.seq,
        head_sha256=checkpoint.head_sha256, at=checkpoint.at, signer=checkpoint.signer,
        method=checkpoint.method, signature=checkpoint.signature, witnesses=witnesses,
        created_at=now, created_by=actor))


class LocalCheckpoint(BaseModel):
    """The latest checkpoint as this database remembers it, and where it was sent."""

    model_config = ConfigDict(frozen=True)
    checkpoint: Checkpoint
    witnesses: list[dict[str, Any]]


def _local(row: AuditCheckpointRow) -> LocalCheckpoint:
    checkpoint = Checkpoint(checkpoint_id=row.checkpoint_id, seq=row.seq,
                            head_sha256=row.head_sha256, at=as_utc(row.at), signer=row.signer,
                            method="ssh" if row.method == "ssh" else "hmac",
                            signature=row.signature)
    return LocalCheckpoint(checkpoint=checkpoint, witnesses=list(row.witnesses))


def recent_checkpoints(session: Session, *, up_to_seq: int | None = None,
                       limit: int = 20) -> list[LocalCheckpoint]:
    """The newest local checkpoints (at most ``up_to_seq``): anyone who can write the database
    can insert one here, so callers check them before trusting them."""
    query = select(AuditCheckpointRow)
    if up_to_seq is not None:
        query = query.where(AuditCheckpointRow.seq <= up_to_seq)
    rows = session.execute(query.order_by(AuditCheckpointRow.seq.desc(),
                                          AuditCheckpointRow.at.desc()).limit(limit)).scalars()
    return [_local(row) for row in rows]


def latest_checkpoint(session: Session) -> LocalCheckpoint | None:
    found = recent_checkpoints(session, limit=1)
    return found[0] if found else None


def all_local_checkpoints(session: Session) -> list[Checkpoint]:
    rows = session.execute(select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq))
    return [_local(row).checkpoint for row in rows.scalars()]


def trustworthy(session: Session, local: LocalCheckpoint, signatures: SignatureCheck) -> bool:
    """A local checkpoint counts only if a witness took it, the chain has its hash at its seq,
    and its signature verifies (when the key to check it is at hand)."""
    point = local.checkpoint
    if not any(w.get("status") == "delivered" for w in local.witnesses):
        return False
    event = session.get(AuditEventRow, point.seq)
    if event is None or event.sha256 != point.head_sha256:
        return False
    try:
        return signatures.valid(point)[0]
    except UserError:  # no key or allowed_signers here: the structure must do
        return True


# -- reading witnesses ------------------------------------------------------------------------

def _as_checkpoint(value: Any, where: str) -> Checkpoint | None:
    if not isinstance(value, dict):
        raise UserError(f"witness {where}: not a JSON object")
    if value.get("kind") == "checkpoint" and isinstance(value.get("message"), dict):
        value = value["message"]  # an outbox or webhook envelope
    elif "kind" in value and "head_sha256" not in value:
        return None  # another kind of message in a shared outbox
    try:
        return Checkpoint.model_validate(value)
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "checkpoint"
        raise UserError(f"witness {where}: not a checkpoint ({field}: "
                        f"{exc.errors()[0]['msg']})") from None


def read_witness(path: str | Path) -> list[Checkpoint]:
    """Checkpoints from a witness outbox (JSON lines) or an exported list (a JSON array)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"witness {file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"witness {file}: unreadable ({exc.__class__.__name__})") from None
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except RecursionError:
            raise UserError(f"witness {file}: nested too deeply to be a checkpoint list") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"witness {file}: not JSON ({exc.msg}, line {exc.lineno})") from None
        found = [_as_checkpoint(v, f"{file} item {n}") for n, v in enumerate(values, 1)]
    else:
        found = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                raise UserError(f"witness {file} line {number}: not JSON") from None
            found.append(_as_checkpoint(value, f"{file} line {number}"))
    checkpoints = [c for c in found if c is not None]
    if not checkpoints:
        raise UserError(f"witness {file}: holds no checkpoint")
    return checkpoints


# -- checking the chain against them ------------------------------------------------------------

class WitnessReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    ok: bool
    checkpoints: int
    latest_seq: int | None
    problems: list[str]

    def describe(self) -> str:
        if self.ok:
            return (f"witnesses agree: {self.checkpoints} checkpoints, latest at seq "
                    f"{self.latest_seq}")
        return f"witness disagrees: {self.problems[0]}"


class SignatureCheck:
    """Checks checkpoint signatures; asks for a key or an allowed_signers file only if the
    checkpoints need one (bad input is one line, exit 2)."""

    def __init__(self, config: CavraConfig, allowed_signers: str | None) -> None:
        self.config = config
        self.allowed_signers = allowed_signers or (
            str(config.resolve_path(config.audit.allowed_signers))
            if config.audit.allowed_signers else None)
        self._key: bytes | None = None
        self._signers: Path | None = None

    def signers_file(self) -> Path:
        if self._signers is None:
            if self.allowed_signers is None:
                raise UserError("audit: SSH signatures need --allowed-signers FILE "
                                "(or [audit] allowed_signers)")
            self._signers = load_allowed_signers(self.allowed_signers)
        return self._signers

    def valid(self, checkpoint: Checkpoint) -> tuple[bool, str]:
        if checkpoint.method == "hmac":
            if self._key is None:
                if not self.config.audit.key_env:
                    raise UserError("audit: the witness holds HMAC-signed checkpoints: set "
                                    "[audit] key_env to the variable that holds the key")
                self._key = hmac_key_from_env(self.config.audit.key_env)
            ok = hmac_valid(self._key, checkpoint.signed_bytes(), checkpoint.signature)
            return ok, "bad HMAC signature"
        verdict = ssh_verify(checkpoint.signed_bytes(), checkpoint.signature,
                             principal=checkpoint.signer, allowed_signers=self.signers_file())
        return verdict.ok, verdict.reason


def verify_against_witnesses(session: Session, checkpoints: Iterable[Checkpoint],
                             signatures: SignatureCheck) -> WitnessReport:
    ordered = sorted(checkpoints, key=lambda c: (c.seq, as_utc(c.at)))
    last_seq = session.execute(select(func.max(AuditEventRow.seq))).scalar_one() or 0
    problems: list[str] = []
    for checkpoint in ordered:
        label = f"checkpoint {checkpoint.checkpoint_id} (seq {checkpoint.seq}, " \
                f"{as_utc(checkpoint.at).isoformat(timespec='seconds')})"
        ok, reason = signatures.valid(checkpoint)
        if not ok:
            problems.append(f"{label}: signature does not verify ({reason})")
            continue
        event = session.get(AuditEventRow, checkpoint.seq)
        if event is None and checkpoint.seq > last_seq:
            problems.append(f"{label}: the chain ends at seq {last_seq}, shorter than witnessed "
                            "(events deleted from the end, or the database was rolled back to "
                            "an older copy)")
        elif event is None:
            problems.append(f"{label}: witnessed seq {checkpoint.seq} is missing here "
                            "(deleted or renumbered)")
        elif event.sha256 != checkpoint.head_sha256:
            problems.append(f"{label}: witnessed seq {checkpoint.seq} has another hash here "
                            "(edited and recomputed, renumbered or forged)")
    return WitnessReport(ok=not problems, checkpoints=len(ordered),
                         latest_seq=ordered[-1].seq if ordered else None, problems=problems)
