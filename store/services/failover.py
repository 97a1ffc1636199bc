"""Failover (issue 13, step 2): the facts ``store.rules.failover`` decides on, the claim of a
pair's one failover, and the claims a delivery's evidence shows.

The candidates are read from the open plans only: ``plan_state``'s ``(open, plan_id)`` index,
each plan's pairs by ``pair_state``'s key, the latest delivery by its key (its status code)
and no claim yet (``failover_claims``' key), in keyset batches of ``BATCH`` pairs. Nothing
reads the delivery history, so a run costs the same with a million old deliveries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, exists, or_, select
from sqlalchemy.orm import Session

from store.config import CavraConfig
from store.core_tables import provider_health, upsert
from store.models import Delivery, FailoverClaim, FailoverEvidence
from store.rules.failover import (
    FailoverDecision,
    FailoverPairFacts,
    FailoverTarget,
    decide_failover,
)
from store.services.context import StoreContext
from store.services.follow_up import delivered_providers
from store.services.provider_health import effective_state
from store.tables import DeliveryRow, FailoverClaimRow, PairStateRow, PlanStateRow

BATCH = 200  # pairs read (and decided) per query

_CLAIMS = cast(Table, FailoverClaimRow.__table__)
_C = _CLAIMS.c
_STATE_T = cast(Table, PlanStateRow.__table__)
_PAIR_T = cast(Table, PairStateRow.__table__)
_D_T = cast(Table, DeliveryRow.__table__)
_STATE, _PAIR, _D = _STATE_T.c, _PAIR_T.c, _D_T.c

_CLAIMED = exists().where(_C.plan_id == _PAIR.plan_id, _C.provider == _PAIR.provider)
_CANDIDATES = (
    select(_PAIR.plan_id, _PAIR.provider, _PAIR.failures_since_success, _PAIR.latest_status,
           _PAIR.latest_ack_state, _D.status_code)
    .select_from(_STATE_T)
    .join(_PAIR_T, _PAIR.plan_id == _STATE.plan_id)
    .outerjoin(_D_T, _D.delivery_id == _PAIR.latest_delivery_id)
    .where(_STATE.open.is_(True), _PAIR.failures_since_success > 0,
           _PAIR.latest_status.in_(("failed", "unknown")), ~_CLAIMED))


def target_of(config: CavraConfig, provider: str) -> FailoverTarget:
    name = config.failover_for(provider)
    settings = config.provider(name) if name else None
    return FailoverTarget(name, configured=name is None or settings is not None,
                          enabled=settings is None or settings.enabled)


def _circuits(session: Session, providers: Collection[str], now: datetime) -> dict[str, Any]:
    if not providers:
        return {}
    rows = session.execute(select(provider_health).where(
        provider_health.c.name.in_(sorted(providers)))).all()
    return {row.name: effective_state(row, now) for row in rows}


def _decide(session: Session, config: CavraConfig, rows: list[Any],
            now: datetime) -> list[FailoverDecision]:
    circuits = _circuits(session, {row.provider for row in rows}, now)
    delivered = delivered_providers(session, {row.plan_id for row in rows})
    decisions = []
    for row in rows:
        settings = config.provider(row.provider)
        facts = FailoverPairFacts(
            plan_id=row.plan_id, provider=row.provider,
            failures_since_success=int(row.failures_since_success),
            latest_status=row.latest_status, latest_status_code=row.status_code,
            latest_ack_state=row.latest_ack_state,
            provider_kind=settings.kind if settings else None,
            circuit=circuits.get(row.provider, "closed"))
        decision = decide_failover(facts, target_of(config, row.provider),
                                   delivered=frozenset(delivered.get(row.plan_id, ())),
                                   max_attempts=config.retry.max_attempts)
        if decision is not None:
            decisions.append(decision)
    return decisions


def suppressed_pairs(ctx: StoreContext, now: datetime) -> Iterator[FailoverDecision]:
    """The failover decision of every suppressed, unclaimed pair of an open plan, ``BATCH``
    pairs per query (keyset on (plan, provider)), each batch in its own short read."""
    after = ("", "")
    while True:
        with ctx.db.read() as session:
            rows = list(session.execute(_CANDIDATES.where(or_(
                _PAIR.plan_id > after[0],
                and_(_PAIR.plan_id == after[0], _PAIR.provider > after[1])))
                .order_by(_PAIR.plan_id, _PAIR.provider).limit(BATCH)).all())
            decisions = _decide(session, ctx.config, rows, now)
        yield from decisions
        if len(rows) < BATCH:
            return
        after = (rows[-1].plan_id, rows[-1].provider)


def decide_pair_now(ctx: StoreContext, session: Session, plan_id: str, provider: str,
                    now: datetime) -> FailoverDecision | None:
    """The pair's failover as it holds now, in the caller's (write) transaction. None: no
    longer suppressed, its plan closed, or its pair claimed."""
    rows = list(session.execute(_CANDIDATES.where(_PAIR.plan_id == plan_id,
                                                  _PAIR.provider == provider)).all())
    decisions = _decide(session, ctx.config, rows, now)
    return decisions[0] if decisions else None


def is_claimed(ctx: StoreContext, session: Session, plan_id: str, provider: str) -> bool:
    """In the caller's transaction (``ctx`` first, as for every service a workflow calls)."""
    return session.execute(select(_C.plan_id).where(
        _C.plan_id == plan_id, _C.provider == provider)).first() is not None


def claim_failover(ctx: StoreContext, session: Session, decision: FailoverDecision, *,
                   run_id: str, status: str) -> bool:
    """Claim the pair's failover for this run, in the caller's transaction (the one that
    records the failover send). False: another run claimed it first; this one sends nothing."""
    assert decision.target is not None
    statement = upsert(session, _CLAIMS).values(
        plan_id=decision.plan_id, provider=decision.provider, target=decision.target,
        reason=decision.reason[:128], status=status, run_id=run_id, created_at=ctx.clock(),
        created_by=ctx.identity.actor,
    ).on_conflict_do_nothing(index_elements=["plan_id", "provider"]).returning(_C.plan_id)
    return session.execute(statement).first() is not None


def failover_evidence(session: Session, delivery: Delivery) -> FailoverEvidence | None:
    """The claims a delivery's evidence shows: the claim its send was made for (a follow-up
    run's send to that claim's target), and its own pair's claim. Key lookups on the claims
    of its plan (a few rows: one per provider of the plan at most)."""
    if not delivery.plan_id or delivery.kind != "escalation":
        return None
    rows = session.execute(select(_CLAIMS).where(_C.plan_id == delivery.plan_id,
                                                 or_(_C.provider == delivery.provider,
                                                     _C.target == delivery.provider))
                           .limit(50)).all()
    claims = [FailoverClaim.model_validate(row._mapping) for row in rows]
    sent_for = next((c for c in claims if c.target == delivery.provider and c.status == "sent"
                     and c.follow_up_run_id == delivery.sent_by_run_id), None)
    own = next((c for c in claims if c.provider == delivery.provider), None)
    if sent_for is None and own is None:
        return None
    return FailoverEvidence(sent_for=sent_for, pair_failed_over=own)
