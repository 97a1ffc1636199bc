"""Writing signed checkpoints of the audit chain head to the audit witnesses (SPEC §9).

A witness is a provider with ``audience = ["audit"]``: an outbox file (best kept outside the
database's folder, out of reach of whoever can rewrite the database) or a webhook. A
checkpoint is not itself an audit event (an event would move the head it certifies); it is
kept, append-only, in ``audit_checkpoints`` with where it was sent."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from store.audit import chain_head
from store.checkpoints import (
    Checkpoint,
    SignatureCheck,
    recent_checkpoints,
    record_checkpoint,
    sign_checkpoint,
    trustworthy,
)
from store.errors import UserError
from store.ids import new_id
from store.services.context import StoreContext
from workflows.connectors.base import OutboundMessage
from workflows.connectors.outbox import OutboxConnector
from workflows.connectors.registry import ConnectorRegistry

log = logging.getLogger(__name__)


class WitnessOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)
    witness: str
    status: str
    error: str | None = None


class CheckpointResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    checkpoint: Checkpoint
    witnesses: list[WitnessOutcome]
    warnings: list[str]

    @property
    def delivered(self) -> bool:
        return any(w.status == "delivered" for w in self.witnesses)


def witnesses_configured(ctx: StoreContext) -> bool:
    return bool(ctx.config.witnesses())


def _beside_database(ctx: StoreContext, registry: ConnectorRegistry, name: str) -> str | None:
    connector = registry.get(name)
    path = ctx.db.sqlite_path
    if (isinstance(connector, OutboxConnector) and path is not None and str(path) != ":memory:"
            and Path(connector.path).resolve().parent == Path(path).resolve().parent):
        return (f"witness {name} writes {connector.path.name} in the database's folder: "
                "whoever can rewrite the database can rewrite it too (move it elsewhere)")
    return None


def write_checkpoint(ctx: StoreContext, registry: ConnectorRegistry) -> CheckpointResult:
    """Sign the current head and send it to every witness; one line and nothing written when
    there is no witness, no key or nothing to certify."""
    witnesses = ctx.config.witnesses()
    if not witnesses:
        raise UserError('audit: no witness configured (a provider with audience = ["audit"], '
                        "kind outbox or webhook)")
    decision = ctx.require("audit.checkpoint")
    with ctx.db.read() as session:
        seq, head = chain_head(session)
    if seq == 0:
        raise UserError("audit: the chain is empty: nothing to checkpoint")
    checkpoint = sign_checkpoint(ctx.config, checkpoint_id=new_id("checkpoint"), seq=seq,
                                 head_sha256=head, at=ctx.clock(), signer=ctx.identity.actor)
    outcomes: list[WitnessOutcome] = []
    for name in witnesses:
        outbound = OutboundMessage(delivery_id=checkpoint.checkpoint_id, kind="checkpoint",
                                   provider=name, idempotency_key=checkpoint.checkpoint_id,
                                   plan_id=None, schedule_run_id=None, attempt=1,
                                   message=checkpoint.public())
        try:
            outcome = registry.get(name).send(outbound)
        except Exception as exc:  # a connector bug is an outcome, not a crash
            log.exception("witness %s raised", name)
            outcomes.append(WitnessOutcome(witness=name, status="unknown",
                                           error=f"connector_error: {exc.__class__.__name__}"))
            continue
        outcomes.append(WitnessOutcome(witness=name, status=outcome.status, error=outcome.error))
    with ctx.write() as session:
        record_checkpoint(session, checkpoint, [o.model_dump() for o in outcomes],
                          ctx.clock(), ctx.identity.actor)
    log.info("checkpoint %s of seq %s (%s): %s", checkpoint.checkpoint_id, seq, decision.rule,
             ", ".join(f"{o.witness} {o.status}" for o in outcomes))
    warnings = [w for name in witnesses if (w := _beside_database(ctx, registry, name))]
    return CheckpointResult(checkpoint=checkpoint, witnesses=outcomes, warnings=warnings)


def checkpoint_if_moved(ctx: StoreContext, registry: ConnectorRegistry) -> CheckpointResult | None:
    """The scheduler leader's periodic checkpoint: only when witnesses are configured and the
    head moved since the last one. Never raises: a failed checkpoint is logged."""
    if not witnesses_configured(ctx):
        return None
    try:
        signatures = SignatureCheck(ctx.config, None)
        with ctx.db.read() as session:
            seq, _ = chain_head(session)
            covered = any(trustworthy(session, local, signatures)
                          for local in recent_checkpoints(session, up_to_seq=seq, limit=5)
                          if local.checkpoint.seq == seq)
        if seq == 0 or covered:
            return None
        return write_checkpoint(ctx, registry)
    except UserError as exc:
        log.warning("audit checkpoint skipped: %s", exc)
        return None
