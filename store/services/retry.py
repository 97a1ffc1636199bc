"""Retry plans (SPEC §5.4) and the records a retry worker run leaves (SPEC §5.5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.counters import bump
from store.digest import sha256_of
from store.ids import new_id
from store.models import ExecutionRecord, PairState, RetryDecision, RetryPlan, WorkerRun
from store.rules.retry import decide
from store.services.context import StoreContext
from store.tables import ExecutionRecordRow, PairStateRow, RetryPlanRow, WorkerRunRow


def plan_decisions(ctx: StoreContext, session: Session, now: datetime) -> list[RetryDecision]:
    """One decision per pair with failures after its latest success; no history window."""
    rows = session.execute(select(PairStateRow).where(PairStateRow.failures_since_success > 0)
                           .order_by(PairStateRow.plan_id, PairStateRow.provider)).scalars()
    decisions = []
    for row in rows:
        pair = PairState.model_validate(row)
        provider = ctx.config.provider(pair.provider)
        enabled = provider is None or provider.enabled  # not configured → the worker skips it
        decisions.append(decide(pair, ctx.config.retry, provider_enabled=enabled, now=now))
    return decisions


def store_retry_plan(ctx: StoreContext, session: Session, decisions: list[RetryDecision],
                     now: datetime) -> RetryPlan:
    counts = {action: sum(1 for d in decisions if d.action == action)
              for action in ("retry", "wait", "suppress")}
    row = RetryPlanRow(
        retry_plan_id=new_id("retry_plan"), policy=ctx.config.retry.model_dump(mode="json"),
        decisions=[d.model_dump(mode="json") for d in decisions], counts=counts,
        created_at=now, created_by=ctx.identity.actor)
    session.add(row)
    bump(session, "retry_plans", now)
    session.flush()
    return RetryPlan.model_validate(row)


def build_retry_plan(ctx: StoreContext) -> RetryPlan:
    decision = ctx.require("retry.plan")
    now = ctx.clock()
    with ctx.write() as session:
        plan = store_retry_plan(ctx, session, plan_decisions(ctx, session, now), now)
        ctx.audit(session, "retry.plan", decision, [plan.retry_plan_id],
                  f"retry {plan.counts['retry']}, wait {plan.counts['wait']}, "
                  f"suppress {plan.counts['suppress']}", plan.model_dump(mode="json"))
    return plan


def record_execution(ctx: StoreContext, session: Session, *, run_id: str, retry_plan_id: str,
                     decision: RetryDecision, mode: str, status: str, reason: str,
                     payload_sha256: str, delivery_id: str | None) -> ExecutionRecord:
    now = ctx.clock()
    fields = {
        "execution_id": new_id("execution"), "status": status, "reason": reason,
        "run_id": run_id, "retry_plan_id": retry_plan_id, "plan_id": decision.plan_id,
        "provider": decision.provider, "delivery_id": delivery_id,
        "idempotency_key": decision.idempotency_key, "payload_sha256": payload_sha256,
        "attempt": decision.attempt, "mode": mode, "executed_by": ctx.identity.actor,
        "executed_at": now.isoformat(),
    }
    row = ExecutionRecordRow(**{**fields, "executed_at": now}, execution_sha256=sha256_of(fields),
                             created_at=now, created_by=ctx.identity.actor)
    session.add(row)
    bump(session, f"retry_executions.{status}", now)
    session.flush()
    return ExecutionRecord.model_validate(row)


def record_worker_run(ctx: StoreContext, session: Session, *, run_id: str, mode: str,
                      trigger: str, retry_plan_id: str, schedule_id: str | None,
                      started_at: datetime, summary: dict[str, int]) -> WorkerRun:
    now = ctx.clock()
    row = WorkerRunRow(run_id=run_id, mode=mode, trigger=trigger, retry_plan_id=retry_plan_id,
                       schedule_id=schedule_id, started_at=started_at, summary=summary,
                       created_at=now, created_by=ctx.identity.actor)
    session.add(row)
    bump(session, f"retry_worker_runs.{mode}", now)
    session.flush()
    return WorkerRun.model_validate(row)
