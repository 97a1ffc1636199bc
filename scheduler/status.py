"""What the console's scheduler pane and `cavra metrics` show about the scheduler.

A read of a few small rows (the lease, the schedules): safe to call on every refresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.clock import as_utc
from store.db import Database
from store.models import ReportSchedule
from store.services.locks import current_holder
from store.tables import ReportScheduleRow, ScheduleEventRow, ScheduleRunRow, WorkerRunRow

LEADER_LOCK = "scheduler_leader"


class ScheduleStatus(BaseModel):
    model_config = ConfigDict(frozen=True)
    schedule_id: str
    name: str
    kind: str
    trigger: str  # human text: "cron 0 8 * * 1-5 (Europe/Berlin)" or "every 5m"
    enabled: bool
    live: bool
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    missed: int = 0
    errors: int = 0


class SchedulerStatus(BaseModel):
    model_config = ConfigDict(frozen=True)
    state: Literal["leader", "standby", "stopped"]
    leader: str | None
    lease_expires_at: datetime | None
    schedules: list[ScheduleStatus]


def _last_runs(session: Session, ids: list[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for query in (
            select(ScheduleRunRow.schedule_id, func.max(ScheduleRunRow.scheduled_for))
            .where(ScheduleRunRow.schedule_id.in_(ids)).group_by(ScheduleRunRow.schedule_id),
            select(WorkerRunRow.schedule_id, func.max(WorkerRunRow.started_at))
            .where(WorkerRunRow.schedule_id.in_(ids)).group_by(WorkerRunRow.schedule_id)):
        for schedule_id, moment in session.execute(query).all():
            if schedule_id is not None and moment is not None:
                found[schedule_id] = max(found.get(schedule_id, as_utc(moment)), as_utc(moment))
    return found


def _event_counts(session: Session, ids: list[str]) -> dict[tuple[str, str], int]:
    rows = session.execute(select(ScheduleEventRow.schedule_id, ScheduleEventRow.kind,
                                  func.count()).where(ScheduleEventRow.schedule_id.in_(ids))
                           .group_by(ScheduleEventRow.schedule_id, ScheduleEventRow.kind)).all()
    return {(schedule_id, kind): count for schedule_id, kind, count in rows}


def _next_run(schedule: ReportSchedule, now: datetime) -> datetime | None:
    from scheduler.triggers import build_trigger, next_fire_after

    return next_fire_after(build_trigger(schedule), now) if schedule.enabled else None


def _trigger_text(schedule: ReportSchedule) -> str:
    from store.services.schedules import describe_trigger

    return describe_trigger(schedule)


def read_scheduler_status(db: Database, now: datetime, me: str | None = None) -> SchedulerStatus:
    """``me`` is this process's lease holder name, if it runs a scheduler.

    Four small queries: the lease, the schedules, their latest runs, their event counts.
    """
    with db.read() as session:
        holder, expires = current_holder(session, LEADER_LOCK, now)
        rows = [ReportSchedule.model_validate(row) for row in session.execute(
            select(ReportScheduleRow).where(ReportScheduleRow.removed.is_(False))
            .order_by(ReportScheduleRow.name)).scalars()]
        ids = [row.schedule_id for row in rows]
        last_runs = _last_runs(session, ids) if ids else {}
        counts = _event_counts(session, ids) if ids else {}
    schedules = [ScheduleStatus(
        schedule_id=row.schedule_id, name=row.name, kind=row.kind, trigger=_trigger_text(row),
        enabled=row.enabled, live=row.live, next_run_at=_next_run(row, now),
        last_run_at=last_runs.get(row.schedule_id),
        missed=counts.get((row.schedule_id, "missed"), 0),
        errors=counts.get((row.schedule_id, "error"), 0)) for row in rows]
    state: Literal["leader", "standby", "stopped"] = (
        "stopped" if me is None else "leader" if holder == me else "standby")
    return SchedulerStatus(state=state, leader=holder, lease_expires_at=expires,
                           schedules=schedules)
