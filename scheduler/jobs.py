"""The functions APScheduler runs. Module-level and taking IDs only (a persistent job store
could pickle them); the running service is looked up by its lease holder name.

They are plain ``def`` functions: APScheduler runs them in its thread pool, so their
database and network work never blocks the event loop (the console stays responsive).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scheduler.lease import LeaderLease
from scheduler.triggers import build_trigger, latest_fire_at_or_before
from store.clock import as_utc
from store.errors import NotFound, UserError
from store.models import Schedule
from store.services.context import StoreContext
from store.services.reports import create_schedule_run
from store.services.schedules import get_schedule, last_handled, record_schedule_event
from store.services.send_state import schedule_run_exists
from workflows.checkpoints import checkpoint_if_moved
from workflows.connectors.registry import ConnectorRegistry
from workflows.delivery import deliver_report
from workflows.follow_up import run_follow_up
from workflows.report_retry import run_report_retry
from workflows.self_alerts import run_self_alerts
from workflows.worker import run_retry_worker

log = logging.getLogger(__name__)


@dataclass
class JobHost:
    """What a running scheduler lends its jobs: context, connectors, lease."""

    ctx: StoreContext
    registry: ConnectorRegistry
    lease: LeaderLease
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, schedule_id: str) -> threading.Lock:
        """One fire per schedule at a time in this process (catch-up and regular fires)."""
        with self._guard:
            return self._locks.setdefault(schedule_id, threading.Lock())


_HOSTS: dict[str, JobHost] = {}
# One checkpoint at a time in this process: the periodic job and a run that just finished
# would otherwise both find the head moved and certify the same seq twice.
_CHECKPOINT_LOCK = threading.Lock()


def register_host(host: JobHost) -> None:
    _HOSTS[host.lease.holder] = host


def unregister_host(holder: str) -> None:
    _HOSTS.pop(holder, None)


def fire_schedule(holder: str, schedule_id: str, slot_iso: str | None = None,
                  resume: bool = False) -> None:
    """Run one slot of a schedule. Without ``slot_iso`` the slot is the trigger's latest fire
    time (the one APScheduler is firing for); a catch-up passes its slot explicitly.
    ``resume`` finishes a report run a dead leader left part-delivered, and nothing else."""
    host = _HOSTS.get(holder)
    if host is None:
        log.info("scheduler %s has stopped; %s not fired", holder, schedule_id)
        return
    with host.lock_for(schedule_id):
        if not host.lease.held():
            log.warning("%s is no longer the leader; %s not fired", holder, schedule_id)
            return
        try:
            schedule = get_schedule(host.ctx, schedule_id)
        except NotFound:
            return
        if not schedule.enabled:
            return
        slot = _slot(host.ctx, schedule, slot_iso)
        if slot is None or (resume and not _has_run(host.ctx, schedule_id, slot)):
            return
        run_slot(host.ctx, host.registry, schedule, slot)


def fire_checkpoint(holder: str) -> None:
    """The leader's periodic checkpoint (``[audit] checkpoint_minutes``): sign the audit chain
    head and send it to every witness, if the head moved since the last checkpoint."""
    host = _HOSTS.get(holder)
    if host is None:
        log.info("scheduler %s has stopped; no checkpoint", holder)
        return
    try:
        leading = host.lease.held()
    except Exception:
        log.exception("could not check the leader lease; no checkpoint")
        return
    if not leading:
        log.warning("%s is no longer the leader; no checkpoint", holder)
        return
    checkpoint(host.ctx, host.registry)


def fire_self_alerts(holder: str) -> None:
    """The leader's health check: tell operations when the loop fails or recovers."""
    host = _HOSTS.get(holder)
    if host is None:
        return
    try:
        if not host.lease.held():
            return
        for result in run_self_alerts(host.ctx, host.registry):
            log.warning("self-alert %s %s: %d delivery(ies)", result.announcement.state,
                        result.announcement.code, len(result.deliveries))
    except Exception:  # a failed check is logged; the next interval tries again
        log.exception("self-alert check failed")


def checkpoint(ctx: StoreContext, registry: ConnectorRegistry) -> None:
    """Checkpoint the head if it moved (nothing without a witness). Never raises."""
    try:
        with _CHECKPOINT_LOCK:
            checkpoint_if_moved(ctx, registry)
    except Exception:  # a checkpoint is never worth a failed job
        log.exception("audit checkpoint failed")


def _has_run(ctx: StoreContext, schedule_id: str, slot: datetime) -> bool:
    return schedule_run_exists(ctx, schedule_id, slot)


def _slot(ctx: StoreContext, schedule: Schedule, slot_iso: str | None) -> datetime | None:
    if slot_iso is not None:
        return as_utc(datetime.fromisoformat(slot_iso))
    now = ctx.clock()
    floor = now - timedelta(seconds=schedule.misfire_grace_s + 60)
    return latest_fire_at_or_before(build_trigger(schedule), now, not_before=floor)


def run_slot(ctx: StoreContext, registry: ConnectorRegistry, schedule: Schedule,
             slot: datetime) -> None:
    """Do the schedule's work for ``slot``; an error becomes a recorded ``error`` event."""
    try:
        if schedule.kind == "report":
            fire_report(ctx, registry, schedule, slot)
        elif schedule.kind == "follow-up":
            fire_follow_up(ctx, registry, schedule, slot)
        else:
            fire_retry_worker(ctx, registry, schedule, slot)  # both retry workers
    except Exception as exc:  # a failed job is a recorded outcome, not a dead scheduler
        if isinstance(exc, UserError):
            detail = f"{exc.__class__.__name__}: {exc}"
            log.warning("schedule %s at %s: %s", schedule.schedule_id, slot.isoformat(), detail)
        else:  # internal: the class only (a message could carry a secret); traceback to the log
            detail = f"internal error: {exc.__class__.__name__}"
            log.exception("schedule %s at %s failed", schedule.schedule_id, slot.isoformat())
        try:
            record_schedule_event(ctx, schedule.schedule_id, "error", slot, detail)
        except Exception:
            log.exception("could not record the error of schedule %s", schedule.schedule_id)


def fire_report(ctx: StoreContext, registry: ConnectorRegistry, schedule: Schedule,
                slot: datetime) -> None:
    """Build (or find) the run for this slot, then deliver to providers not yet reached."""
    run, _report, created = create_schedule_run(ctx, schedule.schedule_id, slot,
                                                 trigger="schedule")
    try:
        deliveries = deliver_report(ctx, registry, run.run_id)
    finally:  # a part-delivered run is recorded too: certify what is there
        checkpoint(ctx, registry)
    log.info("schedule %s at %s: run %s (%s), %d deliveries", schedule.schedule_id,
             slot.isoformat(), run.run_id, "new" if created else "existing", len(deliveries))


def fire_retry_worker(ctx: StoreContext, registry: ConnectorRegistry, schedule: Schedule,
                      slot: datetime) -> None:
    if _handled(ctx, schedule, slot):
        return
    worker = run_report_retry if schedule.kind == "report-retry" else run_retry_worker
    try:
        result = worker(ctx, registry, live=schedule.live, trigger="schedule",
                        schedule_id=schedule.schedule_id)
    finally:  # a live run (even one that failed part-way) is checkpointed; a dry run is not
        if schedule.live:
            checkpoint(ctx, registry)
    log.info("schedule %s at %s: worker run %s (%s)", schedule.schedule_id, slot.isoformat(),
             result.run.run_id, result.run.mode)


def _handled(ctx: StoreContext, schedule: Schedule, slot: datetime) -> bool:
    done = last_handled(ctx, [schedule.schedule_id]).get(schedule.schedule_id)
    if done is not None and done >= slot:
        log.info("schedule %s at %s: already handled", schedule.schedule_id, slot.isoformat())
        return True
    return False


def fire_follow_up(ctx: StoreContext, registry: ConnectorRegistry, schedule: Schedule,
                   slot: datetime) -> None:
    """A follow-up run (``trigger = schedule``), dry-run unless the schedule is live. A slot
    already handled (a double fire, a new leader repeating it) runs nothing; even a second
    run would send nothing twice, since each (plan, level) is claimed once."""
    if _handled(ctx, schedule, slot):
        return
    try:
        run = run_follow_up(ctx, registry, live=schedule.live, trigger="schedule",
                            schedule_id=schedule.schedule_id)
    finally:  # like a live retry run: what it sent is certified at once
        if schedule.live:
            checkpoint(ctx, registry)
    log.info("schedule %s at %s: follow-up run %s (%s)", schedule.schedule_id,
             slot.isoformat(), run.run_id, run.mode)
