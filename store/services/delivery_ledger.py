"""Sends recorded before they go: one transaction begins a batch — every attempt written
``in_flight`` and audited before anything is sent — with pair state, plan state and counters
in the same transaction (SPEC §4, §7). ``delivery_outcomes`` records what came back.

Each send is checked on its own — still in flight elsewhere, still due — so one refusal
never stops the rest of the batch. Rows are read and written with SQLAlchemy Core, a handful
of statements per batch: the live retry worker sends many pairs at once, and SQLite has one
writer at a time. ``begin_delivery`` in ``deliveries`` is the batch of one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from store.audit import batched_audit
from store.clock import as_utc
from store.counters import adjust_gauge, folded
from store.direct import Direct
from store.errors import AlreadyDelivered, Conflict, StaleDecision
from store.evidence_check import vouched
from store.ids import kind_of, new_id
from store.models import ACK_ANSWERED, Delivery
from store.policy import Decision
from store.record_digest import remember_digests, row_digests
from store.rules.retry_decision import staleness
from store.services.context import StoreContext
from store.services.delivery_outcomes import (
    DELIVERIES,
    PAIRS,
    PairKey,
    locked_pairs,
    settle_interrupted,
)
from store.services.escalation import track_plan_pairs
from store.tables import DeliveryRow

IN_FLIGHT_GRACE_S = 30
log = logging.getLogger(__name__)
_D, _P = DELIVERIES.c, PAIRS.c
# Built once: a statement built per call costs more than running it (hot path of a run).
# Below SQLAlchemy's execution layer (``store.direct``): every batch a live run begins.
_IN_FLIGHT = Direct(select(_D.delivery_id, _D.kind, _D.provider, _D.plan_id, _D.run_id,
                           _D.in_flight_until).where(_D.status == "in_flight", _D.provider.in_(
                               bindparam("providers", expanding=True))))
# RETURNING: the rows as stored, whose digests their delivery.start events record (no read
# back of the rows just written).
_INSERT_DELIVERIES = Direct(insert(DELIVERIES).returning(*DELIVERIES.c))


@dataclass(frozen=True)
class SendRequest:
    """One attempt to record before it is sent."""

    kind: str
    provider: str
    plan_id: str | None
    schedule_run_id: str | None  # an executive report's run
    attempt: int
    idempotency_key: str
    target: str
    payload_sha256: str
    timeout_s: float
    retry_plan_id: str | None = None
    sent_by_run_id: str | None = None  # the worker or follow-up run sending it

    @property
    def subject(self) -> tuple[str, str, str | None, str | None]:
        return (self.kind, self.provider, self.plan_id, self.schedule_run_id)


SEND_RULE = Decision(True, "a delivery is recorded in_flight, and audited, before it is sent",
                     "allowed")


@contextmanager
def send_batch(ctx: StoreContext, known: Mapping[str, str] | None = None) -> Iterator[Session]:
    """One write transaction for a batch of sends: its counters and audit events are written
    together when it ends (still inside it). Never held across a network send. ``known``:
    digests of append-only evidence rows read earlier (a run's plans, from
    ``read_plans_with_digests``), which its audit events then record without reading them."""
    with ctx.write() as session, folded(session), batched_audit(session):
        if known:
            remember_digests(session, known)
        yield session


def lock_subjects(session: Session, subjects: Sequence[tuple[str, str]]) -> None:
    """Serialise senders of each (plan or run, provider) for the rest of the transaction.

    SQLite writers already hold the database write lock (BEGIN IMMEDIATE); PostgreSQL takes a
    transaction-scoped advisory lock per pair, all of them first and in one order, so two
    processes can neither both pass the checks nor deadlock on each other's rows."""
    if session.get_bind().dialect.name == "postgresql":
        # One driver call: psycopg pipelines them, and the server runs them in this order.
        _ADVISORY_LOCK.execute_many(session, [{"key": f"cavra:{subject}:{provider}"}
                                              for subject, provider in sorted(set(subjects))])


_ADVISORY_LOCK = Direct(text("SELECT pg_advisory_xact_lock(hashtext(:key))"))


def _in_flight(session: Session, requests: Sequence[SendRequest]) -> dict[Any, Any]:
    """The first in-flight row of each request's subject (few rows: the status index)."""
    providers = sorted({r.provider for r in requests})
    rows = _IN_FLIGHT.rows(session, {"providers": providers})
    found: dict[Any, Any] = {}
    for row in rows:
        found.setdefault((row.kind, row.provider, row.plan_id, row.run_id), row)
    return found


def _check_still_due(session: Session, request: SendRequest, pair: dict[str, Any] | None,
                     retrying: bool) -> None:
    """Refuse a send whose decision went stale between planning and sending."""
    plan_id, provider, attempt = request.plan_id, request.provider, request.attempt
    stale = None if pair is None else staleness(
        retrying=retrying, failures_since_success=pair["failures_since_success"],
        definitive_count=pair["definitive_count"], attempt=attempt)
    if stale == "delivered_since":
        raise StaleDecision(f"{plan_id}/{provider} was delivered since the retry plan was built")
    if stale == "moved_on":
        raise StaleDecision(f"{plan_id}/{provider} moved on: attempt {attempt} is no longer "
                            "the next one; try again")
    run_id = request.schedule_run_id
    if request.kind == "executive" and run_id:
        if session.execute(select(_D.delivery_id).where(
                _D.run_id == run_id, _D.provider == provider,
                _D.status == "delivered").limit(1)).first():
            raise AlreadyDelivered(f"run {run_id} was already delivered to {provider}")
        if attempts_so_far(session, run_id=run_id, provider=provider) + 1 != attempt:
            raise StaleDecision(f"run {run_id} to {provider} moved on; try again")


def _escalation(request: SendRequest) -> PairKey | None:
    return (request.plan_id, request.provider) if (
        request.kind == "escalation" and request.plan_id) else None


def begin_deliveries(ctx: StoreContext, session: Session, requests: Sequence[SendRequest], *,
                     decision: Decision = SEND_RULE) -> list[Delivery | Conflict]:
    """Record each attempt before it is sent, so a crash leaves evidence, never a silent send:
    the started delivery, or why it may not be sent (``Conflict``, ``StaleDecision``,
    ``AlreadyDelivered``), one per request, in order.

    Audited in the same transaction: each in-flight row is vouched for (a forged one is not),
    and a refusal to audit (no key to sign with) records, and sends, nothing."""
    now = ctx.clock()
    with folded(session), batched_audit(session):
        lock_subjects(session, [(r.plan_id or r.schedule_run_id or r.kind, r.provider)
                                for r in requests])
        busy = _in_flight(session, requests)
        refused: dict[int, Conflict] = {}
        for index, request in enumerate(requests):
            row = busy.get(request.subject)
            if row is None:
                continue
            if not vouched(session, row.delivery_id):
                # Not written by cavra (no audit event vouches for it): never block on it,
                # never settle it (settling would vouch for it); `audit verify` names it.
                log.warning("ignoring in-flight delivery %s: no audit event vouches for it",
                            row.delivery_id)
            elif row.in_flight_until is not None and as_utc(row.in_flight_until) < now:
                # Its sender died mid-send: settle it as unknown rather than block the pair.
                settle_interrupted(ctx, session, row.delivery_id)
            else:
                refused[index] = Conflict(f"delivery {row.delivery_id} to {request.provider} "
                                          "is still in flight")
        pairs = locked_pairs(session, [k for r in requests if (k := _escalation(r))], now)
        results: list[Delivery | Conflict] = []
        rows: list[dict[str, Any]] = []
        taken: set[Any] = set()
        plan_changes: list[tuple[str, str, bool]] = []
        for index, request in enumerate(requests):
            key = _escalation(request)
            pair = pairs.get(key) if key else None
            try:
                if index in refused:
                    raise refused[index]
                if request.subject in taken:
                    raise Conflict(f"a delivery to {request.provider} is already starting")
                # A retry worker run's send is a retry; a follow-up run's (fup-…, also in
                # sent_by_run_id) is a level's first send to that provider.
                _check_still_due(session, request, pair, retrying=request.sent_by_run_id
                                 is not None and kind_of(request.sent_by_run_id)
                                 != "follow_up_run")
            except Conflict as exc:
                results.append(exc)
                continue
            taken.add(request.subject)
            row = {
                "delivery_id": new_id("delivery"), "kind": request.kind,
                "plan_id": request.plan_id, "run_id": request.schedule_run_id,
                "provider": request.provider, "status": "in_flight", "status_code": None,
                "latency_ms": None, "attempt": request.attempt,
                "idempotency_key": request.idempotency_key, "target": request.target,
                "payload_sha256": request.payload_sha256, "error": None,
                "retry_after_s": None, "retry_plan_id": request.retry_plan_id,
                "worker_run_id": request.sent_by_run_id, "created_at": now,
                "created_by": ctx.identity.actor, "finished_at": None,
                "in_flight_until": now + timedelta(seconds=request.timeout_s
                                                   + IN_FLIGHT_GRACE_S),
            }
            rows.append(row)
            results.append(Delivery.model_validate(row))
            if key and pair is not None:
                _mark_ack_pending(session, pair, pair["latest_ack_state"] not in ACK_ANSWERED)
                plan_changes.append((*key, pair["latest_ack_state"] in ("resolved",
                                                                        "dismissed")))
        if rows:
            inserted = _INSERT_DELIVERIES.rows_each(session, rows)
            # Written once in this transaction (finishing them is another's): their events
            # take these digests.
            remember_digests(session, row_digests(DeliveryRow, [
                row for found in inserted for row in found]))
        track_plan_pairs(session, plan_changes)
        for started in results:
            if isinstance(started, Delivery):
                ctx.audit(session, "delivery.start", decision, [started.delivery_id, *(
                    x for x in (started.plan_id, started.schedule_run_id,
                                started.sent_by_run_id) if x)],
                    f"{started.provider}: sending attempt {started.attempt}",
                    started.model_dump(mode="json"))
    return results


def _mark_ack_pending(session: Session, pair: dict[str, Any], pending: bool) -> None:
    if pair["ack_pending"] != pending:
        adjust_gauge(session, "ack_pending", 1 if pending else -1)
        pair["ack_pending"] = pending
        session.execute(update(PAIRS).where(
            _P.plan_id == pair["plan_id"], _P.provider == pair["provider"]).values(
            ack_pending=pending))


def attempts_so_far(session: Session, *, run_id: str, provider: str) -> int:
    return int(session.execute(select(func.count()).select_from(DELIVERIES).where(
        _D.run_id == run_id, _D.provider == provider,
        _D.status.in_(("delivered", "failed")))).scalar_one())
