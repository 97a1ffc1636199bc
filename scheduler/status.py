"""What the console's scheduler pane and `cavra metrics` show about the scheduler.

A read of a few small rows (the lease, the schedules): safe to call on every refresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from store.db import Database
from store.services.locks import current_holder
from store.tables import ReportScheduleRow

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


def read_scheduler_status(db: Database, now: datetime, me: str | None = None) -> SchedulerStatus:
    """``me`` is this process's lease holder name, if it runs a scheduler."""
    with db.read() as session:
        holder, expires = current_holder(session, LEADER_LOCK, now)
        rows = session.execute(select(ReportScheduleRow).where(
            ReportScheduleRow.removed.is_(False)).order_by(ReportScheduleRow.name)).scalars().all()
        schedules = [ScheduleStatus(
            schedule_id=row.schedule_id, name=row.name, kind=row.kind,
            trigger=(f"cron {row.cron} ({row.timezone})" if row.cron
                     else f"every {row.interval_s}s"),
            enabled=row.enabled, live=row.live) for row in rows]
    state: Literal["leader", "standby", "stopped"]
    if me is None:
        state = "stopped"
    else:
        state = "leader" if holder == me else "standby"
    return SchedulerStatus(state=state, leader=holder, lease_expires_at=expires,
                           schedules=schedules)
