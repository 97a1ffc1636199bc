"""The in-process scheduler: catch-up inside grace, `missed` outside it, errors recorded,
changes from other processes picked up, one leader (SPEC §8). Time is a stepping clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from scheduler.runner import SchedulerService
from scheduler.status import read_scheduler_status
from store.counters import read_all_time
from store.services.metrics import read_metrics
from store.services.schedules import add_schedule, disable_schedule, list_schedule_events
from store.tables import AuditEventRow, DeliveryRow, ScheduleRunRow

Wait = Callable[..., Awaitable[None]]


def _runs(runtime: Any) -> list[datetime]:
    with runtime.db.read() as session:
        return [s.replace(tzinfo=UTC) for s in session.execute(
            select(ScheduleRunRow.scheduled_for).order_by(ScheduleRunRow.scheduled_for)).scalars()]


def _service(runtime: Any, name: str) -> SchedulerService:
    return SchedulerService(runtime.ctx, runtime.registry, holder=name, lease_ttl_s=30, poll_s=0.1)


async def _lead(service: SchedulerService, wait: Wait) -> None:
    service.start()
    await wait(lambda: service.is_leader and bool(service.job_ids()))


async def test_restart_inside_grace_runs_one_coalesced_catch_up(
        make_runtime: Any, clock: Any, exec_config: Path, wait: Wait) -> None:
    clock.now = datetime(2026, 11, 27, 7, 50, tzinfo=UTC)
    runtime = make_runtime(exec_config)
    schedule = add_schedule(runtime.ctx, name="every-5-min", cron="*/5 * * * *",
                            misfire_grace_s=300)
    first = _service(runtime, "first")
    await _lead(first, wait)
    first.shutdown()  # the scheduler is down across 07:55, 08:00 and 08:05
    assert _runs(runtime) == []

    clock.now = datetime(2026, 11, 27, 8, 7, tzinfo=UTC)  # 08:05 is 2 min ago: inside grace
    second = _service(runtime, "second")
    try:
        await _lead(second, wait)
        await wait(lambda: len(_runs(runtime)) == 1)
        await wait(lambda: _delivered(runtime) == 2)
    finally:
        second.shutdown()
    assert _runs(runtime) == [datetime(2026, 11, 27, 8, 5, tzinfo=UTC)]  # one run, the latest
    assert list_schedule_events(runtime.ctx, schedule.schedule_id) == []
    status = read_scheduler_status(runtime.ctx, clock.now)
    assert status.schedules[0].last_run_at == datetime(2026, 11, 27, 8, 5, tzinfo=UTC)
    assert status.schedules[0].next_run_at == datetime(2026, 11, 27, 8, 10, tzinfo=UTC)


def _delivered(runtime: Any) -> int:
    with runtime.db.read() as session:
        return session.execute(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.status == "delivered")).scalar_one()


async def test_restart_outside_grace_records_missed_and_runs_nothing(
        make_runtime: Any, clock: Any, exec_config: Path, wait: Wait) -> None:
    clock.now = datetime(2026, 11, 27, 7, 50, tzinfo=UTC)
    runtime = make_runtime(exec_config)
    schedule = add_schedule(runtime.ctx, name="morning", cron="0 8 * * *", misfire_grace_s=300)
    clock.now = datetime(2026, 11, 27, 8, 10, tzinfo=UTC)  # 08:00 was 10 min ago: too late
    service = _service(runtime, "late")
    try:
        await _lead(service, wait)
        await wait(lambda: len(list_schedule_events(runtime.ctx)) == 1)
    finally:
        service.shutdown()
    [event] = list_schedule_events(runtime.ctx, schedule.schedule_id)
    assert (event.kind, event.scheduled_for) == ("missed", datetime(2026, 11, 27, 8, tzinfo=UTC))
    assert "outside the 300s misfire grace" in event.detail
    assert _runs(runtime) == []
    assert read_metrics(runtime.ctx, clock.now).schedules["missed"] == 1
    with runtime.db.read() as session:
        actions = session.execute(select(AuditEventRow.action)).scalars().all()
    assert "scheduler.missed" in actions
    assert read_scheduler_status(runtime.ctx, clock.now).schedules[0].missed == 1

    # A later restart does not count the same miss again.
    again = _service(runtime, "again")
    try:
        await _lead(again, wait)
    finally:
        again.shutdown()
    assert len(list_schedule_events(runtime.ctx)) == 1


async def test_a_failing_job_is_recorded_as_an_error(
        make_runtime: Any, clock: Any, exec_config: Path, write_config: Any, wait: Wait) -> None:
    clock.now = datetime(2026, 11, 27, 7, 58, tzinfo=UTC)
    creator = make_runtime(exec_config)
    add_schedule(creator.ctx, name="exec", cron="0 8 * * *", providers=["exec-outbox"])
    # The scheduler runs with a config that no longer has the schedule's channel.
    runtime = make_runtime(write_config(""))
    clock.now = datetime(2026, 11, 27, 8, 1, tzinfo=UTC)
    service = _service(runtime, "errs")
    try:
        await _lead(service, wait)
        await wait(lambda: len(list_schedule_events(runtime.ctx)) == 1)
    finally:
        service.shutdown()
    [event] = list_schedule_events(runtime.ctx)
    assert event.kind == "error" and "exec-outbox" in event.detail
    assert read_metrics(runtime.ctx, clock.now).schedules["errors"] == 1
    assert read_scheduler_status(runtime.ctx, clock.now).schedules[0].errors == 1


async def test_changes_from_another_process_reach_the_running_scheduler(
        make_runtime: Any, clock: Any, exec_config: Path, wait: Wait) -> None:
    runtime = make_runtime(exec_config)
    service = _service(runtime, "live")
    service.start()
    try:
        await wait(lambda: service.is_leader)
        assert service.job_ids() == []
        other = make_runtime(exec_config)  # another process: its own engine, same database
        schedule = add_schedule(other.ctx, name="weekly", cron="0 9 * * 1")
        await wait(lambda: service.job_ids() == [schedule.schedule_id])
        disable_schedule(other.ctx, schedule.schedule_id)
        await wait(lambda: service.job_ids() == [])
    finally:
        service.shutdown()


async def test_one_leader_the_other_stands_by_and_takes_over(
        make_runtime: Any, clock: Any, exec_config: Path, wait: Wait) -> None:
    runtime = make_runtime(exec_config)
    add_schedule(runtime.ctx, name="weekly", cron="0 9 * * 1")
    leader, standby = _service(runtime, "A"), _service(make_runtime(exec_config), "B")
    try:
        await _lead(leader, wait)
        standby.start()
        await wait(lambda: read_scheduler_status(runtime.ctx, clock(), me="B").state == "standby")
        assert standby.job_ids() == [] and not standby.is_leader
        assert read_scheduler_status(runtime.ctx, clock(), me="A").state == "leader"
        leader.shutdown()  # hands the lease back: B takes over at its next poll
        await wait(lambda: standby.is_leader and bool(standby.job_ids()))
        assert read_scheduler_status(runtime.ctx, clock(), me="B").leader == "B"
    finally:
        leader.shutdown()
        standby.shutdown()


async def test_a_read_only_console_does_not_fire(make_runtime: Any, exec_config: Path) -> None:
    runtime = make_runtime(exec_config, read_only=True)
    service = _service(runtime, "ro")
    service.start()
    service.shutdown()
    assert service.refusal is not None and "read-only" in service.refusal
    with runtime.db.read() as session:
        assert read_all_time(session, ["schedule_runs"]) == {"schedule_runs": 0}


async def test_retry_worker_schedule_runs_a_dry_run_and_live_needs_release_manager(
        make_runtime: Any, clock: Any, roles_config: Path, wait: Wait) -> None:
    clock.now = datetime(2026, 11, 27, 7, 58, tzinfo=UTC)
    alice = make_runtime(roles_config, user="alice")
    dry = add_schedule(alice.ctx, name="dry-retries", cron="0 8 * * *", kind="retry-worker")
    live = add_schedule(alice.ctx, name="live-retries", cron="0 8 * * *", kind="retry-worker",
                        live=True)
    clock.now = datetime(2026, 11, 27, 8, 1, tzinfo=UTC)
    bob = make_runtime(roles_config, user="bob")  # an operator runs the scheduler
    service = _service(bob, "bob-scheduler")
    try:
        await _lead(service, wait)
        await wait(lambda: _worker_runs(bob) == [("dry_run", "schedule", dry.schedule_id)])
        await wait(lambda: len(list_schedule_events(bob.ctx, live.schedule_id)) == 1)
    finally:
        service.shutdown()
    [event] = list_schedule_events(bob.ctx, live.schedule_id)
    assert event.kind == "error" and "retry.run.live needs release_manager" in event.detail
    assert _worker_runs(bob) == [("dry_run", "schedule", dry.schedule_id)]  # nothing live


def _worker_runs(runtime: Any) -> list[tuple[str, str, str | None]]:
    from store.tables import WorkerRunRow

    with runtime.db.read() as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(WorkerRunRow.mode, WorkerRunRow.trigger, WorkerRunRow.schedule_id)).all()]


async def test_a_fire_that_comes_too_late_in_a_running_scheduler_is_recorded_missed(
        make_runtime: Any, exec_config: Path, wait: Wait) -> None:
    from datetime import timedelta

    from scheduler.triggers import build_trigger, latest_fire_at_or_before

    runtime = make_runtime(exec_config)
    hour = (datetime.now(UTC) - timedelta(hours=2)).hour  # APScheduler runs on the real clock
    schedule = add_schedule(runtime.ctx, name="stalled", cron=f"0 {hour} * * *",
                            misfire_grace_s=60)
    service = _service(runtime, "stalled")
    try:
        await _lead(service, wait)
        due = latest_fire_at_or_before(build_trigger(schedule), datetime.now(UTC))
        assert due is not None
        # As if the process had been frozen since that fire: APScheduler finds it overdue.
        assert service._scheduler is not None
        service._scheduler.modify_job(schedule.schedule_id, next_run_time=due)
        await wait(lambda: len(list_schedule_events(runtime.ctx)) == 1)
    finally:
        service.shutdown()
    [event] = list_schedule_events(runtime.ctx)
    assert (event.kind, event.scheduled_for) == ("missed", due)
    assert _runs(runtime) == []


async def test_a_stored_cron_that_no_longer_parses_is_an_error_not_a_dead_scheduler(
        make_runtime: Any, clock: Any, exec_config: Path, wait: Wait) -> None:
    """`0 0 last * *` was accepted by APScheduler's own parser before cron meant crontab(5):
    the leader records one error for it and still loads every other schedule."""
    runtime = make_runtime(exec_config)
    old = add_schedule(runtime.ctx, name="old-style", cron="0 0 1 * *")
    good = add_schedule(runtime.ctx, name="weekly", cron="0 9 * * 1")
    sqlite = runtime.db.sqlite_path
    import sqlite3

    conn = sqlite3.connect(sqlite)  # as an older cavra stored it
    conn.execute("UPDATE report_schedules SET cron = '0 0 last * *' WHERE schedule_id = ?",
                 (old.schedule_id,))
    conn.commit()
    conn.close()
    listed = {s.name: s for s in read_scheduler_status(runtime.ctx, clock.now).schedules}
    assert listed["old-style"].next_run_at is None and listed["weekly"].next_run_at is not None
    service = _service(runtime, "tolerant")
    try:
        await _lead(service, wait)
        await wait(lambda: len(list_schedule_events(runtime.ctx)) == 1)
        assert service.job_ids() == [good.schedule_id]
    finally:
        service.shutdown()
    [event] = list_schedule_events(runtime.ctx)
    assert event.kind == "error" and "'0 0 last * *' cannot run" in event.detail
