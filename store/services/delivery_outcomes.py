"""What the providers answered: each delivery moved once out of ``in_flight`` (delivered,
failed or unknown), folded into its pair's state and counted, in the caller's transaction
(SPEC §4, §7). Many at once: a live retry run finishes every send that has answered since
its last turn in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, insert, select, tuple_, update
from sqlalchemy.orm import Session

from store.counters import bump, folded
from store.direct import Direct
from store.models import Delivery
from store.policy import Decision
from store.record_digest import remember_digests, row_digests
from store.rules.retry_decision import PairHistory, fold_delivery
from store.services.context import StoreContext
from store.tables import DeliveryRow, PairStateRow

DELIVERIES = cast(Table, DeliveryRow.__table__)
PAIRS = cast(Table, PairStateRow.__table__)
_D, _P = DELIVERIES.c, PAIRS.c
PairKey = tuple[str, str]
# Built once: a statement built per call costs more than running it (hot path of a run).
# Run below SQLAlchemy's execution layer (``store.direct``): a live run's every batch.
_SELECT_PAIRS = select(PAIRS).where(tuple_(_P.plan_id, _P.provider).in_(
    bindparam("keys", expanding=True))).order_by(_P.plan_id, _P.provider)
_PAIRS = Direct(_SELECT_PAIRS)
_LOCKED_PAIRS = Direct(_SELECT_PAIRS.with_for_update())
_FINISH = Direct(update(DELIVERIES).where(
    _D.delivery_id == bindparam("b_id"), _D.status == "in_flight").values(
    status=bindparam("b_status"), status_code=bindparam("b_code"),
    latency_ms=bindparam("b_latency"), error=bindparam("b_error"),
    retry_after_s=bindparam("b_retry_after"), finished_at=bindparam("b_at"),
    in_flight_until=None).returning(*DELIVERIES.c))
_DELIVERY = Direct(select(DELIVERIES).where(_D.delivery_id == bindparam("b_id")))
_HISTORY = ("definitive_count", "failures_since_success", "failed_status_codes",
            "last_failure_at", "last_success_at", "retry_after_s", "latest_delivery_id",
            "latest_status")
_FOLD_PAIR = Direct(update(PAIRS).where(
    _P.plan_id == bindparam("b_plan"), _P.provider == bindparam("b_provider")).values(
    updated_at=bindparam("b_at"), **{name: bindparam(f"b_{name}") for name in _HISTORY}))


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


INTERRUPTED_RULE = Decision(True, "a delivery left in_flight past its deadline becomes unknown",
                            "allowed")


def locked_pairs(session: Session, keys: Sequence[PairKey], now: datetime) -> dict[PairKey, Any]:
    """Pair state rows (as mappings), created when missing, locked for this transaction (a
    no-op on SQLite, whose writers are serialised already; on PostgreSQL it prevents lost
    updates), in key order."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = {(r.plan_id, r.provider): r._asdict() for r in _LOCKED_PAIRS.rows(
        session, {"keys": wanted})}
    missing = [{"plan_id": plan_id, "provider": provider, "definitive_count": 0,
                "failures_since_success": 0, "failed_status_codes": [], "ack_pending": False,
                "updated_at": now} for plan_id, provider in wanted if (plan_id, provider)
               not in found]
    if missing:
        session.execute(insert(PAIRS), missing)
        for row in _PAIRS.rows(session, {"keys": [(m["plan_id"], m["provider"])
                                                  for m in missing]}):
            found[(row.plan_id, row.provider)] = row._asdict()
    return found


def finish_deliveries(ctx: StoreContext, session: Session,
                      outcomes: Sequence[tuple[str, DeliveryOutcome]]) -> list[Delivery]:
    """The single allowed transition out of ``in_flight``, for each (delivery, outcome).
    A delivery that already moved on (e.g. swept to unknown) keeps its first outcome."""
    now = ctx.clock()
    finished: list[Delivery] = []
    moved: list[Delivery] = []
    rows = []
    with folded(session):
        # One UPDATE … RETURNING per delivery (one round trip for all of them on PostgreSQL).
        updated = _FINISH.rows_each(session, [{
            "b_id": delivery_id, "b_status": outcome.status,
            "b_code": outcome.status_code, "b_latency": outcome.latency_ms,
            "b_error": (outcome.error or None) and outcome.error[:255],
            "b_retry_after": outcome.retry_after_s, "b_at": now}
            for delivery_id, outcome in outcomes])
        for (delivery_id, _), found in zip(outcomes, updated, strict=True):
            row = found[0] if found else None
            if row is None:
                [row] = _DELIVERY.rows(session, {"b_id": delivery_id})
                finished.append(Delivery.model_validate(row._asdict()))
            else:
                finished.append(Delivery.model_validate(row._asdict()))
                moved.append(finished[-1])
            rows.append(row)
        # Out of in_flight, a delivery never changes again: its audit event takes these.
        remember_digests(session, row_digests(DeliveryRow, rows))
        _count_outcomes(session, moved, now)
    return finished


def _count_outcomes(session: Session, deliveries: list[Delivery], now: datetime) -> None:
    for delivery in deliveries:
        group = "drill" if delivery.kind == "drill" else delivery.kind
        bump(session, f"{group}_deliveries.{delivery.status}", now)
    escalations = [d for d in deliveries if d.kind == "escalation" and d.plan_id]
    pairs = locked_pairs(session, [(d.plan_id or "", d.provider) for d in escalations], now)
    folds: dict[PairKey, PairHistory] = {}
    for delivery in escalations:
        key = (delivery.plan_id or "", delivery.provider)
        folds[key] = fold_delivery(folds.get(key) or _history(pairs[key]),
                                   delivery_id=delivery.delivery_id, status=delivery.status,
                                   status_code=delivery.status_code,
                                   retry_after_s=delivery.retry_after_s, at=now)
    if folds:
        _FOLD_PAIR.execute_many(session, [
            {"b_plan": plan_id, "b_provider": provider, "b_at": now,
             **{f"b_{name}": value for name, value in _history_columns(history).items()}}
            for (plan_id, provider), history in folds.items()])


def _history(row: dict[str, Any]) -> PairHistory:
    return PairHistory(
        definitive_count=row["definitive_count"],
        failures_since_success=row["failures_since_success"],
        failed_status_codes=tuple(row["failed_status_codes"] or ()),
        last_failure_at=row["last_failure_at"], last_success_at=row["last_success_at"],
        retry_after_s=row["retry_after_s"], latest_delivery_id=row["latest_delivery_id"],
        latest_status=row["latest_status"])


def _history_columns(history: PairHistory) -> dict[str, Any]:
    return {"definitive_count": history.definitive_count,
            "failures_since_success": history.failures_since_success,
            "failed_status_codes": list(history.failed_status_codes),
            "last_failure_at": history.last_failure_at,
            "last_success_at": history.last_success_at, "retry_after_s": history.retry_after_s,
            "latest_delivery_id": history.latest_delivery_id,
            "latest_status": history.latest_status}


def settle_interrupted(ctx: StoreContext, session: Session, delivery_id: str) -> Delivery:
    """Settle a dead sender's delivery as ``unknown``, audited like any other outcome."""
    [settled] = finish_deliveries(ctx, session, [(delivery_id, INTERRUPTED)])
    ctx.audit(session, "delivery.interrupted", INTERRUPTED_RULE,
              [delivery_id, *(x for x in (settled.plan_id, settled.schedule_run_id) if x)],
              f"{settled.provider}: unknown (sender ended mid-send)",
              settled.model_dump(mode="json"))
    return settled


@dataclass(frozen=True)
class _Interrupted:
    status: str = "unknown"
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = "interrupted: process ended mid-send"
    retry_after_s: int | None = None


INTERRUPTED = _Interrupted()


