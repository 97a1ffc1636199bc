"""The retry worker (SPEC §5.5): dry-run unless live is asked for, one live run at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.digest import sha256_of
from store.errors import Conflict, StaleDecision, UserError
from store.ids import new_id
from store.models import (
    ACK_CLEARS_LIVE_RETRY,
    Delivery,
    ExecutionRecord,
    RetryDecision,
    WorkerRunResult,
)
from store.policy import Decision
from store.rules.messages import escalation_message
from store.services.context import StoreContext
from store.services.deliveries import sweep_stale_in_flight
from store.services.locks import current_holder, release, try_acquire
from store.services.retry import (
    plan_decisions,
    record_execution,
    record_worker_run,
    store_retry_plan,
)
from store.services.send_state import pair_send_facts
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import send_one

LIVE_LOCK = "live_retry_worker"


def _summary() -> dict[str, int]:
    keys = ("retryable", "selected", "waiting", "suppressed", "acknowledgement_pending",
            "dry_run", "delivered", "failed", "unknown", "skipped", "blocked")
    return dict.fromkeys(keys, 0)


def run_retry_worker(ctx: StoreContext, registry: ConnectorRegistry, *, live: bool = False,
                     max_deliveries: int | None = None, trigger: str = "manual",
                     schedule_id: str | None = None,
                     previewed: frozenset[str] | None = None) -> WorkerRunResult:
    """``previewed``: idempotency keys a person confirmed from a dry-run preview. A live run
    given them sends to those pairs only; a pair that became due since is left for later."""
    limit = max_deliveries if max_deliveries is not None else ctx.config.retry.max_deliveries
    if not 1 <= limit <= 100:
        raise UserError("--max must be between 1 and 100")
    mode = "live" if live else "dry_run"
    decision = ctx.require(f"retry.run.{mode}")
    run_id = new_id("worker_run")
    started = ctx.clock()
    if live:
        ttl = limit * 130 + 60  # longest possible run: every send at the maximum timeout
        if not try_acquire(ctx.db, LIVE_LOCK, run_id, ttl, started):
            with ctx.db.read() as session:
                holder, _ = current_holder(session, LIVE_LOCK, started)
            refusal = Decision(False, "one live retry worker run at a time",
                               f"live run {holder or 'unknown'} is in progress")
            ctx.audit_denial("retry.run.live", [holder] if holder else [], refusal)
            raise Conflict(f"another live retry worker run ({holder or 'unknown'}) is in "
                           "progress; wait for it to finish")
    try:
        if live:
            sweep_stale_in_flight(ctx)
        return _run(ctx, registry, run_id=run_id, mode=mode, limit=limit, trigger=trigger,
                    schedule_id=schedule_id, decision=decision, started=started,
                    previewed=previewed)
    finally:
        if live:
            release(ctx.db, LIVE_LOCK, run_id)


def _live_gate(ctx: StoreContext, latest_ack: str | None, accepted_by: str | None) -> str | None:
    """Why a live run may not send to this pair, or None."""
    if latest_ack not in ACK_CLEARS_LIVE_RETRY:
        return "acknowledgement_required"
    roles = ctx.config.roles
    if roles is not None and roles.separate_duties and accepted_by == ctx.identity.actor:
        return "separation_of_duties"
    return None


def _run(ctx: StoreContext, registry: ConnectorRegistry, *, run_id: str, mode: str, limit: int,
         trigger: str, schedule_id: str | None, decision: Decision,
         started: datetime, previewed: frozenset[str] | None) -> WorkerRunResult:
    summary = _summary()
    executions: list[ExecutionRecord] = []
    with ctx.write() as session:
        decisions = plan_decisions(ctx, session, ctx.clock())
        retry_plan = store_retry_plan(ctx, session, decisions, ctx.clock())
        ctx.audit(session, "retry.plan", decision, [retry_plan.retry_plan_id, run_id],
                  f"fresh plan for worker run {run_id}", retry_plan.model_dump(mode="json"))
    retryable = [d for d in decisions if d.action == "retry"]
    if previewed is not None:
        retryable = [d for d in retryable if d.idempotency_key in previewed]
    selected = retryable[:limit]
    summary.update(retryable=len(retryable), selected=len(selected),
                   waiting=sum(d.action == "wait" for d in decisions),
                   suppressed=sum(d.action == "suppress" for d in decisions))

    def record(session: Session, item: RetryDecision, status: str, reason: str, digest: str,
               delivery_id: str | None = None) -> None:
        executions.append(record_execution(
            ctx, session, run_id=run_id, retry_plan_id=retry_plan.retry_plan_id, decision=item,
            mode=mode, status=status, reason=reason, payload_sha256=digest,
            delivery_id=delivery_id))
        summary[status] = summary.get(status, 0) + 1

    for item in selected:
        facts = pair_send_facts(ctx, item.plan_id, item.provider, ctx.clock())
        plan, latest_ack, accepted_by = facts.plan, facts.latest_ack, facts.accepted_by
        circuit_open = facts.circuit_open
        message = escalation_message(plan, item.provider, item.attempt) if plan else {}
        digest = sha256_of(message)
        provider = ctx.config.provider(item.provider)
        skip_reason = ("plan_not_found" if plan is None else
                       "provider_not_configured" if provider is None else
                       "provider_disabled" if not provider.enabled else
                       "provider_circuit_open" if circuit_open else None)
        if skip_reason:
            with ctx.write() as session:
                record(session, item, "skipped", skip_reason, digest)
            continue
        gate = _live_gate(ctx, latest_ack, accepted_by)
        if gate == "acknowledgement_required":
            summary["acknowledgement_pending"] += 1
        if mode == "dry_run":
            # The preview says what live would do, gates included (SPEC §5.5).
            with ctx.write() as session:
                record(session, item, "dry_run",
                       f"live_would_block: {gate}" if gate else "would_deliver", digest)
            continue
        if gate:
            with ctx.write() as session:
                record(session, item, "blocked", gate, digest)
                if gate == "separation_of_duties":
                    ctx.audit_deny(session, "retry.deliver",
                                   "roles.separate_duties: who accepted a pair may not "
                                   "live-retry it", [item.plan_id, run_id],
                                   f"{ctx.identity.actor} accepted {item.plan_id}/"
                                   f"{item.provider}", item.model_dump(mode="json"))
            continue

        def on_finish(session: Session, delivery: Delivery, item: RetryDecision = item,
                      digest: str = digest) -> None:
            record(session, item, delivery.status, delivery.error or delivery.status, digest,
                   delivery.delivery_id)

        try:
            send_one(ctx, registry, kind="escalation", provider=item.provider,
                     plan_id=item.plan_id, run_id=None, attempt=item.attempt,
                     key=item.idempotency_key, message=message, action="retry.deliver",
                     decision=decision, retry_plan_id=retry_plan.retry_plan_id,
                     worker_run_id=run_id, on_finish=on_finish)
        except StaleDecision:  # the pair moved on (e.g. a manual send succeeded) meanwhile
            with ctx.write() as session:
                record(session, item, "skipped", "decision_stale", digest)
        except Conflict:  # someone else's send to this pair has not finished yet
            with ctx.write() as session:
                record(session, item, "skipped", "delivery_in_flight", digest)
    with ctx.write() as session:
        run = record_worker_run(ctx, session, run_id=run_id, mode=mode, trigger=trigger,
                                retry_plan_id=retry_plan.retry_plan_id, schedule_id=schedule_id,
                                started_at=started, summary=summary)
        ctx.audit(session, f"retry.run.{mode}", decision,
                  [run_id, retry_plan.retry_plan_id, *(e.execution_id for e in executions)],
                  ", ".join(f"{k} {v}" for k, v in summary.items() if v) or "nothing to retry",
                  {"run": run.model_dump(mode="json"),
                   "executions": [e.execution_sha256 for e in executions]})
    return WorkerRunResult(run=run, executions=executions)
