"""The bound chain behind an execution or a delivery (SPEC §10 `evidence show`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from store.errors import NotFound
from store.ids import kind_of
from store.models import (
    Acknowledgement,
    AuditEvent,
    Delivery,
    EvidenceChain,
    ExecutionRecord,
    FollowUpRun,
    InterruptedRun,
    PlanSummary,
    RetryPlanPolicy,
    ScheduleRunLink,
    WorkerRun,
)
from store.services.failover import failover_evidence
from store.tables import (
    AcknowledgementRow,
    AuditEventRow,
    AuditTargetRow,
    DeliveryRow,
    EscalationPlanRow,
    ExecutionRecordRow,
    FollowUpRunRow,
    RetryPlanRow,
    ScheduleRunRow,
    WorkerRunRow,
)

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext

MAX_AUDIT_LINKS = 20


def evidence_chain(ctx: StoreContext, record_id: str) -> EvidenceChain:
    kind = kind_of(record_id)
    with ctx.db.read() as session:
        parts: dict[str, Any] = {"id": record_id}
        execution = None
        delivery = None
        if kind == "execution":
            row = session.get(ExecutionRecordRow, record_id)
            if row is None:
                raise NotFound(f"execution {record_id!r} not found")
            execution = ExecutionRecord.model_validate(row)
            parts["execution"] = execution
            run = session.get(WorkerRunRow, execution.worker_run_id)
            parts["worker_run"] = (WorkerRun.model_validate(run) if run
                                   else InterruptedRun(run_id=execution.worker_run_id))
            retry_plan = session.get(RetryPlanRow, execution.retry_plan_id)
            if retry_plan is not None:
                parts["retry_decision"] = next(
                    (d for d in retry_plan.decisions if d["plan_id"] == execution.plan_id
                     and d["provider"] == execution.provider), None)
                parts["retry_plan"] = RetryPlanPolicy.model_validate(retry_plan)
            if execution.delivery_id:
                delivery = session.get(DeliveryRow, execution.delivery_id)
        elif kind == "delivery":
            delivery = session.get(DeliveryRow, record_id)
            if delivery is None:
                raise NotFound(f"delivery {record_id!r} not found")
        else:
            raise NotFound(f"{record_id!r} is not an execution (exe-…) or delivery (dlv-…) ID")
        plan_id = execution.plan_id if execution else None
        provider = execution.provider if execution else None
        if delivery is not None:
            parts["delivery"] = Delivery.model_validate(delivery)
            plan_id = plan_id or delivery.plan_id
            provider = provider or delivery.provider
            if delivery.run_id:
                schedule_run = session.get(ScheduleRunRow, delivery.run_id)
                if schedule_run is not None:
                    parts["schedule_run"] = ScheduleRunLink.model_validate(schedule_run)
            # worker_run_id names the run that sent it: a retry worker run (wrk-…), or the
            # follow-up run (fup-…) that escalated the plan to this provider's level.
            if delivery.worker_run_id and kind_of(delivery.worker_run_id) == "follow_up_run":
                follow_up = session.get(FollowUpRunRow, delivery.worker_run_id)
                parts["follow_up_run"] = (FollowUpRun.model_validate(follow_up) if follow_up
                                          else InterruptedRun(run_id=delivery.worker_run_id))
            # A failover send (the claim it was made for) or a pair that failed over.
            failover = failover_evidence(session, parts["delivery"])
            if failover is not None:
                parts["failover"] = failover
        if plan_id:
            plan = session.get(EscalationPlanRow, plan_id)
            parts["escalation_plan"] = PlanSummary.model_validate(plan) if plan else None
            acks = session.execute(select(AcknowledgementRow).where(
                AcknowledgementRow.plan_id == plan_id, AcknowledgementRow.provider == provider)
                .order_by(AcknowledgementRow.created_at)).scalars()
            parts["acknowledgements"] = [Acknowledgement.model_validate(a) for a in acks]
        linked = [record_id, *(x for x in (plan_id,) if x)]
        if isinstance(parts.get("follow_up_run"), FollowUpRun):
            linked.append(parts["follow_up_run"].run_id)
        seqs = select(AuditTargetRow.seq).where(AuditTargetRow.target_id.in_(linked))
        events = session.execute(select(AuditEventRow).where(AuditEventRow.seq.in_(seqs))
                                 .order_by(AuditEventRow.seq).limit(MAX_AUDIT_LINKS)).scalars()
        parts["audit_events"] = [AuditEvent.model_validate(e) for e in events]
        return EvidenceChain(**parts)
