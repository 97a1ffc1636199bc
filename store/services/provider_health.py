"""Persisted circuit-breaker state per provider (SPEC §7), read in constant time.

The row is derived state, written in the same transaction as the delivery outcome it
reflects: after N consecutive failures a provider is open for a cool-down, so automated sends
stop hammering it; after the cool-down one trial goes through (half-open) and its outcome
closes or re-opens the circuit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, bindparam, select

from store.clock import as_utc
from store.core_tables import provider_health, upsert
from store.direct import Direct

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store.config import CircuitConfig
    from store.models import Delivery
    from store.services.context import StoreContext

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


def effective_state(row: Any, now: datetime) -> CircuitState:
    """An open circuit whose cool-down has passed lets one trial through (half-open).
    ``row``: the provider's row (ORM or Core, both have ``state`` and ``opened_until``)."""
    if row is None or row.state != "open":
        return "closed"
    if row.opened_until is None or as_utc(row.opened_until) <= as_utc(now):
        return "half_open"
    return "open"


def _model(name: str, row: Any, now: datetime) -> ProviderHealth:
    if row is None:
        return ProviderHealth(name=name, state="closed")
    return ProviderHealth(
        name=name, state=effective_state(row, now),
        consecutive_failures=row.consecutive_failures,
        opened_until=as_utc(row.opened_until) if row.opened_until else None,
        last_error=row.last_error,
        last_failure_at=as_utc(row.last_failure_at) if row.last_failure_at else None,
        last_success_at=as_utc(row.last_success_at) if row.last_success_at else None)


# Reads run on Core (a session or a connection): the dashboard's metrics never load the ORM.

def read_provider_health(session: Session | Connection, name: str,
                         now: datetime) -> ProviderHealth:
    row = session.execute(select(provider_health).where(
        provider_health.c.name == name)).first()
    return _model(name, row, now)


def read_all_provider_health(session: Session | Connection,
                             now: datetime) -> dict[str, ProviderHealth]:
    rows = session.execute(select(provider_health).order_by(provider_health.c.name)
                           .limit(MAX_PROVIDERS_SHOWN)).all()
    return {row.name: _model(row.name, row, now) for row in rows}


def provider_states(ctx: StoreContext) -> dict[str, ProviderHealth]:
    """Every provider's breaker as it stands now (`cavra provider list`)."""
    with ctx.db.connect() as conn:
        return read_all_provider_health(conn, ctx.clock())


def record_outcomes(ctx: StoreContext, session: Session, deliveries: list[Delivery]) -> None:
    """Fold finished deliveries, in order, into their providers' breakers (``[circuit]``),
    in the caller's transaction: each provider's row is created if missing, locked (in name
    order), and written once."""
    policy, now = ctx.config.circuit, ctx.clock()
    counted = [d for d in deliveries if d.status in COUNTED_STATUSES]
    names = sorted({d.provider for d in counted})
    if not names:
        return
    rows = {row.name: row._asdict() for row in _LOCKED_ROWS.rows(session, {"names": names})}
    missing = [name for name in names if name not in rows]
    if missing:  # a provider's first counted outcome
        dialect = session.get_bind().dialect.name
        if dialect not in _ENSURE_ROW:
            _ENSURE_ROW[dialect] = upsert(session, provider_health).on_conflict_do_nothing(
                index_elements=["name"])
        session.execute(_ENSURE_ROW[dialect], [
            {"name": name, "consecutive_failures": 0, "state": "closed", "updated_at": now}
            for name in missing])
        rows.update((row.name, row._asdict())
                    for row in _LOCKED_ROWS.rows(session, {"names": missing}))
    for delivery in counted:
        _fold(rows[delivery.provider], delivery, policy, now)
    _WRITE_ROW.execute_many(session, [{f"b_{k}": v for k, v in rows[name].items()}
                                      for name in names])


# Built once (the retry worker's hot path: below SQLAlchemy's execution layer, see
# ``store.direct``); the insert depends on the dialect.
_ENSURE_ROW: dict[str, Any] = {}
_LOCKED_ROWS = Direct(select(provider_health).where(provider_health.c.name.in_(
    bindparam("names", expanding=True))).order_by(provider_health.c.name).with_for_update())
_WRITE_ROW = Direct(provider_health.update().where(
    provider_health.c.name == bindparam("b_name")).values(
    {c.name: bindparam(f"b_{c.name}") for c in provider_health.c if c.name != "name"}))


def _fold(row: dict[str, Any], delivery: Delivery, policy: CircuitConfig,
          now: datetime) -> None:
    row["updated_at"] = now
    if delivery.status == "delivered":
        row.update(consecutive_failures=0, state="closed", opened_until=None,
                   last_success_at=now)
        return
    # failed or unknown: a timeout counts too, the provider did not answer in time.
    was = effective_state(SimpleNamespace(**row), now)
    row["consecutive_failures"] += 1
    row["last_failure_at"] = now
    row["last_error"] = delivery.error
    if row["consecutive_failures"] >= policy.failure_threshold or was == "half_open":
        cooldown = max(policy.cooldown_s, delivery.retry_after_s or 0)
        row["state"] = "open"
        row["opened_until"] = now + timedelta(seconds=cooldown)
