"""Executive reports and schedule runs (SPEC §5.6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select
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
    ScheduleRow,
    ScheduleRunRow,
)

REPORT_WINDOW = timedelta(hours=24)


TREND_DAYS = 7
CLOSED_STATES = ("resolved", "mitigated")


def trend_days(end: datetime) -> list[date]:
    """The UTC days the closure trend covers: the one holding the window's last moment and
    the six before it (a window ending at midnight ends on the day before)."""
    last = (as_utc(end) - timedelta(microseconds=1)).date()
    return [last - timedelta(days=back) for back in range(TREND_DAYS - 1, -1, -1)]


def _trend(session: Session, end: datetime) -> list[dict[str, Any]]:
    """Per UTC day: items opened that day (before the window's end), and how many of those
    are closed (resolved or mitigated) now. Every day is listed, quiet ones with zeros."""
    days = trend_days(end)
    per_day = {day.isoformat(): {"opened": 0, "closed": 0} for day in days}
    first = datetime.combine(days[0], time(), UTC)
    rows = session.execute(select(RecoveryItemRow.opened_at, RecoveryItemRow.closure_state).where(
        RecoveryItemRow.opened_at >= first, RecoveryItemRow.opened_at < end
    ).execution_options(yield_per=1000))
    for opened_at, state in rows:
        entry = per_day[as_utc(opened_at).date().isoformat()]
        entry["opened"] += 1
        entry["closed"] += state in CLOSED_STATES
    return [{"day": day, **counts} for day, counts in per_day.items()]


def _open_groups(session: Session, end: datetime, slo_minutes: int) -> list[OpenGroup]:
    """Open items opened before the window's end, per (category, connector), with how many
    are past SLO: age in whole minutes > SLO, i.e. opened at or before end − (SLO + 1) min."""
    cutoff = end - timedelta(minutes=slo_minutes + 1)
    item = RecoveryItemRow
    rows = session.execute(
        select(item.category, item.connector, func.count(), func.min(item.opened_at),
               func.sum(item.failure_count),
               func.sum(case((item.opened_at <= cutoff, 1), else_=0)))
        .where(item.closure_state.in_(OPEN_STATES), item.opened_at < end)
        .group_by(item.category, item.connector)).all()
    return [OpenGroup(category, connector, count, as_utc(oldest), int(failures or 0),
                      int(past or 0))
            for category, connector, count, oldest, failures, past in rows]


def build_report_body(session: Session, start: datetime, end: datetime,
                      slo_minutes: int, timezone: str = "UTC") -> dict[str, Any]:
    """Every figure from the rows behind it (rules: ``store.rules.report``); ``timezone`` is
    only how people-facing channels show the window (the schedule's zone)."""
    provider_counts: dict[str, dict[str, int]] = {}
    for provider, status, count in session.execute(
            select(DeliveryRow.provider, DeliveryRow.status, func.count()).where(
                DeliveryRow.created_at >= start, DeliveryRow.created_at < end,
                DeliveryRow.kind == "escalation").group_by(DeliveryRow.provider,
                                                           DeliveryRow.status)).all():
        provider_counts.setdefault(provider, {})[status] = count
    body = summarise(_open_groups(session, end, slo_minutes), provider_counts,
                     _trend(session, end), end, slo_minutes)
    return {**body, "timezone": timezone}


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
    timezone = "UTC"  # a manual run has no schedule: its window is shown in UTC
    with ctx.db.read() as session:
        if schedule_id is not None:
            schedule = session.get(ScheduleRow, schedule_id)
            if schedule is None or schedule.removed:
                raise NotFound(f"schedule {schedule_id!r} not found")
            timezone = schedule.timezone
            existing = _existing_run(session, schedule_id, slot)
            if existing is not None:
                return existing[0], existing[1], False
    try:
        with ctx.write() as session:
            start, end = slot - REPORT_WINDOW, slot
            body = build_report_body(session, start, end, ctx.config.escalation.slo_minutes,
                                     timezone)
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
