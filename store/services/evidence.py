"""The bound chain behind an execution or a delivery (SPEC §10 `evidence show`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from store.db import Database
from store.errors import NotFound
from store.ids import kind_of
from store.models import (
    Acknowledgement,
    AuditEvent,
    Delivery,
    EscalationPlan,
    ExecutionRecord,
    WorkerRun,
)
from store.tables import (
    AcknowledgementRow,
    AuditEventRow,
    AuditTargetRow,
    DeliveryRow,
    EscalationPlanRow,
    ExecutionRecordRow,
    RetryPlanRow,
    ScheduleRunRow,
    WorkerRunRow,
)

MAX_AUDIT_LINKS = 20


def evidence_chain(db: Database, record_id: str) -> dict[str, Any]:
    kind = kind_of(record_id)
    with db.read() as session:
        chain: dict[str, Any] = {"id": record_id}
        execution = None
        delivery = None
        if kind == "execution":
            row = session.get(ExecutionRecordRow, record_id)
            if row is None:
                raise NotFound(f"execution {record_id!r} not found")
            execution = ExecutionRecord.model_validate(row)
            chain["execution"] = execution.model_dump(mode="json")
            run = session.get(WorkerRunRow, execution.run_id)
            chain["worker_run"] = (WorkerRun.model_validate(run).model_dump(mode="json")
                                   if run else {"run_id": execution.run_id,
                                                "status": "not completed (interrupted run)"})
            retry_plan = session.get(RetryPlanRow, execution.retry_plan_id)
            if retry_plan is not None:
                chain["retry_decision"] = next(
                    (d for d in retry_plan.decisions if d["plan_id"] == execution.plan_id
                     and d["provider"] == execution.provider), None)
                chain["retry_plan"] = {"retry_plan_id": retry_plan.retry_plan_id,
                                       "policy": retry_plan.policy}
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
            chain["delivery"] = Delivery.model_validate(delivery).model_dump(mode="json")
            plan_id = plan_id or delivery.plan_id
            provider = provider or delivery.provider
            if delivery.run_id:
                schedule_run = session.get(ScheduleRunRow, delivery.run_id)
                if schedule_run is not None:
                    chain["schedule_run"] = {"run_id": schedule_run.run_id,
                                             "schedule_id": schedule_run.schedule_id,
                                             "report_id": schedule_run.report_id}
        if plan_id:
            plan = session.get(EscalationPlanRow, plan_id)
            chain["escalation_plan"] = (EscalationPlan.model_validate(plan).model_dump(
                mode="json", include={"plan_id", "alert_level", "selected_providers", "counts",
                                      "created_at", "created_by"}) if plan else None)
            acks = session.execute(select(AcknowledgementRow).where(
                AcknowledgementRow.plan_id == plan_id, AcknowledgementRow.provider == provider)
                .order_by(AcknowledgementRow.created_at)).scalars()
            chain["acknowledgements"] = [Acknowledgement.model_validate(a).model_dump(mode="json")
                                         for a in acks]
        linked = [record_id, *(x for x in (plan_id,) if x)]
        seqs = select(AuditTargetRow.seq).where(AuditTargetRow.target_id.in_(linked))
        events = session.execute(select(AuditEventRow).where(AuditEventRow.seq.in_(seqs))
                                 .order_by(AuditEventRow.seq).limit(MAX_AUDIT_LINKS)).scalars()
        chain["audit_events"] = [AuditEvent.model_validate(e).model_dump(mode="json")
                                 for e in events]
        return chain
