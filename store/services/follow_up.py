"""Escalation follow-up (issue 13): the facts ``store.rules.follow_up`` decides on, the claim
of a plan's next level, the follow-up run's record, and the level of each plan a console
page shows.

The facts of a batch of plans are one query: per plan its alert level, whether it is open,
the highest level claimed (and when), its first escalation delivery and whether any of its
pairs holds a clearing acknowledgement — correlated subqueries on primary keys and the
pair index, so a batch costs the same with a million old deliveries as with none. A run
reads only the open plans (``plan_state``'s ``(open, plan_id)`` index), in batches.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, cast

from pydantic import Field
from sqlalchemy import Table, exists, func, select
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.config import CavraConfig
from store.core_tables import upsert
from store.counters import bump
from store.models import ACK_ANSWERED, FollowUpRun, Page, PlanWithLevel, Record
from store.rules.follow_up import FollowUpDecision, PlanFacts, decide_follow_up, policy_levels
from store.services.context import StoreContext
from store.services.listing import list_plans
from store.tables import (
    DeliveryRow,
    FollowUpClaimRow,
    FollowUpRunRow,
    PairStateRow,
    PlanStateRow,
)

BATCH = 200  # open plans read (and decided) per query
TIMELINE_LEVELS = 20  # a plan's claimed levels shown in its timeline (levels are few)

_STATE = cast(Table, PlanStateRow.__table__).c
_CLAIMS = cast(Table, FollowUpClaimRow.__table__)
_C = _CLAIMS.c
_D = cast(Table, DeliveryRow.__table__).c
_PAIR = cast(Table, PairStateRow.__table__).c

_TOP_LEVEL = (select(func.max(_C.level)).where(_C.plan_id == _STATE.plan_id)
              .scalar_subquery())
_TOP_LEVEL_AT = (select(_C.created_at).where(_C.plan_id == _STATE.plan_id)
                 .order_by(_C.level.desc()).limit(1).scalar_subquery())
_FIRST_DELIVERY = (select(func.min(_D.created_at)).where(
    _D.plan_id == _STATE.plan_id, _D.kind == "escalation").scalar_subquery())
_ACKNOWLEDGED = exists().where(_PAIR.plan_id == _STATE.plan_id,
                               _PAIR.latest_ack_state.in_(sorted(ACK_ANSWERED)))
_FACTS = select(_STATE.plan_id, _STATE.alert_level, _STATE.open,
                _TOP_LEVEL.label("level"), _TOP_LEVEL_AT.label("level_at"),
                _FIRST_DELIVERY.label("first_delivery_at"), _ACKNOWLEDGED.label("acknowledged"))


class FollowUpClaim(Record):
    """A plan's level N (2 and up) as a follow-up run claimed it: once per (plan, level)."""

    plan_id: str
    level: int
    follow_up_run_id: str = Field(alias="run_id")
    providers: list[str]
    created_at: datetime
    created_by: str


def _facts(row: Any, delivered: Collection[str] = ()) -> PlanFacts:
    claimed = row.level is not None
    since = row.level_at if claimed else row.first_delivery_at
    return PlanFacts(plan_id=row.plan_id, level=int(row.level) if claimed else 1,
                     level_since=as_utc(since) if since is not None else None,
                     acknowledged=bool(row.acknowledged), delivered=frozenset(delivered))


def delivered_providers(session: Session,
                        plan_ids: Collection[str]) -> dict[str, set[str]]:
    """Providers each plan has been sent to (a pair exists once a send began)."""
    found: dict[str, set[str]] = {}
    if plan_ids:
        for plan_id, provider in session.execute(select(_PAIR.plan_id, _PAIR.provider).where(
                _PAIR.plan_id.in_(sorted(plan_ids)))).all():
            found.setdefault(plan_id, set()).add(provider)
    return found


def _decide(session: Session, config: CavraConfig, rows: list[Any],
            now: datetime) -> list[FollowUpDecision]:
    """The rule's answer for each row; the providers already sent are read only for the
    plans that escalate."""
    first = [(row, decide_follow_up(_facts(row), policy_levels(row.alert_level, config), now))
             for row in rows]
    escalating = {row.plan_id for row, d in first if d.outcome == "escalate"}
    delivered = delivered_providers(session, escalating)
    return [decide_follow_up(_facts(row, delivered.get(row.plan_id, ())),
                             policy_levels(row.alert_level, config), now)
            if row.plan_id in escalating else decision for row, decision in first]


def open_plan_decisions(ctx: StoreContext, now: datetime) -> Iterator[FollowUpDecision]:
    """The rule's answer for every open plan, a batch of ``BATCH`` plans per query (keyset
    on the plan ID), each batch in its own short read."""
    after = ""
    while True:
        with ctx.db.read() as session:
            rows = session.execute(_FACTS.where(_STATE.open.is_(True), _STATE.plan_id > after)
                                   .order_by(_STATE.plan_id).limit(BATCH)).all()
            decisions = _decide(session, ctx.config, list(rows), now)
        yield from decisions
        if len(rows) < BATCH:
            return
        after = rows[-1].plan_id


def decide_now(ctx: StoreContext, session: Session, plan_id: str,
               now: datetime) -> FollowUpDecision | None:
    """The rule's answer for one plan, read in the caller's (write) transaction: what the run
    acts on is what holds when it claims. None: the plan is no longer open."""
    row = session.execute(_FACTS.where(_STATE.plan_id == plan_id)).first()
    if row is None or not row.open:
        return None
    [decision] = _decide(session, ctx.config, [row], now)
    return decision


def claim_level(ctx: StoreContext, session: Session, *, plan_id: str, level: int, run_id: str,
                providers: list[str]) -> bool:
    """Claim a plan's level for this run, in the caller's transaction (the one that records
    the level's sends). False: another run claimed it first (its transaction committed, or
    is committing: PostgreSQL waits for it), so this one sends nothing."""
    statement = upsert(session, _CLAIMS).values(
        plan_id=plan_id, level=level, run_id=run_id, providers=providers,
        created_at=ctx.clock(), created_by=ctx.identity.actor,
    ).on_conflict_do_nothing(index_elements=["plan_id", "level"]).returning(_C.level)
    return session.execute(statement).first() is not None


def record_follow_up_run(ctx: StoreContext, session: Session, *, run_id: str, mode: str,
                         trigger: str, schedule_id: str | None, started_at: datetime,
                         summary: dict[str, int],
                         escalations: list[dict[str, Any]],
                         failovers: list[dict[str, Any]] | None = None) -> FollowUpRun:
    now = ctx.clock()
    row = FollowUpRunRow(run_id=run_id, mode=mode, trigger=trigger, schedule_id=schedule_id,
                         started_at=started_at, summary=summary, escalations=escalations,
                         failovers=list(failovers or []), created_at=now,
                         created_by=ctx.identity.actor)
    session.add(row)
    bump(session, f"follow_up_runs.{mode}", now)
    session.flush()
    return FollowUpRun.model_validate(row)


def plan_claims(ctx: StoreContext, plan_id: str) -> list[FollowUpClaim]:
    """The levels follow-up runs claimed for a plan, newest first (the plan's timeline)."""
    with ctx.db.read() as session:
        rows = session.execute(select(_CLAIMS).where(_C.plan_id == plan_id)
                               .order_by(_C.level.desc()).limit(TIMELINE_LEVELS)).all()
        return [FollowUpClaim.model_validate(row._mapping) for row in rows]


def plan_levels(ctx: StoreContext, plan_ids: Collection[str],
                now: datetime) -> dict[str, tuple[str, str, str | None]]:
    """(``L2/3``, ``12m`` | ``due`` | ``-``, outcome) per plan: one query for all of them.
    A plan never sent shows ``-``; a closed one its level, and ``-``."""
    wanted = sorted(set(plan_ids))
    if not wanted:
        return {}
    with ctx.db.read() as session:
        rows = session.execute(_FACTS.where(_STATE.plan_id.in_(wanted))).all()
    shown: dict[str, tuple[str, str, str | None]] = {}
    for row in rows:
        facts = _facts(row)
        if facts.level_since is None and row.level is None:
            shown[row.plan_id] = ("-", "-", None)
            continue
        decision = decide_follow_up(facts, policy_levels(row.alert_level, ctx.config), now)
        if not row.open:
            shown[row.plan_id] = (decision.level_label, "-", None)
            continue
        shown[row.plan_id] = (decision.level_label, decision.time_left_label(now),
                              decision.outcome)
    return shown


def list_plans_with_levels(ctx: StoreContext, now: datetime, *,
                           cursor: str | None = None, search: str | None = None) -> Page:
    """The Escalations list's page: ``list_plans``' page, each plan with its level and the
    time left before the next (one more query for the whole page)."""
    page = list_plans(ctx, cursor=cursor, search=search)
    levels = plan_levels(ctx, [plan.plan_id for plan in page.items], now)
    items = [PlanWithLevel(plan=plan, level=levels.get(plan.plan_id, ("-", "-", None))[0],
                           next=levels.get(plan.plan_id, ("-", "-", None))[1],
                           outcome=levels.get(plan.plan_id, ("-", "-", None))[2])
             for plan in page.items]
    return page.model_copy(update={"items": items})
