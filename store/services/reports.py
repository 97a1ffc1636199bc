"""Executive reports and schedule runs (SPEC §5.6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.counters import bump
from store.errors import NotFound
from store.ids import new_id
from store.models import ExecutiveReport, ScheduleRun
from store.rules.escalation import OPEN_STATES
from store.rules.report import OpenGroup, summarise
from store.services.context import StoreContext
from store.tables import (
    DeliveryRow,
    ExecutiveReportRow,
    RecoveryItemRow,
    ReportScheduleRow,
    ScheduleRunRow,
)

REPORT_WINDOW = timedelta(hours=24)


def _trend(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per UTC day over the last week: items opened, and how many of those are closed."""
    per_day: dict[str, dict[str, int]] = {}
    rows = session.execute(select(RecoveryItemRow.opened_at, RecoveryItemRow.closure_state).where(
        RecoveryItemRow.opened_at >= start - timedelta(days=6),
        RecoveryItemRow.opened_at < end).execution_options(yield_per=1000))
    for opened_at, state in rows:
        entry = per_day.setdefault(as_utc(opened_at).date().isoformat(),
                                   {"opened": 0, "closed": 0})
        entry["opened"] += 1
        if state in ("resolved", "mitigated"):
            entry["closed"] += 1
    return [{"day": day, **counts} for day, counts in sorted(per_day.items())]


def build_report_body(session: Session, start: datetime, end: datetime,
                      slo_minutes: int) -> dict[str, Any]:
    groups = [OpenGroup(category, connector, count, oldest, failures or 0)
              for category, connector, count, oldest, failures in session.execute(
                  select(RecoveryItemRow.category, RecoveryItemRow.connector, func.count(),
                         func.min(RecoveryItemRow.opened_at),
                         func.sum(RecoveryItemRow.failure_count))
                  .where(RecoveryItemRow.closure_state.in_(OPEN_STATES))
                  .group_by(RecoveryItemRow.category, RecoveryItemRow.connector)).all()]
    groups = [OpenGroup(g.category, g.connector, g.count, as_utc(g.oldest), g.failures)
              for g in groups]
    provider_counts: dict[str, dict[str, int]] = {}
    for provider, status, count in session.execute(
            select(DeliveryRow.provider, DeliveryRow.status, func.count()).where(
                DeliveryRow.created_at >= start, DeliveryRow.created_at < end,
                DeliveryRow.kind == "escalation").group_by(DeliveryRow.provider,
                                                           DeliveryRow.status)).all():
        provider_counts.setdefault(provider, {})[status] = count
    return summarise(groups, provider_counts, _trend(session, start, end), end, slo_minutes)


def create_schedule_run(ctx: StoreContext, schedule_id: str | None = None,
                        scheduled_for: datetime | None = None,
                        trigger: str = "manual") -> tuple[ScheduleRun, ExecutiveReport, bool]:
    """Build and store the report for a run. Returns (run, report, created).

    A second call for the same (schedule, scheduled_for) returns the first run: a double fire
    builds and delivers once.
    """
    decision = ctx.require("report.schedule_run", [schedule_id] if schedule_id else [])
    now = ctx.clock()
    slot = scheduled_for or now
    with ctx.db.read() as session:
        if schedule_id is not None:
            schedule = session.get(ReportScheduleRow, schedule_id)
            if schedule is None or schedule.removed:
                raise NotFound(f"schedule {schedule_id!r} not found")
            existing = _existing_run(session, schedule_id, slot)
            if existing is not None:
                return existing[0], existing[1], False
    try:
        with ctx.write() as session:
            start, end = slot - REPORT_WINDOW, slot
            body = build_report_body(session, start, end, ctx.config.escalation.slo_minutes)
            report = ExecutiveReportRow(report_id=new_id("report"), window_start=start,
                                        window_end=end, status=body["status"], body=body,
                                        created_at=now, created_by=ctx.identity.actor)
            run = ScheduleRunRow(run_id=new_id("schedule_run"), schedule_id=schedule_id,
                                 scheduled_for=slot, trigger=trigger, window_start=start,
                                 window_end=end, report_id=report.report_id, created_at=now,
                                 created_by=ctx.identity.actor)
            session.add_all([report, run])
            bump(session, "schedule_runs", now)
            session.flush()
            result = ScheduleRun.model_validate(run), ExecutiveReport.model_validate(report)
            ctx.audit(session, "report.schedule_run", decision,
                      [run.run_id, report.report_id], f"report {report.status}",
                      {"run": result[0].model_dump(mode="json"),
                       "report": result[1].model_dump(mode="json")})
    except IntegrityError:
        with ctx.db.read() as session:
            existing = _existing_run(session, schedule_id, slot) if schedule_id else None
        if existing is None:
            raise
        return existing[0], existing[1], False
    return result[0], result[1], True


def _existing_run(session: Session, schedule_id: str | None,
                  slot: datetime) -> tuple[ScheduleRun, ExecutiveReport] | None:
    row = session.execute(select(ScheduleRunRow).where(
        ScheduleRunRow.schedule_id == schedule_id, ScheduleRunRow.scheduled_for == slot)
    ).scalar_one_or_none()
    if row is None:
        return None
    report = session.get(ExecutiveReportRow, row.report_id)
    return ScheduleRun.model_validate(row), ExecutiveReport.model_validate(report)


def get_schedule_run(ctx: StoreContext, run_id: str) -> tuple[ScheduleRun, ExecutiveReport]:
    with ctx.db.read() as session:
        row = session.get(ScheduleRunRow, run_id)
        if row is None:
            raise NotFound(f"schedule run {run_id!r} not found")
        report = session.get(ExecutiveReportRow, row.report_id)
        return ScheduleRun.model_validate(row), ExecutiveReport.model_validate(report)
