"""`cavra report schedule-run|deliver|retry-plan|retry`: executive reports and their delivery
retry worker (SPEC §5.7, §8)."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import (
    decision_line,
    emit_deliveries,
    emit_json,
    emit_lines,
    wants_json,
    worker_json,
    worker_lines,
)
from store.services.reports import create_schedule_run
from workflows.delivery import deliver_report_outcome


def report_schedule_run(runtime: Runtime, args: argparse.Namespace) -> int:
    run, report, created = create_schedule_run(runtime.ctx, args.schedule)
    if wants_json(args):
        emit_json({**run.model_dump(mode="json"), "created": created,
                   "report": report.model_dump(mode="json")})
    else:
        emit_lines([f"schedule run {run.run_id}  report {report.report_id}  {report.status}",
                    f"  {report.body['business_impact']}"])
    return 0


def report_deliver(runtime: Runtime, args: argparse.Namespace) -> int:
    outcome = deliver_report_outcome(runtime.ctx, runtime.registry, args.run_id, args.provider)
    emit_deliveries(outcome.deliveries, wants_json(args), outcome.skipped)
    return 0


def report_retry_plan(runtime: Runtime, args: argparse.Namespace) -> int:
    from workflows.report_retry import build_report_retry_plan

    plan = build_report_retry_plan(runtime.ctx)
    if wants_json(args):
        emit_json(plan)
        return 0
    emit_lines([f"executive retry plan {plan.retry_plan_id}  " + ", ".join(
        f"{k} {v}" for k, v in plan.counts.items()), *(decision_line(d) for d in plan.decisions)])
    return 0


def report_retry(runtime: Runtime, args: argparse.Namespace) -> int:
    from workflows.report_retry import run_report_retry

    result = run_report_retry(runtime.ctx, runtime.registry, live=args.live,
                              max_deliveries=args.max_deliveries)
    emit_json(worker_json(result)) if wants_json(args) else emit_lines(worker_lines(result))
    return 0
