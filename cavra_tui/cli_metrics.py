"""`cavra metrics`: the dashboard numbers (SPEC §6, §10). A read of a few counter and
schedule rows on SQLAlchemy Core: no ORM, no connectors, no APScheduler unless a schedule
needs its next run worked out."""

from __future__ import annotations

import argparse

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import emit_json, emit_lines, wants_json
from scheduler.status import read_scheduler_status
from store.services.metrics import read_metrics


def metrics(runtime: Runtime, args: argparse.Namespace) -> int:
    now = runtime.ctx.clock()
    snapshot = read_metrics(runtime.ctx, now)
    scheduler = read_scheduler_status(runtime.ctx, now)
    if wants_json(args):
        emit_json({**snapshot.model_dump(mode="json"), "scheduler": {
            "leader": scheduler.leader,
            "lease_expires_at": scheduler.lease_expires_at,
            "runs": snapshot.schedules["runs"], "missed": snapshot.schedules["missed"],
            "errors": snapshot.schedules["errors"],
            "schedules": [s.model_dump(mode="json") for s in scheduler.schedules]}})
        return 0
    next_runs = [s.next_run_at for s in scheduler.schedules if s.enabled and s.next_run_at]
    emit_lines([
        f"alert level            {snapshot.alert_level}",
        f"retry worker runs      dry_run {snapshot.retry_worker_runs['dry_run']}, "
        f"live {snapshot.retry_worker_runs['live']}",
        "retry executions       " + ", ".join(f"{k} {v}" for k, v in
                                              snapshot.retry_executions.items()),
        f"report retry runs      dry_run {snapshot.report_retry_runs.get('dry_run', 0)}, "
        f"live {snapshot.report_retry_runs.get('live', 0)}; executions " + (", ".join(
            f"{k} {v}" for k, v in snapshot.report_retry_executions.items() if v) or "none"),
        "executive deliveries   " + ", ".join(f"{k} {v}" for k, v in
                                              snapshot.executive_deliveries.items()),
        f"failed deliveries      escalation {snapshot.failed_deliveries['escalation']}, "
        f"executive {snapshot.failed_deliveries['executive']}",
        f"acknowledgement pending {snapshot.acknowledgement_pending}",
        f"open escalations       {snapshot.open_escalations}",
        f"scheduler              leader {scheduler.leader or 'none'}, "
        f"{len(scheduler.schedules)} schedules, next run "
        f"{min(next_runs).isoformat(timespec='seconds') if next_runs else '-'}, "
        f"runs {snapshot.schedules['runs']}, missed {snapshot.schedules['missed']}, "
        f"errors {snapshot.schedules['errors']}",
        "providers              " + (", ".join(
            f"{name} {health['state']} ({health['consecutive_failures']} failures in a row)"
            for name, health in sorted(snapshot.providers.items())) or "no sends yet"),
    ])
    return 0
