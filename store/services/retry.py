"""Retry plans (SPEC §5.4) and the records a retry worker run leaves (SPEC §5.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.counters import bump, folded
from store.digest import sha256_of
from store.direct import Direct
from store.ids import kind_of, new_id
from store.models import ExecutionRecord, PairState, RetryDecision, RetryPlan, WorkerRun
from store.policy import Decision
from store.rules.retry_decision import decide, provider_counts_as_enabled
from store.services.context import StoreContext
from store.tables import (
    AuditEventRow,
    AuditTargetRow,
    DeliveryRow,
    ExecutionRecordRow,
    PairStateRow,
    RetryPlanRow,
    WorkerRunRow,
)

Subject = Literal["escalation", "executive"]
# Counter families: retry_executions.* / retry_worker_runs.* (escalation pairs),
# report_retry_executions.* / report_retry_runs.* (executive pairs).
COUNTERS: dict[str, str] = {"escalation": "retry", "executive": "report_retry"}


def plan_decisions(ctx: StoreContext, session: Session, now: datetime) -> list[RetryDecision]:
    """One decision per pair with failures after its latest success; no history window."""
    decisions = []
    for row in _FAILING_PAIRS.rows(session):
        pair = PairState.model_validate(row._asdict())
        settings = ctx.config.provider(pair.provider)
        enabled = provider_counts_as_enabled(configured=settings is not None,
                                             enabled=settings is not None and settings.enabled,
                                             kind="escalation")
        decisions.append(decide(pair, ctx.config.retry, provider_enabled=enabled, now=now,
                                provider_kind=settings.kind if settings else None))
    return decisions


_PAIR_ROWS = cast(Table, PairStateRow.__table__)
_DELIVERY_ROWS = cast(Table, DeliveryRow.__table__)
# Every retry run plans from these (below SQLAlchemy's execution layer, ``store.direct``).
_FAILING_PAIRS = Direct(
    select(_PAIR_ROWS, _DELIVERY_ROWS.c.status_code.label("latest_status_code"))
    .select_from(_PAIR_ROWS.outerjoin(
        _DELIVERY_ROWS, _DELIVERY_ROWS.c.delivery_id == _PAIR_ROWS.c.latest_delivery_id))
    .where(_PAIR_ROWS.c.failures_since_success > 0)
    .order_by(_PAIR_ROWS.c.plan_id, _PAIR_ROWS.c.provider))


def store_retry_plan(ctx: StoreContext, session: Session, decisions: list[RetryDecision],
                     now: datetime, subject: Subject = "escalation") -> RetryPlan:
    """``subject``: escalation pairs (plan, provider) or executive pairs (schedule run,
    provider); older plans have none and are escalation plans."""
    counts = {action: sum(1 for d in decisions if d.action == action)
              for action in ("retry", "wait", "suppress")}
    row = {"retry_plan_id": new_id("retry_plan"), "subject": None if subject == "escalation"
           else subject, "policy": ctx.config.retry.model_dump(mode="json"),
           "decisions": [d.model_dump(mode="json") for d in decisions], "counts": counts,
           "created_at": now, "created_by": ctx.identity.actor}
    _INSERT_RETRY_PLAN.execute(session, row)
    bump(session, "retry_plans" if subject == "escalation" else "report_retry_plans", now)
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


def execution_record(ctx: StoreContext, *, worker_run_id: str, retry_plan_id: str,
                     decision: RetryDecision, mode: str, status: str, reason: str,
                     payload_sha256: str, delivery_id: str | None) -> ExecutionRecord:
    """One execution record, digested, not yet written (``record_executions`` writes it)."""
    now = ctx.clock()
    fields = {
        "execution_id": new_id("execution"), "status": status, "reason": reason,
        "run_id": worker_run_id, "retry_plan_id": retry_plan_id, "plan_id": decision.plan_id,
        "provider": decision.provider, "delivery_id": delivery_id,
        "idempotency_key": decision.idempotency_key, "payload_sha256": payload_sha256,
        "attempt": decision.attempt, "mode": mode, "executed_by": ctx.identity.actor,
        "executed_at": now.isoformat(),
    }
    return ExecutionRecord.model_validate({**fields, "executed_at": now,
                                           "execution_sha256": sha256_of(fields)})


def record_executions(ctx: StoreContext, session: Session, records: list[ExecutionRecord],
                      subject: Subject = "escalation") -> None:
    """Write execution records (one statement) and count them, in the caller's transaction."""
    if not records:
        return
    now = ctx.clock()
    _INSERT_EXECUTIONS.execute_many(session, [
        {**record.model_dump(), "created_at": now, "created_by": ctx.identity.actor}
        for record in records])
    with folded(session):
        for record in records:
            bump(session, f"{COUNTERS[subject]}_executions.{record.status}", now)


_INSERT_EXECUTIONS = Direct(insert(cast(Table, ExecutionRecordRow.__table__)))


def record_execution(ctx: StoreContext, session: Session, *, run_id: str, retry_plan_id: str,
                     decision: RetryDecision, mode: str, status: str, reason: str,
                     payload_sha256: str, delivery_id: str | None) -> ExecutionRecord:
    record = execution_record(ctx, worker_run_id=run_id, retry_plan_id=retry_plan_id,
                              decision=decision, mode=mode, status=status, reason=reason,
                              payload_sha256=payload_sha256, delivery_id=delivery_id)
    record_executions(ctx, session, [record])
    return record


def record_worker_run(ctx: StoreContext, session: Session, *, run_id: str, mode: str,
                      trigger: str, retry_plan_id: str, schedule_id: str | None,
                      started_at: datetime, summary: dict[str, int],
                      subject: Subject = "escalation") -> WorkerRun:
    now = ctx.clock()
    existing = _WORKER_RUN.first(session, {"b_id": run_id})
    if existing is not None:
        # This run stalled past its lease and a later run recorded it abandoned: that record
        # stays (evidence is append-only); the caller's audit event carries what it did.
        return WorkerRun.model_validate(existing._asdict())
    row = {"run_id": run_id, "subject": None if subject == "escalation" else subject,
           "mode": mode, "trigger": trigger, "retry_plan_id": retry_plan_id,
           "schedule_id": schedule_id, "started_at": started_at, "summary": summary,
           "created_at": now, "created_by": ctx.identity.actor}
    _INSERT_WORKER_RUN.execute(session, row)
    bump(session, f"{COUNTERS[subject]}_{'worker_' if subject == 'escalation' else ''}runs."
                  f"{mode}", now)
    return WorkerRun.model_validate(row)


# Below SQLAlchemy's execution layer (``store.direct``), like the run's other statements:
# compiled once per process, where the ORM's unit of work compiles its INSERT (and its
# ``session.get`` its SELECT) once per engine, i.e. again in every command that runs.
_RETRY_PLANS = cast(Table, RetryPlanRow.__table__)
_WORKER_RUNS = cast(Table, WorkerRunRow.__table__)
_INSERT_RETRY_PLAN = Direct(insert(_RETRY_PLANS))
_INSERT_WORKER_RUN = Direct(insert(_WORKER_RUNS))
_WORKER_RUN = Direct(select(_WORKER_RUNS).where(_WORKER_RUNS.c.run_id == bindparam("b_id")))


ABANDONED_RULE = Decision(True, "a live run whose lease expired died mid-run: recorded abandoned",
                          "allowed")


def record_abandoned_run(ctx: StoreContext, run_id: str,
                         subject: Subject = "escalation") -> WorkerRun | None:
    """The worker-run record a killed live run never wrote, built from what it left: its
    execution records, its deliveries (settled ``unknown`` once past their deadline) and the
    retry plan it audited. Nothing if the run did record itself."""
    with ctx.write() as session:
        if session.get(WorkerRunRow, run_id) is not None:
            return None
        executions = session.execute(select(
            ExecutionRecordRow.execution_id, ExecutionRecordRow.status,
            ExecutionRecordRow.retry_plan_id, ExecutionRecordRow.delivery_id,
            ExecutionRecordRow.created_at).where(
            ExecutionRecordRow.run_id == run_id)).all()
        deliveries = session.execute(select(
            DeliveryRow.delivery_id, DeliveryRow.status, DeliveryRow.retry_plan_id,
            DeliveryRow.created_at).where(DeliveryRow.worker_run_id == run_id)).all()
        plan_ids = {row.retry_plan_id for row in (*executions, *deliveries) if row.retry_plan_id}
        planned = session.execute(
            select(AuditEventRow.target_ids, AuditEventRow.at)
            .join(AuditTargetRow, AuditTargetRow.seq == AuditEventRow.seq)
            .where(AuditTargetRow.target_id == run_id, AuditEventRow.action == (
                "retry.plan" if subject == "escalation" else "report.retry.plan"))
        ).first()
        if planned is not None:
            plan_ids.update(t for t in planned.target_ids if kind_of(t) == "retry_plan")
        if not plan_ids:
            return None  # nothing of it reached the database: nothing to record
        summary = {"abandoned": 1, "executions": len(executions)}
        for row in executions:
            summary[row.status] = summary.get(row.status, 0) + 1
        recorded = {row.delivery_id for row in executions}
        # Sends it began and never recorded: in flight when it died (now unknown, or still
        # in flight until their deadline).
        summary["left_in_flight"] = sum(1 for row in deliveries
                                        if row.delivery_id not in recorded)
        moments = [as_utc(row.created_at) for row in (*executions, *deliveries)]
        if planned is not None:
            moments.append(as_utc(planned.at))
        run = record_worker_run(ctx, session, run_id=run_id, mode="abandoned",
                                trigger="unknown", retry_plan_id=sorted(plan_ids)[0],
                                schedule_id=None, started_at=min(moments), summary=summary,
                                subject=subject)
        action = "retry.run.abandoned" if subject == "escalation" else "report.retry.abandoned"
        ctx.audit(session, action, ABANDONED_RULE,
                  [run_id, run.retry_plan_id, *(row.execution_id for row in executions),
                   *(row.delivery_id for row in deliveries)],
                  f"live run {run_id} died holding its lease: {summary}",
                  run.model_dump(mode="json"))
    return run
