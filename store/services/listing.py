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

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, defer

from store.clock import as_utc
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
from store.tables import (
    AcknowledgementRow,
    DeliveryRow,
    EscalationPlanRow,
    ExecutionRecordRow,
    PairStateRow,
    RetryPlanRow,
    ScheduleRunRow,
    WorkerRunRow,
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


def _page(ctx: StoreContext, row_type: Any, id_column: InstrumentedAttribute[str],
          model: type[Record], *, cursor: str | None, limit: int,
          where: Sequence[ColumnElement[bool]] = (),
          search: str | None = None,
          search_columns: Sequence[Any] = (),
          skip: Sequence[InstrumentedAttribute[Any]] = ()) -> Page:
    if not 1 <= limit <= MAX_PAGE:
        raise UserError(f"page size must be between 1 and {MAX_PAGE}")
    created = row_type.created_at
    matching = [*where]
    condition = search_condition(search, search_columns)
    if condition is not None:
        matching.append(condition)
    query = select(row_type).where(*matching).options(*(defer(column) for column in skip))
    if cursor is not None:
        stamp, last_id = decode_cursor(cursor)
        # The first term is a plain range the created_at index serves; the second breaks ties.
        query = query.where(created <= stamp, or_(created < stamp, id_column < last_id))
    query = query.order_by(created.desc(), id_column.desc()).limit(limit + 1)
    with ctx.db.read() as session:
        rows = session.execute(query).scalars().all()
        items = [model.model_validate(row) for row in rows[:limit]]
        counted = None
        if condition is not None and cursor is None:  # a filtered list's first page
            counted = ((len(rows), False) if len(rows) <= limit else
                       count_matches(session, select(id_column).where(*matching)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.created_at, getattr(last, id_column.key))
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
    return _page(ctx, EscalationPlanRow, EscalationPlanRow.plan_id, EscalationPlan,
                 cursor=cursor, limit=limit, search=search,
                 # Escalations: Plan, Alert, Providers, By.
                 search_columns=(EscalationPlanRow.plan_id, EscalationPlanRow.alert_level,
                                 list_as_text(EscalationPlanRow.selected_providers),
                                 EscalationPlanRow.created_by))


def list_deliveries(ctx: StoreContext, *, kind: str | None = None, plan_id: str | None = None,
                    schedule_run_id: str | None = None, cursor: str | None = None,
                    limit: int = DEFAULT_PAGE, search: str | None = None) -> Page:
    where = [condition for condition in (
        DeliveryRow.kind == kind if kind else None,
        DeliveryRow.plan_id == plan_id if plan_id else None,
        DeliveryRow.run_id == schedule_run_id if schedule_run_id else None)
        if condition is not None]
    return _page(ctx, DeliveryRow, DeliveryRow.delivery_id, Delivery, cursor=cursor, limit=limit,
                 where=where, search=search,
                 # Executive deliveries: Provider, Status, Code, Run.
                 search_columns=(DeliveryRow.provider, DeliveryRow.status,
                                 as_text(DeliveryRow.status_code), DeliveryRow.run_id))


def list_acknowledgements(ctx: StoreContext, *, plan_id: str | None = None,
                          cursor: str | None = None, limit: int = DEFAULT_PAGE,
                          search: str | None = None) -> Page:
    where = [AcknowledgementRow.plan_id == plan_id] if plan_id else []
    return _page(ctx, AcknowledgementRow, AcknowledgementRow.ack_id, Acknowledgement,
                 cursor=cursor, limit=limit, where=where, search=search,
                 # Acknowledgements: Plan, Provider, State, By, Ref.
                 search_columns=(AcknowledgementRow.plan_id, AcknowledgementRow.provider,
                                 AcknowledgementRow.state, AcknowledgementRow.acknowledged_by,
                                 AcknowledgementRow.external_ref))


def list_retry_plans(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                     search: str | None = None) -> Page:
    """Pages of RetryPlanSummary: the decisions (possibly thousands a plan) stay unread."""
    return _page(ctx, RetryPlanRow, RetryPlanRow.retry_plan_id, RetryPlanSummary,
                 cursor=cursor, limit=limit, search=search,
                 # Retry plans: Retry plan, Decisions, By.
                 search_columns=(RetryPlanRow.retry_plan_id,
                                 counts_as_text(RetryPlanRow.counts), RetryPlanRow.created_by),
                 skip=(RetryPlanRow.decisions,))


def list_worker_runs(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                     search: str | None = None) -> Page:
    return _page(ctx, WorkerRunRow, WorkerRunRow.run_id, WorkerRun, cursor=cursor, limit=limit,
                 # Worker runs: Run, Mode, Trigger.
                 search=search, search_columns=(WorkerRunRow.run_id, WorkerRunRow.mode,
                                                WorkerRunRow.trigger))


def list_executions(ctx: StoreContext, *, worker_run_id: str | None = None,
                    cursor: str | None = None,
                    limit: int = DEFAULT_PAGE, search: str | None = None) -> Page:
    where = [ExecutionRecordRow.run_id == worker_run_id] if worker_run_id else []
    return _page(ctx, ExecutionRecordRow, ExecutionRecordRow.execution_id, ExecutionRecord,
                 cursor=cursor, limit=limit, where=where, search=search,
                 # Execution records: Status, Reason, Plan/provider, Key, Payload (the
                 # digest's first 12 characters, as shown), Execution.
                 search_columns=(ExecutionRecordRow.status, ExecutionRecordRow.reason,
                                 ExecutionRecordRow.plan_id, ExecutionRecordRow.provider,
                                 ExecutionRecordRow.idempotency_key,
                                 func.substr(ExecutionRecordRow.payload_sha256, 1, SHORT_DIGEST),
                                 ExecutionRecordRow.execution_id))


def list_schedule_runs(ctx: StoreContext, *, cursor: str | None = None, limit: int = DEFAULT_PAGE,
                       search: str | None = None) -> Page:
    return _page(ctx, ScheduleRunRow, ScheduleRunRow.run_id, ScheduleRun, cursor=cursor,
                 limit=limit, search=search,
                 # Schedule runs: Run, Trigger, Report.
                 search_columns=(ScheduleRunRow.run_id, ScheduleRunRow.trigger,
                                 ScheduleRunRow.report_id))


def latest_ack_states(ctx: StoreContext,
                      pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """The acknowledgement state that counts for each (plan, provider) pair: one row each."""
    if not pairs:
        return {}
    wanted = set(pairs)
    condition = or_(*(and_(PairStateRow.plan_id == plan, PairStateRow.provider == provider)
                      for plan, provider in wanted))
    with ctx.db.read() as session:
        rows = session.execute(select(PairStateRow.plan_id, PairStateRow.provider,
                                      PairStateRow.latest_ack_state).where(condition)).all()
    found = {(plan, provider): state for plan, provider, state in rows}
    return {pair: found.get(pair) for pair in pairs}


def list_pending_pairs(ctx: StoreContext, limit: int = 100) -> list[PairState]:
    """(plan, provider) pairs delivered to but not yet acknowledged, most recent first."""
    with ctx.db.read() as session:
        rows = session.execute(select(PairStateRow).where(PairStateRow.ack_pending.is_(True))
                               .order_by(PairStateRow.updated_at.desc(), PairStateRow.plan_id)
                               .limit(limit)).scalars().all()
        return [PairState.model_validate(row) for row in rows]
