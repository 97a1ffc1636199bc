"""`cavra audit verify|checkpoint|export`: the hash chain and its witnesses (SPEC §9)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines, wants_json
from store.errors import UserError


def audit_verify(runtime: Runtime, args: argparse.Namespace) -> int:
    from store.services.audit_verify import verify_audit

    verdict = verify_audit(runtime.ctx, witness_paths=args.witness,
                           allowed_signers=args.allowed_signers)
    if wants_json(args):
        emit_json({**verdict.chain.model_dump(mode="json"), **verdict.model_dump(mode="json"),
                   "ok": verdict.ok})
        return 0 if verdict.ok else 3
    emit_lines(verdict.lines())
    problem = verdict.first_problem()
    if problem:
        sys.stderr.write(f"audit: broken: {problem}\n")
    return 0 if verdict.ok else 3


def audit_checkpoint(runtime: Runtime, args: argparse.Namespace) -> int:
    from workflows.checkpoints import write_checkpoint

    result = write_checkpoint(runtime.ctx, runtime.registry)
    for warning in result.warnings:
        sys.stderr.write(f"cavra: warning: {warning}\n")
    if wants_json(args):
        emit_json(result)
    else:
        point = result.checkpoint
        emit_lines([f"checkpoint {point.checkpoint_id}  seq {point.seq}  "
                    f"head {point.head_sha256[:16]}…  {point.method}-signed by {point.signer}",
                    *(f"  {w.witness:<16} {w.status}{f'  {w.error}' if w.error else ''}"
                      for w in result.witnesses)])
    if not result.delivered:
        raise UserError("audit: no witness took the checkpoint "
                        f"({', '.join(f'{w.witness} {w.status}' for w in result.witnesses)})")
    return 0


def audit_export(runtime: Runtime, args: argparse.Namespace) -> int:
    from store.audit import export_event, iter_events

    output = Path(args.output) if args.output else None
    try:
        stream = output.open("w", encoding="utf-8") if output else sys.stdout
    except OSError as exc:
        raise UserError(f"export: cannot write {output}: {exc.strerror}") from None
    count = 0
    with runtime.db.read() as session:
        for row in iter_events(session):
            stream.write(json.dumps(export_event(row), sort_keys=True) + "\n")
            count += 1
    if output:
        stream.close()
        sys.stderr.write(f"exported {count} audit events to {output}\n")
    return 0
