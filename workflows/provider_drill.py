"""`cavra provider test NAME`: one clearly marked drill message, recorded as a ``drill``
delivery (never counted as an escalation). A PagerDuty drill is resolved right away so the
test incident does not stay open."""

from __future__ import annotations

import secrets
from typing import Any

from store.errors import UserError
from store.models import Delivery
from store.services.context import StoreContext
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import send_one


def drill_message(provider: str, sent_at: str) -> dict[str, Any]:
    return {
        "type": "cavra.drill",
        "drill": True,
        "provider": provider,
        "summary": f"[DRILL] CAVRA provider test for {provider}: no action needed",
        "sent_at": sent_at,
    }


def send_drill(ctx: StoreContext, registry: ConnectorRegistry, provider: str) -> list[Delivery]:
    settings = ctx.config.provider(provider)
    if settings is None:
        known = ", ".join(sorted(ctx.config.providers))
        raise UserError(f"provider {provider!r} is not configured (known: {known})")
    if not settings.enabled:
        raise UserError(f"provider {provider!r} is disabled in the config")
    decision = ctx.require("provider.test", [provider])
    key = f"cavra:drill:{provider[:40]}:{secrets.token_hex(6)}"
    drill = send_one(ctx, registry, kind="drill", provider=provider, plan_id=None,
                     schedule_run_id=None, attempt=1, key=key,
                     message=drill_message(provider, ctx.clock().isoformat()),
                     action="provider.test", decision=decision)
    results = [drill]
    if settings.kind == "pagerduty" and drill.status in ("delivered", "unknown"):
        results.append(send_one(
            ctx, registry, kind="resolve", provider=provider, plan_id=None, schedule_run_id=None,
            attempt=1, key=key, message={"type": "cavra.resolve", "drill": True,
                                         "provider": provider,
                                         "summary": f"[DRILL] CAVRA provider test for "
                                                    f"{provider}: resolved"},
            action="provider.test", decision=decision))
    return results
