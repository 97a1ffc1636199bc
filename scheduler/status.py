"""What the console's scheduler pane and `cavra metrics` show about the scheduler.

A read of a few small rows (the lease, the schedules): safe to call on every refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from store.clock import as_utc
from store.models import QuietWindow, Schedule
from store.services.quiet_reads import quiet_windows_from
from store.services.schedule_reads import describe_trigger, schedule_overview

if TYPE_CHECKING:  # a type only: `cavra metrics` never loads the audit log
    from store.services.context import StoreContext

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
    next_run_local: str | None = None  # "Mon 12-07 08:00 Europe/Berlin": what the cron means
    last_run_at: datetime | None = None
    missed: int = 0
    errors: int = 0


class QuietStatus(BaseModel):
    """A quiet window as the scheduler pane shows it, in one line."""

    model_config = ConfigDict(frozen=True)
    window_id: str
    name: str
    providers: list[str]
    severities: list[str]
    active: bool
    starts_at: datetime
    ends_at: datetime
    label: str  # "quiet: maint (ops-webhook) until 14:00 UTC" / "quiet from 22:00 UTC: …"


def _clock_label(moment: datetime, now: datetime) -> str:
    """``14:00 UTC`` today, ``Sat 11-28 14:00 UTC`` another day."""
    if moment.astimezone(UTC).date() == now.astimezone(UTC).date():
        return f"{moment.astimezone(UTC):%H:%M} UTC"
    return local_fire_label(moment, "UTC", now)


def quiet_status(window: QuietWindow, now: datetime) -> QuietStatus:
    active = window.starts_at <= as_utc(now)
    who = f"{window.name} ({', '.join(window.providers)})"
    label = (f"quiet: {who} until {_clock_label(window.ends_at, now)}" if active else
             f"quiet from {_clock_label(window.starts_at, now)}: {who}")
    if "critical" in window.severities:
        label += " +critical"
    return QuietStatus(window_id=window.window_id, name=window.name,
                       providers=window.providers, severities=list(window.severities),
                       active=active, starts_at=window.starts_at, ends_at=window.ends_at,
                       label=label)


class SchedulerStatus(BaseModel):
    model_config = ConfigDict(frozen=True)
    state: Literal["leader", "standby", "stopped"]
    leader: str | None
    lease_expires_at: datetime | None
    schedules: list[ScheduleStatus]
    quiet: list[QuietStatus] = []  # quiet windows in force or coming (by start)


def _next_run(schedule: Schedule, now: datetime) -> datetime | None:
    from scheduler.crontab import CrontabError
    from scheduler.triggers import build_trigger, next_fire_after  # APScheduler: when needed

    if not schedule.enabled:
        return None
    try:
        return next_fire_after(build_trigger(schedule), now)
    except CrontabError:  # stored before cron meant crontab(5): shown as never, not a crash
        return None


def local_fire_label(moment: datetime, zone_name: str, now: datetime | None = None,
                     with_zone: bool = True) -> str:
    """A fire time as the schedule's zone sees it, weekday first: ``Mon 12-07 08:00
    Europe/Berlin`` (English day names whatever the locale); the year only when it is not
    the year of ``now``."""
    zone = ZoneInfo(zone_name)
    local = moment.astimezone(zone)
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[local.weekday()]
    date = f"{local:%m-%d}" if now is None or now.astimezone(zone).year == local.year else (
        f"{local:%Y-%m-%d}")
    return f"{day} {date} {local:%H:%M}" + (f" {zone_name}" if with_zone else "")


def next_fire_line(schedule: Schedule, now: datetime, count: int = 3) -> str:
    """The next ``count`` fire times in one line, the zone once; what `schedule add` echoes."""
    from scheduler.triggers import build_trigger, fire_times

    later = now + timedelta(days=3660)  # a yearly cron fires three times in ten years
    fires = [fire for fire, _ in zip(fire_times(build_trigger(schedule), now, later),
                                     range(count), strict=False)]
    labels = [local_fire_label(fire, schedule.timezone, now, with_zone=False) for fire in fires]
    return f"{', '.join(labels) or 'never'} ({schedule.timezone})"


def next_fire_labels(schedule: Schedule, now: datetime, count: int = 3) -> list[str]:
    """The next ``count`` fire times, each labelled with its zone (for --json)."""
    from scheduler.triggers import build_trigger, fire_times

    later = now + timedelta(days=3660)
    return [local_fire_label(fire, schedule.timezone, now) for fire, _ in zip(
        fire_times(build_trigger(schedule), now, later), range(count), strict=False)]


def read_scheduler_status(ctx: StoreContext, now: datetime,
                          me: str | None = None) -> SchedulerStatus:
    """``me`` is this process's lease holder name, if it runs a scheduler.

    Five small queries: the lease, the schedules, their latest runs, their event counts,
    the quiet windows in force or coming.
    """
    holder, expires, rows, last_runs, counts = schedule_overview(ctx, LEADER_LOCK, now)
    schedules = [ScheduleStatus(
        schedule_id=row.schedule_id, name=row.name, kind=row.kind, trigger=describe_trigger(row),
        enabled=row.enabled, live=row.live, next_run_at=(next_at := _next_run(row, now)),
        next_run_local=local_fire_label(next_at, row.timezone, now) if next_at else None,
        last_run_at=last_runs.get(row.schedule_id),
        missed=counts.get((row.schedule_id, "missed"), 0),
        errors=counts.get((row.schedule_id, "error"), 0)) for row in rows]
    state: Literal["leader", "standby", "stopped"] = (
        "stopped" if me is None else "leader" if holder == me else "standby")
    return SchedulerStatus(state=state, leader=holder, lease_expires_at=expires,
                           schedules=schedules,
                           quiet=[quiet_status(w, now) for w in quiet_windows_from(ctx, now)])
