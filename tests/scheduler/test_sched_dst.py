"""A daily 02:30 Europe/Berlin schedule fires once per day across both DST changes of 2026."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from scheduler.jobs import JobHost, fire_schedule, register_host, unregister_host
from scheduler.lease import LeaderLease
from scheduler.triggers import build_trigger, fire_times, latest_fire_at_or_before
from store.services.schedules import add_schedule
from store.tables import DeliveryRow, ScheduleRunRow

BERLIN = ZoneInfo("Europe/Berlin")


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _daily(make_runtime: Any, clock: Any, config: Path, cron: str = "30 2 * * *") -> Any:
    clock.now = _utc(2026, 3, 1)
    runtime = make_runtime(config)
    return runtime, add_schedule(runtime.ctx, name="berlin", cron=cron, timezone="Europe/Berlin")


def test_spring_forward_fires_once_right_after_the_gap(make_runtime: Any, clock: Any,
                                                       exec_config: Path) -> None:
    _, schedule = _daily(make_runtime, clock, exec_config)
    fires = list(fire_times(build_trigger(schedule), _utc(2026, 3, 27), _utc(2026, 4, 1)))
    local_days = [f.astimezone(BERLIN).date().isoformat() for f in fires]
    assert local_days == ["2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
    # 02:30 does not exist on 29 March: it fires at 03:00 CEST, the first moment after the jump.
    assert fires[2] == _utc(2026, 3, 29, 1, 0)
    assert fires[3] == _utc(2026, 3, 30, 0, 30)  # 02:30 CEST


def test_fall_back_fires_once_not_in_both_02_30s(make_runtime: Any, clock: Any,
                                                 exec_config: Path) -> None:
    _, schedule = _daily(make_runtime, clock, exec_config)
    trigger = build_trigger(schedule)
    fires = list(fire_times(trigger, _utc(2026, 10, 23), _utc(2026, 10, 28)))
    local_days = [f.astimezone(BERLIN).date().isoformat() for f in fires]
    assert local_days == ["2026-10-23", "2026-10-24", "2026-10-25", "2026-10-26", "2026-10-27"]
    assert fires[2] == _utc(2026, 10, 25, 0, 30)  # the first 02:30 (CEST)
    # Asked at the second 02:30 (CET), the slot is still the first one: no second run.
    assert latest_fire_at_or_before(trigger, _utc(2026, 10, 25, 1, 30, 5)) == fires[2]


def test_hourly_cron_still_fires_every_real_hour_when_clocks_fall_back(
        make_runtime: Any, clock: Any, exec_config: Path) -> None:
    _, schedule = _daily(make_runtime, clock, exec_config, cron="30 * * * *")
    fires = list(fire_times(build_trigger(schedule), _utc(2026, 10, 24, 22),
                            _utc(2026, 10, 25, 23)))
    assert len(fires) == 25  # the local day of 25 October has 25 hours


def test_job_fires_create_one_run_per_day_around_both_changes(
        make_runtime: Any, clock: Any, exec_config: Path) -> None:
    runtime, schedule = _daily(make_runtime, clock, exec_config)
    lease = LeaderLease(runtime.ctx, "dst-test", 60, clock)
    register_host(JobHost(runtime.ctx, runtime.registry, lease))
    # When the scheduler wakes the job: each real fire, plus APScheduler 3.11's own second
    # 02:30 on 25 October (which our trigger no longer produces, but a stale wake must not
    # create a second run either).
    wakes = [f + timedelta(seconds=1) for start, end in (
        (_utc(2026, 3, 27), _utc(2026, 4, 1)), (_utc(2026, 10, 23), _utc(2026, 10, 28)))
        for f in fire_times(build_trigger(schedule), start, end)]
    wakes.append(_utc(2026, 10, 25, 1, 30, 1))
    try:
        for wake in sorted(wakes):
            clock.now = wake
            assert lease.renew()
            fire_schedule("dst-test", schedule.schedule_id)
    finally:
        unregister_host("dst-test")
    with runtime.db.read() as session:
        slots = [s.replace(tzinfo=UTC) for s in session.execute(
            select(ScheduleRunRow.scheduled_for).order_by(ScheduleRunRow.scheduled_for)).scalars()]
        deliveries = session.execute(select(DeliveryRow.run_id, DeliveryRow.provider)).all()
    days = [s.astimezone(BERLIN).date().isoformat() for s in slots]
    assert days == ["2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31",
                    "2026-10-23", "2026-10-24", "2026-10-25", "2026-10-26", "2026-10-27"]
    assert len(deliveries) == 2 * len(slots)  # exec-outbox and outbox, once each per run
    assert len(set(deliveries)) == len(deliveries)
