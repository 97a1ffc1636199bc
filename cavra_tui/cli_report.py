"""`cavra report schedule-run|deliver`: executive reports (SPEC §8)."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_deliveries, emit_json, emit_lines, wants_json
from store.services.reports import create_schedule_run
from workflows.delivery import deliver_report


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
    deliveries = deliver_report(runtime.ctx, runtime.registry, args.run_id, args.provider)
    emit_deliveries(deliveries, wants_json(args))
    return 0
