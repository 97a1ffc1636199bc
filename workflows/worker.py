"""The retry worker (SPEC §5.5): dry-run unless live is asked for, one live run at a time.

It only orchestrates: read the facts, ask ``store.rules.retry_decision`` what to do, record
the answer or send. A dry run goes pair by pair; a live run sends several pairs at once
(``workflows.live_sends``)."""

from __future__ import annotations

from datetime import datetime

from store.ids import new_id
from store.models import WorkerRunResult
from store.policy import Decision
from store.record_digest import remember_digests, stored_digests
from store.rules.retry_decision import due_pairs, run_limit, select_for_run
from store.services.context import StoreContext
from store.services.delivery_ledger import send_batch
from store.services.quiet_reads import quiet_windows_from
from store.services.retry import (
    plan_decisions,
    record_worker_run,
    store_retry_plan,
)
from store.services.send_state import read_plans_with_digests
from workflows.connectors.registry import ConnectorRegistry
from workflows.heartbeat import Heartbeat, live_run_lease
from workflows.live_sends import send_live
from workflows.run_steps import RunScope, Tally, judge_pairs, record_unsent

LIVE_LOCK = "live_retry_worker"


def run_retry_worker(ctx: StoreContext, registry: ConnectorRegistry, *, live: bool = False,
                     max_deliveries: int | None = None, trigger: str = "manual",
                     schedule_id: str | None = None,
                     previewed: frozenset[str] | None = None) -> WorkerRunResult:
    """``previewed``: idempotency keys a person confirmed from a dry-run preview. A live run
    given them sends to those pairs only; a pair that became due since is left for later."""
    limit = run_limit(max_deliveries, ctx.config.retry)
    mode = "live" if live else "dry_run"
    decision = ctx.require(f"retry.run.{mode}")
    run_id = new_id("worker_run")
    started = ctx.clock()
    if not live:
        return _run(ctx, registry, run_id=run_id, live=live, limit=limit, trigger=trigger,
                    schedule_id=schedule_id, decision=decision, started=started,
                    previewed=previewed)
    with live_run_lease(ctx, LIVE_LOCK, run_id, action="retry.run.live",
                        what="live retry worker run", subject="escalation") as (lease, marked):
        return _run(ctx, registry, run_id=run_id, live=live, limit=limit, trigger=trigger,
                    schedule_id=schedule_id, decision=decision, started=started,
                    previewed=previewed, marked_unknown=marked, lease=lease)


def _run(ctx: StoreContext, registry: ConnectorRegistry, *, run_id: str, live: bool,
         limit: int, trigger: str, schedule_id: str | None, decision: Decision,
         started: datetime, previewed: frozenset[str] | None, marked_unknown: int = 0,
         lease: Heartbeat | None = None) -> WorkerRunResult:
    with ctx.write() as session:
        decisions = plan_decisions(ctx, session, ctx.clock())
        retry_plan = store_retry_plan(ctx, session, decisions, ctx.clock())
        # Append-only: digested once, for this event and the run's last.
        plan_digest = stored_digests(session, [retry_plan.retry_plan_id])
        ctx.audit(session, "retry.plan", decision, [retry_plan.retry_plan_id, run_id],
                  f"fresh plan for worker run {run_id}", retry_plan.model_dump(mode="json"))
    due = due_pairs(decisions, previewed)
    plans, plan_digests = read_plans_with_digests(ctx, {d.plan_id for d in due})
    scope = RunScope(ctx=ctx, registry=registry, run_id=run_id,
                     retry_plan_id=retry_plan.retry_plan_id, live=live, decision=decision,
                     plans=plans, digests=plan_digests,
                     quiet=quiet_windows_from(ctx, started),
                     still_leading=(lambda: not lease.lost) if lease else (lambda: True))
    tally = Tally()
    # Fair: every due pair is judged before a slot is counted, so pairs a gate stops (which
    # get their record) never starve the sendable ones behind them.
    with send_batch(ctx, scope.digests) as session:
        judged = judge_pairs(scope, session, list(enumerate(due)))
        selection = select_for_run(
            decisions, {j.item.idempotency_key: j.verdict for j in judged},
            {j.item.idempotency_key: j.last_failure_at for j in judged}, limit=limit,
            previewed=previewed)
        held = {d.idempotency_key for d in selection.held}
        record_unsent(scope, session, [j for j in judged if j.item.idempotency_key in held],
                      tally)
    first = len(due)  # records of the selected follow the held ones, in sending order
    items = list(enumerate(selection.selected, start=first))
    if live:
        tally = send_live(scope, items, ctx.config.retry.concurrency, tally)
    else:
        for pair in items:  # the preview stays sequential and exact
            with send_batch(ctx, scope.digests) as session:
                [judged_now] = judge_pairs(scope, session, [pair])
                record_unsent(scope, session, [judged_now], tally)
    executions = [tally.records[index] for index in sorted(tally.records)]
    summary = selection.summary()
    summary["acknowledgement_pending"] = tally.acknowledgement_pending
    if marked_unknown:  # a dead sender's deliveries this run settled as unknown
        summary["marked_unknown"] = marked_unknown
    for record in executions:
        summary[record.status] = summary.get(record.status, 0) + 1
    mode = scope.mode
    with ctx.write() as session:
        remember_digests(session, plan_digest)
        run = record_worker_run(ctx, session, run_id=run_id, mode=mode, trigger=trigger,
                                retry_plan_id=retry_plan.retry_plan_id, schedule_id=schedule_id,
                                started_at=started, summary=summary)
        ctx.audit(session, f"retry.run.{mode}", decision,
                  [run_id, retry_plan.retry_plan_id, *(e.execution_id for e in executions)],
                  ", ".join(f"{k} {v}" for k, v in summary.items() if v) or "nothing to retry",
                  {"run": run.model_dump(mode="json"),
                   "executions": [e.execution_sha256 for e in executions]})
    return WorkerRunResult(run=run, executions=executions)


