"""Resolve PagerDuty incidents when their escalation is resolved (SPEC §7).

A (plan, pagerduty provider) pair is resolved when its latest acknowledgement is
``resolved``, or when every provider of the plan is settled (resolved or dismissed). Each
dedup key the pair triggered (deliveries ``delivered`` or ``unknown``) gets one ``resolve``
event, recorded as a ``resolve`` delivery; keys already resolved are not sent again.
"""

from __future__ import annotations

from store.models import Acknowledgement, Delivery
from store.services.acknowledgements import acknowledge
from store.services.context import StoreContext
from store.services.send_state import pending_resolves
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import send_one


def resolve_message(plan_id: str, provider: str) -> dict[str, str]:
    return {"type": "cavra.resolve", "plan_id": plan_id, "provider": provider,
            "summary": f"CAVRA escalation {plan_id} resolved"}


def resolve_pagerduty_incidents(ctx: StoreContext, registry: ConnectorRegistry,
                                plan_id: str) -> list[Delivery]:
    pagerduty = [name for name, p in ctx.config.providers.items()
                 if p.kind == "pagerduty" and p.enabled]
    if not pagerduty:
        return []
    work = pending_resolves(ctx, plan_id, pagerduty)
    if not work:
        return []
    decision = ctx.require("escalation.deliver", [plan_id])
    return [send_one(ctx, registry, kind="resolve", provider=provider, plan_id=plan_id,
                     schedule_run_id=None, attempt=attempt, key=key,
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
