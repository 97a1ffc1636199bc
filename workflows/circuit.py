"""Per-provider circuit breaker (SPEC §7): after N consecutive failures a provider is open for
a cool-down, so automated sends stop hammering it; after the cool-down one trial goes through
(half-open) and its outcome closes or re-opens the circuit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from store.config import CircuitConfig
from store.models import Delivery
from store.services.provider_health import (
    ProviderHealth,
    effective_state,
    locked_health_row,
    read_health,
)

SKIP_REASON = "provider_circuit_open"
COUNTED_STATUSES = frozenset({"delivered", "failed", "unknown"})


def health(session: Session, provider: str, now: datetime) -> ProviderHealth:
    return read_health(session, provider, now)


def is_open(session: Session, provider: str, now: datetime) -> bool:
    """True while the cool-down runs; a half-open circuit lets the next send through."""
    return read_health(session, provider, now).state == "open"


def record_outcome(session: Session, delivery: Delivery, policy: CircuitConfig,
                   now: datetime) -> None:
    """Fold one finished delivery into its provider's breaker, in the delivery's transaction."""
    if delivery.status not in COUNTED_STATUSES:
        return
    row = locked_health_row(session, delivery.provider, now)
    row.updated_at = now
    if delivery.status == "delivered":
        row.consecutive_failures = 0
        row.state = "closed"
        row.opened_until = None
        row.last_success_at = now
        return
    # failed or unknown: a timeout counts too, the provider did not answer in time.
    was = effective_state(row, now)
    row.consecutive_failures += 1
    row.last_failure_at = now
    row.last_error = delivery.error
    if row.consecutive_failures >= policy.failure_threshold or was == "half_open":
        cooldown = max(policy.cooldown_s, delivery.retry_after_s or 0)
        row.state = "open"
        row.opened_until = now + timedelta(seconds=cooldown)
