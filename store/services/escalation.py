"""Escalation plans (SPEC §5.1) and plan lookups."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from store.counters import adjust_gauge, bump
from store.direct import Direct
from store.errors import NotFound, UserError
from store.ids import new_id
from store.models import EscalationPlan, RecoveryItem
from store.rules.escalation import OPEN_STATES, build_routes
from store.rules.quiet import QUIET_REASON
from store.services.context import StoreContext
from store.tables import EscalationPlanRow, ExecutionRecordRow, PlanStateRow, RecoveryItemRow


def _failed_executions(session: Session, since: object) -> dict[str, int]:
    """Failed or skipped executions per provider; a skip a quiet window asked for is no
    failure (it would page about the maintenance it was meant to keep quiet)."""
    rows = session.execute(
        select(ExecutionRecordRow.provider, func.count()).where(
            ExecutionRecordRow.status.in_(("failed", "skipped")),
            ExecutionRecordRow.reason.not_like(f"{QUIET_REASON}%"),
            ExecutionRecordRow.created_at >= since).group_by(ExecutionRecordRow.provider)).all()
    return {provider: count for provider, count in rows}


def build_plan(ctx: StoreContext, slo_minutes: int | None = None) -> EscalationPlan:
    if slo_minutes is not None and slo_minutes < 1:
        raise UserError("--slo-minutes must be a whole number of minutes, at least 1")
    decision = ctx.require("escalation.plan")
    slo = slo_minutes or ctx.config.escalation.slo_minutes
    now = ctx.clock()
    with ctx.write() as session:
        rows = session.execute(select(RecoveryItemRow).where(
            RecoveryItemRow.closure_state.in_(OPEN_STATES))).scalars()
        items = [RecoveryItem.model_validate(row) for row in rows]
        failed = _failed_executions(
            session, now - timedelta(hours=ctx.config.escalation.lookback_hours))
        draft = build_routes(items, failed, now, slo, ctx.config)
        row = EscalationPlanRow(
            plan_id=new_id("plan"), alert_level=draft.alert_level, slo_minutes=slo,
            routes=[route.model_dump(mode="json") for route in draft.routes],
            selected_providers=draft.selected_providers, counts=draft.counts,
            created_at=now, created_by=ctx.identity.actor)
        session.add(row)
        # A plan opens with its first delivery (see track_plan_pair), not when it is built:
        # a plan nobody sent cannot be acknowledged, so it must not hold the dashboard open.
        session.add(PlanStateRow(plan_id=row.plan_id, alert_level=draft.alert_level, open=False,
                                 unresolved_providers=[]))
        bump(session, "escalation_plans", now)
        session.flush()
        plan = EscalationPlan.model_validate(row)
        ctx.audit(session, "escalation.plan", decision, [plan.plan_id],
                  f"{plan.alert_level} plan, {len(plan.routes)} routes",
                  plan.model_dump(mode="json"))
    return plan


def resolve_plan_id(session: Session, plan_id: str) -> str:
    """``latest`` means the newest plan; anything else must exist."""
    if plan_id == "latest":
        found = session.execute(select(EscalationPlanRow.plan_id).order_by(
            EscalationPlanRow.created_at.desc(), EscalationPlanRow.plan_id.desc())
            .limit(1)).scalar_one_or_none()
        if found is None:
            raise NotFound("no escalation plan yet: run `cavra escalation plan` first")
        return found
    if session.get(EscalationPlanRow, plan_id) is None:
        raise NotFound(f"escalation plan {plan_id!r} not found")
    return plan_id


def get_plan(ctx: StoreContext, plan_id: str) -> EscalationPlan:
    with ctx.db.read() as session:
        row = session.get(EscalationPlanRow, resolve_plan_id(session, plan_id))
        return EscalationPlan.model_validate(row)


_PLAN_STATE = cast(Table, PlanStateRow.__table__)
# Every batch of sends runs these: below SQLAlchemy's execution layer (``store.direct``).
_PLAN_STATES = Direct(select(
    _PLAN_STATE.c.plan_id, _PLAN_STATE.c.alert_level, _PLAN_STATE.c.open,
    _PLAN_STATE.c.unresolved_providers).where(_PLAN_STATE.c.plan_id.in_(
        bindparam("plans", expanding=True))).order_by(_PLAN_STATE.c.plan_id).with_for_update())
_SET_PLAN_STATE = Direct(update(_PLAN_STATE).where(
    _PLAN_STATE.c.plan_id == bindparam("b_plan")).values(
    unresolved_providers=bindparam("b_unresolved"), open=bindparam("b_open")))


def track_plan_pair(session: Session, plan_id: str, provider: str, settled: bool) -> None:
    track_plan_pairs(session, [(plan_id, provider, settled)])


def track_plan_pairs(session: Session, changes: list[tuple[str, str, bool]]) -> None:
    """Keep each plan's open state: open while any provider it was delivered to lacks a
    resolved/dismissed latest acknowledgement. ``changes``: (plan, provider, settled), in
    order; one read and at most one write per plan."""
    if not changes:
        return
    wanted = sorted({plan_id for plan_id, _, _ in changes})
    rows = {row.plan_id: row for row in _PLAN_STATES.rows(session, {"plans": wanted})}
    unresolved = {plan_id: list(row.unresolved_providers) for plan_id, row in rows.items()}
    for plan_id, provider, settled in changes:
        if plan_id in unresolved:
            unresolved[plan_id] = [p for p in unresolved[plan_id] if p != provider] + (
                [] if settled else [provider])
    for plan_id, row in rows.items():
        now_unresolved = sorted(unresolved[plan_id])
        now_open = bool(now_unresolved) and row.alert_level != "healthy"
        if now_unresolved == list(row.unresolved_providers) and now_open == row.open:
            continue
        _SET_PLAN_STATE.execute(session, {"b_plan": plan_id,
                                          "b_unresolved": now_unresolved, "b_open": now_open})
        if row.open != now_open:
            delta = 1 if now_open else -1
            adjust_gauge(session, "open_escalations", delta)
            if row.alert_level == "critical":
                adjust_gauge(session, "open_critical_escalations", delta)
