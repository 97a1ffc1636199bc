"""`cavra health` and `cavra evidence show`: derived alerts and evidence chains (SPEC §6, §9)."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import decision_line, emit_json, emit_lines, wants_json
from store.services.evidence import evidence_chain
from store.services.health import read_health, record_health


def health(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.record:
        snapshot = record_health(runtime.ctx)
        if wants_json(args):
            emit_json(snapshot)
        else:
            emit_lines([f"recorded {snapshot.snapshot_id}: {snapshot.status}, "
                        f"{len(snapshot.alerts)} alert(s)"])
        return 0
    report = read_health(runtime.ctx)
    if wants_json(args):
        emit_json(report)
        return 0
    lines = [f"retry health: {report.status}"]
    lines += [f"  {a.severity:<8} {a.code}: {a.message}" for a in report.alerts]
    lines.append(f"executive delivery retry plan: {len(report.executive_retry)} pair(s)")
    for d in report.executive_retry:
        lines.append(decision_line(d))
    emit_lines(lines)
    return 0


def evidence_show(runtime: Runtime, args: argparse.Namespace) -> int:
    chain = evidence_chain(runtime.ctx, args.record_id)
    emit_json(chain.to_json())
    return 0
