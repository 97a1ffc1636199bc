"""The embedded scheduler (SPEC §8): APScheduler's ``AsyncIOScheduler`` on the running event
loop (the console's, or our own when headless), one leader per database.

Every ``poll_s`` a housekeeping step (in a thread, never on the loop) renews or takes the
leader lease and, while leading, loads schedule changes made by any process. A schedule
loaded by a new leader first gets its catch-up decision: one coalesced run for the latest
missed slot inside the misfire grace, otherwise a recorded ``missed`` event.

While leading, and if witnesses are configured, a checkpoint job signs the audit chain head
and sends it to every witness every ``[audit] checkpoint_minutes`` (SPEC §9), when the head
moved. A new leader whose last checkpoint is older than that checkpoints at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor as SideThread
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from scheduler.crontab import CrontabError
from scheduler.jobs import (
    JobHost,
    fire_checkpoint,
    fire_schedule,
    fire_self_alerts,
    register_host,
    unregister_host,
)
from scheduler.lease import LeaderLease, default_holder
from scheduler.triggers import build_trigger, plan_catch_up
from store.checkpoints import latest_checkpoint
from store.models import Schedule
from store.policy import authorize
from store.services.context import StoreContext
from store.services.schedules import last_handled, list_schedules, record_schedule_event
from workflows.connectors.registry import ConnectorRegistry

log = logging.getLogger(__name__)
CATCH_UP_SUFFIX = "@catch-up"
RESUME_SUFFIX = "@resume"
# Not a schedule: "@" keeps it apart from schedule IDs (and from their catch-up/resume jobs).
CHECKPOINT_JOB_ID = "@audit-checkpoint"
SELF_ALERT_JOB_ID = "@self-alerts"
HOUSE_JOBS = (CHECKPOINT_JOB_ID, SELF_ALERT_JOB_ID)  # not schedules: no missed-run records


def _fingerprint(schedule: Schedule) -> tuple[Any, ...]:
    return (schedule.kind, schedule.cron, schedule.interval_s, schedule.timezone,
            tuple(schedule.providers), schedule.live, schedule.misfire_grace_s,
            schedule.updated_at)


class SchedulerService:
    """Start inside a running asyncio loop (Textual ``on_mount``); ``shutdown()`` on exit."""

    def __init__(self, ctx: StoreContext, registry: ConnectorRegistry, *,
                 holder: str | None = None, lease_ttl_s: float = 10.0, poll_s: float = 2.0,
                 max_workers: int = 4) -> None:
        self.ctx = ctx
        self.registry = registry
        self.holder = holder or default_holder()
        self.lease_ttl_s = lease_ttl_s
        # Renew well inside the lease, so a healthy leader never lets it lapse.
        self.poll_s = min(poll_s, lease_ttl_s / 3)
        self.lease = LeaderLease(ctx, self.holder, lease_ttl_s, ctx.clock)
        self.max_workers = max_workers
        self.is_leader = False
        self.refusal: str | None = None  # why this process may not fire jobs, if it may not
        self._scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._loaded: dict[str, tuple[Any, ...]] = {}
        self._tick_lock = threading.Lock()
        self._stopping = False
        self._side = SideThread(max_workers=1, thread_name_prefix="cavra-scheduler-events")

    @property
    def running(self) -> bool:
        return self._scheduler is not None and not self._stopping

    def start(self) -> None:
        decision = authorize(self.ctx.identity, "scheduler.fire")
        if not decision.allowed:
            self.refusal = decision.reason
            log.warning("scheduler not started: %s", decision.reason)
            return
        loop = asyncio.get_running_loop()
        self._scheduler = AsyncIOScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(self.max_workers)},
            job_defaults={"coalesce": True, "max_instances": 1})
        self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self._scheduler.start()
        register_host(JobHost(self.ctx, self.registry, self.lease))
        self._task = loop.create_task(self._housekeeping(), name=f"scheduler {self.holder}")
        log.info("scheduler %s started (lease %.1fs, poll %.1fs)", self.holder,
                 self.lease_ttl_s, self.poll_s)

    def shutdown(self) -> None:
        """Stop firing, let running jobs finish in their threads, hand the lease back."""
        if self._stopping:
            return
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        unregister_host(self.holder)
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        with self._tick_lock:  # a renewal in flight finishes first, so the release sticks
            if self.is_leader:
                try:
                    self.lease.release()
                except SQLAlchemyError:
                    log.exception("could not release the leader lease (it will expire)")
            self.is_leader = False
        self._side.shutdown(wait=True)
        log.info("scheduler %s stopped", self.holder)

    async def _housekeeping(self) -> None:
        while not self._stopping:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("scheduler housekeeping failed")
            await asyncio.sleep(self.poll_s)

    def tick(self) -> None:
        """Renew or take the lease; while leading, follow schedule changes. Blocking."""
        with self._tick_lock:
            if self._stopping:
                return
            try:
                leader = self.lease.renew()
            except SQLAlchemyError:
                log.exception("leader lease renewal failed; standing by")
                leader = False
            if leader != self.is_leader:
                log.info("scheduler %s is now %s", self.holder, "leader" if leader else "standby")
                if not leader:
                    self._unload_all()
            self.is_leader = leader
            if leader:
                self._ensure_checkpoint_job()
                self._ensure_self_alert_job()
                try:
                    self._sync_jobs()
                except SQLAlchemyError:
                    log.exception("could not load schedules")

    def job_ids(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()] if self._scheduler else []

    def _ensure_checkpoint_job(self) -> None:
        """Load the periodic checkpoint job once per leadership (only if there are witnesses:
        without one it would have nothing to do)."""
        if (self._scheduler is None or not self.ctx.config.witnesses()
                or self._scheduler.get_job(CHECKPOINT_JOB_ID) is not None):
            return
        minutes = self.ctx.config.audit.checkpoint_minutes
        interval = timedelta(minutes=minutes)
        first: dict[str, Any] = {}
        try:
            with self.ctx.db.read() as session:
                latest = latest_checkpoint(session)
        except SQLAlchemyError:
            log.exception("could not read the latest checkpoint; checking at the interval")
        else:
            if latest is None or self.ctx.clock() - latest.checkpoint.at >= interval:
                first["next_run_time"] = datetime.now(UTC)  # overdue: checkpoint now
        # A late fire (a stalled process) still runs once, coalesced, within one interval.
        self._scheduler.add_job(
            fire_checkpoint, trigger=IntervalTrigger(minutes=minutes, timezone=UTC),
            args=[self.holder], id=CHECKPOINT_JOB_ID, name="audit checkpoint",
            replace_existing=True, coalesce=True, max_instances=1,
            misfire_grace_time=int(interval.total_seconds()), **first)

    def _ensure_self_alert_job(self) -> None:
        """While leading, check health every ``[health] self_alert_minutes`` and tell the
        operations providers when the loop itself fails or recovers (0: never)."""
        minutes = self.ctx.config.self_alert_interval()
        if (self._scheduler is None or not minutes
                or self._scheduler.get_job(SELF_ALERT_JOB_ID) is not None):
            return
        self._scheduler.add_job(
            fire_self_alerts, trigger=IntervalTrigger(minutes=minutes, timezone=UTC),
            args=[self.holder], id=SELF_ALERT_JOB_ID, name="self-alerts",
            replace_existing=True, coalesce=True, max_instances=1,
            misfire_grace_time=minutes * 60, next_run_time=datetime.now(UTC))

    def _sync_jobs(self) -> None:
        active = {s.schedule_id: s for s in list_schedules(self.ctx) if s.enabled}
        for schedule_id in [sid for sid in self._loaded if sid not in active]:
            self._unload(schedule_id)
        changed = [s for s in active.values()
                   if self._loaded.get(s.schedule_id) != _fingerprint(s)]
        if not changed:
            return
        handled = last_handled(self.ctx, [s.schedule_id for s in changed])
        now = self.ctx.clock()
        for schedule in changed:
            try:
                self._load(schedule, handled.get(schedule.schedule_id), now)
            except CrontabError as exc:
                # Stored before cron meant crontab(5) (e.g. `0 0 last * *`): this schedule
                # cannot run until it is replaced; the others still load.
                self._loaded[schedule.schedule_id] = _fingerprint(schedule)
                self._record_error(schedule.schedule_id, now,
                                   f"cron {schedule.cron!r} cannot run: {exc}; remove and "
                                   "add the schedule again")

    def _load(self, schedule: Schedule, handled: datetime | None, now: datetime) -> None:
        assert self._scheduler is not None
        schedule_id = schedule.schedule_id
        trigger = build_trigger(schedule)
        baseline = max(handled, schedule.updated_at) if handled else schedule.updated_at
        catch_up = plan_catch_up(trigger, baseline, now, schedule.misfire_grace_s)
        if catch_up.missed_slot is not None:
            self._record_missed(schedule_id, catch_up.missed_slot,
                                f"missed {catch_up.missed_count} fire(s) up to "
                                f"{catch_up.missed_slot.isoformat()} while no scheduler ran; "
                                f"outside the {schedule.misfire_grace_s}s misfire grace")
        self._scheduler.add_job(
            fire_schedule, trigger=trigger, args=[self.holder, schedule_id], id=schedule_id,
            name=schedule.name, replace_existing=True, coalesce=True, max_instances=1,
            misfire_grace_time=schedule.misfire_grace_s)
        if schedule.kind == "report" and handled is not None and (
                now - handled).total_seconds() <= schedule.misfire_grace_s:
            # The last leader may have died mid-delivery: send what it did not (idempotent).
            self._scheduler.add_job(
                fire_schedule, trigger="date", args=[self.holder, schedule_id,
                                                     handled.isoformat(), True],
                id=schedule_id + RESUME_SUFFIX, name=f"{schedule.name} (resume)",
                replace_existing=True, misfire_grace_time=None)
        if catch_up.run_slot is not None:
            log.info("schedule %s: catch-up run for %s", schedule_id,
                     catch_up.run_slot.isoformat())
            self._scheduler.add_job(
                fire_schedule, trigger="date", args=[self.holder, schedule_id,
                                                     catch_up.run_slot.isoformat()],
                id=schedule_id + CATCH_UP_SUFFIX, name=f"{schedule.name} (catch-up)",
                replace_existing=True, misfire_grace_time=None)
        self._loaded[schedule_id] = _fingerprint(schedule)

    def _unload(self, schedule_id: str) -> None:
        self._loaded.pop(schedule_id, None)
        if self._scheduler is None:
            return
        for job_id in (schedule_id, schedule_id + CATCH_UP_SUFFIX, schedule_id + RESUME_SUFFIX):
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)

    def _unload_all(self) -> None:
        for schedule_id in list(self._loaded):
            self._unload(schedule_id)
        if self._scheduler is not None:
            for job_id in HOUSE_JOBS:
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job(job_id)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """APScheduler saw a fire come too late (a stalled process): record it, off-thread."""
        if event.job_id in HOUSE_JOBS:  # not a schedule: the next interval covers it
            log.warning("%s at %s skipped: it came too late", event.job_id,
                        event.scheduled_run_time.isoformat())
            return
        schedule_id = event.job_id.split("@")[0]
        slot = event.scheduled_run_time.astimezone(UTC)
        grace = self._scheduler.get_job(event.job_id) if self._scheduler else None
        limit = f"{grace.misfire_grace_time}s" if grace is not None else "its"
        if not self._stopping:
            self._side.submit(self._record_missed, schedule_id, slot,
                              f"fire at {slot.isoformat()} came later than {limit} misfire grace")

    def _record_error(self, schedule_id: str, slot: datetime, detail: str) -> None:
        log.error("schedule %s: %s", schedule_id, detail)
        try:
            record_schedule_event(self.ctx, schedule_id, "error", slot, detail)
        except Exception:
            log.exception("could not record the error of %s", schedule_id)

    def _record_missed(self, schedule_id: str, slot: datetime, detail: str) -> None:
        log.warning("schedule %s: %s", schedule_id, detail)
        try:
            record_schedule_event(self.ctx, schedule_id, "missed", slot, detail)
        except Exception:
            log.exception("could not record a missed fire of %s", schedule_id)


class _HasRuntime(Protocol):
    @property
    def ctx(self) -> StoreContext: ...

    @property
    def registry(self) -> ConnectorRegistry: ...


def run_headless(runtime: _HasRuntime, *, lease_ttl_s: float = 10.0, poll_s: float = 2.0,
                 holder: str | None = None) -> int:
    """``cavra scheduler run``: serve until SIGTERM or SIGINT, then stop cleanly."""
    runtime.ctx.require("scheduler.fire")  # refuse (and audit) before touching the lease
    service = SchedulerService(runtime.ctx, runtime.registry, holder=holder,
                               lease_ttl_s=lease_ttl_s, poll_s=poll_s)
    return asyncio.run(_serve(service))


async def _serve(service: SchedulerService) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service.start()
    try:
        await stop.wait()
        log.info("scheduler %s: stop signal received", service.holder)
    finally:
        service.shutdown()
        await asyncio.sleep(0)  # let APScheduler's own shutdown callback run on the loop
    return 0
