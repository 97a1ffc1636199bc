"""Delivery records: one row per attempt, written ``in_flight`` before anything is sent and
moved once to delivered/failed/unknown after (SPEC §4, §7). Pair state and counters move in
the same transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, func, select, text, update
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.counters import adjust_gauge, bump
from store.errors import AlreadyDelivered, Conflict, StaleDecision
from store.evidence_check import vouched
from store.ids import new_id
from store.models import ACK_SETTLED, Delivery
from store.policy import Decision
from store.services.context import StoreContext
from store.services.escalation import track_plan_pair
from store.tables import DeliveryRow, PairStateRow

IN_FLIGHT_GRACE_S = 30
log = logging.getLogger(__name__)


class DeliveryOutcome(Protocol):
    """What the store records about one attempt (a connector's ``Outcome`` has these)."""

    @property
    def status(self) -> str: ...  # delivered | failed | unknown
    @property
    def status_code(self) -> int | None: ...
    @property
    def latency_ms(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def retry_after_s(self) -> int | None: ...


@dataclass(frozen=True)
class _Interrupted:
    status: str = "unknown"
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = "interrupted: process ended mid-send"
    retry_after_s: int | None = None


INTERRUPTED = _Interrupted()


def pair_state(session: Session, plan_id: str, provider: str, now: datetime) -> PairStateRow:
    """The pair's projection row, locked for this transaction (a no-op lock on SQLite, whose
    writers are serialised already; on PostgreSQL it prevents lost updates)."""
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


def lock_subject(session: Session, subject: str, provider: str) -> None:
    """Serialise senders of one (plan or run, provider) for the rest of the transaction.

    SQLite writers already hold the database write lock (BEGIN IMMEDIATE); PostgreSQL needs a
    transaction-scoped advisory lock so two processes cannot both pass the checks below.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                        {"key": f"cavra:{subject}:{provider}"})


def in_flight_for(session: Session, *, kind: str, plan_id: str | None, run_id: str | None,
                  provider: str) -> DeliveryRow | None:
    query = select(DeliveryRow).where(DeliveryRow.provider == provider,
                                      DeliveryRow.kind == kind,
                                      DeliveryRow.plan_id.is_(None) if plan_id is None
                                      else DeliveryRow.plan_id == plan_id,
                                      DeliveryRow.run_id.is_(None) if run_id is None
                                      else DeliveryRow.run_id == run_id,
                                      DeliveryRow.status == "in_flight")
    return session.execute(query.limit(1)).scalar_one_or_none()


def _check_still_due(session: Session, *, kind: str, provider: str, plan_id: str | None,
                     run_id: str | None, attempt: int, retrying: bool, now: datetime) -> None:
    """Refuse a send whose decision went stale between planning and sending."""
    if kind == "escalation" and plan_id:
        pair = pair_state(session, plan_id, provider, now)
        if retrying and pair.failures_since_success == 0:
            raise StaleDecision(f"{plan_id}/{provider} was delivered since the retry plan "
                                "was built")
        if pair.definitive_count + 1 != attempt:
            raise StaleDecision(f"{plan_id}/{provider} moved on: attempt {attempt} is no "
                                "longer the next one; try again")
    if kind == "executive" and run_id:
        if session.execute(select(DeliveryRow.delivery_id).where(
                DeliveryRow.run_id == run_id, DeliveryRow.provider == provider,
                DeliveryRow.status == "delivered").limit(1)).first():
            raise AlreadyDelivered(f"run {run_id} was already delivered to {provider}")
        if attempts_so_far(session, run_id=run_id, provider=provider) + 1 != attempt:
            raise StaleDecision(f"run {run_id} to {provider} moved on; try again")


SEND_RULE = Decision(True, "a delivery is recorded in_flight, and audited, before it is sent",
                     "allowed")


def begin_delivery(ctx: StoreContext, session: Session, *, kind: str, provider: str,
                   plan_id: str | None, run_id: str | None, attempt: int, idempotency_key: str,
                   target: str, payload: dict[str, Any], payload_sha256: str, timeout_s: float,
                   retry_plan_id: str | None = None, worker_run_id: str | None = None,
                   decision: Decision = SEND_RULE) -> Delivery:
    """Record the attempt before sending, so a crash leaves evidence, never a silent send.

    Audited in the same transaction: the in-flight row is vouched for (a forged one is not),
    and a refusal to audit (no key to sign with) sends nothing."""
    now = ctx.clock()
    lock_subject(session, plan_id or run_id or kind, provider)
    busy = in_flight_for(session, kind=kind, plan_id=plan_id, run_id=run_id, provider=provider)
    if busy is not None and not vouched(session, busy.delivery_id):
        # Not written by cavra (no audit event vouches for it): never block on it, never
        # settle it (settling would vouch for it); `audit verify` names it.
        log.warning("ignoring in-flight delivery %s: no audit event vouches for it",
                    busy.delivery_id)
    elif busy is not None and busy.in_flight_until is not None and as_utc(
            busy.in_flight_until) < now:
        # Its sender died mid-send: settle it as unknown rather than block the pair forever.
        settle_interrupted(ctx, session, busy.delivery_id)
    elif busy is not None:
        raise Conflict(f"delivery {busy.delivery_id} to {provider} is still in flight")
    _check_still_due(session, kind=kind, provider=provider, plan_id=plan_id, run_id=run_id,
                     attempt=attempt, retrying=worker_run_id is not None, now=now)
    row = DeliveryRow(
        delivery_id=new_id("delivery"), kind=kind, plan_id=plan_id, run_id=run_id,
        provider=provider, status="in_flight", attempt=attempt, idempotency_key=idempotency_key,
        target=target, payload_sha256=payload_sha256, retry_plan_id=retry_plan_id,
        worker_run_id=worker_run_id, created_at=now, created_by=ctx.identity.actor,
        in_flight_until=now + timedelta(seconds=timeout_s + IN_FLIGHT_GRACE_S),
    )
    session.add(row)
    if kind == "escalation" and plan_id:
        pair = pair_state(session, plan_id, provider, now)
        set_ack_pending(session, pair, pair.latest_ack_state not in ACK_SETTLED)
        track_plan_pair(session, plan_id, provider,
                        settled=pair.latest_ack_state in ("resolved", "dismissed"))
    session.flush()
    started = Delivery.model_validate(row)
    ctx.audit(session, "delivery.start", decision, [started.delivery_id, *(x for x in (
        plan_id, run_id, worker_run_id) if x)], f"{provider}: sending attempt {attempt}",
        started.model_dump(mode="json"))
    return started


def finish_delivery(ctx: StoreContext, session: Session, delivery_id: str,
                    outcome: DeliveryOutcome) -> Delivery:
    """The single allowed transition out of ``in_flight``."""
    now = ctx.clock()
    result = session.execute(
        update(DeliveryRow).where(DeliveryRow.delivery_id == delivery_id,
                                  DeliveryRow.status == "in_flight")
        .values(status=outcome.status, status_code=outcome.status_code,
                latency_ms=outcome.latency_ms, error=(outcome.error or None) and
                outcome.error[:255], retry_after_s=outcome.retry_after_s, finished_at=now,
                in_flight_until=None))
    row = session.get(DeliveryRow, delivery_id, populate_existing=True)
    assert row is not None
    if cast(CursorResult[Any], result).rowcount == 0:
        # Already moved on (e.g. swept to unknown): the first outcome stands.
        return Delivery.model_validate(row)
    _count_outcome(session, row, now)
    return Delivery.model_validate(row)


def _count_outcome(session: Session, row: DeliveryRow, now: datetime) -> None:
    if row.kind == "drill":
        bump(session, f"drill_deliveries.{row.status}", now)
        return
    bump(session, f"{row.kind}_deliveries.{row.status}", now)
    if row.kind != "escalation" or not row.plan_id:
        return
    pair = pair_state(session, row.plan_id, row.provider, now)
    pair.latest_delivery_id = row.delivery_id
    pair.latest_status = row.status
    pair.updated_at = now
    if row.status in ("delivered", "failed"):
        pair.definitive_count += 1
    if row.status == "delivered":
        pair.failures_since_success = 0
        pair.failed_status_codes = []
        pair.last_success_at = now
        pair.retry_after_s = None
    else:
        pair.failures_since_success += 1
        pair.last_failure_at = now
        pair.retry_after_s = row.retry_after_s
        if row.status_code is not None:
            pair.failed_status_codes = [*pair.failed_status_codes, row.status_code][-10:]


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


INTERRUPTED_RULE = Decision(True, "a delivery left in_flight past its deadline becomes unknown",
                            "allowed")


def settle_interrupted(ctx: StoreContext, session: Session, delivery_id: str) -> Delivery:
    """Settle a dead sender's delivery as ``unknown``, audited like any other outcome."""
    settled = finish_delivery(ctx, session, delivery_id, INTERRUPTED)
    ctx.audit(session, "delivery.interrupted", INTERRUPTED_RULE,
              [delivery_id, *(x for x in (settled.plan_id, settled.run_id) if x)],
              f"{settled.provider}: unknown (sender ended mid-send)",
              settled.model_dump(mode="json"))
    return settled


def attempts_so_far(session: Session, *, run_id: str, provider: str) -> int:
    return session.execute(select(func.count()).select_from(DeliveryRow).where(
        DeliveryRow.run_id == run_id, DeliveryRow.provider == provider,
        DeliveryRow.status.in_(("delivered", "failed")))).scalar_one()
