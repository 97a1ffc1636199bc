"""APScheduler triggers for stored schedules, and the catch-up decision after downtime.

Everything here is pure computation on a given "now", so tests drive it with a clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.crontab import Crontab, CrontabError, next_fire, parse_crontab
from store.clock import as_utc
from store.models import Schedule

TICK = timedelta(microseconds=1)
# Widening look-back windows used to find the latest fire time before a moment.
_LOOKBACK = (timedelta(hours=3), timedelta(days=1), timedelta(days=8),
             timedelta(days=62), timedelta(days=400), timedelta(days=3660))


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]  # untyped library
    """An APScheduler trigger with crontab's meaning (``scheduler.crontab``).

    APScheduler 3's own ``CronTrigger.from_crontab`` counts weekdays from Monday = 0, ANDs
    the two day fields, skips a day after clocks spring forward and can step backwards in a
    30-minute DST change; this trigger does none of that.
    """

    def __init__(self, crontab: Crontab, timezone: ZoneInfo) -> None:
        self.crontab = crontab
        self.timezone = timezone
        self.jitter = None

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime | None:
        # APScheduler's convention (as in its CronTrigger): catch up from the previous fire.
        # In UTC: arithmetic and comparison of two times in one zone ignore DST's fold.
        start = as_utc(now)
        if previous_fire_time is not None:
            previous = as_utc(previous_fire_time)
            start = min(start, previous + TICK)
            if start == previous:
                start += TICK
        return next_fire(self.crontab, self.timezone, start)

    def __str__(self) -> str:
        return f"crontab[{self.crontab.text}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.crontab.text!r}, timezone={str(self.timezone)!r})>"


def build_trigger(schedule: Schedule) -> BaseTrigger:
    zone = ZoneInfo(schedule.timezone)
    if schedule.cron:
        return CrontabTrigger(parse_crontab(schedule.cron), zone)
    # Anchored at creation (whole seconds), so every process computes the same fire times.
    anchor = as_utc(schedule.created_at).replace(microsecond=0)
    return IntervalTrigger(seconds=schedule.interval_s or 1, start_date=anchor, timezone=zone)


def next_fire_after(trigger: BaseTrigger, moment: datetime) -> datetime | None:
    """The first fire time strictly after ``moment``, in UTC."""
    fire = trigger.get_next_fire_time(None, as_utc(moment) + TICK)
    return as_utc(fire) if fire is not None else None


def fire_times(trigger: BaseTrigger, after: datetime, until: datetime,
               cap: int = 10_000) -> Iterator[datetime]:
    """Fire times in (after, until], oldest first, at most ``cap`` of them (UTC)."""
    after = as_utc(after)
    fire = trigger.get_next_fire_time(None, after + TICK)
    count = 0
    while fire is not None and as_utc(fire) <= until and count < cap:
        if as_utc(fire) > after:
            yield as_utc(fire)
            count += 1
        previous, fire = fire, trigger.get_next_fire_time(fire, fire)
        if fire is not None and as_utc(fire) <= as_utc(previous):
            return  # a trigger that does not move forward: stop rather than spin


def latest_fire_at_or_before(trigger: BaseTrigger, moment: datetime,
                             not_before: datetime | None = None) -> datetime | None:
    """The latest fire time in (not_before, moment], found without walking all history."""
    moment = as_utc(moment)
    floor = as_utc(not_before) if not_before is not None else None
    if isinstance(trigger, IntervalTrigger):
        start = as_utc(trigger.start_date)
        if start > moment:
            return None
        steps = int((moment - start) / trigger.interval)
        fire = start + trigger.interval * steps
        return fire if floor is None or fire > floor else None
    for window in _LOOKBACK:
        # Iterate from at least 3 h back even when a floor is closer: a time skipped by a
        # spring-forward jump is only produced by a search that starts before the jump.
        start = moment - window
        found = None
        for fire in fire_times(trigger, start, moment):
            found = fire
        if found is not None:
            return found if floor is None or found > floor else None
        if floor is not None and start <= floor:
            return None
    return None


@dataclass(frozen=True)
class CatchUp:
    """What a scheduler owes a schedule when it (re)loads it at ``now``."""

    run_slot: datetime | None = None  # one coalesced catch-up run for this slot
    missed_slot: datetime | None = None  # latest slot that fell outside the grace period
    missed_count: int = 0  # how many slots were missed (capped)

    @property
    def nothing(self) -> bool:
        return self.run_slot is None and self.missed_slot is None


def plan_catch_up(trigger: BaseTrigger, baseline: datetime, now: datetime,
                  grace_s: float, cap: int = 1000) -> CatchUp:
    """Slots in (baseline, now] were owed while no leader ran. Like APScheduler's coalesce:
    if the latest is within ``grace_s`` of now, one run for it covers them all; otherwise
    they are missed."""
    latest = latest_fire_at_or_before(trigger, now, not_before=baseline)
    if latest is None:
        return CatchUp()
    if now - latest <= timedelta(seconds=grace_s):
        return CatchUp(run_slot=latest)
    missed = sum(1 for _ in fire_times(trigger, baseline, now, cap=cap))
    return CatchUp(missed_slot=latest, missed_count=missed)


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_cron(expression: str, zone: ZoneInfo) -> str:
    """A cron expression the scheduler can run, normalised; one line when it cannot."""
    from store.errors import UserError

    try:
        return parse_crontab(expression).text
    except CrontabError as exc:
        raise UserError(f"cron {expression!r}: {exc}") from None
