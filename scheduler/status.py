"""What the console's scheduler pane and `cavra metrics` show about the scheduler.

A read of a few small rows (the lease, the schedules): safe to call on every refresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from store.db import Database
from store.models import Schedule
from store.services.schedule_reads import describe_trigger, schedule_overview

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


def _next_run(schedule: Schedule, now: datetime) -> datetime | None:
    from scheduler.triggers import build_trigger, next_fire_after  # APScheduler: when needed

    return next_fire_after(build_trigger(schedule), now) if schedule.enabled else None


def read_scheduler_status(db: Database, now: datetime, me: str | None = None) -> SchedulerStatus:
    """``me`` is this process's lease holder name, if it runs a scheduler.

    Four small queries: the lease, the schedules, their latest runs, their event counts.
    """
    holder, expires, rows, last_runs, counts = schedule_overview(db, LEADER_LOCK, now)
    schedules = [ScheduleStatus(
        schedule_id=row.schedule_id, name=row.name, kind=row.kind, trigger=describe_trigger(row),
        enabled=row.enabled, live=row.live, next_run_at=_next_run(row, now),
        last_run_at=last_runs.get(row.schedule_id),
        missed=counts.get((row.schedule_id, "missed"), 0),
        errors=counts.get((row.schedule_id, "error"), 0)) for row in rows]
    state: Literal["leader", "standby", "stopped"] = (
        "stopped" if me is None else "leader" if holder == me else "standby")
    return SchedulerStatus(state=state, leader=holder, lease_expires_at=expires,
                           schedules=schedules)
