"""What the workflows read before they send: the facts of the pairs a run acts on, attempt
numbers, which providers a run reached, the PagerDuty keys still to resolve. Each is one
short read that returns models, so no ORM row leaves ``store``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select, tuple_
from sqlalchemy.orm import Session

from store.core_tables import provider_health
from store.direct import Direct
from store.models import ACK_SETTLED, EscalationPlan
from store.record_digest import row_digests
from store.rules.retry_decision import SendFacts
from store.services.context import StoreContext
from store.services.provider_health import effective_state
from store.tables import (
    DeliveryRow,
    EscalationPlanRow,
    PairStateRow,
    PlanStateRow,
    RecoveryItemRow,
    ScheduleRow,
    ScheduleRunRow,
)

TRIGGERED = ("delivered", "unknown")
_PLANS = cast(Table, EscalationPlanRow.__table__)
# Below SQLAlchemy's execution layer (``store.direct``): compiled once per process, not once
# per engine (every live run reads its plans with it).
_READ_PLANS = Direct(select(_PLANS).where(_PLANS.c.plan_id.in_(
    bindparam("ids", expanding=True))))


def read_plans_with_digests(ctx: StoreContext, plan_ids: Collection[str]
                            ) -> tuple[dict[str, EscalationPlan], dict[str, str]]:
    """The plans a run will send (read once per run), and the digest of each row as read:
    plans are append-only, so every audit event of the run that names one records that
    digest (``send_batch(known=...)``) instead of reading and digesting the row again."""
    wanted = sorted(set(plan_ids))
    if not wanted:
        return {}, {}
    with ctx.db.read() as session:
        rows = _READ_PLANS.rows(session, {"ids": wanted})
    return ({row.plan_id: EscalationPlan.model_validate(row._asdict()) for row in rows},
            row_digests(EscalationPlanRow, rows))


_PAIR = cast(Table, PairStateRow.__table__).c
# Read in every batch a live run begins: below SQLAlchemy's execution layer (store.direct).
_ACKS = Direct(select(_PAIR.plan_id, _PAIR.provider, _PAIR.latest_ack_state,
                      _PAIR.accepted_by, _PAIR.last_failure_at).where(
    tuple_(_PAIR.plan_id, _PAIR.provider).in_(bindparam("keys", expanding=True))))
_CIRCUITS = Direct(select(provider_health.c.name, provider_health.c.state,
                          provider_health.c.opened_until,
                          provider_health.c.consecutive_failures).where(
    provider_health.c.name.in_(bindparam("names", expanding=True))))


def read_send_facts(ctx: StoreContext, session: Session, pairs: Sequence[tuple[str, str]],
                    plans: Collection[str], now: datetime) -> dict[tuple[str, str], SendFacts]:
    """What the skip reasons and the live gate need about each (plan, provider), read in the
    transaction that acts on it: two queries, however many pairs. ``plans``: those found."""
    keys = sorted(set(pairs))
    if not keys:
        return {}
    acks = {(row.plan_id, row.provider): row for row in _ACKS.rows(session, {"keys": keys})}
    rows = _CIRCUITS.rows(session, {"names": sorted({p for _, p in keys})})
    circuits = {row.name: effective_state(row, now) for row in rows}
    threshold = ctx.config.circuit.failure_threshold
    headroom = {row.name: max(1, threshold - row.consecutive_failures) for row in rows}
    facts = {}
    for plan_id, provider in keys:
        settings = ctx.config.provider(provider)
        ack = acks.get((plan_id, provider))
        facts[(plan_id, provider)] = SendFacts(
            plan_found=plan_id in plans, provider_configured=settings is not None,
            provider_enabled=settings is not None and settings.enabled,
            circuit=circuits.get(provider, "closed"),
            latest_ack=ack.latest_ack_state if ack else None,
            accepted_by=ack.accepted_by if ack else None,
            headroom=headroom.get(provider, threshold),
            last_failure_at=ack.last_failure_at if ack else None)
    return facts


def settled_providers(ctx: StoreContext, plan_id: str) -> dict[str, str]:
    """Providers whose pair with this plan is settled (latest acknowledgement resolved or
    dismissed), with that state: they are never sent the plan again."""
    with ctx.db.read() as session:
        rows = session.execute(select(PairStateRow.provider, PairStateRow.latest_ack_state)
                               .where(PairStateRow.plan_id == plan_id,
                                      PairStateRow.latest_ack_state.in_(ACK_SETTLED)))
        return {provider: state or "" for provider, state in rows}


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
        schedule = session.get(ScheduleRow, schedule_id)
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
