"""Delivery records: one row per attempt, written ``in_flight`` before anything is sent and
moved once to delivered/failed/unknown after (SPEC §4, §7). Pair state and counters move in
the same transaction. One send at a time here; ``delivery_ledger`` (begin) and
``delivery_outcomes`` (finish) do the work, for one send or many."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.counters import adjust_gauge
from store.evidence_check import vouched
from store.models import Delivery
from store.policy import Decision
from store.services.context import StoreContext
from store.services.delivery_ledger import SEND_RULE, SendRequest, begin_deliveries
from store.services.delivery_outcomes import (
    DeliveryOutcome,
    finish_deliveries,
    settle_interrupted,
)
from store.tables import DeliveryRow, PairStateRow

__all__ = ["begin_delivery", "finish_delivery", "pair_state", "set_ack_pending",
           "settle_interrupted", "sweep_stale_in_flight"]
log = logging.getLogger(__name__)


def pair_state(session: Session, plan_id: str, provider: str, now: datetime) -> PairStateRow:
    """The pair's projection row (ORM, for acknowledgements), locked for this transaction (a
    no-op lock on SQLite, whose writers are serialised already; on PostgreSQL it prevents
    lost updates)."""
    row = session.get(PairStateRow, (plan_id, provider), with_for_update=True,
                      populate_existing=True)
    if row is None:
        row = PairStateRow(plan_id=plan_id, provider=provider, definitive_count=0,
                           failures_since_success=0, failed_status_codes=[], ack_pending=False,
                           updated_at=now)
        session.add(row)
        session.flush()
    return row


def set_ack_pending(session: Session, pair: PairStateRow, pending: bool) -> None:
    if pair.ack_pending != pending:
        adjust_gauge(session, "ack_pending", 1 if pending else -1)
        pair.ack_pending = pending


def begin_delivery(ctx: StoreContext, session: Session, *, kind: str, provider: str,
                   plan_id: str | None, schedule_run_id: str | None, attempt: int,
                   idempotency_key: str, target: str, payload: dict[str, Any],
                   payload_sha256: str, timeout_s: float, retry_plan_id: str | None = None,
                   sent_by_run_id: str | None = None,
                   decision: Decision = SEND_RULE) -> Delivery:
    """Record the attempt before sending, or raise why it may not be sent (``Conflict``,
    ``StaleDecision``, ``AlreadyDelivered``): the transaction then writes nothing."""
    [started] = begin_deliveries(ctx, session, [SendRequest(
        kind=kind, provider=provider, plan_id=plan_id, schedule_run_id=schedule_run_id,
        attempt=attempt, idempotency_key=idempotency_key, target=target,
        payload_sha256=payload_sha256, timeout_s=timeout_s, retry_plan_id=retry_plan_id,
        sent_by_run_id=sent_by_run_id)],
        decision=decision)
    if not isinstance(started, Delivery):
        raise started
    return started


def finish_delivery(ctx: StoreContext, session: Session, delivery_id: str,
                    outcome: DeliveryOutcome) -> Delivery:
    """The single allowed transition out of ``in_flight``."""
    [finished] = finish_deliveries(ctx, session, [(delivery_id, outcome)])
    return finished


def sweep_stale_in_flight(ctx: StoreContext) -> list[str]:
    """Deliveries left ``in_flight`` past their deadline (a crash) become ``unknown``.

    They are not resent blindly: a retry reuses the same idempotency key.
    """
    now = ctx.clock()
    with ctx.write() as session:
        stale = session.execute(select(DeliveryRow.delivery_id).where(
            DeliveryRow.status == "in_flight", DeliveryRow.in_flight_until < now)).scalars().all()
        settled = []
        for delivery_id in stale:
            if not vouched(session, delivery_id):
                log.warning("not settling delivery %s: no audit event vouches for it",
                            delivery_id)
                continue
            settle_interrupted(ctx, session, delivery_id)
            settled.append(delivery_id)
    return settled
