"""The executive delivery retry worker (SPEC §5.7): `cavra report retry-plan` and
`cavra report retry [--live] [--max N]`.

The same retry/wait/suppress policy as escalation pairs, over (schedule run, executive
provider) pairs, with no acknowledgement gate (executive reports are not acknowledged).
Dry-run unless live is asked for; one live run at a time; an idempotency key per (run,
provider, attempt); one execution record per selected or skipped pair, bound to the worker
run and the stored retry plan like escalation executions. Executive pairs are few, so a run
sends them one after another.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from store.digest import sha256_of
from store.errors import AlreadyDelivered, Conflict, StaleDecision
from store.ids import new_id
from store.models import ExecutionRecord, RetryDecision, RetryPlan, WorkerRunResult
from store.policy import Decision
from store.rules.messages import report_message
from store.rules.quiet import silencing
from store.rules.retry_decision import (
    WOULD_DELIVER,
    Verdict,
    due_pairs,
    run_limit,
    select_for_run,
    skip_reason,
)
from store.services.context import StoreContext
from store.services.delivery_ledger import send_batch
from store.services.health import executive_pairs
from store.services.quiet_reads import quiet_windows_from
from store.services.reports import get_schedule_run
from store.services.retry import (
    Subject,
    execution_record,
    record_executions,
    record_worker_run,
    store_retry_plan,
)
from store.services.send_state import providers_delivered, read_send_facts
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import send_one
from workflows.heartbeat import Heartbeat, live_run_lease

LIVE_LOCK = "live_report_retry"
SUBJECT: Subject = "executive"


def build_report_retry_plan(ctx: StoreContext) -> RetryPlan:
    """Store the executive delivery retry plan (audited), as `cavra retry plan` does for
    escalation pairs."""
    decision = ctx.require("report.retry.plan")
    with ctx.write() as session:
        plan = _store_plan(ctx, session, decision, None)
    return plan


def _store_plan(ctx: StoreContext, session: Session, decision: Decision,
                run_id: str | None) -> RetryPlan:
    return _store_plan_and_failures(ctx, session, decision, run_id)[0]


def _store_plan_and_failures(ctx: StoreContext, session: Session, decision: Decision,
                             run_id: str | None) -> tuple[RetryPlan, dict[str, datetime | None]]:
    """The stored plan, and each pair's latest failure by idempotency key (oldest first)."""
    now = ctx.clock()
    pairs = executive_pairs(ctx, session, now)
    plan = store_retry_plan(ctx, session, [d for d, _ in pairs], now, subject=SUBJECT)
    ctx.audit(session, "report.retry.plan", decision,
              [plan.retry_plan_id, *([run_id] if run_id else [])],
              ", ".join(f"{k} {v}" for k, v in plan.counts.items()),
              plan.model_dump(mode="json"))
    return plan, {d.idempotency_key: failed for d, failed in pairs}


def run_report_retry(ctx: StoreContext, registry: ConnectorRegistry, *, live: bool = False,
                     max_deliveries: int | None = None, trigger: str = "manual",
                     schedule_id: str | None = None,
                     previewed: frozenset[str] | None = None) -> WorkerRunResult:
    """``previewed``: idempotency keys a person confirmed from a dry run (the console's
    preview-then-confirm); a pair that became due since is left for a later run."""
    limit = run_limit(max_deliveries, ctx.config.retry)
    mode = "live" if live else "dry_run"
    decision = ctx.require(f"report.retry.{mode}")
    run_id = new_id("worker_run")
    started = ctx.clock()
    if not live:
        return _run(ctx, registry, run_id=run_id, live=live, limit=limit, trigger=trigger,
                    schedule_id=schedule_id, decision=decision, started=started,
                    previewed=previewed)
    with live_run_lease(ctx, LIVE_LOCK, run_id, action="report.retry.live",
                        what="live report retry run", subject=SUBJECT) as (lease, _):
        return _run(ctx, registry, run_id=run_id, live=live, limit=limit, trigger=trigger,
                    schedule_id=schedule_id, decision=decision, started=started,
                    previewed=previewed, lease=lease)


def _run(ctx: StoreContext, registry: ConnectorRegistry, *, run_id: str, live: bool,
         limit: int, trigger: str, schedule_id: str | None, decision: Decision,
         started: datetime, previewed: frozenset[str] | None,
         lease: Heartbeat | None = None) -> WorkerRunResult:
    mode = "live" if live else "dry_run"
    with ctx.write() as session:
        plan, failed_at = _store_plan_and_failures(ctx, session, decision, run_id)
    due = due_pairs(plan.decisions, previewed)
    messages = {d.idempotency_key: _message(ctx, d) for d in due}
    with ctx.db.read() as session:
        facts = read_send_facts(ctx, session, [(d.plan_id, d.provider) for d in due],
                                {d.plan_id for d in due}, ctx.clock())
    # A quiet window naming an executive provider silences its reports (no alert level).
    quiet = quiet_windows_from(ctx, started) if due else []
    now = ctx.clock()
    verdicts: dict[str, Verdict] = {}
    for item in due:
        pair_facts = facts[(item.plan_id, item.provider)]
        if (window := silencing(quiet, item.provider, None, now)) is not None:
            pair_facts = replace(pair_facts, quiet_window=window.name)
        skip = skip_reason(pair_facts)
        verdicts[item.idempotency_key] = (
            Verdict("skipped", skip) if skip else
            Verdict("send", "") if live else Verdict("dry_run", WOULD_DELIVER))
    selection = select_for_run(plan.decisions, verdicts, failed_at, limit=limit,
                               previewed=previewed)
    records: list[ExecutionRecord] = [
        _record(ctx, run_id, plan, item, mode, verdicts[item.idempotency_key].status,
                verdicts[item.idempotency_key].reason, messages[item.idempotency_key])
        for item in selection.held]
    for item in selection.selected:
        if lease is not None and lease.lost:  # another process took the lease: stop
            break
        message = messages[item.idempotency_key]
        if not live:
            records.append(_record(ctx, run_id, plan, item, mode, "dry_run", WOULD_DELIVER,
                                   message))
            continue
        if item.provider in providers_delivered(ctx, item.plan_id):  # a manual resend won
            records.append(_record(ctx, run_id, plan, item, mode, "skipped", "decision_stale",
                                   message))
            continue
        try:
            delivery = send_one(
                ctx, registry, kind="executive", provider=item.provider, plan_id=None,
                schedule_run_id=item.plan_id, attempt=item.attempt, key=item.idempotency_key,
                message=message, action="report.retry.deliver", decision=decision,
                retry_plan_id=plan.retry_plan_id, sent_by_run_id=run_id)
        except Conflict as refused:  # refused before anything was sent: one pair, not the run
            reason = ("decision_stale" if isinstance(refused, (StaleDecision, AlreadyDelivered))
                      else "delivery_in_flight")
            records.append(_record(ctx, run_id, plan, item, mode, "skipped", reason, message))
            continue
        records.append(_record(ctx, run_id, plan, item, mode, delivery.status,
                               delivery.error or delivery.status, message,
                               delivery.delivery_id))
    summary = selection.summary()
    for record in records:
        summary[record.status] = summary.get(record.status, 0) + 1
    with send_batch(ctx) as session:
        record_executions(ctx, session, records, subject=SUBJECT)
        run = record_worker_run(ctx, session, run_id=run_id, mode=mode, trigger=trigger,
                                retry_plan_id=plan.retry_plan_id, schedule_id=schedule_id,
                                started_at=started, summary=summary, subject=SUBJECT)
        ctx.audit(session, f"report.retry.{mode}", decision,
                  [run_id, plan.retry_plan_id, *(r.execution_id for r in records)],
                  ", ".join(f"{k} {v}" for k, v in summary.items() if v) or "nothing to retry",
                  {"run": run.model_dump(mode="json"),
                   "executions": [r.execution_sha256 for r in records]})
    return WorkerRunResult(run=run, executions=records)


def _message(ctx: StoreContext, item: RetryDecision) -> dict[str, object]:
    run, report = get_schedule_run(ctx, item.plan_id)  # the decision's subject is the run
    return report_message(run, report, item.provider, item.attempt)


def _record(ctx: StoreContext, run_id: str, plan: RetryPlan, item: RetryDecision, mode: str,
            status: str, reason: str, message: dict[str, object],
            delivery_id: str | None = None) -> ExecutionRecord:
    return execution_record(ctx, worker_run_id=run_id, retry_plan_id=plan.retry_plan_id,
                            decision=item, mode=mode, status=status, reason=reason,
                            payload_sha256=sha256_of(message), delivery_id=delivery_id)
