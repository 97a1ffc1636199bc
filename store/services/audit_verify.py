"""``cavra audit verify``: the chain, the evidence behind it, the witnesses, the signatures and
the database's own protections, in one verdict (SPEC §9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from store.audit import ChainReport, verify_chain
from store.checkpoints import (
    Checkpoint,
    LocalCheckpoint,
    SignatureCheck,
    WitnessReport,
    all_local_checkpoints,
    latest_checkpoint,
    read_witness,
    verify_against_witnesses,
)
from store.errors import UserError
from store.event_signatures import SignatureReport, verify_event_signatures
from store.evidence_check import EvidenceReport, cross_check
from store.pg_roles import append_only_problems, privilege_problems
from store.signing import load_allowed_signers

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext


class _Lenient(SignatureCheck):
    """Checks a signature when the key or allowed_signers is at hand, else passes it: the
    local copies are checked for structure at least, and verifying them is never bad input."""

    def __init__(self, strict: SignatureCheck) -> None:
        super().__init__(strict.config, strict.allowed_signers)

    def valid(self, checkpoint: Checkpoint) -> tuple[bool, str]:
        try:
            return super().valid(checkpoint)
        except UserError:
            return True, "not checked (no key here)"


class WitnessResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    path: str
    report: WitnessReport
    local: bool = False  # the database's own copies of its checkpoints


class AuditVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)
    ok: bool
    chain: ChainReport
    evidence: EvidenceReport
    witnesses: list[WitnessResult]
    signatures: SignatureReport | None
    append_only: list[str]  # missing or disabled append-only triggers
    privileges: list[str]  # PostgreSQL login roles that could delete evidence (warnings)

    def lines(self) -> list[str]:
        out = [self.chain.describe(), self.evidence.describe()]
        out += [f"  {problem}" for problem in self.evidence.problems[1:]]
        out += [f"{r.report.describe()} ({r.path})" for r in self.witnesses]
        out += [self.signatures.describe()] if self.signatures else []
        out += [f"append-only protection missing: {p}" for p in self.append_only]
        out += [f"warning: {p}" for p in self.privileges]
        return out

    def first_problem(self) -> str | None:
        if not self.chain.ok:
            return self.chain.describe()
        for result in self.witnesses:
            if not result.report.ok:
                return f"{result.report.describe()} ({result.path})"
        if not self.evidence.ok:
            return self.evidence.describe()
        if self.signatures and not self.signatures.ok:
            return self.signatures.describe()
        if self.append_only:
            return f"append-only protection missing: {self.append_only[0]}"
        return None


def verify_audit(ctx: StoreContext, *, witness_paths: list[str],
                 allowed_signers: str | None = None) -> AuditVerdict:
    """Bad input (an unreadable witness, a malformed allowed_signers, a missing key variable)
    raises UserError before anything is judged."""
    checkpoints = [(path, read_witness(path)) for path in witness_paths]
    signatures = SignatureCheck(ctx.config, allowed_signers)
    wanted = allowed_signers or (signatures.allowed_signers
                                 if ctx.config.audit.signing == "ssh" else None)
    signers_file = load_allowed_signers(wanted) if wanted else None
    with ctx.db.read() as session:
        chain = verify_chain(session)
        witnesses = [WitnessResult(path=path, report=verify_against_witnesses(
            session, found, signatures)) for path, found in checkpoints]
        local = all_local_checkpoints(session)
        if local:  # the database's own copies: weak (writable), but a forged one shows
            witnesses.append(WitnessResult(path="local audit_checkpoints", local=True,
                                           report=verify_against_witnesses(
                                               session, local, _Lenient(signatures))))
        evidence = cross_check(session)
        event_sigs = (verify_event_signatures(session, signers_file)
                      if signers_file is not None else None)
    append_only = append_only_problems(ctx.db)
    privileges = privilege_problems(ctx.db)
    ok = (chain.ok and evidence.ok and all(w.report.ok for w in witnesses)
          and (event_sigs is None or event_sigs.ok) and not append_only)
    return AuditVerdict(ok=ok, chain=chain, evidence=evidence, witnesses=witnesses,
                        signatures=event_sigs, append_only=append_only, privileges=privileges)


class AuditStatus(BaseModel):
    """What the Audit screen shows on every reload: cheap enough for a refresh."""

    model_config = ConfigDict(frozen=True)
    chain: ChainReport
    checkpoint: LocalCheckpoint | None
    checkpoint_agrees: bool | None
    event_signing: str
    checkpoint_signing: str
    witnesses: list[str]


def audit_status(ctx: StoreContext) -> AuditStatus:
    from store.audit import event_at

    with ctx.db.read() as session:
        chain = verify_chain(session)
        latest = latest_checkpoint(session)
        agrees = None
        if latest is not None:
            event = event_at(session, latest.checkpoint.seq)
            signed, _ = _Lenient(SignatureCheck(ctx.config, None)).valid(latest.checkpoint)
            agrees = (signed and event is not None
                      and event.sha256 == latest.checkpoint.head_sha256)
    return AuditStatus(chain=chain, checkpoint=latest, checkpoint_agrees=agrees,
                       event_signing="SSH-signed events" if ctx.config.audit.signing == "ssh"
                       else "unsigned events",
                       checkpoint_signing=ctx.config.audit.checkpoint_method,
                       witnesses=ctx.config.witnesses())
