"""Keyset-paged lists for the console (SPEC §3): newest first, one page at a time.

Every list orders by (created_at desc, id desc) and continues after an opaque cursor, so the
thousandth page costs what the first one does and no list ever loads the whole history.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, TableClause, and_, func, or_, select

from store.clock import as_utc
from store.core_tables import (
    acknowledgements,
    deliveries,
    escalation_plans,
    execution_records,
    pair_state,
    retry_plans,
    schedule_runs,
    worker_runs,
)
from store.errors import UserError
from store.models import (
    Acknowledgement,
    Delivery,
    EscalationPlan,
    ExecutionRecord,
    Page,
    PairState,
    Record,
    ScheduleRun,
    WorkerRun,
)
from store.services.audit_listing import DEFAULT_PAGE, MAX_PAGE
from store.services.audit_listing import list_audit_events as list_audit_events
from store.services.search import (
    SearchedPage,
    as_text,
    count_matches,
    counts_as_text,
    list_as_text,
    search_condition,
)

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext


class RetryPlanSummary(Record):
    """A retry plan without its decisions: a list needs the counts, not every decision."""

    retry_plan_id: str
    policy: dict[str, Any]
    counts: dict[str, int]
    created_at: datetime
    created_by: str


def encode_cursor(created_at: datetime, record_id: str) -> str:
    raw = json.dumps([as_utc(created_at).isoformat(), record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, record_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return as_utc(datetime.fromisoformat(stamp)), str(record_id)
    except (ValueError, TypeError):
        raise UserError("list cursor is not valid; start from the first page") from None


def _page(ctx: StoreContext, listed: TableClause, id_key: str, model: type[Record], *,
          cursor: str | None, limit: int,
          where: Sequence[ColumnElement[bool]] = (),
          search: str | None = None,
          search_columns: Sequence[Any] = (),
          skip: Sequence[str] = ()) -> Page:
    """One page of ``listed``, read on SQLAlchemy Core (no ORM instances, sessions or
    mappers), then one validated ``model`` per row (the row's columns by name)."""
    if not 1 <= limit <= MAX_PAGE:
        raise UserError(f"page size must be between 1 and {MAX_PAGE}")
    created, id_column = listed.c.created_at, listed.c[id_key]
    matching = [*where]
    condition = search_condition(search, search_columns)
    if condition is not None:
        matching.append(condition)
    query = select(*(shown for shown in listed.c if shown.key not in skip)).where(*matching)
    if cursor is not None:
        stamp, last_id = decode_cursor(cursor)
        # The first term is a plain range the created_at index serves; the second breaks ties.
        query = query.where(created <= stamp, or_(created < stamp, id_column < last_id))
    query = query.order_by(created.desc(), id_column.desc()).limit(limit + 1)
    with ctx.db.connect() as conn:
        rows = conn.execute(query).all()
        counted = None
        if condition is not None and cursor is None:  # a filtered list's first page
            counted = ((len(rows), False) if len(rows) <= limit else
                       count_matches(conn, select(id_column).where(*matching)))
    items = [model.model_validate(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.created_at, getattr(last, id_key))
    if counted is not None:
        return SearchedPage(items=items, next_cursor=next_cursor, matches=counted[0],
                            matches_capped=counted[1])
    return Page(items=items, next_cursor=next_cursor)


# What each list filters on: the columns its console list shows, and nothing it hides (an
# ID, a plan or run the row does not display). Not matched: "When", a plan's route count, and
# a worker run's Summary (it leaves out the zero counts the stored summary holds).
SHORT_DIGEST = 12  # how much of a payload digest a list shows (cavra_tui.formatting.short)


def list_plans(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
               search: str | None = None) -> Page:
    plans = escalation_plans.c
    return _page(ctx, escalation_plans, "plan_id", EscalationPlan,
                 cursor=cursor, limit=limit, search=search,
                 # Escalations: Plan, Alert, Providers, By.
                 search_columns=(plans.plan_id, plans.alert_level,
                                 list_as_text(plans.selected_providers), plans.created_by))


def list_deliveries(ctx: StoreContext, *, kind: str | None = None, plan_id: str | None = None,
                    schedule_run_id: str | None = None, cursor: str | None = None,
                    limit: int = DEFAULT_PAGE, search: str | None = None) -> Page:
    sent = deliveries.c
    where = [condition for condition in (
        sent.kind == kind if kind else None,
        sent.plan_id == plan_id if plan_id else None,
        sent.run_id == schedule_run_id if schedule_run_id else None)
        if condition is not None]
    return _page(ctx, deliveries, "delivery_id", Delivery, cursor=cursor, limit=limit,
                 where=where, search=search,
                 # Executive deliveries: Provider, Status, Code, Run.
                 search_columns=(sent.provider, sent.status, as_text(sent.status_code),
                                 sent.run_id))


def list_acknowledgements(ctx: StoreContext, *, plan_id: str | None = None,
                          cursor: str | None = None, limit: int = DEFAULT_PAGE,
                          search: str | None = None) -> Page:
    acks = acknowledgements.c
    where = [acks.plan_id == plan_id] if plan_id else []
    return _page(ctx, acknowledgements, "ack_id", Acknowledgement,
                 cursor=cursor, limit=limit, where=where, search=search,
                 # Acknowledgements: Plan, Provider, State, By, Ref.
                 search_columns=(acks.plan_id, acks.provider, acks.state, acks.acknowledged_by,
                                 acks.external_ref))


def list_retry_plans(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                     search: str | None = None) -> Page:
    """Pages of RetryPlanSummary: the decisions (possibly thousands a plan) stay unread."""
    plans = retry_plans.c
    return _page(ctx, retry_plans, "retry_plan_id", RetryPlanSummary,
                 cursor=cursor, limit=limit, search=search,
                 # Retry plans: Retry plan, Decisions, By.
                 search_columns=(plans.retry_plan_id, counts_as_text(plans.counts),
                                 plans.created_by),
                 skip=("decisions",))


def list_worker_runs(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                     search: str | None = None) -> Page:
    runs = worker_runs.c
    return _page(ctx, worker_runs, "run_id", WorkerRun, cursor=cursor, limit=limit,
                 # Worker runs: Run, Mode, Trigger.
                 search=search, search_columns=(runs.run_id, runs.mode, runs.trigger))


def list_executions(ctx: StoreContext, *, worker_run_id: str | None = None,
                    cursor: str | None = None,
                    limit: int = DEFAULT_PAGE, search: str | None = None) -> Page:
    done = execution_records.c
    where = [done.run_id == worker_run_id] if worker_run_id else []
    return _page(ctx, execution_records, "execution_id", ExecutionRecord,
                 cursor=cursor, limit=limit, where=where, search=search,
                 # Execution records: Status, Reason, Plan/provider, Key, Payload (the
                 # digest's first 12 characters, as shown), Execution.
                 search_columns=(done.status, done.reason, done.plan_id, done.provider,
                                 done.idempotency_key,
                                 func.substr(done.payload_sha256, 1, SHORT_DIGEST),
                                 done.execution_id))


def list_schedule_runs(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                       search: str | None = None) -> Page:
    runs = schedule_runs.c
    return _page(ctx, schedule_runs, "run_id", ScheduleRun, cursor=cursor, limit=limit,
                 search=search,
                 # Schedule runs: Run, Trigger, Report.
                 search_columns=(runs.run_id, runs.trigger, runs.report_id))


def latest_ack_states(ctx: StoreContext,
                      pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """The acknowledgement state that counts for each (plan, provider) pair: one row each."""
    if not pairs:
        return {}
    wanted = set(pairs)
    pairs_c = pair_state.c
    condition = or_(*(and_(pairs_c.plan_id == plan, pairs_c.provider == provider)
                      for plan, provider in wanted))
    with ctx.db.connect() as conn:
        rows = conn.execute(select(pairs_c.plan_id, pairs_c.provider,
                                   pairs_c.latest_ack_state).where(condition)).all()
    found = {(plan, provider): state for plan, provider, state in rows}
    return {pair: found.get(pair) for pair in pairs}


def list_pending_pairs(ctx: StoreContext, limit: int = 100) -> list[PairState]:
    """(plan, provider) pairs delivered to but not yet acknowledged, most recent first."""
    pairs_c = pair_state.c
    with ctx.db.connect() as conn:
        rows = conn.execute(select(pair_state).where(pairs_c.ack_pending.is_(True))
                            .order_by(pairs_c.updated_at.desc(), pairs_c.plan_id)
                            .limit(limit)).all()
    return [PairState.model_validate(row) for row in rows]
