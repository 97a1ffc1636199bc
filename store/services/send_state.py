"""What the workflows read before they send: the facts of one pair, attempt numbers, which
providers a run reached, the PagerDuty keys still to resolve. Each is one short read that
returns models, so no ORM row leaves ``store``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import EscalationPlan
from store.services.context import StoreContext
from store.services.provider_health import read_provider_health
from store.tables import (
    DeliveryRow,
    EscalationPlanRow,
    PairStateRow,
    PlanStateRow,
    RecoveryItemRow,
    ReportScheduleRow,
    ScheduleRunRow,
)

TRIGGERED = ("delivered", "unknown")


@dataclass(frozen=True)
class PairSendFacts:
    """Everything the live gate and the skip reasons need about one (plan, provider)."""

    plan: EscalationPlan | None
    latest_ack: str | None
    accepted_by: str | None
    circuit_open: bool


def pair_send_facts(ctx: StoreContext, plan_id: str, provider: str,
                    now: datetime) -> PairSendFacts:
    with ctx.db.read() as session:
        plan = session.get(EscalationPlanRow, plan_id)
        pair = session.get(PairStateRow, (plan_id, provider))
        circuit = read_provider_health(session, provider, now).state == "open"
        return PairSendFacts(plan=EscalationPlan.model_validate(plan) if plan else None,
                             latest_ack=pair.latest_ack_state if pair else None,
                             accepted_by=pair.accepted_by if pair else None,
                             circuit_open=circuit)


def next_escalation_attempt(ctx: StoreContext, plan_id: str, provider: str) -> int:
    with ctx.db.read() as session:
        pair = session.get(PairStateRow, (plan_id, provider))
        return (pair.definitive_count if pair else 0) + 1


def next_report_attempt(ctx: StoreContext, run_id: str, provider: str) -> int:
    with ctx.db.read() as session:
        return session.execute(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.run_id == run_id, DeliveryRow.provider == provider,
            DeliveryRow.status.in_(("delivered", "failed")))).scalar_one() + 1


def providers_delivered(ctx: StoreContext, run_id: str) -> set[str]:
    """Providers a schedule run's report already reached (they are never sent it again)."""
    with ctx.db.read() as session:
        return set(session.execute(select(DeliveryRow.provider).where(
            DeliveryRow.run_id == run_id, DeliveryRow.status == "delivered")).scalars())


def schedule_providers(ctx: StoreContext, schedule_id: str | None) -> list[str] | None:
    """The providers a schedule names, or None (no schedule, or it names none)."""
    if not schedule_id:
        return None
    with ctx.db.read() as session:
        schedule = session.get(ReportScheduleRow, schedule_id)
        return list(schedule.providers) if schedule is not None and schedule.providers else None


def schedule_run_exists(ctx: StoreContext, schedule_id: str, slot: datetime) -> bool:
    with ctx.db.read() as session:
        return session.execute(select(ScheduleRunRow.run_id).where(
            ScheduleRunRow.schedule_id == schedule_id, ScheduleRunRow.scheduled_for == slot)
        ).first() is not None


def recovery_item_count(ctx: StoreContext) -> int:
    with ctx.db.read() as session:
        return int(session.execute(select(func.count()).select_from(RecoveryItemRow))
                   .scalar_one())


def _pending_keys(session: Session, plan_id: str, provider: str) -> list[tuple[str, int]]:
    """(dedup key, next resolve attempt) for triggered keys without a delivered resolve."""
    def keys(kind: str, statuses: tuple[str, ...]) -> set[str]:
        return set(session.execute(select(DeliveryRow.idempotency_key).where(
            DeliveryRow.plan_id == plan_id, DeliveryRow.provider == provider,
            DeliveryRow.kind == kind, DeliveryRow.status.in_(statuses))).scalars())

    result = []
    for key in sorted(keys("escalation", TRIGGERED) - keys("resolve", ("delivered",))):
        tried = session.execute(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.plan_id == plan_id, DeliveryRow.provider == provider,
            DeliveryRow.kind == "resolve", DeliveryRow.idempotency_key == key)).scalar_one()
        result.append((key, tried + 1))
    return result


def pending_resolves(ctx: StoreContext, plan_id: str,
                     providers: list[str]) -> list[tuple[str, str, int]]:
    """(provider, dedup key, attempt) for each PagerDuty key a settled pair still has open:
    the pair's latest acknowledgement is ``resolved``, or every provider of the plan is
    settled."""
    work: list[tuple[str, str, int]] = []
    with ctx.db.read() as session:
        plan_state = session.get(PlanStateRow, plan_id)
        plan_settled = plan_state is not None and not plan_state.unresolved_providers
        for provider in providers:
            pair = session.get(PairStateRow, (plan_id, provider))
            if pair is None:
                continue
            if pair.latest_ack_state == "resolved" or plan_settled:
                work += [(provider, key, attempt)
                         for key, attempt in _pending_keys(session, plan_id, provider)]
    return work
