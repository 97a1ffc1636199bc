"""`cavra retry plan|run`: the retry plan and the retry worker (SPEC §6)."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import (
    decision_line,
    emit_json,
    emit_lines,
    wants_json,
    worker_json,
    worker_lines,
)
from store.services.retry import build_retry_plan
from workflows.worker import run_retry_worker


def retry_plan(runtime: Runtime, args: argparse.Namespace) -> int:
    plan = build_retry_plan(runtime.ctx)
    if wants_json(args):
        emit_json(plan)
        return 0
    lines = [f"retry plan {plan.retry_plan_id}  " + ", ".join(
        f"{k} {v}" for k, v in plan.counts.items())]
    for d in plan.decisions:
        lines.append(decision_line(d))
    emit_lines(lines)
    return 0


def retry_run(runtime: Runtime, args: argparse.Namespace) -> int:
    result = run_retry_worker(runtime.ctx, runtime.registry, live=args.live,
                              max_deliveries=args.max_deliveries)
    emit_json(worker_json(result)) if wants_json(args) else emit_lines(worker_lines(result))
    return 0
