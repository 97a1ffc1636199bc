"""Persisted circuit-breaker state per provider (SPEC §7), read in constant time.

The row is derived state, written in the same transaction as the delivery outcome it
reflects: after N consecutive failures a provider is open for a cool-down, so automated sends
stop hammering it; after the cool-down one trial goes through (half-open) and its outcome
closes or re-opens the circuit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.config import CircuitConfig
from store.models import Delivery
from store.tables import ProviderHealthRow

CircuitState = Literal["closed", "open", "half_open"]
COUNTED_STATUSES = frozenset({"delivered", "failed", "unknown"})
MAX_PROVIDERS_SHOWN = 200  # metrics stay a bounded read even with a very long provider list


class ProviderHealth(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    state: CircuitState
    consecutive_failures: int = 0
    opened_until: datetime | None = None
    last_error: str | None = None
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None


def effective_state(row: ProviderHealthRow | None, now: datetime) -> CircuitState:
    """An open circuit whose cool-down has passed lets one trial through (half-open)."""
    if row is None or row.state != "open":
        return "closed"
    if row.opened_until is None or as_utc(row.opened_until) <= as_utc(now):
        return "half_open"
    return "open"


def _model(name: str, row: ProviderHealthRow | None, now: datetime) -> ProviderHealth:
    if row is None:
        return ProviderHealth(name=name, state="closed")
    return ProviderHealth(
        name=name, state=effective_state(row, now),
        consecutive_failures=row.consecutive_failures,
        opened_until=as_utc(row.opened_until) if row.opened_until else None,
        last_error=row.last_error,
        last_failure_at=as_utc(row.last_failure_at) if row.last_failure_at else None,
        last_success_at=as_utc(row.last_success_at) if row.last_success_at else None)


def read_provider_health(session: Session, name: str, now: datetime) -> ProviderHealth:
    return _model(name, session.get(ProviderHealthRow, name), now)


def read_all_provider_health(session: Session, now: datetime) -> dict[str, ProviderHealth]:
    rows = session.execute(select(ProviderHealthRow).order_by(ProviderHealthRow.name)
                           .limit(MAX_PROVIDERS_SHOWN)).scalars()
    return {row.name: _model(row.name, row, now) for row in rows}


def locked_health_row(session: Session, name: str, now: datetime) -> ProviderHealthRow:
    """The provider's row, created if missing and locked for this transaction."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(ProviderHealthRow).values(
        name=name, consecutive_failures=0, state="closed", updated_at=now,
    ).on_conflict_do_nothing(index_elements=["name"]))
    row = session.execute(select(ProviderHealthRow).where(ProviderHealthRow.name == name)
                          .with_for_update().execution_options(populate_existing=True)
                          ).scalar_one()
    return row


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
