"""Resolve PagerDuty incidents when their escalation is resolved (SPEC §7).

A (plan, pagerduty provider) pair is resolved when its latest acknowledgement is
``resolved``, or when every provider of the plan is settled (resolved or dismissed). Each
dedup key the pair triggered (deliveries ``delivered`` or ``unknown``) gets one ``resolve``
event, recorded as a ``resolve`` delivery; keys already resolved are not sent again.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Acknowledgement, Delivery
from store.services.acknowledgements import acknowledge
from store.services.context import StoreContext
from store.tables import DeliveryRow, PairStateRow, PlanStateRow
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import send_one

TRIGGERED = ("delivered", "unknown")


def resolve_message(plan_id: str, provider: str) -> dict[str, str]:
    return {"type": "cavra.resolve", "plan_id": plan_id, "provider": provider,
            "summary": f"CAVRA escalation {plan_id} resolved"}


def _pending_keys(session: Session, plan_id: str, provider: str) -> list[tuple[str, int]]:
    """(dedup key, next resolve attempt) for triggered keys without a delivered resolve."""
    def keys(kind: str, statuses: tuple[str, ...]) -> set[str]:
        return set(session.execute(select(DeliveryRow.idempotency_key).where(
            DeliveryRow.plan_id == plan_id, DeliveryRow.provider == provider,
            DeliveryRow.kind == kind, DeliveryRow.status.in_(statuses))).scalars())

    pending = sorted(keys("escalation", TRIGGERED) - keys("resolve", ("delivered",)))
    result = []
    for key in pending:
        tried = session.execute(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.plan_id == plan_id, DeliveryRow.provider == provider,
            DeliveryRow.kind == "resolve", DeliveryRow.idempotency_key == key)).scalar_one()
        result.append((key, tried + 1))
    return result


def resolve_pagerduty_incidents(ctx: StoreContext, registry: ConnectorRegistry,
                                plan_id: str) -> list[Delivery]:
    pagerduty = [name for name, p in ctx.config.providers.items()
                 if p.kind == "pagerduty" and p.enabled]
    if not pagerduty:
        return []
    work: list[tuple[str, str, int]] = []
    with ctx.db.read() as session:
        plan_state = session.get(PlanStateRow, plan_id)
        plan_settled = plan_state is not None and not plan_state.unresolved_providers
        for provider in pagerduty:
            pair = session.get(PairStateRow, (plan_id, provider))
            if pair is None:
                continue
            if pair.latest_ack_state == "resolved" or plan_settled:
                work += [(provider, key, attempt)
                         for key, attempt in _pending_keys(session, plan_id, provider)]
    if not work:
        return []
    decision = ctx.require("escalation.deliver", [plan_id])
    return [send_one(ctx, registry, kind="resolve", provider=provider, plan_id=plan_id,
                     run_id=None, attempt=attempt, key=key,
                     message=resolve_message(plan_id, provider), action="escalation.resolve",
                     decision=decision)
            for provider, key, attempt in work]


def acknowledge_and_resolve(ctx: StoreContext, registry: ConnectorRegistry, plan_id: str,
                            provider: str, state: str, external_ref: str | None = None,
                            notes: str | None = None) -> tuple[Acknowledgement, list[Delivery]]:
    """Record an acknowledgement, then close the PagerDuty incidents it settles.

    The one entry point for the CLI and the console, so both behave the same.
    """
    ack = acknowledge(ctx, plan_id, provider, state, external_ref, notes)
    return ack, resolve_pagerduty_incidents(ctx, registry, ack.plan_id)
