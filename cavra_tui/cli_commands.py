"""What each `cavra` command does: parse → call a service → print. No rules live here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cavra_tui.bootstrap import Runtime
from cavra_tui.cli_output import (
    delivery_json,
    delivery_lines,
    emit_json,
    emit_lines,
    plan_json,
    plan_lines,
    worker_json,
    worker_lines,
)
from scheduler.status import read_scheduler_status
from store.audit import export_event, iter_events
from store.errors import UserError
from store.services.escalation import build_plan
from store.services.evidence import evidence_chain
from store.services.health import read_health
from store.services.metrics import read_metrics
from store.services.recovery import import_recovery_file
from store.services.reports import create_schedule_run
from store.services.retry import build_retry_plan
from workflows.delivery import deliver_escalation, deliver_report
from workflows.pagerduty_resolve import acknowledge_and_resolve
from workflows.worker import run_retry_worker


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def open_console(runtime: Runtime, args: argparse.Namespace) -> int:
    from cavra_tui.console import run_console

    return run_console(runtime)


def seed_demo(runtime: Runtime, args: argparse.Namespace) -> int:
    from workflows.demo import seed_demo_data

    summary = seed_demo_data(runtime.ctx, runtime.registry)
    if wants_json(args):
        emit_json(summary)
    else:
        emit_lines([f"demo data: {', '.join(f'{k} {v}' for k, v in summary.items())}"])
    return 0


def demo(runtime: Runtime, args: argparse.Namespace) -> int:
    from workflows.demo import seed_demo_data

    seed_demo_data(runtime.ctx, runtime.registry, only_if_empty=True)
    if getattr(args, "no_console", False):
        return 0
    return open_console(runtime, args)


def recovery_import(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.file == "-":  # read twice (validate, then write): spool standard input first
        import shutil
        import tempfile

        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".json") as spool:
            shutil.copyfileobj(sys.stdin, spool)
            spool.flush()
            summary = import_recovery_file(runtime.ctx, spool.name)
    else:
        summary = import_recovery_file(runtime.ctx, args.file)
    if wants_json(args):
        emit_json(summary)
    else:
        emit_lines([f"imported {summary['imported']} recovery items "
                    f"({summary['inserted']} new, {summary['updated']} updated)"])
    return 0


def escalation_plan(runtime: Runtime, args: argparse.Namespace) -> int:
    plan = build_plan(runtime.ctx, args.slo_minutes)
    emit_json(plan_json(plan)) if wants_json(args) else emit_lines(plan_lines(plan))
    return 0


def escalation_deliver(runtime: Runtime, args: argparse.Namespace) -> int:
    deliveries = deliver_escalation(runtime.ctx, runtime.registry, args.plan_id, args.provider)
    if wants_json(args):
        emit_json([delivery_json(d) for d in deliveries])
    else:
        emit_lines(delivery_lines(deliveries))
    return 0


def escalation_ack(runtime: Runtime, args: argparse.Namespace) -> int:
    ack, resolves = acknowledge_and_resolve(runtime.ctx, runtime.registry, args.plan_id,
                                            args.provider, args.state, args.ref, args.notes)
    if wants_json(args):
        emit_json({**ack.model_dump(mode="json"), "resolve_deliveries": [
            delivery_json(d) for d in resolves]} if resolves else ack)
    else:
        emit_lines([f"{ack.ack_id}  {ack.plan_id}/{ack.provider}  {ack.state}  "
                    f"by {ack.acknowledged_by}", *(delivery_lines(resolves) if resolves else [])])
    return 0


def retry_plan(runtime: Runtime, args: argparse.Namespace) -> int:
    plan = build_retry_plan(runtime.ctx)
    if wants_json(args):
        emit_json(plan)
        return 0
    lines = [f"retry plan {plan.retry_plan_id}  " + ", ".join(
        f"{k} {v}" for k, v in plan.counts.items())]
    for d in plan.decisions:
        when = d.next_retry_at.isoformat(timespec="seconds") if d.next_retry_at else "-"
        lines.append(f"  {d.action:<8} {d.plan_id}/{d.provider}  retries {d.retry_count}  "
                     f"next {when}  {d.reason}")
    emit_lines(lines)
    return 0


def retry_run(runtime: Runtime, args: argparse.Namespace) -> int:
    result = run_retry_worker(runtime.ctx, runtime.registry, live=args.live,
                              max_deliveries=args.max_deliveries)
    emit_json(worker_json(result)) if wants_json(args) else emit_lines(worker_lines(result))
    return 0


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
    if wants_json(args):
        emit_json([delivery_json(d) for d in deliveries])
    else:
        emit_lines(delivery_lines(deliveries))
    return 0


def metrics(runtime: Runtime, args: argparse.Namespace) -> int:
    now = runtime.ctx.clock()
    snapshot = read_metrics(runtime.db, now)
    scheduler = read_scheduler_status(runtime.db, now)
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


def health(runtime: Runtime, args: argparse.Namespace) -> int:
    report = read_health(runtime.ctx)
    if wants_json(args):
        emit_json(report)
        return 0
    lines = [f"retry health: {report.status}"]
    lines += [f"  {a.severity:<8} {a.code}: {a.message}" for a in report.alerts]
    lines.append(f"executive delivery retry plan: {len(report.executive_retry)} pair(s)")
    for d in report.executive_retry:
        when = d.next_retry_at.isoformat(timespec="seconds") if d.next_retry_at else "-"
        lines.append(f"  {d.action:<8} {d.plan_id}/{d.provider}  retries {d.retry_count}  "
                     f"next {when}  {d.reason}")
    emit_lines(lines)
    return 0


def evidence_show(runtime: Runtime, args: argparse.Namespace) -> int:
    chain = evidence_chain(runtime.db, args.record_id)
    emit_json(chain)
    return 0


def audit_verify(runtime: Runtime, args: argparse.Namespace) -> int:
    from store.services.audit_verify import verify_audit

    verdict = verify_audit(runtime.db, runtime.config, witness_paths=args.witness,
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
