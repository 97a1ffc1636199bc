"""The schedule reads the scheduler pane, `cavra schedule list` and `cavra metrics` make:
the schedules, each one's latest run and its missed/error counts, and how a trigger reads.

SQLAlchemy Core on ``store.core_tables``, so a quick command or a refresh never loads the ORM.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from store.clock import as_utc
from store.core_tables import (
    follow_up_runs,
    report_schedules,
    schedule_events,
    schedule_runs,
    worker_runs,
)
from store.models import Schedule
from store.services.locks import current_holder

if TYPE_CHECKING:  # a type only: importing the context loads the audit log
    from store.services.context import StoreContext

_LISTED = (select(report_schedules).where(report_schedules.c.removed.is_(False))
           .order_by(report_schedules.c.name))


def describe_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def describe_trigger(schedule: Schedule) -> str:
    if schedule.cron:
        return f"cron {schedule.cron} ({schedule.timezone})"
    return f"every {describe_duration(schedule.interval_s or 0)}"


def _schedules(conn: Connection) -> list[Schedule]:
    return [Schedule.model_validate(row) for row in conn.execute(_LISTED)]


def list_schedules(ctx: StoreContext) -> list[Schedule]:
    with ctx.db.connect() as conn:
        return _schedules(conn)


def _last_runs(conn: Connection, ids: list[str]) -> dict[str, datetime]:
    last_runs: dict[str, datetime] = {}
    for runs, moment in ((schedule_runs, schedule_runs.c.scheduled_for),
                         (worker_runs, worker_runs.c.started_at),
                         (follow_up_runs, follow_up_runs.c.started_at)):
        query = (select(runs.c.schedule_id, func.max(moment))
                 .where(runs.c.schedule_id.in_(ids)).group_by(runs.c.schedule_id))
        for schedule_id, latest in conn.execute(query).all():
            if schedule_id is not None and latest is not None:
                latest = as_utc(latest)
                last_runs[schedule_id] = max(last_runs.get(schedule_id, latest), latest)
    return last_runs


def schedule_overview(ctx: StoreContext, lease: str, now: datetime) -> tuple[
        str | None, datetime | None, list[Schedule], dict[str, datetime],
        dict[tuple[str, str], int]]:
    """For the scheduler pane: the lease holder and expiry, the schedules, each one's latest
    run and its missed/error counts. Four small queries, safe on every refresh."""
    with ctx.db.connect() as conn:
        holder, expires = current_holder(conn, lease, now)
        rows = _schedules(conn)
        ids = [row.schedule_id for row in rows]
        if not ids:
            return holder, expires, rows, {}, {}
        events = schedule_events.c
        counts = {(schedule_id, kind): count for schedule_id, kind, count in conn.execute(
            select(events.schedule_id, events.kind, func.count())
            .where(events.schedule_id.in_(ids))
            .group_by(events.schedule_id, events.kind)).all()}
        return holder, expires, rows, _last_runs(conn, ids), counts
